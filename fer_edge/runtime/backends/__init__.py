"""Backend registry: one class per file, chosen from the model file's suffix (via FORMATS) or
by name. Each backend imports its inference library inside `load`, so listing backends, or
importing this package, costs nothing."""
from __future__ import annotations

import importlib
from pathlib import Path

from fer_edge.errors import MissingDependency, ModelError, unknown
from fer_edge.export.formats import format_for_path
from fer_edge.runtime.backends.base import Backend

#: name -> (module:class, pip hint when the library is missing)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("fer_edge.runtime.backends.onnxruntime:OnnxRuntimeBackend", "pip install onnxruntime"),
    "litert": ("fer_edge.runtime.backends.litert:LiteRTBackend", 'pip install "fer-edge[tflite]"'),
    "tflite-runtime": ("fer_edge.runtime.backends.tflite_runtime:TFLiteRuntimeBackend",
                       'pip install "fer-edge[tflite-legacy]" (needs numpy<2)'),
    "tensorflow": ("fer_edge.runtime.backends.tensorflow_lite:TensorFlowLiteBackend", 'pip install "fer-edge[train]"'),
    "keras": ("fer_edge.runtime.backends.keras:KerasBackend", 'pip install "fer-edge[train]"'),
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    mod, _, cls = BACKENDS[name][0].partition(":")
    return getattr(importlib.import_module(mod), cls)


def load_backend(path: str | Path, backend: str | None = None, threads: int | None = None,
                 device: str = "cpu") -> Backend:
    """Open a model file with `backend`, or with the first installed backend for its format."""
    path = Path(path)
    fmt = format_for_path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file.")
    if backend and backend != "auto":
        if backend not in BACKENDS:
            raise unknown("backend", backend, BACKENDS)
        if backend not in fmt.backends:
            raise ModelError(f"backend '{backend}' cannot run {fmt.suffix} files; use one of: {', '.join(fmt.backends)}.")
        return backend_class(backend).load(path, threads=threads, device=device)
    missing = []
    for name in fmt.backends:
        try:
            return backend_class(name).load(path, threads=threads, device=device)
        except MissingDependency:
            missing.append(f"{name} ({BACKENDS[name][1]})")
    raise MissingDependency(f"{path}: no installed backend runs {fmt.suffix} files; install one of: {'; '.join(missing)}.")
