"""`fer-edge runs`: the training runs under some folders, where each stands and the command that
continues it (`fer_edge.runstatus`). Reads JSON only: no Keras, instant."""
from __future__ import annotations

from typing import List, Optional

import typer

from fer_edge.cli.app import app
from fer_edge.cli.common import console, handle_errors, print_json


def _status_help() -> str:
    from fer_edge.runstatus import RUN_STATUSES

    return "Status: " + "; ".join(f"{k}: {v}" for k, v in RUN_STATUSES.items()) + "."


@app.command("runs", help="List training runs: status, epochs, best val accuracy, minutes, and how to go on.")
@handle_errors
def runs_cmd(
    folders: Optional[List[str]] = typer.Argument(None, help="Run directories or --out folders (default: runs)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    resumable: bool = typer.Option(False, "--resumable", help="Only runs that can train on. " + _status_help()),
):
    from fer_edge.errors import UsageError
    from fer_edge.runstatus import runs_table

    roots = folders or ["runs"]
    from pathlib import Path

    missing = [r for r in roots if not Path(r).is_dir()]
    if missing:
        raise UsageError(f"{missing[0]}: no such folder; pass a run directory or the --out folder of `fer-edge train`.")
    rows = [r for r in runs_table(roots) if r["resumable"] or not resumable]
    if json_out:
        return print_json(rows)
    if not rows:
        typer.echo(f"no {'resumable ' if resumable else ''}runs under {', '.join(roots)}")
        return
    from rich.table import Table

    t = Table(title="training runs")
    for col in ("run", "model", "classes", "status", "epoch", "best val", "min"):
        t.add_column(col, justify="right" if col in ("epoch", "best val", "min") else "left",
                     overflow="fold" if col == "run" else "ellipsis")
    for r in rows:
        best = "" if r["best_val_accuracy"] is None else f"{r['best_val_accuracy'] * 100:.2f} % ({r['best_epoch']})"
        n = len(r["classes"].split(","))
        t.add_row(r["run"], r["arch"], str(n) if n in (2, 4, 7) else r["classes"], r["status"],
                  f"{r['epoch']}/{r['epochs']}", best, f"{r['minutes']:.1f}")
    console().print(t)
    for r in rows:  # whole lines, to copy: a table column would wrap or cut them
        if r["next"]:
            typer.echo(f"to go on: {r['next']}")
