"""Keras models named by a training option (--init, --teacher): a run directory or a .keras file."""
from __future__ import annotations

import os

from fer_edge.errors import UsageError
from fer_edge.rundir import model_file


def load_model_option(source: str | os.PathLike, option: str):
    """-> (model, path), or a one-line UsageError naming the option. Loaded in Keras' safe mode."""
    import keras

    path = model_file(source)
    if not path.is_file():
        raise UsageError(f"{option} {source}: no such run directory or .keras file.")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False), path
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad option value
        raise UsageError(f"{option} {path}: not a loadable Keras model ({type(exc).__name__}: {str(exc)[:120]}).") from None
