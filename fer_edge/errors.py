"""Error types the CLI turns into one-line messages (exit code 2), never tracebacks."""
from __future__ import annotations

import difflib
from typing import Iterable


class FerEdgeError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, missing extra)."""

    exit_code = 2


class DataError(FerEdgeError):
    """The data set is missing, has the wrong layout, or holds unreadable items."""


class ModelError(FerEdgeError):
    """A model file is missing, corrupt, unsafe, or lacks fer-edge metadata."""


class UsageError(FerEdgeError):
    """An option value is invalid (unknown name, bad combination)."""


class MissingDependency(FerEdgeError):
    """An optional library is not installed; the message carries the pip command."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> UsageError:
    """Build the standard 'unknown X' error with a did-you-mean and the valid choices."""
    choices = list(choices)
    return UsageError(
        f"unknown {kind} '{name}'.{did_you_mean(name, choices)} Choose from: {', '.join(choices)}."
    )
