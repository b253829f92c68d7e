"""Fuzz: mutated images and model files through the API and the CLI. Only fer-edge's own errors are
allowed: a DataError/UsageError/ModelError (CLI: exit 1 or 2 with one `error:` line per bad item),
never another exception, a traceback or a crash. Default: 500 images + 100 models; `-m slow`: 2,000
cases (figures in docs/reliability.md)."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.runtime.backends import load_backend
from fer_edge.runtime.images import read_image
from fer_edge.runtime.recognizer import EmotionRecognizer

import hostile as H
from conftest import run_cli


def _images(d, n):
    d.mkdir(parents=True, exist_ok=True)
    variants = H.encoded_variants()
    files = []
    for i in range(n):
        ext, data = variants[i % len(variants)]
        p = d / f"img{i:05d}{ext}"
        p.write_bytes(H.mutated_image_bytes(data, i))
        files.append(p)
    return files


def fuzz_images(tmp_path, n: int) -> dict:
    files = _images(tmp_path / "imgs", n)
    rec = EmotionRecognizer(H.INT8_ONNX, detector_config="fast")
    tally = collections.Counter()
    for f in files:
        try:
            img = read_image(f)
            rec.predict(img)
            tally["decoded"] += 1
        except FerEdgeError:
            tally["refused"] += 1
    r = run_cli("predict", str(tmp_path / "imgs"), "--json", "--detector", "fast", timeout=1800)
    assert r.returncode in (0, 2), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    records = json.loads(r.stdout) if r.stdout.strip() else []
    assert r.returncode == 2 or len(records) == n
    tally["cli_errors"] = sum("error" in x for x in records)
    return dict(tally)


def fuzz_models(tmp_path, n: int, start: int = 0) -> dict:
    d = tmp_path / "models"
    d.mkdir()
    files = [H.mutated_model(d, seed) for seed in range(start, start + n)]
    tally = collections.Counter()
    x = np.full((2, 48, 48, 1), 128, np.uint8)
    for f in files:
        try:
            b = load_backend(f)
            out = b.predict(x)
            assert out.shape == (2, b.spec.num_classes)
            tally["loaded"] += 1
        except FerEdgeError as exc:
            tally["crash-refused" if "crashes" in str(exc) else "refused"] += 1
    for backend, suffix in (("litert", ".tflite"), ("onnxruntime", ".onnx")):
        group = [str(f) for f in files if f.suffix == suffix]
        r = run_cli("bench", *group, "--backend", backend, "--no-pipeline", "--batch", "1", "--threads", "1",
                    "--min-runs", "1", "--min-time", "0", timeout=1800)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr[-2000:]
    return dict(tally)


def test_fuzz_images(tmp_path):
    tally = fuzz_images(tmp_path, 200)  # -m slow: 1,600
    assert tally["decoded"] + tally["refused"] == 200 and tally["refused"] > 20 and tally["decoded"] > 20


def test_fuzz_models(tmp_path):
    tally = fuzz_models(tmp_path, 24)  # three of each of the 8 kinds; -m slow: 400
    assert sum(tally.values()) == 24 and tally["refused"] > 8


@pytest.mark.slow
def test_fuzz_2000_cases(tmp_path, capsys):
    images = fuzz_images(tmp_path, 1600)
    models = fuzz_models(tmp_path, 400, start=1000)
    with capsys.disabled():
        print(f"\nFUZZ images(1600)={images} models(400)={models}")
    assert sum(v for k, v in images.items() if k != "cli_errors") == 1600 and sum(models.values()) == 400
