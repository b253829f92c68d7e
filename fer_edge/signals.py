"""SIGINT, SIGTERM and SIGHUP end work the same way: as a KeyboardInterrupt that carries the signal.

`systemd stop`, `docker stop` (SIGTERM) and a dropped ssh session (SIGHUP) used to kill `fer-edge cam`
outright, leaving only an unplayable `out.partial.mp4`; Ctrl-C (SIGINT) was the only clean stop.
Under `graceful_signals()` all three raise `Interrupted` in the main thread, so every `finally` and
`except KeyboardInterrupt` that finalises outputs (video, JSON lines, checkpoints) runs, and the CLI
exits with the shell's convention, 128 + the signal number (130, 143, 129). SIGKILL cannot be caught:
what is finished is already under its final name, the rest is a `.partial` file.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_CAUGHT = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)
_last: int | None = None


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt raised by a signal; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_name(signum: int | None) -> str:
    try:
        return signal.Signals(signum).name if signum is not None else "SIGINT"
    except ValueError:
        return f"signal {signum}"


def last_signal() -> int | None:
    """The signal that interrupted the current command, if any (SIGINT for a bare KeyboardInterrupt)."""
    return _last


def interrupt_exit_code(exc: BaseException | None = None) -> int:
    signum = getattr(exc, "signum", None) or _last or signal.SIGINT
    return 128 + int(signum)


def _raise(signum, frame):
    global _last
    _last = signum
    raise Interrupted(signum)


@contextmanager
def graceful_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into `Interrupted` for the duration (main thread only; elsewhere a no-op)."""
    global _last
    _last = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for s in _CAUGHT:
        try:
            previous[s] = signal.signal(s, _raise)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for s, h in previous.items():
            try:
                signal.signal(s, h)
            except (ValueError, OSError):
                pass
