"""Class 3: hostile or corrupt model files end in a one-line ModelError, never a traceback, a crash,
a 1 GiB allocation or a silently wrong answer."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from fer_edge.errors import ModelError
from fer_edge.runtime.backends import load_backend

import hostile as H
from conftest import run_cli


def _refused(path, match: str):
    with pytest.raises(ModelError, match=match):
        load_backend(path)


def test_zip_bomb_metadata_is_refused_before_inflating(tmp_path):
    bomb = H.zip_bomb_tflite(tmp_path / "bomb.tflite")
    assert bomb.stat().st_size < 8 << 20  # ~1 MB on disk, 1 GiB inflated
    # the peak is read from /proc after resetting it (clear_refs 5): ru_maxrss of a child started by a
    # large pytest process reports the parent's size
    code = ("import re\n"
            "from fer_edge.errors import ModelError\nfrom fer_edge.runtime.backends import load_backend\n"
            "open('/proc/self/clear_refs', 'w').write('5')\n"
            f"try:\n    load_backend({str(bomb)!r})\nexcept ModelError as e:\n    print('REFUSED', e)\n"
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "print('PEAK_MB', int(hwm) // 1024)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "REFUSED" in r.stdout and "claims" in r.stdout, r.stdout + r.stderr
    peak = int(r.stdout.split("PEAK_MB")[1])
    assert peak < 400, f"peak RSS {peak} MB while refusing a zip bomb"


def test_zip_bomb_with_lying_sizes_is_refused(tmp_path):
    _refused(H.lying_zip_bomb_tflite(tmp_path / "liar.tflite"), "metadata")


def test_encrypted_and_unsupported_compression(tmp_path):
    _refused(H.encrypted_member_tflite(tmp_path / "enc.tflite"), "encrypted")
    spec = json.dumps(H.bundled_spec_dict()).encode()
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        _refused(H.tflite_with_member(tmp_path / f"c{method}.tflite", spec, compress=method), "unsupported compression")


@pytest.mark.parametrize("depth", [40, 200_000])
def test_deeply_nested_metadata(tmp_path, depth):
    _refused(H.tflite_with_member(tmp_path / "deep.tflite", H.nested_json(depth)), "nested|not valid JSON")


@pytest.mark.parametrize("changes, match", [
    ({"labels": ["a", "b", "c", "d", "e"], "class_map": {}, "cam": None}, "lists 5 labels but the graph outputs 7"),
    ({"labels": [f"c{i}" for i in range(9)], "class_map": {}, "cam": None}, "lists 9 labels but the graph outputs 7"),
    ({"input_shape": [64, 64, 1]}, "input is"),
    ({"input_shape": [48, 48]}, "input_shape"),
    ({"crop_margin": float("nan")}, "crop_margin"),
    ({"crop_margin": -0.6}, "crop_margin"),
    ({"labels": ["angry", "disgust", "fear", "\x1b[2Jhappy", "neutral", "sad", "surprise"]}, "printable"),
    ({"labels": ["angry"] * 7}, "repeat"),
    ({"class_map": {"x": ["angry"]}}, "class_map"),
    ({"cam": {"weights": [[0.0, 1.0]]}}, "cam.weights"),
    ({"input_range": [255, 0]}, "input_range"),
    ({"tta": "spin"}, "tta"),
])
def test_metadata_that_disagrees_with_itself_or_the_graph(tmp_path, changes, match):
    _refused(H.tflite_with_spec(tmp_path / "m.tflite", changes), match)


def test_onnx_metadata_mismatch_and_non_utf8(tmp_path):
    onnx = pytest.importorskip("onnx")
    from fer_edge.metadata import read_onnx_metadata, set_onnx_metadata

    spec = read_onnx_metadata(H.INT8_ONNX)
    m = onnx.load(str(H.INT8_ONNX))
    set_onnx_metadata(m, spec.replace(labels=spec.labels[:5], class_map={}, cam=None))
    onnx.save(m, str(tmp_path / "five.onnx"))
    _refused(tmp_path / "five.onnx", "lists 5 labels but the graph outputs 7")
    # non-UTF-8 bytes in the metadata value (protobuf's Python API cannot write them: patch the bytes)
    m = onnx.load(str(H.INT8_ONNX))
    set_onnx_metadata(m, spec.replace(arch="ZZZZZZZZ"))
    raw = m.SerializeToString().replace(b"ZZZZZZZZ", b"\xff\xfe\xfd\xfc\xff\xfe\xfd\xfc")
    (tmp_path / "latin.onnx").write_bytes(raw)
    _refused(tmp_path / "latin.onnx", "metadata is not UTF-8 text")


def test_bit_rot_is_caught_by_the_checksum(tmp_path):
    data = H.INT8_TFLITE.read_bytes()
    from fer_edge.metadata import tflite_parts

    n_graph = len(tflite_parts(data)[0])
    for seed in range(5):
        p = tmp_path / f"rot{seed}.tflite"
        p.write_bytes(H.flipped(data, seed, n=1, hi=n_graph))
        _refused(p, "checksum|not a valid|cannot load")
    onnx_data = H.INT8_ONNX.read_bytes()
    from fer_edge.metadata import onnx_graph_bytes

    graph = onnx_graph_bytes(onnx_data)
    start = onnx_data.index(graph)
    p = tmp_path / "rot.onnx"
    p.write_bytes(H.flipped(onnx_data, 7, n=1, lo=start + len(graph) // 2, hi=start + len(graph)))
    _refused(p, "checksum|cannot load|metadata")


def test_hostile_flatbuffers_are_errors_or_valid_models(tmp_path):
    """Bits flipped and the checksum recomputed: the probe (a child process) loads it first, so whatever
    the interpreter does with it, this process gets a model or a ModelError."""
    for seed in range(12):
        p = H.hostile_tflite(tmp_path / f"h{seed}.tflite", seed, n=8)
        try:
            b = load_backend(p)
        except ModelError:
            continue
        out = b.predict(np.zeros((2, 48, 48, 1), np.uint8))
        assert out.shape == (2, 7)


def test_a_file_that_segfaults_litert_is_an_error_here(tmp_path):
    """Found by the 2,000-case fuzz (seed 1010): flatbuffer bits flipped, checksum recomputed. LiteRT
    itself dies on it (SIGSEGV at load); through fer-edge it is a ModelError and this process lives."""
    pytest.importorskip("ai_edge_litert")
    p = H.mutated_model(tmp_path, 1010)
    code = ("from fer_edge.runtime.backends import load_backend\n"
            f"load_backend({str(p)!r}, backend='litert')\n")
    raw = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                         env={**__import__("os").environ, "FER_EDGE_TRUST_MODELS": "1"})
    if raw.returncode != -11:
        pytest.skip(f"this LiteRT does not crash on the fuzz file (exit {raw.returncode})")
    with pytest.raises(ModelError, match=r"litert crashes on this file \(SIGSEGV"):
        load_backend(p, backend="litert")


def test_a_crashing_interpreter_is_a_one_line_error(tmp_path, monkeypatch):
    """The parent's side of the probe: a child killed by a signal (as LiteRT was by a bit-flipped file,
    exit 139) becomes a ModelError naming the signal, and the file is not remembered as verified."""
    from fer_edge.runtime import guard

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(0o755)
    p = tmp_path / "x.tflite"
    p.write_bytes(H.INT8_TFLITE.read_bytes() + b"\0")  # a file the cache has not seen
    monkeypatch.setattr(guard.sys, "executable", str(fake))
    with pytest.raises(ModelError, match="crashes on this file .SIGSEGV"):
        guard.verify(p, "litert")
    assert not guard.is_verified(p, "litert")


def test_cli_one_line_errors_for_bad_models(tmp_path, astronaut):
    bad = [H.zip_bomb_tflite(tmp_path / "bomb.tflite", 64 << 20),
           H.tflite_with_spec(tmp_path / "five.tflite", {"labels": list("abcde")}),
           H.tflite_with_member(tmp_path / "deep.tflite", H.nested_json(200_000))]
    for m in bad:
        r = run_cli("predict", str(astronaut), "--model", str(m))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
