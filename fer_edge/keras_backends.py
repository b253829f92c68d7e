"""Which Keras 3 backend trains: one table, chosen before Keras is imported.

Keras reads `KERAS_BACKEND` once, at its first import, so `fer-edge train --backend jax` sets it first
thing. The run directory is identical whatever the backend; `model.keras` from any backend loads under
TensorFlow for export (the export toolchain, tf2onnx and the TFLite converter, is TensorFlow's).
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

from fer_edge.errors import MissingDependency, UsageError, unknown

#: backend -> (the library it imports, the pip command that brings it)
KERAS_BACKENDS: dict[str, tuple[str, str]] = {
    "tensorflow": ("tensorflow", 'pip install "fer-edge[train]"'),
    "jax": ("jax", 'pip install "fer-edge[jax]"'),
    "torch": ("torch", 'pip install "fer-edge[torch]"'),
}
DEFAULT_BACKEND = "tensorflow"


def requested(name: str | None = None) -> str:
    """The backend asked for: `name`, else $KERAS_BACKEND, else tensorflow (validated)."""
    name = name or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if name not in KERAS_BACKENDS:
        raise unknown("Keras backend", name, KERAS_BACKENDS)
    return name


def select_backend(name: str | None = None) -> str:
    """Make `name` Keras' backend for this process (before Keras is imported) and check its library is
    installed. Keras already imported with another backend is a usage error, not a silent switch."""
    name = requested(name)
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise UsageError(f"Keras is already running on {current} in this process; start a new process "
                             f"with KERAS_BACKEND={name} (or --backend {name}).")
    else:
        os.environ["KERAS_BACKEND"] = name
    lib, hint = KERAS_BACKENDS[name]
    if not (_installed(lib) and _installed("keras")):
        others = [f"--backend {b} ({h})" for b, (l, h) in KERAS_BACKENDS.items() if b != name and _installed(l)]
        raise MissingDependency(f"the {name} backend needs {lib} and keras, which are not installed: {hint}"
                                + (f"; or train on {', '.join(others)}" if others else "") + ".")
    return name


def for_inference() -> str:
    """The backend that runs a .keras model here: the one Keras already runs on in this process, else
    $KERAS_BACKEND, else the first installed of tensorflow, jax, torch (this table's order)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return requested()
    for name, (lib, _) in KERAS_BACKENDS.items():
        if _installed(lib):
            return name
    return DEFAULT_BACKEND  # none installed: select_backend names what to install


@contextlib.contextmanager
def tensorflow_hidden() -> Iterator[None]:
    """Keras treats TensorFlow as present whenever it is installed: `set_random_seed` seeds it ("many
    workflows leverage tf.data") and `model.save` probes it while serializing. On the JAX and PyTorch
    backends that imported all of TensorFlow into a training process that never uses it (an `[all]`
    install): a 1-epoch `edgenet_tiny` JAX run on the 2-core EPYC peaked at 1.24 GB and took 14.6 s with
    it, 0.86 GB and 12.9 s without (`/usr/bin/time -f %M`). Inside this block Keras' lazy
    TensorFlow module reads as "not installed"; afterwards it is probed again, for real, by whatever
    needs it. A no-op on the TensorFlow backend, once TensorFlow is imported, or on a Keras whose layout
    differs from the one this was written against (3.x `keras.src.utils.module_utils`)."""
    import keras

    lazy_tf = None
    if keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules:
        try:
            from keras.src.utils import module_utils

            lazy_tf = module_utils.tensorflow
        except ImportError:
            lazy_tf = None
        if getattr(lazy_tf, "_available", True) is not None:  # already probed, or not the lazy module we know
            lazy_tf = None
    if lazy_tf is None:
        yield
        return
    lazy_tf._available = False
    try:
        yield
    finally:
        lazy_tf._available = None


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed` (Python, NumPy, Keras' global generator, torch on torch) without
    importing TensorFlow on the other backends (see `tensorflow_hidden`): their batches come from the numpy
    PyDataset, seeded by (seed, epoch, batch), not from tf.data."""
    import keras

    with tensorflow_hidden():
        keras.utils.set_random_seed(int(seed))


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def active() -> str:
    import keras

    return keras.backend.backend()


def version() -> str:
    import importlib.metadata as md

    lib = KERAS_BACKENDS[active()][0]
    try:
        return md.version({"tensorflow": "tensorflow-cpu"}.get(lib, lib))
    except md.PackageNotFoundError:
        try:
            return md.version(lib)
        except md.PackageNotFoundError:
            return "?"


def gpus() -> int:
    """Accelerators the active backend sees (0 on CPU-only installs)."""
    try:
        name = active()
        if name == "tensorflow":
            import tensorflow as tf

            return len(tf.config.list_physical_devices("GPU"))
        if name == "jax":
            import jax

            return len([d for d in jax.devices() if d.platform != "cpu"])
        if name == "torch":
            import torch

            return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - a broken driver means "no GPU" for this report
        return 0
    return 0


def describe() -> str:
    n = gpus()
    return f"keras {__import__('keras').__version__} on {active()} {version()}, " + (f"{n} GPU(s)" if n else "CPU")
