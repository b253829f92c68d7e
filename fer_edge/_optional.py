"""Optional heavy dependencies, imported on demand with an actionable message when absent.

The pip hint for a runtime backend's library comes from the backends table (`formats.BACKENDS`), so
`bench`, `load_backend` and this message never disagree; the training libraries are listed here.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from fer_edge.errors import MissingDependency
from fer_edge.formats import BACKENDS

# training/export libraries: module name -> (pip distribution, fer-edge extra that brings it)
_EXTRAS = {
    "tensorflow": ("tensorflow-cpu", "train"),
    "keras": ("keras", "train"),
    "tf2onnx": ("tf2onnx", "train"),
    "onnx": ("onnx", "train"),
    "matplotlib": ("matplotlib", "train"),
    "sklearn": ("scikit-learn", "train"),
}


def pip_hint(module: str) -> str:
    """The pip command that brings `module`: a backend's from the backends table, else its extra's."""
    root = module.split(".")[0]
    for _impl, hint, import_name in BACKENDS.values():
        if import_name == root:
            return hint
    dist, extra = _EXTRAS.get(root, (root, None))
    return f'pip install "fer-edge[{extra}]"' if extra else f"pip install {dist}"


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import `module` or raise MissingDependency naming the exact pip command to fix it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f'pip install "fer-edge[{extra}]"' if extra else pip_hint(module)
        raise MissingDependency(f"{module} is not installed ({exc.__class__.__name__}); run: {hint}") from None
