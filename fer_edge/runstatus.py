"""Where each training run stands, and what to do next: `fer-edge runs`, and the guard that keeps two
processes from training one run directory at once.

Why: on a small machine a run is trained in slices (`--max-minutes`, Ctrl-C, a session that ends), and
a run directory alone does not say whether its training is still going, was killed (kill -9, a reboot:
config.json still says "running"), or stopped and can go on. `train` records its process id, host, boot
and start time in config.json; here that is checked against the live processes of this machine.

Ground floor: the standard library and `fer_edge.rundir` only (no Keras).
"""
from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from fer_edge.rundir import CONFIG, RunDir

#: status word -> what it means; `fer-edge runs --help` and the table read this
RUN_STATUSES = {
    "finished": "ended by its --epochs or by early stopping",
    "budget": "stopped on its --max-minutes budget; finished, and can train on",
    "interrupted": "stopped by Ctrl-C or a signal; can train on",
    "running": "its process is alive on this machine",
    "killed": "says running, but its process is gone (kill -9, a crash, a reboot); can train on",
    "elsewhere": "says running, on another machine (not checked)",
    "unknown": "config.json without a process id (older fer-edge) says running: alive or killed",
}


def this_host() -> str:
    return socket.gethostname()


def process_identity(pid: int) -> dict[str, str | int]:
    """What tells process `pid` apart from a later one given the same id: the boot it runs in and its start
    time (Linux, from /proc). A process id and a host name alone are not enough: after a reboot, or on
    another machine of the same name (VMs and containers are often all "vm" or "localhost"), the id of a
    run's trainer may belong to an unrelated process, which would then pass for it and block `--resume`.
    Empty where /proc is missing: the id and the host then decide alone, as before."""
    ident: dict[str, str | int] = {}
    try:
        ident["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        # field 22 of /proc/PID/stat (start time, in clock ticks since boot); the fields are counted after
        # the ")" that closes field 2, the command name, which may itself hold spaces or ")"
        ident["pid_start"] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        pass
    return ident


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def liveness(config: dict) -> str:
    """For a config.json that says "running": running | killed | elsewhere | unknown (`RUN_STATUSES`)."""
    pid = config.get("pid")
    if not isinstance(pid, int):
        return "unknown"
    if config.get("host") != this_host():
        return "elsewhere"
    if not process_alive(pid):
        return "killed"
    now = process_identity(pid)
    if any(key in now and key in config and config[key] != now[key] for key in ("boot_id", "pid_start")):
        return "killed"  # the id now names another process: the machine rebooted, or this is a same-named one
    return "running"


def budget_left(state: dict, epochs: int, has_resume_point: bool) -> str:
    """What a run that stopped on its --max-minutes budget can still do: "train" (epochs left and its
    resume point kept), "done" (all its --epochs trained) or "no-resume-point" (older fer-edge deleted
    last.keras). `fer-edge runs` and `train --resume` both ask this, so they never disagree."""
    if int(state.get("epoch", 0) or 0) >= epochs:
        return "done"
    return "train" if has_resume_point else "no-resume-point"


def owner(config: dict) -> int | None:
    """The id of the live process on this machine that is training the run of `config`, else None."""
    if config.get("status") != "running" or liveness(config) != "running" or config["pid"] == os.getpid():
        return None
    return config["pid"]


@dataclass
class RunProgress:
    run: str  # the directory, as found
    arch: str
    classes: str
    status: str  # a key of RUN_STATUSES
    epoch: int  # epochs done
    epochs: int  # asked for
    best_val_accuracy: float | None
    best_epoch: int | None
    minutes: float  # of training so far
    resumable: bool
    next: str  # the command that continues it, or ""


def progress(run: RunDir) -> RunProgress | None:
    """Where one run stands, from config.json and state.json; None when config.json is unreadable."""
    try:
        config = run.read_config()
        state = run.read_state()
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not isinstance(state, dict):
        return None
    tc = config.get("train_config") if isinstance(config.get("train_config"), dict) else {}
    status = str(config.get("status", "?"))
    if status == "finished" and state.get("budget_reached"):
        status = "budget"
    elif status == "running":
        status = liveness(config)
    epoch, epochs = int(state.get("epoch", 0) or 0), int(tc.get("epochs", 0) or 0)
    resumable = status in ("interrupted", "killed") or (
        status == "budget" and budget_left(state, epochs, run.last.is_file()) == "train")
    nxt = ""
    if resumable:
        nxt = f"fer-edge train --resume {run.path}" + (" --max-minutes M" if status == "budget" else "")
    best = state.get("best_val_accuracy")
    return RunProgress(
        run=str(run.path), arch=str(tc.get("arch", "?")), classes=",".join(config.get("class_map") or {}) or "?",
        status=status, epoch=epoch, epochs=epochs,
        best_val_accuracy=float(best) if isinstance(best, (int, float)) and best >= 0 else None,
        best_epoch=int(state["best_epoch"]) if state.get("best_epoch") else None,
        minutes=round(_seconds(state) / 60, 1), resumable=resumable, next=nxt)


def _seconds(state: dict) -> float:
    """Training time so far: state.json's total is written when a session ends, its per-epoch times at
    every epoch, so a live run is counted by the latter."""
    try:
        total = float(state.get("train_seconds", 0.0) or 0.0)
        epochs = sum(float(x) for x in state.get("epoch_seconds") or [])
    except (TypeError, ValueError):
        return 0.0
    return max(total, epochs)


def find_runs(roots: list[str | os.PathLike], depth: int = 3) -> list[RunDir]:
    """The run directories at or under each root (a run directory itself, an --out folder, or a folder
    of --out folders), down to `depth` levels, in path order."""
    found: dict[Path, RunDir] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for level in range(depth + 1):
            pattern = "/".join(["*"] * level + [CONFIG])
            for cfg in root.glob(pattern):
                found.setdefault(cfg.parent.resolve(), RunDir(cfg.parent))
    return [found[k] for k in sorted(found)]


def runs_table(roots: list[str | os.PathLike]) -> list[dict]:
    """One dict per run (`RunProgress` fields), for `fer-edge runs` and its --json."""
    rows = []
    for run in find_runs(roots):
        p = progress(run)
        if p is not None:
            rows.append(asdict(p))
    return rows
