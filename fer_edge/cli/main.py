"""fer-edge command line: the typer app (cli/app.py) with every command module registered on it.
Importing this module loads typer only: each command imports its heavy libraries when it runs."""
from __future__ import annotations

from fer_edge.cli import bench as _bench  # noqa: F401  (each module registers its command on `app`)
from fer_edge.cli import cam as _cam  # noqa: F401
from fer_edge.cli import evaluate as _evaluate  # noqa: F401
from fer_edge.cli import explain as _explain  # noqa: F401
from fer_edge.cli import export as _export  # noqa: F401
from fer_edge.cli import models as _models  # noqa: F401
from fer_edge.cli import predict as _predict  # noqa: F401
from fer_edge.cli import runs as _runs  # noqa: F401
from fer_edge.cli import train as _train  # noqa: F401
from fer_edge.cli.app import app

__all__ = ["app"]
