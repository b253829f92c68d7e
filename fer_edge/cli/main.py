"""fer-edge command line. Importing this module loads typer only: no TensorFlow, no onnxruntime."""
from __future__ import annotations

import typer

from fer_edge import __version__

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


from fer_edge.cli import bench as _bench  # noqa: E402,F401  (each module registers its command)
from fer_edge.cli import cam as _cam  # noqa: E402,F401
from fer_edge.cli import evaluate as _evaluate  # noqa: E402,F401
from fer_edge.cli import explain as _explain  # noqa: E402,F401
from fer_edge.cli import export as _export  # noqa: E402,F401
from fer_edge.cli import models as _models  # noqa: E402,F401
from fer_edge.cli import predict as _predict  # noqa: E402,F401
from fer_edge.cli import train as _train  # noqa: E402,F401
