"""Builders of bad inputs for the reliability tests: every file is generated in the test from the bundled
models and sample faces, so nothing hostile is committed."""
from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import numpy as np

import fer_edge
from fer_edge.metadata import append_tflite_metadata, read_tflite_metadata, tflite_flatbuffer

MODELS = Path(fer_edge.__file__).parent / "models"
INT8_TFLITE = MODELS / "fer_edge_default_int8.tflite"
FP32_TFLITE = MODELS / "fer_edge_default_fp32.tflite"
INT8_ONNX = MODELS / "fer_edge_default_int8.onnx"
SAMPLES = MODELS / "samples"
MEMBER = "fer_edge_spec.json"


def bundled_spec_dict(src: Path = INT8_TFLITE) -> dict:
    return json.loads(read_tflite_metadata(src).to_json())


def tflite_with_member(dst: Path, member: bytes, src: Path = INT8_TFLITE, compress=zipfile.ZIP_DEFLATED) -> Path:
    """The bundled flatbuffer with `member` as its metadata, raw (no validation, no digest)."""
    dst.write_bytes(tflite_flatbuffer(src))
    with zipfile.ZipFile(dst, "a", compress) as zf:
        zf.writestr(MEMBER, member)
    return dst


def tflite_with_spec(dst: Path, changes: dict, src: Path = INT8_TFLITE) -> Path:
    """The bundled flatbuffer with its spec changed by `changes` (digest removed: only the change is wrong)."""
    d = bundled_spec_dict(src)
    d.update(changes)
    d["graph_sha256"] = None
    return tflite_with_member(dst, json.dumps(d).encode(), src)


def zip_bomb_tflite(dst: Path, inflated: int = 1 << 30) -> Path:
    """A bundled model whose metadata member inflates to `inflated` bytes of JSON-ish padding
    (about 1 MB on disk for 1 GiB)."""
    dst.write_bytes(tflite_flatbuffer(INT8_TFLITE))
    with zipfile.ZipFile(dst, "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(MEMBER, "w", force_zip64=True) as fh:
            chunk = b" " * (1 << 24)
            left = inflated
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    return dst


def lying_zip_bomb_tflite(dst: Path, inflated: int = 64 << 20) -> Path:
    """Like zip_bomb_tflite, but the central directory claims the member is 100 bytes."""
    zip_bomb_tflite(dst, inflated)
    data = bytearray(dst.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24: cd + 28] = (100).to_bytes(4, "little")
    dst.write_bytes(bytes(data))
    return dst


def encrypted_member_tflite(dst: Path) -> Path:
    tflite_with_member(dst, read_tflite_metadata(INT8_TFLITE).to_json().encode())
    data = bytearray(dst.read_bytes())
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.rfind(sig)
        data[i + off] |= 0x1  # general purpose flag bit 0: encrypted
    dst.write_bytes(bytes(data))
    return dst


def nested_json(depth: int) -> bytes:
    d = bundled_spec_dict()
    d["graph_sha256"] = None
    text = json.dumps(d)
    return (text[:-1] + ', "metrics_extra": ' + "[" * depth + "]" * depth + "}").encode()


def flipped(data: bytes, seed: int, n: int = 3, lo: int = 0, hi: int | None = None) -> bytes:
    r = random.Random(seed)
    d = bytearray(data)
    hi = len(d) if hi is None else hi
    for _ in range(n):
        i = r.randrange(lo, hi)
        d[i] ^= 1 << r.randrange(8)
    return bytes(d)


def hostile_tflite(dst: Path, seed: int, n: int = 3, src: Path = INT8_TFLITE) -> Path:
    """Flatbuffer bits flipped AND the checksum recomputed: what a hostile file looks like (the digest
    only catches accidents). Only the probe and the interpreter's own checks stand in the way."""
    spec = read_tflite_metadata(src)
    fb = tflite_flatbuffer(src)
    dst.write_bytes(flipped(fb, seed, n))
    append_tflite_metadata(dst, spec)
    return dst


def mutated_model(dst_dir: Path, seed: int) -> Path:
    """One of several kinds of damaged model file (seeded): truncation, flipped bytes (digest kept),
    hostile flips (digest recomputed), spec-field mutations, garbage, or a bad ONNX."""
    r = random.Random(seed)
    kind = seed % 8
    src = [INT8_TFLITE, FP32_TFLITE][r.randrange(2)]
    data = src.read_bytes()
    p = dst_dir / f"m{seed}_{kind}.tflite"
    if kind == 0:  # truncated anywhere
        p.write_bytes(data[: r.randrange(1, len(data))])
    elif kind == 1:  # accidental bit rot, anywhere in the file
        p.write_bytes(flipped(data, seed, r.randint(1, 8)))
    elif kind in (2, 3):  # hostile: flatbuffer mutated, checksum recomputed
        hostile_tflite(p, seed, r.randint(1, 24), src)
    elif kind == 4:  # one spec field replaced by a wrong value or type
        field, value = r.choice([("labels", ["a"] * r.randint(0, 12)), ("labels", "angry"), ("input_shape", [48, 48]),
                                 ("input_shape", [r.randint(-5, 5000), 48, 1]), ("crop_margin", r.choice([-0.6, 7, "x"])),
                                 ("class_map", [1, 2]), ("cam", {"weights": [[1.0] * 3]}), ("tta", "spin"),
                                 ("quant_params", "x"), ("labels", ["\x1b[2J"] * 7), ("input_dtype", "complex64")])
        tflite_with_spec(p, {field: value}, src)
    elif kind == 5:  # the metadata bytes themselves mutated
        d = bytearray(json.dumps(bundled_spec_dict(src)).encode())
        for _ in range(r.randint(1, 6)):
            d[r.randrange(len(d))] = r.randrange(256)
        tflite_with_member(p, bytes(d), src, r.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    elif kind == 6:  # garbage with a plausible name
        p.write_bytes(bytes(r.randrange(256) for _ in range(r.randint(0, 4096))))
    else:  # ONNX: truncated or flipped protobuf
        onnx_data = INT8_ONNX.read_bytes()
        p = p.with_suffix(".onnx")
        if r.random() < 0.5:
            p.write_bytes(onnx_data[: r.randrange(1, len(onnx_data))])
        else:
            p.write_bytes(flipped(onnx_data, seed, r.randint(1, 16)))
    return p


def sample_faces() -> list[Path]:
    return sorted(SAMPLES.glob("*.png"))


def mutated_image_bytes(base: bytes, seed: int) -> bytes:
    """Damaged image bytes: truncated, flipped, spliced or header-mangled."""
    r = random.Random(seed)
    d = bytearray(base)
    kind = seed % 5
    if kind == 0:
        return bytes(d[: r.randrange(0, len(d))])
    if kind == 1:
        for _ in range(r.randint(1, 30)):
            d[r.randrange(len(d))] = r.randrange(256)
        return bytes(d)
    if kind == 2:  # header bytes only
        for _ in range(r.randint(1, 4)):
            d[r.randrange(min(64, len(d)))] = r.randrange(256)
        return bytes(d)
    if kind == 3:
        i, j = sorted(r.randrange(len(d)) for _ in range(2))
        return bytes(d[:i] + d[j:] + d[i:j])
    return bytes(r.randrange(256) for _ in range(r.randint(0, 2048)))


def encoded_variants() -> list[tuple[str, bytes]]:
    """The bundled faces and the astronaut crop encoded as PNG, JPEG, BMP, WebP and TIFF (8 and 16 bit)."""
    import cv2

    out = []
    for f in sample_faces()[:4] + [MODELS / "detect" / "astronaut_face.png"]:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
            ok, buf = cv2.imencode(ext, img)
            if ok:
                out.append((ext, buf.tobytes()))
        ok, buf = cv2.imencode(".png", img.astype(np.uint16) * 257)
        out.append((".png", buf.tobytes()))
    return out

