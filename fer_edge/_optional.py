"""Optional heavy dependencies, imported on demand with an actionable message when absent."""
from __future__ import annotations

import importlib
from types import ModuleType

from fer_edge.errors import MissingDependency

# module name -> (pip distribution, fer-edge extra that brings it)
_EXTRAS = {
    "tensorflow": ("tensorflow-cpu", "train"),
    "keras": ("keras", "train"),
    "tf2onnx": ("tf2onnx", "train"),
    "onnx": ("onnx", "train"),
    "matplotlib": ("matplotlib", "train"),
    "sklearn": ("scikit-learn", "train"),
    "onnxruntime": ("onnxruntime", "runtime"),
    "ai_edge_litert": ("ai-edge-litert", "tflite"),
    "tflite_runtime": ("tflite-runtime", "tflite-legacy"),
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import `module` or raise MissingDependency naming the exact pip command to fix it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist, default_extra = _EXTRAS.get(module.split(".")[0], (module, None))
        extra = extra or default_extra
        if extra and extra != "runtime":
            hint = f'pip install "fer-edge[{extra}]"'
        else:
            hint = f"pip install {dist}"
        raise MissingDependency(f"{module} is not installed ({exc.__class__.__name__}); run: {hint}") from None
