"""Light runtime: numpy + OpenCV + one inference library. Never imports TensorFlow.

Public API: EmotionRecognizer, FaceResult, load_backend, HaarFaceDetector.
"""
from fer_edge.runtime.backends import load_backend
from fer_edge.runtime.detect import HaarFaceDetector
from fer_edge.runtime.recognizer import EmotionRecognizer, FaceResult

__all__ = ["EmotionRecognizer", "FaceResult", "HaarFaceDetector", "load_backend"]
