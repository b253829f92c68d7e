import csv

import cv2
import numpy as np
import pytest

from fer_edge.data import class_weights, load_raw, load_splits, make_splits, stratified_holdout
from fer_edge.errors import DataError
from fer_edge.labels import FER2013_LABELS, parse_classes


def _folder(root, per_class=4, test_prefix="PublicTest", private=0):
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", 2)):
        for c in FER2013_LABELS:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                pre = "Training" if split == "train" else test_prefix
                cv2.imwrite(str(d / f"{pre}_{c}{i}.jpg"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
            for i in range(private if split == "test" else 0):
                cv2.imwrite(str(d / f"PrivateTest_{c}{i}.png"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
    return root


def test_shipped_sample_splits(sample_data, cache_dir):
    s = load_splits(sample_data, parse_classes("7"), cache_dir=cache_dir)
    assert s.val_source == "PublicTest"
    assert len(s.y_train) == 7 * 14 and len(s.y_val) == 7 * 6
    assert s.x_train.shape[1:] == (48, 48, 1) and s.x_train.dtype == np.uint8
    assert s.test_source.startswith("PublicTest")  # no PrivateTest here: reported as such


def test_cache_hit_and_invalidation(tmp_path, cache_dir):
    root = _folder(tmp_path / "d")
    others = set(cache_dir.glob("fer2013-*.npz"))  # the shared cache folder: other tests' files
    a = load_raw(root, cache_dir=cache_dir)
    assert len(set(cache_dir.glob("fer2013-*.npz")) - others) == 1
    b = load_raw(root, cache_dir=cache_dir)
    np.testing.assert_array_equal(a.images, b.images)
    assert b.fingerprint == a.fingerprint  # read back from the cache
    cv2.imwrite(str(root / "train" / "happy" / "Training_new.jpg"), np.zeros((48, 48), np.uint8))
    c = load_raw(root, cache_dir=cache_dir)
    assert c.fingerprint != a.fingerprint and len(c.images) == len(a.images) + 1


def test_private_test_and_holdout(tmp_path, cache_dir):
    root = _folder(tmp_path / "d", per_class=10, private=3)
    raw = load_raw(root, cache_dir=cache_dir)
    s = make_splits(raw, parse_classes("7"))
    assert s.test_source == "PrivateTest" and len(s.y_test) == 21 and len(s.y_val) == 14
    h = make_splits(raw, parse_classes("7"), val_split="0.2", seed=1)
    assert h.val_source.startswith("hold-out") and len(h.y_val) == 14 and len(h.y_train) == 56
    assert set(np.unique(h.y_val)) == set(range(7))


def test_class_reduction_and_weights(sample_data, cache_dir):
    s = load_splits(sample_data, parse_classes("neg=angry+sad,happy"), cache_dir=cache_dir)
    assert np.bincount(s.y_train).tolist() == [28, 14]
    w = class_weights(s.y_train, 2)
    assert w[0] == pytest.approx(42 / (2 * 28)) and w[1] == pytest.approx(42 / (2 * 14))


def test_bad_folders(tmp_path, cache_dir):
    with pytest.raises(DataError, match="no such file"):
        load_raw(tmp_path / "missing", cache_dir=cache_dir)
    (tmp_path / "wrong" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="Kaggle layout"):
        load_raw(tmp_path / "wrong", cache_dir=cache_dir)
    root = _folder(tmp_path / "typo")
    (root / "train" / "hapy").mkdir()
    with pytest.raises(DataError, match="Did you mean 'happy'"):
        load_raw(root, cache_dir=cache_dir)


def test_skips_and_strict(tmp_path, cache_dir):
    root = _folder(tmp_path / "d")
    (root / "train" / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "train" / "sad" / "notes.txt").write_text("hello")
    big = np.full((96, 80, 3), 200, np.uint8)
    cv2.imwrite(str(root / "train" / "fear" / "Training_big.png"), big)
    raw = load_raw(root, cache_dir=cache_dir, use_cache=False)
    assert raw.skipped == 2 and raw.converted == 1
    assert raw.images.shape[1:] == (48, 48)
    with pytest.raises(DataError, match="strict"):
        load_raw(root, strict=True, use_cache=False)


def test_empty_class_folder(tmp_path, cache_dir):
    root = _folder(tmp_path / "d")
    for f in (root / "train" / "disgust").iterdir():
        f.unlink()
    raw = load_raw(root, use_cache=False)
    assert any("empty class folder" in p for p in raw.problems)
    with pytest.raises(DataError, match="empty class folder"):
        load_raw(root, strict=True, use_cache=False)


def _csv(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)
    return path


def test_csv_reader(tmp_path, cache_dir):
    px = " ".join(["7"] * 2304)
    rows = [[code, px, usage] for code in range(7) for usage in ("Training", "Training", "PublicTest", "PrivateTest")]
    rows += [["9", px, "Training"], ["3", "1 2 3", "Training"], ["x", px, "Training"], ["3", px, "Nope"]]
    p = _csv(tmp_path / "fer2013.csv", rows)
    raw = load_raw(p, cache_dir=cache_dir, use_cache=False)
    assert raw.skipped == 4 and len(raw.images) == 28
    s = make_splits(raw, parse_classes("7"))
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (14, 7, 7)
    # CSV code 4 is sad, 6 is neutral: mapped to canonical indices
    assert sorted(set(FER2013_LABELS[i] for i in raw.labels)) == sorted(FER2013_LABELS)
    with pytest.raises(DataError, match="malformed"):
        load_raw(p, strict=True, use_cache=False)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a fer2013.csv"):
        load_raw(other, use_cache=False)


def test_holdout_is_stratified_and_seeded():
    y = np.repeat(np.arange(3), [10, 20, 30])
    a, b = stratified_holdout(y, 0.1, 3), stratified_holdout(y, 0.1, 3)
    np.testing.assert_array_equal(a, b)
    assert np.bincount(y[a]).tolist() == [1, 2, 3]



def _run(root, name, unseen=None, n_holdout=0, init=None, teacher=None, config=True):
    """A run directory as `train` leaves it, reduced to what the hold-out lineage reads."""
    import json

    d = root / name
    d.mkdir()
    (d / "model.keras").write_bytes(b"")
    metrics = {} if unseen is None else {"holdout_unseen": unseen}
    (d / "spec.json").write_text(json.dumps({"metrics": metrics}))
    if config:
        (d / "config.json").write_text(json.dumps({"data": {"n_holdout": n_holdout},
                                                   "train_config": {"init": init, "teacher": teacher}}))
    return d


def test_holdout_lineage_follows_init_and_teacher(tmp_path):
    """A model counts as never having seen the gate hold-out only when it and every model it was
    warm-started (--init) or distilled (--teacher) from say so; anything unknown counts as seen."""
    from fer_edge.rundir import holdout_unseen
    from fer_edge.runtime.recognizer import BUNDLED_DIR, BUNDLED_STEM

    clean = _run(tmp_path, "clean", unseen=True)
    assert holdout_unseen(clean) and holdout_unseen(clean / "model.keras")
    # written before the spec said it: the config's count of hold-out images decides
    assert holdout_unseen(_run(tmp_path, "old", n_holdout=1437))
    assert not holdout_unseen(_run(tmp_path, "older", n_holdout=0))
    # a spec with no record and no run beside it (a copied .keras), like the bundled model
    bare = _run(tmp_path, "bare", config=False)
    assert not holdout_unseen(bare)
    assert not holdout_unseen(BUNDLED_DIR / f"{BUNDLED_STEM}.keras")
    # warm start and teacher: inherited, also through a run that itself claims to be clean
    assert holdout_unseen(_run(tmp_path, "from_clean", unseen=True, init=str(clean)))
    assert not holdout_unseen(_run(tmp_path, "from_bare", unseen=True, init=str(bare / "model.keras")))
    assert not holdout_unseen(_run(tmp_path, "taught_by_bare", unseen=True, teacher=str(bare)))
    # several teachers (an ensemble, a list in config.json): every one is followed
    clean2 = _run(tmp_path, "clean2", unseen=True)
    assert holdout_unseen(_run(tmp_path, "taught_by_two", unseen=True, teacher=[str(clean), str(clean2)]))
    assert not holdout_unseen(_run(tmp_path, "one_of_two_bare", unseen=True, teacher=[str(clean), str(bare)]))
    assert not holdout_unseen(_run(tmp_path, "from_missing", unseen=True, init=str(tmp_path / "gone.keras")))
    chain = _run(tmp_path, "chain", unseen=True, init=str(tmp_path / "from_bare"))
    assert not holdout_unseen(chain)
    # a loop of warm starts ends (as seen), and a spec that says False wins over its config
    _run(tmp_path, "a", unseen=True, init=str(tmp_path / "b"))
    assert not holdout_unseen(_run(tmp_path, "b", unseen=True, init=str(tmp_path / "a")))
    assert not holdout_unseen(_run(tmp_path, "says_no", unseen=False, n_holdout=1437))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.keras").write_bytes(b"")
    (tmp_path / "broken" / "spec.json").write_text("[1, 2")
    assert not holdout_unseen(tmp_path / "broken")
    odd = _run(tmp_path, "odd", unseen=True)
    (odd / "config.json").write_text('{"data": [1], "train_config": "x"}')
    assert not holdout_unseen(odd)
    # evaluate: a .keras model is traced through its run, whatever its own spec says; an exported file
    # carries the answer export traced
    from types import SimpleNamespace

    from fer_edge.evaluate import _holdout_unseen

    says_clean = SimpleNamespace(format="keras", metrics={"holdout_unseen": True})
    assert _holdout_unseen(clean / "model.keras", says_clean)
    assert not _holdout_unseen(tmp_path / "from_bare" / "model.keras", says_clean)
    assert _holdout_unseen(tmp_path / "m.tflite", SimpleNamespace(format="tflite", metrics={"holdout_unseen": True}))
    assert not _holdout_unseen(tmp_path / "m.tflite", SimpleNamespace(format="tflite", metrics={}))

def test_missing_class_in_data(tmp_path, cache_dir):
    root = _folder(tmp_path / "d")
    raw = load_raw(root, use_cache=False)
    raw.labels[raw.labels == FER2013_LABELS.index("disgust")] = FER2013_LABELS.index("angry")
    with pytest.raises(DataError, match="disgust"):
        make_splits(raw, parse_classes("7"))


def test_the_data_fingerprint_is_of_the_content_not_of_the_copy(tmp_path):
    """Run directories and model files record `fingerprint`: the same images give the same id from another
    copy (other paths, other mtimes: every machine this project lands on) and from an old cache file;
    one changed pixel gives another."""
    import os
    import shutil

    from fer_edge.data import CONTENT_PREFIX

    cache_dir = tmp_path / "cache"  # its own: the shared one holds other tests' files
    a = load_raw(_folder(tmp_path / "a"), cache_dir=cache_dir)
    (old,) = cache_dir.glob("fer2013-*.npz")  # a's cache file
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for f in (tmp_path / "b").rglob("*.jpg"):
        os.utime(f, ns=(1, 1))
    b = load_raw(tmp_path / "b", cache_dir=cache_dir)
    assert len(list(cache_dir.glob("fer2013-*.npz"))) == 2  # two copies, two cache keys ...
    assert a.fingerprint == b.fingerprint and a.fingerprint.startswith(CONTENT_PREFIX)  # ... one id
    with np.load(old) as z:  # a cache written before content fingerprints: no "content" entry
        arrays = {k: z[k] for k in z.files if k != "content"}
    np.savez(old, **arrays)
    assert load_raw(tmp_path / "a", cache_dir=cache_dir).fingerprint == a.fingerprint
    with np.load(old) as z:  # written back: the next load reads it instead of hashing again
        assert str(z["content"]) == a.fingerprint
    f = tmp_path / "b" / "train" / "happy" / "Training_happy0.jpg"
    cv2.imwrite(str(f), np.full((48, 48), 7, np.uint8))
    assert load_raw(tmp_path / "b", cache_dir=cache_dir).fingerprint != a.fingerprint


def test_evaluate_says_when_the_images_chose_the_model_or_are_other_data():
    """`fer-edge evaluate` notes: a split equal to the model's own val split (the epoch was chosen on it,
    PublicTest however the data names it), and data whose content fingerprint is not the model's."""
    from types import SimpleNamespace

    from fer_edge.evaluate import _same_data, selection_note

    public = SimpleNamespace(metrics={"val_source": "PublicTest"}, data_fingerprint="sha256:" + "a" * 64)
    assert selection_note(public, "PublicTest (no PrivateTest in this data)").startswith("the model's training run")
    assert selection_note(public, "PublicTest") and selection_note(public, "PrivateTest") is None
    assert selection_note(public, "Training") is None
    held = SimpleNamespace(metrics={"val_source": "hold-out 10% of Training (seed 42)"}, data_fingerprint=None)
    assert selection_note(held, "hold-out 10% of Training (seed 42)") and selection_note(held, "PublicTest") is None
    assert selection_note(SimpleNamespace(metrics={}, data_fingerprint=None), "PublicTest") is None
    assert _same_data(public, "sha256:" + "a" * 64) is True and _same_data(public, "sha256:" + "b" * 64) is False
    assert _same_data(SimpleNamespace(data_fingerprint="8d05325a8e8b8f906762cd189625a6554c8ce8f5"), "sha256:x") is None
    assert _same_data(held, "sha256:x") is None
