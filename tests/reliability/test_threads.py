"""Class 1: shared state across threads. One recognizer or detector shared by threads returns what a
sequential pass returns, on every backend; detection is the same on a second pass."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from fer_edge.detect_bench import still_scenes
from fer_edge.runtime.backends import installed
from fer_edge.runtime.detect import HaarFaceDetector
from fer_edge.runtime.recognizer import EmotionRecognizer, bundled_files


def _frames(n: int) -> list[np.ndarray]:
    scenes = still_scenes()
    frames = [s.frame for s in scenes if s.tags.get("roll", 0) == 0] or [s.frame for s in scenes]
    return [frames[i % len(frames)] for i in range(n)]


def _in_threads(fn, frames, n_threads=4):
    out = [None] * len(frames)
    errors = []

    def work(k):
        try:
            for i in range(k, len(frames), n_threads):
                out[i] = fn(frames[i])
        except Exception as exc:  # recorded, then asserted empty
            errors.append(repr(exc))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    return out


def _as_tuple(results):
    return [(r.box, r.label, round(r.score, 6)) for r in results]


@pytest.mark.xdist_group("scenes")  # one worker builds the composited scenes (5 s) for all of these
@pytest.mark.parametrize("backend", ["litert", "onnxruntime"])
def test_shared_recognizer_equals_sequential(backend):
    if not installed(backend):
        pytest.skip(f"{backend} not installed")
    model = bundled_files("onnx" if backend == "onnxruntime" else "litert")["int8"]
    rec = EmotionRecognizer(model, backend=backend, detector_config="fast")
    frames = _frames(48)
    sequential = [_as_tuple(rec.predict(f)) for f in frames]
    shared = _in_threads(lambda f: _as_tuple(rec.predict(f)), frames)
    assert shared == sequential
    assert sum(map(len, sequential)) > 24  # the frames do hold faces


@pytest.mark.xdist_group("scenes")  # one worker builds the composited scenes (5 s) for all of these
def test_shared_detector_equals_sequential():
    det = HaarFaceDetector("cam")
    frames = _frames(32)
    sequential = [det.detect(f) for f in frames]
    assert _in_threads(det.detect, frames) == sequential

# detection on a second pass whatever cv2.setNumThreads says: tests/test_detect.py::test_detection_is_deterministic_whatever_the_thread_count
