"""TFLite backend on the legacy `tflite-runtime` wheel (fallback: needs numpy<2, older op set)."""
from fer_edge.runtime.backends.litert import LiteRTBackend


class TFLiteRuntimeBackend(LiteRTBackend):
    name = "tflite-runtime"
    _module = "tflite_runtime.interpreter"
