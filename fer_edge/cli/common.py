"""Shared CLI plumbing: one-line errors with exit code 2, quiet TensorFlow, rich console."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import typer


def quiet_tf() -> None:
    """Silence TensorFlow's C++ and absl chatter, and OpenCV's decoder logging (a corrupt image in a
    batch is reported once, as fer-edge's own `error:` line), before they are imported."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output (CI logs, files) gets a wide table instead of rich's 80-column default
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, width=width)


_CONTROL = {c: None for c in range(32) if c not in (9,)} | {127: None} | {c: None for c in range(0x80, 0xA0)}


def plain(text: object) -> str:
    """Text safe for a terminal: control characters (escape sequences, carriage returns) removed. File
    names and model labels are untrusted: a name must not move the cursor or recolour the terminal."""
    return str(text).translate(_CONTROL)


def safe(text: object) -> str:
    """Untrusted text for rich's console: plain() plus markup escaped (`[draft] me.jpg` stays itself)."""
    from rich.markup import escape

    return escape(plain(text))


def fail(msg: str, code: int = 2):
    try:
        typer.echo(f"error: {plain(msg)}", err=True)
    except OSError:  # stderr gone (a dropped ssh session): the exit code still tells
        pass
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """FerEdgeError (and file-system errors) -> 'error: ...' on stderr, exit 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fer_edge.errors import FerEdgeError

        from fer_edge.signals import graceful_signals, interrupt_exit_code, signal_name

        quiet_tf()
        try:
            with graceful_signals():
                return fn(*args, **kwargs)
        except FerEdgeError as exc:
            fail(str(exc), exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}")
        except OSError as exc:
            fail(f"{exc.__class__.__name__}: {exc}", 1)
        except KeyboardInterrupt as exc:
            fail(f"interrupted ({signal_name(getattr(exc, 'signum', None))})", interrupt_exit_code(exc))

    return wrapper


def write_json_file(path: str | Path, obj: Any) -> None:
    from fer_edge.outputs import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
