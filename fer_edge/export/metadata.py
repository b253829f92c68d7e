"""Writers for export (the readers live at the ground floor in `fer_edge.metadata`, re-exported here)."""
from __future__ import annotations

import os
from pathlib import Path

from fer_edge.metadata import (append_tflite_metadata, onnx_graph_bytes, read_onnx_metadata,  # noqa: F401
                               read_tflite_metadata, set_onnx_metadata, tflite_flatbuffer)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
