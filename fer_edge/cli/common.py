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
    """Silence TensorFlow's C++ and absl chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output (CI logs, files) gets a wide table instead of rich's 80-column default
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, width=width)


def fail(msg: str, code: int = 2):
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """FerEdgeError (and file-system errors) -> 'error: ...' on stderr, exit 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from fer_edge.errors import FerEdgeError

        quiet_tf()
        try:
            return fn(*args, **kwargs)
        except FerEdgeError as exc:
            fail(str(exc), exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}")
        except OSError as exc:
            fail(f"{exc.__class__.__name__}: {exc}", 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def write_json_file(path: str | Path, obj: Any) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
