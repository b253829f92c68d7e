"""Keras backend (.keras files, in-memory models). It needs TensorFlow, so it lives under training/
(registered by dotted path in runtime.backends) and the runtime folder never imports TensorFlow.

Runs the model through a `tf.function` (model.predict costs ~40 ms per call in Python overhead).
The spec comes from `spec.json` beside the .keras file (written by `fer-edge train`).
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
    from fer_edge.rundir import RunDir

    for spec_file in (path.with_name(path.stem + ".spec.json"), RunDir(path.parent).spec):
        if spec_file.is_file():
            return ModelSpec.from_json(spec_file.read_text(), where=str(spec_file))
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
    def load(cls, path, threads=None, device="cpu", spec: ModelSpec | None = None):
        from fer_edge.keras_backends import select_backend

        select_backend("tensorflow")  # models from any backend load under TensorFlow (tf.function inference)
        tf = require("tensorflow")
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # already initialised: TF keeps its first setting for the whole process
        if device == "gpu" and not tf.config.list_physical_devices("GPU"):
            from fer_edge.errors import UsageError

            raise UsageError("device gpu: TensorFlow sees no GPU here (CPU-only build or no CUDA device).")
        self = cls()
        self.threads_effective = tf.config.threading.get_intra_op_parallelism_threads() or None
        self.path = Path(path)
        self._tf = tf
        self.model = load_keras_model(self.path)
        self.spec = spec or keras_spec(self.path, self.model)
        self.check_graph(tuple(self.model.inputs[0].shape), [tuple(o.shape) for o in self.model.outputs])
        self._fn = inference_fn(self.model, self.spec.input_shape)
        return self

    @property
    def version(self) -> str:
        return self._tf.__version__

    def run(self, batch):
        batch = self.check_batch(batch)
        out = self._fn(self._tf.constant(batch, self._tf.float32))
        return [np.asarray(o, np.float32) for o in (out if isinstance(out, (list, tuple)) else [out])]
