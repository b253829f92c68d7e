"""Class 4: options and inputs that used to give silently wrong results are checked before any work."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fer_edge.errors import UsageError

import hostile as H
from conftest import SAMPLE, run_cli


def test_evaluate_classes_in_another_order_pair_by_name():
    from fer_edge.evaluate import evaluate

    model = H.INT8_ONNX
    default = evaluate(model, SAMPLE, split="val")
    shuffled = evaluate(model, SAMPLE, split="val", classes="surprise,sad,neutral,happy,fear,disgust,angry")
    assert shuffled["accuracy"] == default["accuracy"] and shuffled["labels"] == default["labels"]
    # renamed classes pair with the model's outputs by their FER2013 labels too (labels.class_projection),
    # never by position: given in reverse order, the same score under the new names
    renamed = evaluate(model, SAMPLE, split="val", classes="g=surprise,f=sad,e=neutral,d=happy,c=fear,b=disgust,a=angry")
    assert renamed["accuracy"] == default["accuracy"] and renamed["labels"] == list("gfedcba")
    with pytest.raises(UsageError, match="unknown class"):
        evaluate(model, SAMPLE, split="val", classes="a=angry,b=contempt")


@pytest.mark.parametrize("args", [
    ["evaluate", str(H.INT8_ONNX), "--data", str(SAMPLE), "--limit", "-5"],
    ["evaluate", str(H.INT8_ONNX), "--data", str(SAMPLE), "--limit", "0"],
    ["cam", "--source", "demo", "--no-display", "--max-frames", "-5"],
    ["predict", str(SAMPLE), "--margin", "nan"],
    ["predict", str(SAMPLE), "--margin", "-0.6"],
    ["predict", str(SAMPLE), "--threads", "0"],
    ["bench", "--min-runs", "0"],
])
def test_out_of_range_numbers_exit_2(args):
    r = run_cli(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_api_rejects_nan_and_negative_options():
    from fer_edge.runtime.recognizer import EmotionRecognizer

    for kw in ({"margin": float("nan")}, {"margin": -0.6}, {"smoothing": float("nan")}, {"detect_every": 0},
               {"detect_every": 1.5}):
        with pytest.raises(UsageError):
            EmotionRecognizer(H.INT8_ONNX, **kw)


def test_16_bit_images_match_8_bit_in_the_api_and_the_loader(tmp_path):
    from fer_edge.data import load_raw
    from fer_edge.runtime.recognizer import EmotionRecognizer

    rec = EmotionRecognizer(H.INT8_ONNX, detector_config="accurate")
    img8 = cv2.imread(str(H.MODELS / "detect" / "astronaut_face.png"), cv2.IMREAD_GRAYSCALE)
    img8 = cv2.copyMakeBorder(img8, 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    img16 = img8.astype(np.uint16) * 257
    a, b = rec.predict(img8), rec.predict(img16)
    assert a and [(r.box, r.label) for r in a] == [(r.box, r.label) for r in b]
    # the loader: a 16-bit copy of a training folder decodes to the same pixels
    for split in ("train", "test"):
        for f in (SAMPLE / split).rglob("*.jpg"):
            dst = (tmp_path / f.relative_to(SAMPLE)).with_suffix(".png")
            dst.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dst), cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 257)
    raw16 = load_raw(tmp_path, use_cache=False)
    raw8 = load_raw(SAMPLE, use_cache=False)
    assert np.array_equal(raw16.images, raw8.images)


def test_floats_outside_range_and_nan_images_are_errors_not_white():
    from fer_edge.runtime.recognizer import EmotionRecognizer

    rec = EmotionRecognizer(H.INT8_ONNX)
    for bad in (np.full((64, 64), np.nan, np.float32), np.full((64, 64), 300.0), np.full((64, 64), -1, np.int32)):
        with pytest.raises(UsageError):
            rec.predict(bad)


@pytest.mark.parametrize("opt, value, suggestion", [("--schedule", "cosin", "cosine"),
                                                    ("--optimizer", "adamx", "adam")])
def test_unknown_training_options_fail_before_a_run_directory_exists(tmp_path, opt, value, suggestion):
    out = tmp_path / "runs"
    r = run_cli("train", "--data", str(SAMPLE), "--epochs", "1", "--out", str(out), opt, value)
    assert r.returncode == 2, r.stderr
    assert f"Did you mean '{suggestion}'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
