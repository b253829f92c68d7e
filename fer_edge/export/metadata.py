"""Embed / read the ModelSpec in exported files. Readers need no TensorFlow and no onnx package.

- TFLite: a small zip with `fer_edge_spec.json` appended after the flatbuffer (as Ultralytics
  does); interpreters ignore trailing bytes, and `zipfile` finds the archive from the end.
- ONNX: `metadata_props[fer_edge_spec]`, read back through onnxruntime's model metadata (or the
  onnx package when that is what is installed).
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from fer_edge.errors import ModelError
from fer_edge.spec import METADATA_KEY, ModelSpec

_MEMBER = METADATA_KEY + ".json"


def append_tflite_metadata(path: str | Path, spec: ModelSpec) -> None:
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_MEMBER, spec.to_json())


def read_tflite_metadata(path: str | Path) -> ModelSpec:
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            text = zf.read(_MEMBER)
    except (zipfile.BadZipFile, KeyError):
        raise ModelError(f"{path}: no fer-edge metadata in this .tflite; export it with `fer-edge export`.") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc}).") from None
    return ModelSpec.from_json(text, where=str(path))


def set_onnx_metadata(model_proto, spec: ModelSpec) -> None:
    """Set metadata_props on an onnx.ModelProto in place (replacing an older spec)."""
    for p in list(model_proto.metadata_props):
        if p.key == METADATA_KEY:
            model_proto.metadata_props.remove(p)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()


def spec_from_onnx_props(props: dict, where: str) -> ModelSpec:
    if METADATA_KEY not in props:
        raise ModelError(f"{where}: no fer-edge metadata in this .onnx; export it with `fer-edge export`.")
    return ModelSpec.from_json(props[METADATA_KEY], where=where)


def tflite_flatbuffer(path: str | Path) -> bytes:
    """The model bytes without the appended metadata zip (what converters/analysers expect)."""
    data = Path(path).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = zf.getinfo(_MEMBER)
        return data[: info.header_offset]
    except (zipfile.BadZipFile, KeyError):
        return data


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
