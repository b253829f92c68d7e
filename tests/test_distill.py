"""Distillation from a teacher trained on more classes: the projection of its classes onto the student's,
the soft targets it gives, and what `--teacher` refuses."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_edge.errors import UsageError
from fer_edge.labels import FER2013_LABELS, parse_classes
from fer_edge.labels import class_projection

MODELS = Path(__file__).resolve().parents[1] / "fer_edge" / "models"
BUNDLED_SPEC = MODELS / "fer_edge_default.spec.json"


def test_projection_keeps_the_students_classes_in_its_order():
    proj = class_projection(parse_classes("7"), parse_classes("4"))  # happy, sad, surprise, neutral
    assert proj.shape == (7, 4)
    for j, name in enumerate(("happy", "sad", "surprise", "neutral")):
        assert np.flatnonzero(proj[:, j]).tolist() == [FER2013_LABELS.index(name)]
    assert proj[[FER2013_LABELS.index(c) for c in ("angry", "disgust", "fear")]].sum() == 0
    assert class_projection(parse_classes("7"), parse_classes("7")) is None


def test_projection_sums_merged_classes():
    student = parse_classes("negative=angry+disgust+fear+sad,positive=happy+surprise")
    proj = class_projection(parse_classes("7"), student)
    assert proj[:, 0].nonzero()[0].tolist() == [FER2013_LABELS.index(c) for c in ("angry", "disgust", "fear", "sad")]
    assert proj[:, 1].nonzero()[0].tolist() == [FER2013_LABELS.index(c) for c in ("happy", "surprise")]
    assert proj[FER2013_LABELS.index("neutral")].sum() == 0
    # a merged teacher class feeds a student class that holds all of it
    proj = class_projection(parse_classes("bad=angry+fear,happy,sad"), parse_classes("bad=angry+fear+sad,happy"))
    assert proj.tolist() == [[1, 0], [0, 1], [1, 0]]


@pytest.mark.parametrize("teacher, student, said", [
    ("4", "7", "no class for angry, disgust, fear"),  # the teacher never saw the student's classes
    ("bad=angry+fear,happy", "angry,happy", "cannot be split"),  # it merged what the student keeps apart
    ("bad=angry+fear,happy", "angry,fear,happy", "cannot be split"),
])
def test_projection_refuses_what_the_teacher_cannot_say(teacher, student, said):
    with pytest.raises(UsageError, match=said):
        class_projection(parse_classes(teacher), parse_classes(student))


def test_projected_soft_targets_are_the_teachers_renormalised_probabilities():
    """alpha 1, T 1: the loss is KL(teacher restricted to the student's classes and renormalised || student),
    computed here by hand from the two models' outputs."""
    keras = pytest.importorskip("keras")
    from fer_edge.training.distill import make_distiller

    keras.utils.set_random_seed(1)
    teacher = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="softmax")])
    student = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    proj = class_projection(parse_classes("7"), parse_classes("4"))
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1]]
    d = make_distiller(student, teacher, temperature=1.0, alpha=1.0, projection=proj)
    d.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
    p_s = keras.ops.convert_to_numpy(student(x)).astype(np.float64)
    p_t = keras.ops.convert_to_numpy(teacher(x)).astype(np.float64)[:, [FER2013_LABELS.index(c) for c in
                                                                         ("happy", "sad", "surprise", "neutral")]]
    p_t /= p_t.sum(1, keepdims=True)
    want = np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    got = float(d.compute_loss(x=x, y=y, y_pred=student(x), training=False))
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    # without the projection the same teacher cannot teach this student
    unprojected = make_distiller(student, teacher, temperature=1.0, alpha=1.0)
    unprojected.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
    with pytest.raises(Exception):
        unprojected.compute_loss(x=x, y=y, y_pred=student(x), training=False)


def test_flip_tta_teacher_averages_the_batch_and_its_mirror_image():
    """`--kd-tta flip`: the soft targets are the mean of the teacher's probabilities on each image and on
    its mirror (width flipped), computed here by hand; a teacher that is not mirror-symmetric gives
    another loss without it."""
    keras = pytest.importorskip("keras")
    from fer_edge.training.distill import make_distiller

    keras.utils.set_random_seed(2)
    teacher = keras.Sequential([keras.Input((4, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    student = keras.Sequential([keras.Input((4, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(1).normal(size=(5, 4, 6, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1]]
    p_s = keras.ops.convert_to_numpy(student(x)).astype(np.float64)

    def loss(tta):
        d = make_distiller(student, teacher, temperature=1.0, alpha=1.0, tta=tta)
        d.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
        return float(d.compute_loss(x=x, y=y, y_pred=student(x), training=False))

    def kl(p_t):
        return np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))

    plain = keras.ops.convert_to_numpy(teacher(x)).astype(np.float64)
    mirror = keras.ops.convert_to_numpy(teacher(x[:, :, ::-1, :].copy())).astype(np.float64)
    assert loss("flip") == pytest.approx(kl(0.5 * (plain + mirror)), rel=1e-4, abs=1e-6)
    assert loss("none") == pytest.approx(kl(plain), rel=1e-4, abs=1e-6)
    assert abs(kl(plain) - kl(0.5 * (plain + mirror))) > 1e-3  # the two recipes are told apart
    with pytest.raises(ValueError, match="tta must be one of"):
        make_distiller(student, teacher, temperature=1.0, alpha=1.0, tta="rot90")


def test_an_ensemble_of_teachers_teaches_the_mean_of_their_probabilities():
    """Several teachers: the soft targets are the mean of their probabilities, each read as the student's
    classes first (here a 4-class teacher as it is and a 7-class one projected and renormalised), computed
    here by hand; either teacher alone gives another loss."""
    keras = pytest.importorskip("keras")
    from fer_edge.training.distill import make_distiller

    keras.utils.set_random_seed(3)
    four = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    seven = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="softmax")])
    student = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    proj = class_projection(parse_classes("7"), parse_classes("4"))
    x = np.random.default_rng(2).normal(size=(6, 5)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1]]
    p_s = keras.ops.convert_to_numpy(student(x)).astype(np.float64)
    p4 = keras.ops.convert_to_numpy(four(x)).astype(np.float64)
    p7 = keras.ops.convert_to_numpy(seven(x)).astype(np.float64)[:, [FER2013_LABELS.index(c) for c in
                                                                      ("happy", "sad", "surprise", "neutral")]]
    p7 /= p7.sum(1, keepdims=True)

    def loss(teachers, projections):
        d = make_distiller(student, teachers, temperature=1.0, alpha=1.0, projection=projections)
        d.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
        return float(d.compute_loss(x=x, y=y, y_pred=student(x), training=False))

    def kl(p_t):
        return np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))

    both = loss([four, seven], [None, proj])
    assert both == pytest.approx(kl(0.5 * (p4 + p7)), rel=1e-4, abs=1e-6)
    assert loss([four], [None]) == pytest.approx(kl(p4), rel=1e-4, abs=1e-6)
    assert min(abs(both - kl(p4)), abs(both - kl(p7))) > 1e-3  # the mean, not either teacher
    with pytest.raises(ValueError, match="2 teacher"):
        make_distiller(student, [four, seven], temperature=1.0, alpha=1.0, projection=[proj])


def test_absolute_makes_every_teacher_of_an_ensemble_absolute(tmp_path):
    """`train --resume` from another directory: each teacher of a list is resolved against the directory
    the run started from, and one teacher stays a path (config.json as before ensembles)."""
    from fer_edge.training.train import TrainConfig, _absolute

    cfg = _absolute(TrainConfig(data="d", teacher=["a.keras", str(tmp_path / "b.keras")]), tmp_path)
    assert cfg.teacher == [str(tmp_path / "a.keras"), str(tmp_path / "b.keras")]
    assert _absolute(TrainConfig(data="d", teacher="a.keras"), tmp_path).teacher == str(tmp_path / "a.keras")


@pytest.mark.parametrize("args, said", [
    (["--teacher", "MODEL", "--kd-tta", "flp"], "did you mean 'flip'"),
    (["--teacher", "MODEL", "--teacher", "MODEL"], "name each teacher once"),  # would only weigh it double
    (["--kd-tta", "flip"], "give --teacher"),  # nothing to average
])
def test_cli_refuses_a_bad_teacher_tta_in_one_line(tmp_path, sample_data, args, said):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    args = [str(MODELS / "fer_edge_default.keras") if a == "MODEL" else a for a in args]
    r = CliRunner().invoke(app, ["train", "--data", str(sample_data), "--out", str(tmp_path / "x"), *args])
    assert r.exit_code == 2 and said in r.output.lower() and "Traceback" not in r.output, r.output
    assert not (tmp_path / "x").exists()


def _tiny_teacher(tmp_path, classes: str, spec: str | None):
    keras = pytest.importorskip("keras")
    from fer_edge.training.registry import create_model

    cm = parse_classes(classes)
    path = tmp_path / "teacher.keras"
    create_model("edgenet_tiny", (48, 48, 1), cm.num_classes).save(path)
    if spec is not None:
        d = json.loads(BUNDLED_SPEC.read_text())
        d["class_map"] = parse_classes(spec).to_dict()
        d["labels"] = list(d["class_map"])
        (tmp_path / "teacher.spec.json").write_text(json.dumps(d))
    return path, keras


def test_load_teacher_reads_the_teachers_classes_from_its_spec(tmp_path):
    from fer_edge.training.distill import load_teacher

    path, _ = _tiny_teacher(tmp_path, "7", spec="7")
    teacher, proj = load_teacher(path, (48, 48, 1), parse_classes("2"))
    assert proj.shape == (7, 2) and not teacher.trainable
    assert load_teacher(path, (48, 48, 1), parse_classes("7"))[1] is None


@pytest.mark.parametrize("classes, spec, said", [
    ("7", None, "has no spec.json saying which"),  # 7 outputs, a 4-class student, nothing names them
    ("7", "4", "names 4 classes but the model predicts 7"),  # a spec that does not belong to the model
])
def test_load_teacher_refuses_unnamed_or_mismatched_classes(tmp_path, classes, spec, said):
    from fer_edge.training.distill import load_teacher

    path, _ = _tiny_teacher(tmp_path, classes, spec)
    with pytest.raises(UsageError, match=said):
        load_teacher(path, (48, 48, 1), parse_classes("4"))


def _bundled_copy(tmp_path) -> Path:
    """The bundled 7-class model and its spec, copied as t/bundled.keras (+ bundled.spec.json)."""
    teacher = tmp_path / "t" / "bundled.keras"
    teacher.parent.mkdir()
    shutil.copy(MODELS / "fer_edge_default.keras", teacher)
    shutil.copy(BUNDLED_SPEC, teacher.with_name("bundled.spec.json"))
    return teacher


def test_cli_distils_a_two_class_student_from_the_seven_class_bundle(tmp_path, sample_data, cache_dir):
    """`--classes 2 --teacher <7-class model with its spec>`: one epoch runs and says how the classes map;
    a teacher the student's classes cannot be built from is refused in one line."""
    pytest.importorskip("keras")
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    teacher = _bundled_copy(tmp_path)
    r = CliRunner().invoke(app, ["train", "--data", str(sample_data), "--arch", "edgenet_tiny", "--classes", "2",
                                 "--epochs", "1", "--out", str(tmp_path / "runs"), "--no-augment",
                                 "--teacher", str(teacher), "--kd-tta", "flip"])
    assert r.exit_code == 0, r.output
    assert "teacher TTA flip, its 7 classes mapped onto the student's 2" in r.output
    bare = tmp_path / "t" / "bare.keras"
    shutil.copy(teacher, bare)  # the same model without its spec: 7 unnamed outputs
    r = CliRunner().invoke(app, ["train", "--data", str(sample_data), "--arch", "edgenet_tiny", "--classes", "2",
                                 "--epochs", "1", "--out", str(tmp_path / "runs2"), "--teacher", str(bare)])
    assert r.exit_code == 2 and "has no spec.json saying which" in r.output and "Traceback" not in r.output


def test_cli_distils_from_an_ensemble_of_two_teachers(tmp_path, sample_data, cache_dir):
    """`--teacher A --teacher B`: one epoch runs, the log names both, config.json lists both (absolute),
    and the run's hold-out lineage follows both."""
    pytest.importorskip("keras")
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    tiny, _ = _tiny_teacher(tmp_path, "7", spec="7")
    bundled = _bundled_copy(tmp_path)
    r = CliRunner().invoke(app, ["train", "--data", str(sample_data), "--arch", "edgenet_tiny", "--classes", "2",
                                 "--epochs", "1", "--out", str(tmp_path / "runs"), "--no-augment",
                                 "--teacher", str(bundled), "--teacher", str(tiny)])
    assert r.exit_code == 0, r.output
    assert "the mean of 2 teachers" in r.output and "bundled.keras's 7 classes mapped onto the student's 2" in r.output
    (cfg_file,) = (tmp_path / "runs").glob("*/config.json")
    run, config = cfg_file.parent, json.loads(cfg_file.read_text())
    assert config["train_config"]["teacher"] == [str(bundled), str(tiny)]
    spec = json.loads((run / "spec.json").read_text())
    assert spec["metrics"]["holdout_unseen"] is False  # neither teacher's spec says it never saw the hold-out


def test_evaluate_reads_a_seven_class_file_as_fewer_classes(sample_data, cache_dir):
    """`evaluate --classes 2` on the bundled 7-class int8 file: scored on the angry and happy images only,
    with its two probabilities renormalised, as computed here from the model's 7 outputs; merged classes
    sum their members (refusals: the projection tests above)."""
    from fer_edge.data import load_splits
    from fer_edge.evaluate import evaluate, predict_all
    from fer_edge.runtime.backends import load_backend

    model = MODELS / "fer_edge_default_int8.tflite"
    rep = evaluate(model, sample_data, split="val", classes="happy,angry")
    assert rep["labels"] == ["happy", "angry"] and "read as 2" in rep["classes_from_model"]
    splits = load_splits(sample_data, parse_classes("7"))
    keep = np.isin(splits.y_val, [FER2013_LABELS.index("happy"), FER2013_LABELS.index("angry")])
    p = predict_all(load_backend(model), splits.x_val[keep])[:, [FER2013_LABELS.index("happy"), FER2013_LABELS.index("angry")]]
    y = (splits.y_val[keep] == FER2013_LABELS.index("angry")).astype(int)
    assert rep["n"] == keep.sum() > 0
    assert rep["accuracy"] == pytest.approx(float((p.argmax(1) == y).mean()))
    assert evaluate(model, sample_data, split="val")["classes_from_model"] is None
    merged = evaluate(model, sample_data, split="val", classes="glad=happy+surprise,sad")  # merges sum
    assert merged["labels"] == ["glad", "sad"]
    assert merged["n"] == np.isin(splits.y_val, [FER2013_LABELS.index(c) for c in ("happy", "surprise", "sad")]).sum()
