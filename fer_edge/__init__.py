"""fer-edge: facial-expression CNNs on FER2013, exported to TFLite/ONNX, run at the edge.

Importing this package is light: no TensorFlow, no onnxruntime until a model is loaded.
"""
from __future__ import annotations

from fer_edge.version import __version__

__all__ = ["EmotionRecognizer", "__version__"]


def __getattr__(name: str):  # lazy re-export keeps `import fer_edge` cheap
    if name == "EmotionRecognizer":
        from fer_edge.runtime.recognizer import EmotionRecognizer

        return EmotionRecognizer
    raise AttributeError(name)
