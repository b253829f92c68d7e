"""Export side: Keras -> TFLite / ONNX with embedded metadata and a parity gate.

Only `formats` and `metadata` are light (no TensorFlow); the exporters import it inside."""
