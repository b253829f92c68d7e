import numpy as np
import pytest
import cv2

from fer_edge.errors import UsageError
from fer_edge.labels import CSV_CODES, FER2013_LABELS, ClassMap, parse_classes
from fer_edge.preprocess import crop_box, preprocess_batch, preprocess_face, to_gray

from conftest import DATA


def test_presets_and_lists():
    assert parse_classes("7").labels == FER2013_LABELS
    assert parse_classes("2").labels == ("angry", "happy")
    assert parse_classes("4").num_classes == 4
    cm = parse_classes("happy, Angry")
    assert cm.labels == ("happy", "angry")
    assert cm.lookup_table() == [1, -1, -1, 0, -1, -1, -1]


def test_merges_map_every_source():
    cm = parse_classes("negative=angry+disgust+fear+sad,positive=happy+surprise,neutral")
    assert cm.labels == ("negative", "positive", "neutral")
    lut = cm.lookup_table()
    assert [lut[FER2013_LABELS.index(l)] for l in ("angry", "sad", "happy", "surprise", "neutral")] == [0, 0, 1, 1, 2]
    assert ClassMap.from_dict(cm.to_dict()) == cm


@pytest.mark.parametrize("bad, hint", [("hapy,sad", "Did you mean 'happy'"), ("happy", "at least two"),
                                        ("happy,happy", "twice"), ("5", "preset"), ("x=,sad", "bad class merge")])
def test_bad_class_specs(bad, hint):
    with pytest.raises(UsageError, match=hint):
        parse_classes(bad)


def test_csv_codes_cover_labels():
    assert sorted(CSV_CODES.values()) == sorted(FER2013_LABELS)
    assert CSV_CODES[4] == "sad" and CSV_CODES[6] == "neutral"


def test_golden_preprocessing():
    """Training and runtime share this function: its output on a real photo crop is pinned."""
    img = cv2.imread(str(DATA / "golden_face.png"))
    golden = np.load(DATA / "golden_face_48.npy")
    out = preprocess_face(img, (48, 48))
    assert out.dtype == np.uint8 and out.shape == (48, 48, 1)
    np.testing.assert_array_equal(out, golden)


def test_input_kinds_agree():
    bgr = cv2.imread(str(DATA / "golden_face.png"))
    ref = preprocess_face(bgr, (48, 48))
    rgb = bgr[:, :, ::-1].copy()
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(preprocess_face(rgb, (48, 48), rgb=True), ref)
    np.testing.assert_array_equal(preprocess_face(bgra, (48, 48)), ref)
    np.testing.assert_array_equal(preprocess_face(gray, (48, 48)), ref)
    as_float = preprocess_face(bgr.astype(np.float32) / 255.0, (48, 48))
    assert np.abs(as_float.astype(int) - ref.astype(int)).max() <= 1
    assert preprocess_face(gray, (48, 48), channels=3).shape == (48, 48, 3)


def test_bad_images_and_crops():
    with pytest.raises(ValueError):
        to_gray(np.zeros((0, 5), np.uint8))
    with pytest.raises(ValueError):
        to_gray(np.zeros((5, 5, 2), np.uint8))
    img = np.zeros((100, 100), np.uint8)
    assert crop_box(img, (90, 90, 20, 20), 0.1).shape == (12, 12)
    with pytest.raises(ValueError):
        crop_box(img, (200, 200, 10, 10))
    assert preprocess_batch([], (48, 48)).shape == (0, 48, 48, 1)
