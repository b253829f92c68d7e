"""Writers for export (the readers live at the ground floor in `fer_edge.metadata`, re-exported here)."""
from __future__ import annotations

from fer_edge.metadata import (append_tflite_metadata, onnx_graph_bytes, read_onnx_metadata,  # noqa: F401
                               read_tflite_metadata, set_onnx_metadata, tflite_flatbuffer)
from fer_edge.outputs import atomic_write_bytes as write_bytes_atomic  # noqa: F401
