"""Keras backend (.keras files, in-memory models). It needs Keras and one of its frameworks, so it lives
under training/ (registered by dotted path in runtime.backends) and the runtime folder never imports them.

It runs on the Keras framework of this process: TensorFlow when Keras is not yet imported and TensorFlow
is installed (export and explain ask for it), else JAX or PyTorch. That makes a Keras row possible on
machines without TensorFlow, the GPU ones included (`fer-edge bench --device gpu`). Each framework
runs the model compiled once, not through `model.predict` (~40 ms per call in Python overhead): a
`tf.function` on TensorFlow, `jax.jit` of the stateless call on JAX, eager under `torch.no_grad` on
PyTorch, on the device asked for. The spec comes from `spec.json` beside the .keras file (written by
`fer-edge train`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError
from fer_edge.runtime.backends.base import Backend
from fer_edge.spec import ModelSpec


def load_keras_model(path: Path):
    """Load safely (safe_mode=True refuses Lambda/pickled code) with a one-line error."""
    keras = require("keras")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as exc:
        msg = str(exc)
        if "safe_mode" in msg or "Lambda" in msg:
            raise ModelError(f"{path}: refused, it needs unsafe deserialisation (Lambda/custom code); "
                             "fer-edge loads models with safe_mode only.") from None
        raise ModelError(f"{path}: cannot load this .keras file ({msg.splitlines()[0][:200]}).") from None
    except Exception as exc:  # zip/h5 errors for corrupt files
        raise ModelError(f"{path}: cannot load this .keras file ({exc.__class__.__name__}: {str(exc)[:160]}).") from None


def keras_spec(path: Path, model=None) -> ModelSpec:
    """<stem>.spec.json or spec.json beside the model (written by `fer-edge train`)."""
    from fer_edge.rundir import read_spec_beside

    spec = read_spec_beside(path)
    if spec is not None:
        return spec
    raise ModelError(f"{path}: no spec.json beside it (written by `fer-edge train`); "
                     "cannot know its labels. Pass --classes to say which classes it predicts.")


def inference_fn(model, input_shape):
    """`model` in inference mode as one traced tf.function over float32 batches of any size
    (model.predict costs ~40 ms per call in Python overhead)."""
    tf = require("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)], autograph=False)
    def fn(x):
        return model(x, training=False)

    return fn


def predict_probs(model, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """Class probabilities (the first output) of an in-memory Keras model on (N, H, W, C) pixels, in batches."""
    tf = require("tensorflow")
    fn = inference_fn(model, x.shape[1:])
    out = []
    for i in range(0, len(x), batch):
        o = fn(tf.constant(x[i:i + batch], tf.float32))
        out.append(np.asarray(o[0] if isinstance(o, (list, tuple)) else o, np.float32))
    return np.concatenate(out) if out else np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)


class KerasBackend(Backend):
    name = "keras"

    @classmethod
    def load(cls, path, threads=None, device="cpu", spec: ModelSpec | None = None, framework: str | None = None):
        """`framework`: the Keras backend to run on (None: `keras_backends.for_inference()`); export and
        explain ask for "tensorflow" (its converters, its gradient tape)."""
        from fer_edge import keras_backends as kb

        self = cls()
        self.framework = kb.select_backend(framework or kb.for_inference())
        self.threads_effective = _set_threads(self.framework, threads)
        if device == "gpu" and not kb.gpus():
            from fer_edge.errors import UsageError

            raise UsageError(f"device gpu: Keras on {self.framework} sees no GPU here (a CPU-only build of "
                             f"{self.framework}, or no CUDA device).")
        keras = require("keras")
        self._device = _device_name(self.framework, device)
        self.path = Path(path)
        with keras.device(self._device):  # the weights live where the model runs
            self.model = load_keras_model(self.path)
        self.spec = spec or keras_spec(self.path, self.model)
        self.check_graph(tuple(self.model.inputs[0].shape), [tuple(o.shape) for o in self.model.outputs])
        self._fn = _compiled(self.framework, self.model, self.spec.input_shape, self._device)
        return self

    @property
    def version(self) -> str:
        from fer_edge import keras_backends as kb

        return kb.version() if self.framework == "tensorflow" else f"{self.framework} {kb.version()}"

    def run(self, batch):
        batch = self.check_batch(batch)
        return [np.asarray(o, np.float32) for o in self._fn(np.asarray(batch, np.float32))]


def _device_name(framework: str, device: str) -> str:
    """fer-edge's cpu | gpu as `keras.device` names it for `framework` (Keras 3.15 on PyTorch fails to
    load models with Dropout under "cpu:0", so PyTorch gets its own names)."""
    if framework == "torch":
        return "cuda" if device == "gpu" else "cpu"
    return "gpu:0" if device == "gpu" else "cpu:0"


def _set_threads(framework: str, threads: int | None) -> int | None:
    """Intra-op threads where the framework lets a running process choose them; -> the number in effect
    (None: the framework's default, e.g. JAX, whose CPU thread pool is fixed when it starts)."""
    if framework == "tensorflow":
        tf = require("tensorflow")
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # already initialised: TF keeps its first setting for the whole process
        return tf.config.threading.get_intra_op_parallelism_threads() or None
    if framework == "torch":
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        return torch.get_num_threads()
    return None


def _compiled(framework: str, model, input_shape, device: str):
    """float32 (N, H, W, C) numpy batch -> list of numpy outputs, through `model` compiled for `framework`."""
    import keras

    def as_list(out):
        return list(out) if isinstance(out, (list, tuple)) else [out]

    if framework == "tensorflow":
        tf = require("tensorflow")
        with keras.device(device):
            fn = inference_fn(model, input_shape)

        def run_tf(x):
            with keras.device(device):
                return [o.numpy() for o in as_list(fn(tf.constant(x, tf.float32)))]

        return run_tf
    if framework == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def fn_jax(trainable, frozen, x):  # weights as arguments, not constants folded into each trace
            out, _ = model.stateless_call(trainable, frozen, x, training=False)
            return out

        def run_jax(x):
            with keras.device(device):
                return [np.asarray(o) for o in as_list(fn_jax(trainable, frozen, x))]

        return run_jax
    import torch

    model.eval()

    def run_torch(x):
        with keras.device(device), torch.no_grad():
            out = model(keras.ops.convert_to_tensor(x), training=False)
            return [keras.ops.convert_to_numpy(o) for o in as_list(out)]

    return run_torch
