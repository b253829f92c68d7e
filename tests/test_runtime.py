"""Light runtime: recognizer on a real photo and every input type, tracking, cam loop on a video."""
import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from fer_edge.errors import DataError, ModelError, UsageError
from fer_edge.runtime.detect import HaarFaceDetector
from fer_edge.runtime.recognizer import EmotionRecognizer, bundled_model
from fer_edge.runtime.boxes import iou
from fer_edge.runtime.track import Tracker
from fer_edge.runtime.video import run_cam


@pytest.fixture(scope="module")
def rec():
    return EmotionRecognizer()  # the bundled model


def _plausible_astronaut_box(box):
    x, y, w, h = box
    # the face in astronaut.png spans about x 170..280, y 50..180 (512x512 image)
    return 140 < x + w / 2 < 300 and 60 < y + h / 2 < 200 and 60 < w < 200


def test_bundled_model_on_astronaut(rec, astronaut):
    assert bundled_model().is_file()
    img = cv2.imread(str(astronaut))
    res = rec.predict(img)
    assert len(res) == 1
    r = res[0]
    assert _plausible_astronaut_box(r.box)
    assert r.label in rec.labels and abs(sum(r.scores.values()) - 1) < 0.02
    d = r.to_dict()
    json.dumps(d)
    assert all(isinstance(v, int) for v in d["box"]) and all(isinstance(v, float) for v in d["scores"].values())


def test_recognizer_answers_in_fewer_classes(rec, astronaut):
    """classes="happy,angry": the bundled 7-class model's two probabilities, renormalised, in that order;
    a merged class sums its members, and its CAM is its most probable member's; an unknown class is
    refused in one line, before any frame (what a model cannot give: tests/test_distill.py)."""
    img = cv2.imread(str(astronaut))
    full = rec.predict(img)[0].scores
    two = EmotionRecognizer(classes="happy,angry")
    r = two.predict(img)[0]
    assert two.labels == ["happy", "angry"] and list(r.scores) == ["happy", "angry"]
    z = full["happy"] + full["angry"]
    assert r.scores["happy"] == pytest.approx(full["happy"] / z, abs=1e-4) and r.label == max(r.scores, key=r.scores.get)
    merged = EmotionRecognizer(classes="glad=happy+surprise,other=angry+disgust+fear+neutral+sad", explain=True)
    m = merged.predict(img)[0]
    # an int8 file's 7 probabilities sum to 1 only within its 1/256 steps: the merge renormalises them
    assert m.scores["glad"] == pytest.approx((full["happy"] + full["surprise"]) / sum(full.values()), abs=1e-4)
    assert m.cam is not None
    assert len(merged.classify([img[50:180, 170:280]])[0]) == 2
    with pytest.raises(UsageError, match="unknown class"):
        EmotionRecognizer(classes="happy,smug")


def test_every_input_kind(rec, astronaut):
    bgr = cv2.imread(str(astronaut))
    ref = rec.predict(bgr)[0]
    rgb = bgr[:, :, ::-1].copy()
    variants = {
        "rgb": (rgb, True), "gray": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), False),
        "bgra": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), False), "float01": (bgr.astype(np.float32) / 255, False),
        "float255": (bgr.astype(np.float64), False), "gray3d": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None], False),
    }
    for name, (img, is_rgb) in variants.items():
        res = rec.predict(img, rgb=is_rgb)
        assert len(res) == 1, name
        assert iou(res[0].box, ref.box) > 0.8, name
        assert res[0].label == ref.label or abs(res[0].score - ref.score) < 0.1, name
    big = cv2.resize(bgr, (1024, 1024))
    res = rec.predict(big)
    assert len(res) == 1 and _plausible_astronaut_box(tuple(v // 2 for v in res[0].box))


def test_no_face_and_bad_images(rec):
    assert rec.predict(np.full((240, 320, 3), 127, np.uint8)) == []
    with pytest.raises(UsageError):
        rec.predict(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(UsageError):
        rec.predict("not an image")


def test_batched_classification(rec, sample_data):
    faces = [cv2.imread(str(p)) for p in sorted(sample_data.glob("test/*/*.jpg"))[:5]]
    probs = rec.classify(faces)
    assert probs.shape == (5, len(rec.labels))
    one = rec.classify(faces[:1])
    np.testing.assert_allclose(one[0], probs[0], atol=1e-5)


def test_detector_maps_boxes_back(astronaut):
    img = cv2.imread(str(astronaut), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(img, (1536, 1536))
    boxes = HaarFaceDetector().detect(big)
    assert boxes and _plausible_astronaut_box(tuple(v // 3 for v in boxes[0]))


def test_tracker_smooths_and_keeps_ids():
    t = Tracker(alpha=0.5)
    a = t.match([(10, 10, 50, 50)])[0]
    t.smooth(a, np.array([1.0, 0.0]))
    b = t.match([(12, 11, 50, 50), (200, 200, 40, 40)])
    assert b[0].id == a.id and b[1].id != a.id
    np.testing.assert_allclose(t.smooth(b[0], np.array([0.0, 1.0])), [0.5, 0.5])
    for _ in range(7):
        t.match([])
    assert t.tracks == []


def test_bad_models(tmp_path):
    with pytest.raises(ModelError, match="no such model"):
        EmotionRecognizer(tmp_path / "x.onnx")
    with pytest.raises(UsageError, match="model file type"):
        EmotionRecognizer(tmp_path / "x.bin")
    with pytest.raises(UsageError, match="Did you mean 'litert'"):
        EmotionRecognizer(bundled_model(), backend="litrt")


def _video(path, sample_data, frames=40):
    from fer_edge.demo import make_demo_video

    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(sample_data.glob("test/happy/*.jpg"))[:3]]
    return make_demo_video(path, faces, frames=frames)


def test_cam_loop_on_video(tmp_path, sample_data):
    video = _video(tmp_path / "in.mp4", sample_data)
    rec = EmotionRecognizer(smoothing=0.5, detect_every=2)
    stats = run_cam(rec, str(video), display=False, output=tmp_path / "out.mp4", jsonl=tmp_path / "ev.jsonl",
                    fps_overlay=True, log=lambda *_: None)
    assert stats.frames == 40 and stats.end_reason == "end of stream" and stats.faces > 10
    lines = [json.loads(l) for l in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert len(lines) == 40 and [l["frame"] for l in lines] == list(range(40))
    assert {"timestamp", "faces", "detect_ms", "classify_ms"} <= set(lines[0])
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 40
    assert not list(tmp_path.glob("*.partial*"))


def test_cam_bad_sources(tmp_path):
    rec = EmotionRecognizer()
    with pytest.raises(DataError, match="no such video"):
        run_cam(rec, str(tmp_path / "missing.mp4"), display=False)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError):
        run_cam(rec, str(tmp_path / "bad.mp4"), display=False)
    with pytest.raises(UsageError, match="no-display"):
        run_cam(rec, str(tmp_path / "bad.mp4"), display=True)


def test_interrupted_loop_leaves_a_valid_video(tmp_path, sample_data):
    video = _video(tmp_path / "in.mp4", sample_data, frames=30)
    rec = EmotionRecognizer()

    def stop(i, _):
        if i == 9:
            raise KeyboardInterrupt

    stats = run_cam(rec, str(video), display=False, output=tmp_path / "out.mp4", on_frame=stop, log=lambda *_: None)
    assert stats.end_reason.startswith("interrupted")
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert cap.isOpened() and cap.read()[0]


def test_explain_overlay(astronaut, tiny_exports, tmp_path):
    from fer_edge.runtime.cam import draw_cams

    rec = EmotionRecognizer(tiny_exports["files"][("tflite", "int8")], explain=True)
    res = rec.predict(cv2.imread(str(astronaut)))
    assert res and res[0].cam is not None and res[0].cam.shape == (3, 3)
    plain_res = EmotionRecognizer(tiny_exports["files"][("tflite", "int8")]).predict(cv2.imread(str(astronaut)))
    assert plain_res[0].cam is None and plain_res[0].scores == res[0].scores  # one run() path for both
    img = cv2.imread(str(astronaut))
    out = draw_cams(img.copy(), res)
    assert out.shape == (512, 512, 3) and not np.array_equal(out, img)
    from fer_edge.export.metadata import append_tflite_metadata, read_tflite_metadata, tflite_flatbuffer

    src = tiny_exports["files"][("tflite", "none")]
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(tflite_flatbuffer(src))
    append_tflite_metadata(plain, read_tflite_metadata(src).replace(cam=None))
    with pytest.raises(UsageError, match="no CAM output"):
        EmotionRecognizer(plain, explain=True)


def test_whole_runtime_without_tensorflow(tmp_path, astronaut, sample_data):
    """predict + cam through the public API in a process where importing tensorflow fails."""
    video = _video(tmp_path / "v.mp4", sample_data, frames=10)
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('tensorflow', 'keras'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import cv2
        from fer_edge import EmotionRecognizer
        from fer_edge.runtime.video import run_cam
        for backend in (None, 'onnxruntime'):
            rec = EmotionRecognizer(backend=backend)
            assert len(rec.predict(cv2.imread({str(astronaut)!r}))) == 1
            s = run_cam(rec, {str(video)!r}, display=False)
            assert s.frames == 10
        print('OK')
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "OK" in r.stdout


def test_bundled_flip_variant_by_name(astronaut):
    """`--model fer_edge_flip` (BUNDLED_MODELS): the flip-TTA file of the same weights; its answer is the
    single-crop model's averaged over the face and its mirror image (both int8, so up to quantization)."""
    from fer_edge.preprocess import crop_box

    flip, plain = EmotionRecognizer("fer_edge_flip"), EmotionRecognizer(precision="int8")
    assert flip.spec.tta == "flip" and flip.backend.path.name.startswith("fer_edge_flip_int8")
    assert flip.spec.labels == plain.spec.labels and flip.precision_note
    img = cv2.imread(str(astronaut))
    face = flip.predict(img)
    assert len(face) == 1 and _plausible_astronaut_box(face[0].box)
    crop = crop_box(img, face[0].box, flip.margin)
    both = plain.classify([crop, crop[:, ::-1]])
    np.testing.assert_allclose(flip.classify([crop])[0], both.mean(axis=0), atol=0.06)
    with pytest.raises(UsageError, match="no fp32 file"):
        EmotionRecognizer("fer_edge_flip", precision="fp32")
    with pytest.raises(UsageError, match="Did you mean 'fer_edge_flip'"):
        EmotionRecognizer("fer_edge_flp")
