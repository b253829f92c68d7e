"""fer-edge train / evaluate on the shipped FER2013 sample: run directory, resume, leaderboard."""
import csv
import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_edge.training.train import TrainConfig, train, write_leaderboard  # noqa: E402

RUN_FILES = {"model.keras", "config.json", "spec.json", "history.csv", "metrics.json", "curves.png", "confusion.png"}


def test_run_directory_is_complete(tiny_run):
    assert RUN_FILES <= {p.name for p in tiny_run.iterdir()}
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["status"] == "finished" and cfg["class_map"]["happy"] == ["happy"]
    assert cfg["data"]["fingerprint"] and cfg["train_config"]["arch"] == "mini_xception"
    m = json.loads((tiny_run / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        rep = m["splits"][split]
        assert 0 <= rep["accuracy"] <= 1 and rep["loss"] > 0 and len(rep["confusion"]) == 7
        assert set(rep["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    assert m["params"] > 50_000 and m["macs"] > 1e6 and m["train_seconds"] > 0
    lb = (tiny_run.parent / "leaderboard.csv").read_text()
    assert tiny_run.name in lb


def test_interrupt_then_resume(tmp_path, sample_data, cache_dir):
    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    import shutil

    data = shutil.copytree(sample_data, tmp_path / "data")  # its own copy: one image changes below
    cfg = TrainConfig(data=str(data), arch="sequential", epochs=2, batch_size=32, out=str(tmp_path / "runs"),
                      cache_dir=str(cache_dir), augment=True)
    run = train(cfg, callbacks=[StopAfterFirst()], log=lambda *_: None)
    assert json.loads((run / "config.json").read_text())["status"] == "interrupted"
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert (run / "last.keras").is_file() and not (run / "metrics.json").exists()
    # model.keras holds the weights alone, last.keras the Adam moments too (twice the weights again)
    assert (run / "model.keras").stat().st_size < 0.5 * (run / "last.keras").stat().st_size
    first = json.loads((run / "config.json").read_text())["data"]["fingerprint"]
    # between the slices the data changes (one image): the resume says so and config.json keeps both ids
    image = next(data.rglob("*.jpg"))
    cv2.imwrite(str(image), 255 - cv2.imread(str(image), cv2.IMREAD_GRAYSCALE))
    said = []
    run2 = train(TrainConfig(data=str(sample_data)), resume=run, log=said.append)
    assert run2 == run
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished"
    assert config["data"]["earlier_fingerprints"] == [first] and config["data"]["fingerprint"] != first
    assert sum("is not the data this run trained on so far" in m for m in said) == 1
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert len(metrics["epoch_seconds"]) == 2 and all(t > 0 for t in metrics["epoch_seconds"])  # both sessions'


@pytest.mark.parametrize("n_teachers", [1, 2])
def test_distillation_interrupt_then_resume(tmp_path, sample_data, cache_dir, n_teachers):
    """A distilled run resumes (its last.keras is the bare student, without an optimizer), restarts the
    optimizer at the saved rate and finishes; the cosine schedule keeps the phase's own base rate. With two
    teachers (an ensemble, a list in config.json) the resume loads both again."""
    from fer_edge.training.registry import create_model

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    teachers = [tmp_path / f"teacher{i}.keras" for i in range(n_teachers)]
    for t in teachers:
        create_model("edgenet_tiny", (48, 48, 1), 7).save(t)
    cfg = TrainConfig(data=str(sample_data), arch="edgenet_tiny", epochs=3, batch_size=32, out=str(tmp_path),
                      cache_dir=str(cache_dir), augment=False, schedule="cosine", lr=1e-3,
                      teacher=str(teachers[0]) if n_teachers == 1 else [str(t) for t in teachers])
    run = train(cfg, callbacks=[StopAfterFirst()], log=lambda *_: None)
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    # the optimizer state travels beside the bare student, and loads back into a new distiller
    from fer_edge.training.distill import load_teachers, make_distiller, restore_optimizer_state

    saved = np.load(run / "last_optimizer.npz")
    assert int(saved["epoch"]) == 1 and int(saved["v0"]) > 0  # the step count after one epoch
    student = keras.models.load_model(run / "last.keras")
    from fer_edge.labels import parse_classes

    models, projections = load_teachers(cfg.teacher, (48, 48, 1), parse_classes("7"))
    d = make_distiller(student, models, 3.0, 0.7, projections)
    d.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    assert restore_optimizer_state(d.optimizer, d.trainable_variables, run / "last_optimizer.npz", 2) is not None
    assert restore_optimizer_state(d.optimizer, d.trainable_variables, run / "last_optimizer.npz", 1) is None
    for i, v in enumerate(d.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), saved[f"v{i}"])
    logs: list[str] = []
    assert train(TrainConfig(data=str(sample_data)), resume=run, log=logs.append) == run
    assert not [m for m in logs if "optimizer restarted" in m], logs
    assert ("the mean of 2 teachers" in "\n".join(logs)) == (n_teachers == 2), logs
    val0 = float(next(csv.DictReader((run / "history.csv").read_text().splitlines()))["val_accuracy"])
    assert f"early stopping continues: best val accuracy {val0:.4f}, 0 of" in "\n".join(logs), logs
    assert json.loads((run / "config.json").read_text())["status"] == "finished"
    assert not (run / "last_optimizer.npz").exists() and not (run / "last.keras").exists()
    state = json.loads((run / "state.json").read_text())
    # cosine over 3 epochs from 1e-3: epoch 3 (index 2) runs at 2.5e-4, whatever rate the resume compiled at
    assert state["lr"] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 2 / 3)), rel=1e-4)


def test_time_budget_stops_finished_and_resumable(tmp_path, sample_data, cache_dir):
    """A run that stops on --max-minutes is finished (metrics, plots) yet keeps its resume point;
    `--resume` goes on for more minutes, or without a budget to its --epochs, then drops the resume point."""
    cfg = TrainConfig(data=str(sample_data), arch="sequential", epochs=3, batch_size=32, out=str(tmp_path),
                      cache_dir=str(cache_dir), augment=False, max_minutes=1e-5)
    logs: list[str] = []
    run = train(cfg, log=logs.append)
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and state["budget_reached"]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished" and config["pid"] == __import__("os").getpid() and config["host"]
    from fer_edge.runstatus import process_identity

    ident = process_identity(config["pid"])  # {} off Linux
    assert all(config[key] == value for key, value in ident.items()), (ident, config)
    assert json.loads((run / "metrics.json").read_text())["budget_reached"]
    assert (run / "last.keras").is_file()
    assert any("--max-minutes M" in m for m in logs), logs

    spent = state["train_seconds"] / 60
    assert train(TrainConfig(data=str(sample_data)), resume=run, more_minutes=1e-5, log=lambda *_: None) == run
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and state["budget_reached"] and (run / "last.keras").is_file()
    tc = json.loads((run / "config.json").read_text())["train_config"]
    assert tc["max_minutes"] == pytest.approx(spent + 1e-5, abs=1e-3)  # a total: a later resume keeps it
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2

    logs.clear()
    train(TrainConfig(data=str(sample_data)), resume=run, log=logs.append)  # no budget now: to epoch 3
    assert any("without a time budget" in m for m in logs), logs
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 3 and not state["budget_reached"]
    assert not (run / "last.keras").exists()
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    m = json.loads((run / "metrics.json").read_text())
    assert m["epochs_run"] == 3 and not m["budget_reached"] and len(m["epoch_seconds"]) == 3
    logs.clear()
    train(TrainConfig(data=str(sample_data)), resume=run, more_minutes=5, log=logs.append)
    assert any("nothing to resume" in m for m in logs), logs


def test_budget_stop_without_resume_point_is_a_usage_error(tmp_path, sample_data, cache_dir):
    from fer_edge.errors import UsageError

    cfg = TrainConfig(data=str(sample_data), arch="sequential", epochs=2, batch_size=32, out=str(tmp_path),
                      cache_dir=str(cache_dir), augment=False, max_minutes=1e-5)
    run = train(cfg, log=lambda *_: None)
    (run / "last.keras").unlink()  # as older fer-edge left such a run
    with pytest.raises(UsageError, match="--init"):
        train(TrainConfig(data=str(sample_data)), resume=run, log=lambda *_: None)
    with pytest.raises(UsageError, match="positive"):
        train(TrainConfig(data=str(sample_data)), resume=run, more_minutes=0, log=lambda *_: None)


def test_leaderboard_marks_unfinished(tmp_path):
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "config.json").write_text(json.dumps({"status": "interrupted", "train_config": {"arch": "vgg"}}))
    md = write_leaderboard(tmp_path).read_text()
    assert "interrupted" in md and "vgg" in md


@pytest.mark.large  # a TensorFlow process with two logical CPUs: ~10 s
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, sample_data, cache_dir):
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from fer_edge.training.train import TrainConfig, train
        cfg = TrainConfig(data={str(sample_data)!r}, arch="sequential", epochs=1, batch_size=16,
                          out={str(tmp_path)!r}, cache_dir={str(cache_dir)!r}, augment=False)
        run = train(cfg, devices=["/cpu:0", "/cpu:1"], log=lambda *a: None)
        print("RUN", run)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "RUN" in p.stdout


def test_evaluate_keras_and_json(tiny_run, sample_data, tmp_path):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    out = tmp_path / "m.json"
    r = CliRunner().invoke(app, ["evaluate", str(tiny_run / "model.keras"), "--data", str(sample_data), "--json", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert {"accuracy", "macro_f1", "per_class", "confusion", "n"} <= set(rep) and rep["n"] == 42
    assert rep["split_source"].startswith("PublicTest")
    # its run chose its epoch on these very images: said, in the report and on screen; same data, by content
    assert rep["selection_note"].startswith("the model's training run selected its epoch on these images")
    assert "note: the model's training run selected" in " ".join(r.output.split())
    assert rep["same_data_as_model"] is True and rep["data_fingerprint"].startswith("sha256:")
    from fer_edge.evaluate import evaluate

    train = evaluate(tiny_run / "model.keras", sample_data, split="train")
    assert train["selection_note"] is None and train["same_data_as_model"] is True


def test_cli_train_one_epoch(tmp_path, sample_data):
    """Non-alphabetical class order survives run files, export metadata and evaluation (a JSON object's
    key order once scrambled it)."""
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(sample_data), "--arch", "sequential", "--epochs", "1",
                            "--classes", "surprise,happy,angry", "--out", str(tmp_path), "--no-augment"])
    assert r.exit_code == 0, r.output
    run = tmp_path / r.output.strip().splitlines()[-1].split("/")[-1]
    assert run.name.endswith("-sequential-3c")
    spec = json.loads((run / "spec.json").read_text())
    assert spec["labels"] == ["surprise", "happy", "angry"]
    val_acc = json.loads((run / "metrics.json").read_text())["splits"]["val"]["accuracy"]
    r = runner.invoke(app, ["evaluate", str(run), "--data", str(sample_data), "--split", "val", "--json", "-"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] == pytest.approx(val_acc)
    r = runner.invoke(app, ["export", str(run), "--format", "onnx", "--quantize", "none", "--data", str(sample_data), "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]["rows"][0]
    assert row["val_acc"] == pytest.approx(val_acc) and row["agreement"] == 1.0


def test_warm_start_transfers_features_not_the_classifier(tiny_run, sample_data, cache_dir, tmp_path):
    """--init: a 2-class model starts from the 7-class run's features, every layer but the classifier."""
    from fer_edge.errors import UsageError
    from fer_edge.training.registry import create_model
    from fer_edge.training.train import warm_start

    src = keras.models.load_model(tiny_run / "model.keras", safe_mode=True, compile=False)
    dst = create_model("mini_xception", (48, 48, 1), 2)
    n = warm_start(dst, tiny_run / "model.keras", log=lambda *_: None)
    with_weights = [layer for layer in dst.layers if layer.get_weights()]
    assert n == len(with_weights) - 1  # every layer but the 7 -> 2 class conv
    for a, b in zip(dst.get_layer("stem1_conv").get_weights(), src.get_layer("stem1_conv").get_weights()):
        assert (a == b).all()
    with pytest.raises(UsageError, match="no such run directory or .keras file"):
        warm_start(dst, tmp_path / "missing.keras")
    with pytest.raises(UsageError, match="same --arch"):
        warm_start(create_model("sequential", (48, 48, 1), 2), tiny_run / "model.keras")


def test_warm_start_keeps_the_classifier_columns_of_kept_classes(tiny_run):
    """--init from a run whose spec names 7 classes into a 4-class model: the classifier's columns of the
    4 kept classes are copied, so the new model answers as the source restricted to them; a merged class
    has no single column, and leaves the classifier at its initialisation."""
    from fer_edge.labels import FER2013_LABELS, parse_classes
    from fer_edge.training.registry import create_model
    from fer_edge.training.train import warm_start

    src = keras.models.load_model(tiny_run / "model.keras", safe_mode=True, compile=False)
    arch = json.loads((tiny_run / "config.json").read_text())["train_config"]["arch"]
    x = np.random.default_rng(0).uniform(0, 255, (6, 48, 48, 1)).astype("float32")
    cm = parse_classes("4")  # happy, sad, surprise, neutral
    dst = create_model(arch, (48, 48, 1), 4)
    logs: list[str] = []
    n = warm_start(dst, tiny_run / "model.keras", log=logs.append, class_map=cm)
    assert n == len([layer for layer in dst.layers if layer.get_weights()])
    assert "the columns of 4 of its 7 classes (happy, sad, surprise, neutral)" in logs[0]
    p7 = keras.ops.convert_to_numpy(src(x))[:, [FER2013_LABELS.index(c) for c in cm.labels]]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dst(x)), p7 / p7.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    merged = create_model(arch, (48, 48, 1), 2)
    logs.clear()
    assert warm_start(merged, tiny_run / "model.keras", log=logs.append,
                      class_map=parse_classes("bad=angry+sad,happy")) == n - 1
    assert "classifier" not in logs[0]


@pytest.mark.large  # a whole training run (~15 s); the copy itself is tested above
def test_warm_started_run_records_its_source(tiny_run, sample_data, cache_dir, tmp_path):
    """A 2-class --init run from the 7-class run, with CutMix and Random Erasing: its config says so."""
    cfg = TrainConfig(data=str(sample_data), arch="mini_xception", classes="2", epochs=1, batch_size=32,
                      out=str(tmp_path), cache_dir=str(cache_dir), init=str(tiny_run / "model.keras"),
                      mix="cutmix", mix_alpha=1.0, erasing=0.5)
    run = train(cfg, log=lambda *_: None)
    saved = json.loads((run / "config.json").read_text())["train_config"]
    assert saved["init"].endswith("model.keras") and saved["mix"] == "cutmix" and saved["erasing"] == 0.5
    assert json.loads((run / "metrics.json").read_text())["splits"]["val"]["confusion"].__len__() == 2
    # the gate hold-out is unseen by this run only if it was unseen by the run it started from
    from fer_edge.rundir import holdout_unseen

    assert json.loads((run / "spec.json").read_text())["metrics"]["holdout_unseen"] == holdout_unseen(tiny_run)


def test_mixing_labels_follow_the_pixels():
    """CutMix soft labels equal the pasted area; MixUp labels are convex; Random Erasing stays in 2-25 %."""
    import numpy as np

    from fer_edge.training.pipeline import make_dataset

    n = 64
    y = np.arange(n) % 7
    x = (np.arange(n) * 3 + 10).astype(np.uint8)[:, None, None, None].repeat(48, 1).repeat(48, 2)
    xb, yb = next(iter(make_dataset(x, y, 7, n, mix="cutmix", mix_alpha=1.0)))
    xb, yb = xb.numpy(), yb.numpy()
    for i in range(n):
        own = (xb[i] == x[i, 0, 0, 0]).mean()
        assert abs(yb[i, y[i]] - own) < 1e-5 or yb[i, y[i]] >= own  # partner of the same class adds to it
        np.testing.assert_allclose(yb[i].sum(), 1.0, atol=1e-5)
    assert (yb.max(1) < 1).any()
    xb, yb = next(iter(make_dataset(x, y, 7, n, mix="mixup", mix_alpha=0.2)))
    assert np.allclose(yb.numpy().sum(1), 1.0, atol=1e-5) and (yb.numpy() >= 0).all()
    xb, _ = next(iter(make_dataset(x, y, 7, n, erasing=1.0)))
    frac = (xb.numpy() != x.astype(np.float32)).mean(axis=(1, 2, 3))
    assert frac.max() <= 0.26 and frac.min() > 0.005
    with pytest.raises(ValueError, match="unknown mix mode"):
        make_dataset(x, y, 7, n, mix="mixups")


def test_float32_twin_of_a_mixed_model():
    """Under a mixed policy the body computes in half precision and the predictions in float32; the policy
    is restored after the block; the float32 twin takes the weights and gives the same probabilities."""
    from fer_edge.training.mixed_precision import float32_copy, float32_twin, policy
    from fer_edge.training.registry import create_model

    with policy("bfloat16") as name:
        model = create_model("edgenet_tiny", num_classes=7)
        twin = float32_twin(lambda: create_model("edgenet_tiny", num_classes=7))
    assert name == "mixed_bfloat16" and keras.config.dtype_policy().name == "float32"
    assert model.get_layer("stem1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert {layer.dtype_policy.name for layer in twin.layers} == {"float32"}
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    copy = float32_copy(model, twin)
    np.testing.assert_allclose(np.asarray(copy(x)), np.asarray(model(x)), atol=0.02)  # bf16 body: ~2-3 digits
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), model.get_weights()))


@pytest.mark.large  # ~20 s each: float16 convolutions are slow on a CPU
@pytest.mark.parametrize("choice", ["float16", "bfloat16"])
def test_mixed_precision_saves_float32_and_resumes(tmp_path, sample_data, cache_dir, choice):
    """Under a mixed policy the run trains (float16: with loss scaling), is interrupted and resumed from
    its mixed last.keras, and writes a float32 model.keras whose probabilities are float32; the process's
    global policy is restored afterwards."""
    from fer_edge.training.keras_backend import predict_probs
    from fer_edge.training.mixed_precision import policy

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    cfg = TrainConfig(data=str(sample_data), arch="edgenet_tiny", epochs=2, batch_size=32, out=str(tmp_path),
                      cache_dir=str(cache_dir), augment=False, mixed_precision=choice)
    run = train(cfg, callbacks=[StopAfterFirst()], log=lambda *_: None)
    assert keras.config.dtype_policy().name == "float32"
    with policy(choice):  # as --resume loads it (Keras wraps float16's optimizer in loss scaling on compile)
        last = keras.models.load_model(run / "last.keras")
    assert {layer.dtype_policy.name for layer in last.layers} >= {f"mixed_{choice}", "float32"}
    assert (choice == "float16") == isinstance(last.optimizer, keras.optimizers.LossScaleOptimizer)
    assert train(TrainConfig(data=str(sample_data)), resume=run, log=lambda *_: None) == run
    assert json.loads((run / "config.json").read_text())["status"] == "finished"
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
    best = keras.models.load_model(run / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
    probs = predict_probs(best, np.full((2, 48, 48, 1), 128.0, np.float32))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert keras.config.dtype_policy().name == "float32"


def test_unknown_mixed_precision_is_refused(tmp_path, sample_data):
    from fer_edge.errors import UsageError
    from fer_edge.training.train import validate_config

    with pytest.raises(UsageError, match="Did you mean 'float16'"):
        validate_config(TrainConfig(data=str(sample_data), out=str(tmp_path), mixed_precision="fp16"))
