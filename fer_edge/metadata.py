"""Read, write and check the ModelSpec embedded in model files. Needs no TensorFlow and no onnx package,
so the runtime reads it (ground floor: imports only `spec` and `errors`).

- TFLite: a small zip with `fer_edge_spec.json` appended after the flatbuffer (as Ultralytics does);
  interpreters ignore trailing bytes, and `zipfile` finds the archive from the end.
- ONNX: `metadata_props[fer_edge_spec]`, read back from the protobuf wire format (no onnx package).

Both carry `graph_sha256`, the SHA-256 of the graph bytes (the flatbuffer before the zip; the ONNX
`ModelProto.graph` field), so a bit-flipped or truncated copy is refused before an interpreter sees it.
Reading is bounded: the member's declared and actual size, its compression method and encryption
are checked before anything is inflated (a 1.5 MB file must not inflate to 1 GiB).
"""
from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from pathlib import Path

from fer_edge.errors import ModelError
from fer_edge.spec import METADATA_KEY, SPEC_LIMITS, ModelSpec

_MEMBER = METADATA_KEY + ".json"
_ONNX_GRAPH_FIELD = 7  # onnx.proto: ModelProto.graph = 7


def _read_member(zf: zipfile.ZipFile, where: str) -> bytes:
    limit = SPEC_LIMITS["max_json_bytes"]
    info = zf.getinfo(_MEMBER)
    if info.flag_bits & 0x1:
        raise ModelError(f"{where}: its fer-edge metadata is encrypted; this is not a fer-edge export.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelError(f"{where}: its fer-edge metadata uses an unsupported compression (method "
                         f"{info.compress_type}); re-export it with `fer-edge export`.")
    if info.file_size > limit:
        raise ModelError(f"{where}: its fer-edge metadata claims {info.file_size:,} bytes (limit {limit:,}); "
                         "the file is corrupt or hostile.")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)  # the declared size can lie: never inflate past the limit
    if len(data) > limit:
        raise ModelError(f"{where}: its fer-edge metadata inflates past {limit:,} bytes; the file is corrupt or hostile.")
    return data


def tflite_parts(data: bytes, where: str = "model") -> tuple[bytes, bytes | None]:
    """(flatbuffer, metadata JSON bytes or None) of a .tflite file's bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = zf.getinfo(_MEMBER)
            text = _read_member(zf, where)
        return data[: info.header_offset], text
    except (zipfile.BadZipFile, KeyError):
        return data, None
    except ModelError:
        raise
    except (zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError, OSError) as exc:
        raise ModelError(f"{where}: its fer-edge metadata is corrupt ({exc.__class__.__name__}: "
                         f"{str(exc)[:100]}); re-export it with `fer-edge export`.") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc}).") from None


def read_tflite_metadata(path: str | Path) -> ModelSpec:
    """The validated spec of a .tflite file, its graph checked against the digest (no interpreter)."""
    path = Path(path)
    flatbuffer, text = tflite_parts(_read(path), str(path))
    if text is None:
        raise ModelError(f"{path}: no fer-edge metadata in this .tflite; export it with `fer-edge export`.")
    spec = ModelSpec.from_json(text, where=str(path))
    check_graph_digest(spec, flatbuffer, str(path))
    return spec


def append_tflite_metadata(path: str | Path, spec: ModelSpec) -> ModelSpec:
    """Append the spec (with the flatbuffer's digest) to a bare .tflite file; returns the spec written."""
    path = Path(path)
    spec = spec.replace(graph_sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_MEMBER, spec.to_json())
    return spec


def tflite_flatbuffer(path: str | Path) -> bytes:
    """The model bytes without the appended metadata zip (what converters/analysers expect)."""
    return tflite_parts(Path(path).read_bytes(), str(path))[0]


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(10):
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
    raise ValueError("varint too long")


def _fields(data: bytes):
    """(field number, wire type, value) of each top-level field of a protobuf message: value is the raw
    bytes of length-delimited fields. Raises ValueError on malformed input."""
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > n:
                raise ValueError("truncated field")
            value, i = data[i:i + length], i + length
        else:
            raise ValueError(f"wire type {wire}")
        if i > n:
            raise ValueError("truncated field")
        yield field, wire, value


def onnx_graph_bytes(data: bytes) -> bytes | None:
    """The serialized GraphProto inside an ONNX file's bytes (top-level protobuf field 7), or None when
    the bytes are not a well-formed top-level message. Reads the wire format directly: no onnx package."""
    try:
        for field, wire, value in _fields(data):
            if field == _ONNX_GRAPH_FIELD and wire == 2:
                return value
    except ValueError:
        return None
    return None


def onnx_metadata_text(data: bytes, where: str = "model") -> bytes | None:
    """The raw fer-edge metadata value of an ONNX file's bytes (ModelProto.metadata_props = 14, entries
    of key = 1 / value = 2), without onnxruntime; None when absent. ModelError when malformed."""
    try:
        for field, wire, value in _fields(data):
            if field == 14 and wire == 2:
                entry = {f: v for f, w, v in _fields(value) if w == 2}
                if entry.get(1) == METADATA_KEY.encode():
                    return entry.get(2, b"")
    except ValueError:
        raise ModelError(f"{where}: not a well-formed ONNX file (a truncated or corrupt copy?).") from None
    return None


def precheck(path: str | Path) -> ModelSpec:
    """Everything that can be checked about a .tflite/.onnx file without handing it to a native
    interpreter: the metadata (bounded, validated) and the graph checksum. Cheap (one read, one hash)
    and safe, so it runs before the child-process probe."""
    path = Path(path)
    return read_tflite_metadata(path) if path.suffix.lower() == ".tflite" else read_onnx_metadata(path)


def set_onnx_metadata(model_proto, spec: ModelSpec) -> ModelSpec:
    """Set metadata_props on an onnx.ModelProto in place (replacing an older spec), with the graph's digest
    as it will be serialized; returns the spec written."""
    for p in list(model_proto.metadata_props):
        if p.key == METADATA_KEY:
            model_proto.metadata_props.remove(p)
    graph = onnx_graph_bytes(model_proto.SerializeToString())
    spec = spec.replace(graph_sha256=hashlib.sha256(graph).hexdigest() if graph is not None else None)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, spec.to_json()
    return spec


def read_onnx_metadata(path: str | Path) -> ModelSpec:
    """The validated spec of an .onnx file, read from the protobuf wire format (no onnxruntime, no onnx
    package), its graph checked against the digest."""
    path = Path(path)
    data = _read(path)
    text = onnx_metadata_text(data, str(path))
    if text is None:
        raise ModelError(f"{path}: no fer-edge metadata in this .onnx; export it with `fer-edge export`.")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{path}: its fer-edge metadata is not UTF-8 text; the file is corrupt.") from None
    spec = ModelSpec.from_json(text, where=str(path))
    graph = onnx_graph_bytes(data)
    check_graph_digest(spec, graph if graph is not None else b"", str(path))
    return spec


def check_graph_digest(spec: ModelSpec, graph: bytes, where: str) -> None:
    """Refuse a file whose graph bytes differ from the digest its metadata carries (files exported before
    fer-edge wrote digests carry none and are accepted)."""
    if spec.graph_sha256 and hashlib.sha256(graph).hexdigest() != spec.graph_sha256:
        raise ModelError(f"{where}: the model graph does not match the checksum in its metadata (a corrupt, "
                         "truncated or edited copy); re-download or re-export it.")
