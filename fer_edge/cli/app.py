"""The typer application that every command module registers on. Kept apart from `cli/main.py`
(which imports the command modules) so that the arrows run one way: main -> commands -> app.
Importing it loads typer only: no TensorFlow, no onnxruntime."""
from __future__ import annotations

import typer

from fer_edge.version import __version__

app = typer.Typer(
    name="fer-edge",
    help="Train facial-expression CNNs on FER2013, export them to TFLite/ONNX, benchmark and run them at the edge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"fer-edge {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")):
    """fer-edge: FER2013 expression recognition from training to the edge."""
