"""TFLite backend on TensorFlow's own `tf.lite.Interpreter` (when TF is all there is)."""
from fer_edge._optional import require
from fer_edge.runtime.backends.litert import LiteRTBackend


class TensorFlowLiteBackend(LiteRTBackend):
    name = "tensorflow"

    @classmethod
    def _interpreter_module(cls):
        return require("tensorflow").lite
