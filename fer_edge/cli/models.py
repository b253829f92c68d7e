"""`fer-edge models`: the registry as a table (name, source, params, MACs for a 48x48 face; the NAME_96
variants upscale it inside the model, and `--arch all` leaves them out)."""
from __future__ import annotations

import typer

from fer_edge.cli.common import console, handle_errors, print_json
from fer_edge.cli.app import app


@app.command("models")
@handle_errors
def models_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
               classes: int = typer.Option(7, help="Number of output classes to size the heads for.")):
    """List the registered architectures with their source, parameters and MACs."""
    from fer_edge.training.zoo import describe_models

    rows = describe_models(classes)
    if json_out:
        return print_json(rows)
    from rich.table import Table

    t = Table(title=f"fer-edge model zoo (48x48x1 input, {classes} classes; *: upscaled inside, not in --arch all)")
    for col in ("name", "family", "params", "MACs", "CAM", "source"):
        t.add_column(col, justify="right" if col in ("params", "MACs") else "left")
    for r in rows:
        t.add_row(r["name"] + ("*" if r["tier"] == "upscaled" else ""), r["family"], f"{r['params']:,}", f"{r['macs'] / 1e6:.1f} M", "yes" if r["cam"] else "",
                  r["source"])
    console().print(t)
