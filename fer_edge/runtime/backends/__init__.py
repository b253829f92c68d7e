"""Backend registry: one class per file, chosen from the model file's suffix (via FORMATS) or
by name. The two that need TensorFlow (keras, tensorflow) live in `fer_edge/training/`, so that this
folder never imports it (tests/test_cli.py walks it); they are registered here by dotted path.
Each backend imports its inference library inside `load`, so listing backends, or
importing this package, costs nothing."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fer_edge.errors import MissingDependency, ModelError, unknown
from fer_edge.formats import BACKENDS, format_for_path, load_ref
from fer_edge.runtime.backends.base import Backend

#: backends whose native interpreter parses the file itself: untrusted files are probe-loaded in a child
#: process first (runtime.guard); Keras files are loaded by Keras' safe mode, in Python
PROBED = ("onnxruntime", "litert", "tflite-runtime", "tensorflow")


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(BACKENDS[name][2]) is not None
    except (ImportError, ValueError):
        return False


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    return load_ref(BACKENDS[name][0])


def vet(name: str, path: str | Path) -> None:
    """Before `name` opens an untrusted file in this process: precheck and probe-load it (runtime.guard)
    when `name` is a native interpreter that is installed; a ModelError otherwise refuses it."""
    if name in PROBED and installed(name):
        from fer_edge.runtime.guard import verify

        verify(path, name)


def _open(name: str, path: Path, threads, device, trusted: bool, spec) -> Backend:
    if not trusted:
        vet(name, path)
    return backend_class(name).load(path, threads=threads, device=device, spec=spec)


def load_backend(path: str | Path, backend: str | None = None, threads: int | None = None,
                 device: str = "cpu", trusted: bool = False, spec=None) -> Backend:
    """Open a model file with `backend`, or with the first installed backend for its format. Files not yet
    seen are probe-loaded in a child process first (see runtime.guard) unless `trusted` (fer-edge's own
    export, checking what it just wrote). `spec` (trusted files only): the spec of a file export has just
    written and measures before it embeds its final metadata."""
    path = Path(path)
    if spec is not None and not trusted:
        raise ValueError("load_backend: a spec may be given for trusted files only; others carry their own.")
    fmt = format_for_path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file.")
    if backend and backend != "auto":
        if backend not in BACKENDS:
            raise unknown("backend", backend, BACKENDS)
        if backend not in fmt.backends:
            raise ModelError(f"backend '{backend}' cannot run {fmt.suffix} files; use one of: {', '.join(fmt.backends)}.")
        return _open(backend, path, threads, device, trusted, spec)
    missing = []
    for name in fmt.backends:
        try:
            return _open(name, path, threads, device, trusted, spec)
        except MissingDependency:
            missing.append(f"{name} ({BACKENDS[name][1]})")
    raise MissingDependency(f"{path}: no installed backend runs {fmt.suffix} files; install one of: {'; '.join(missing)}.")
