"""Row statuses: one table for every report that marks a row (export gate rows, benchmark rows).

Three outcomes, each with one icon: the row was measured and passed its checks; it was measured but
a check on it failed (the parity gate, or the accuracy a file claims); it could not be measured at
all. The export gate and the benchmark name the middle and last outcome in their own words (their
JSON keeps those words), but both read icons and meanings from here.
"""
from __future__ import annotations

#: status word -> (icon, outcome)
STATUSES: dict[str, tuple[str, str]] = {
    "ok": ("✅", "measured, every check passed"),
    "gate-failed": ("❎", "measured, a check failed (export parity gate)"),
    "accuracy-failed": ("❎", "measured, a check failed (accuracy differs from the file's claim)"),
    "error": ("❌", "not measured: it could not be built or run"),
    "failed": ("❌", "not measured: it could not be loaded or run"),
}


def icon(status: str) -> str:
    """The icon of a status word (KeyError for a word not in the table: a typo must not print ✅)."""
    return STATUSES[status][0]
