"""Writers for export (the readers live at the ground floor in `fer_edge.metadata`, re-exported here).

One embedder per format (`embed_tflite_spec`, `embed_onnx_spec`, named in `fer_edge.formats.FORMATS`):
it embeds a spec in a written model file, replacing any spec already there, and returns the spec as
written (with the graph's digest). Export embeds once, after the gate: the runtime backend measures the
bare graph with the spec given in memory.
"""
from __future__ import annotations

from pathlib import Path

from fer_edge.metadata import (append_tflite_metadata, onnx_graph_bytes, read_onnx_metadata,  # noqa: F401
                               read_tflite_metadata, set_onnx_metadata, tflite_flatbuffer)
from fer_edge.outputs import atomic_path
from fer_edge.outputs import atomic_write_bytes as write_bytes_atomic
from fer_edge.spec import ModelSpec


def embed_tflite_spec(path: str | Path, spec: ModelSpec) -> ModelSpec:
    """Embed `spec` in a .tflite file: the flatbuffer without any older metadata, the spec appended, in a
    temporary file that replaces the file in one rename, so a reader never sees half a zip."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(tflite_flatbuffer(path))
        return append_tflite_metadata(tmp, spec)


def embed_onnx_spec(path: str | Path, spec: ModelSpec) -> ModelSpec:
    """Embed `spec` in an .onnx file's metadata_props (replacing an older spec), saved atomically."""
    from fer_edge._optional import require

    onnx = require("onnx")
    proto = onnx.load(str(path))
    written = set_onnx_metadata(proto, spec)
    write_bytes_atomic(path, proto.SerializeToString())
    return written
