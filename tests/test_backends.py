"""Training on a second Keras backend: JAX on CPU, with TensorFlow made impossible to import, then the
run exported (under TensorFlow, in this process) through every gate. Also the numpy twins of the
augmentation recipes that JAX/PyTorch training uses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import SAMPLE

BLOCK_TF_ONLY = textwrap.dedent("""
    import sys, importlib.abc, importlib.machinery
    class Refuse(importlib.abc.Loader):  # found (torch probes with find_spec), but never importable
        def create_module(self, spec):
            raise ModuleNotFoundError("No module named " + repr(spec.name) + " (blocked)", name=spec.name)
        def exec_module(self, module):
            pass
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tf2onnx", "tf_keras"):
                return importlib.machinery.ModuleSpec(name, Refuse())
    sys.meta_path.insert(0, Block())
""")
BLOCK_TF = BLOCK_TF_ONLY + textwrap.dedent("""
    from fer_edge.cli.main import app
    sys.argv = ["fer-edge", *sys.argv[1:]]
    app()
""")
BUNDLED_KERAS = SAMPLE.parent.parent.parent / "fer_edge" / "models" / "fer_edge_default.keras"


def _train(backend: str, out, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend)
    return subprocess.run([sys.executable, "-c", BLOCK_TF, "train", "--data", str(SAMPLE), "--arch", "edgenet_tiny",
                           "--epochs", "1", "--out", str(out), *extra], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.large  # ~40 s: a JAX process (TensorFlow blocked) then two TFLite conversions; CI runs -m large
@pytest.mark.parametrize("backend,mixed", [("jax", "off"), ("torch", "float16")])
def test_trains_without_tensorflow_distils_and_exports(tmp_path, backend, mixed):
    """1 epoch of edgenet on JAX or PyTorch (TensorFlow blocked), with CutMix, Random Erasing and a teacher
    (the bundled TF-trained model), PyTorch under mixed float16, then exported under TensorFlow through
    every gate."""
    pytest.importorskip(backend)
    r = _train(backend, tmp_path / "runs", "--mix", "cutmix", "--erasing", "0.5", "--teacher", str(BUNDLED_KERAS),
               "--mixed-precision", mixed)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "runs" / r.stdout.strip().splitlines()[-1].split("/")[-1]
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished" and config["keras_backend"] == backend
    assert f"on {backend}" in config["device"] and config["train_config"]["teacher"] == str(BUNDLED_KERAS)
    assert config["train_config"]["mixed_precision"] == mixed
    for f in ("model.keras", "spec.json", "metrics.json", "history.csv", "state.json"):
        assert (run / f).is_file(), f
    pytest.importorskip("tensorflow")
    from fer_edge.export.api import export_model

    # TFLite fp32 and int8 (the converter and the calibration are what a foreign backend's weights could
    # trip; every format x quantization of such a run was checked by hand, see docs/results.md)
    rep = export_model(run, "tflite", "none,int8", data=str(SAMPLE), out=tmp_path / "export", max_drop=100.0,
                       emulate="none", log=lambda *_: None)
    assert rep.rows and all(row.status == "ok" for row in rep.rows), [(r.format, r.quantization, r.note) for r in rep.rows]
    fp32 = [row for row in rep.rows if row.quantization == "none"]
    assert all(row.agreement == 1.0 for row in fp32)  # the JAX-trained weights run the same under TF


@pytest.mark.large  # ~20 s: one JAX process, TensorFlow installed and importable
def test_jax_training_never_imports_tensorflow(tmp_path):
    """On an `[all]` install Keras would import TensorFlow into a JAX run twice over, to seed it and to
    probe for it while saving: seconds and ~0.5 GB a process for nothing (`tensorflow_hidden`)."""
    pytest.importorskip("jax")
    pytest.importorskip("tensorflow")
    code = textwrap.dedent("""
        import atexit, sys
        atexit.register(lambda: print("TF-IMPORTED" if "tensorflow" in sys.modules else "TF-ABSENT"))
        from fer_edge.cli.main import app
        sys.argv = ["fer-edge", *sys.argv[1:]]
        app()
    """)
    r = subprocess.run([sys.executable, "-c", code, "train", "--data", str(SAMPLE), "--arch", "edgenet_tiny",
                        "--epochs", "1", "--out", str(tmp_path / "runs")], capture_output=True, text=True,
                       env=dict(os.environ, KERAS_BACKEND="jax"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == "TF-ABSENT", r.stdout[-2000:]
    run = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())  # beside leaderboard.csv
    assert json.loads((run / "config.json").read_text())["status"] == "finished"


def test_unknown_backend_is_a_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fer_edge", "train", "--data", str(SAMPLE), "--backend", "jaxx",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Did you mean 'jax'" in r.stderr and not any(tmp_path.iterdir())


def test_numpy_twins_of_the_batch_recipes():
    from fer_edge.training.pipeline import augment_np, make_array_batches, mix_batch_np, random_erasing_np

    rng = np.random.default_rng(0)
    n = 64
    x = np.zeros((n, 48, 48, 1), np.uint8)
    x[: n // 2] = 255
    y = np.array([0] * (n // 2) + [3] * (n // 2))
    yb = np.eye(7, dtype=np.float32)[y]
    xb = x.astype(np.float32)
    # CutMix / MixUp: each label weight equals the fraction of pixels from that source
    for mode in ("cutmix", "mixup"):
        xm, ym = mix_batch_np(xb, yb, mode, 1.0, rng)
        white = xm.mean(axis=(1, 2, 3)) / 255.0
        np.testing.assert_allclose(ym[:, 0], white, atol=1e-5)
        np.testing.assert_allclose(ym.sum(1), 1.0, atol=1e-6)
    erased = random_erasing_np(np.zeros((n, 48, 48, 1), np.float32), 1.0, rng)
    frac = (erased > 0).mean(axis=(1, 2, 3))
    assert frac.min() > 0.005 and frac.max() < 0.3
    aug = augment_np(np.tile(np.arange(48, dtype=np.float32)[None, None, :, None], (n, 48, 1, 1)) * 5, rng)
    assert aug.shape == (n, 48, 48, 1) and aug.min() >= 0 and aug.max() <= 255
    assert (aug[:, 24, 0, 0] > aug[:, 24, -1, 0]).mean() > 0.3  # some were flipped...
    assert (aug[:, 24, 0, 0] < aug[:, 24, -1, 0]).mean() > 0.3  # ...and some not
    ds = make_array_batches(x[..., 0], y, 7, 16, shuffle=True, augment=True, seed=1)
    a, b = ds[0], ds[0]
    np.testing.assert_array_equal(a[0], b[0])  # a batch is a function of (seed, epoch, index)
    ds.on_epoch_end()
    assert not np.array_equal(ds[0][0], a[0]) and len(ds) == 4 and a[1].shape == (16, 7)


def test_prefetched_batches_are_the_same_batches():
    """Threads building batches ahead (the GPU loader) give exactly the batches of the plain loader, epoch
    after epoch, also when a batch is read twice or out of order."""
    from fer_edge.training.pipeline import make_array_batches

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (100, 48, 48), dtype=np.uint8)
    y = rng.integers(0, 7, 100)
    kw = dict(shuffle=True, augment=True, seed=3, mix="cutmix", erasing=0.5)
    plain, ahead = make_array_batches(x, y, 7, 16, **kw), make_array_batches(x, y, 7, 16, prefetch=3, **kw)
    for _ in range(2):
        for i in [0, *range(len(plain)), 2]:
            for a, b in zip(plain[i], ahead[i]):
                np.testing.assert_array_equal(a, b)
        plain.on_epoch_end()
        ahead.on_epoch_end()


def test_resumed_batches_continue_the_stream(tmp_path):
    """A run resumed at epoch 2 gets the batches the uninterrupted run has at epoch 2 (PyDataset), and on
    tf.data a stream that repeats none of the batches of epochs 0-2 (the bug: a resume trained again on
    epoch 0's shuffled batches)."""
    from fer_edge.training.pipeline import make_array_batches, make_dataset, resumed_stream_seed

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (96, 48, 48), dtype=np.uint8)
    y = rng.integers(0, 7, 96)
    kw = dict(shuffle=True, augment=True, seed=3, erasing=0.5)
    whole, resumed = make_array_batches(x, y, 7, 32, **kw), make_array_batches(x, y, 7, 32, first_epoch=2, **kw)
    whole.on_epoch_end(), whole.on_epoch_end()
    for i in range(len(whole)):
        for a, b in zip(whole[i], resumed[i]):
            np.testing.assert_array_equal(a, b)
    assert resumed_stream_seed(3, 0) == 3 and resumed_stream_seed(3, 2) != resumed_stream_seed(3, 1)

    pytest.importorskip("tensorflow")
    # One process per start, as `train` and `train --resume` are. The shuffle order is what a seeded
    # tf.data pipeline repeats in every process (its augmentation draws repeat only sometimes, as its
    # parallel map schedules them), so batches are compared by which images they hold.
    script = textwrap.dedent("""
        import sys, keras, numpy as np
        from fer_edge.training.pipeline import make_dataset
        seed, passes = int(sys.argv[1]), int(sys.argv[2])
        x = np.zeros((96, 48, 48, 1), np.uint8)
        keras.utils.set_random_seed(seed)
        ds = make_dataset(x, np.arange(96), 96, 32, shuffle=True, augment=True, seed=seed)
        for _ in range(passes):
            print(",".join(map(str, np.argmax(next(iter(ds))[1].numpy(), axis=1))))
    """)

    def first_batches(seed: int, passes: int) -> list[str]:
        r = subprocess.run([sys.executable, "-c", script, str(seed), str(passes)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout.split()

    seen = first_batches(3, 3)  # which images the first batches of epochs 0-2 of a run hold
    assert len(set(seen)) == 3
    assert first_batches(3, 1) == seen[:1]  # a restart on the run's seed: epoch 0 again
    assert first_batches(resumed_stream_seed(3, 2), 1)[0] not in seen  # the resumed stream: new batches


def test_distillation_loss_is_the_weighted_sum():
    """With the student as its own teacher the soft term is 0: loss = (1 - alpha) x the label loss; with
    another teacher the soft term is positive."""
    keras = pytest.importorskip("keras")
    from fer_edge.training.distill import make_distiller

    keras.utils.set_random_seed(0)

    def net():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])

    student, other = net(), net()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2, 0, 1]]
    ce = keras.losses.CategoricalCrossentropy()
    hard = float(ce(y, student(x)))
    for teacher, expect_soft in ((student, False), (other, True)):
        d = make_distiller(student, teacher, temperature=3.0, alpha=0.25)
        d.compile(optimizer="adam", loss=ce)
        d(x)
        loss = float(d.compute_loss(x=x, y=y, y_pred=student(x), training=False))
        if expect_soft:
            assert loss > 0.75 * hard + 1e-4
        else:
            assert loss == pytest.approx(0.75 * hard, rel=1e-5)


@pytest.mark.large  # a TensorFlow training run with the full-size teacher: ~10 s (the loss: the test above)
def test_cli_distillation_saves_the_student_only(tmp_path):
    keras = pytest.importorskip("keras")
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["train", "--data", str(SAMPLE), "--arch", "edgenet_tiny", "--epochs", "1",
                                 "--out", str(tmp_path), "--no-augment", "--teacher", str(BUNDLED_KERAS),
                                 "--kd-alpha", "0.5"])
    assert r.exit_code == 0, r.output
    run = tmp_path / r.output.strip().splitlines()[-1].split("/")[-1]
    m = keras.models.load_model(run / "model.keras", compile=False)
    # the student (edgenet_tiny, ~21 k parameters), without the teacher's ~489 k
    assert m.name == "edgenet" and m.count_params() < 50_000
    r = CliRunner().invoke(app, ["train", "--data", str(SAMPLE), "--out", str(tmp_path / "x"), "--kd-alpha", "2",
                                 "--teacher", str(BUNDLED_KERAS)])
    assert r.exit_code == 2 and "--kd-alpha" in r.output


@pytest.mark.large  # ~15 s: a JAX process (TensorFlow blocked) and the bench CLI
@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_keras_rows_without_tensorflow(tmp_path, framework):
    """The Keras backend runs a .keras model on JAX or PyTorch where TensorFlow is not installed (the GPU
    machines' case): the same probabilities as on TensorFlow, a bench row that names its framework and
    claims no speed-up against TensorFlow, and `--device gpu` refused in one line where there is no GPU."""
    pytest.importorskip(framework)
    pytest.importorskip("tensorflow")
    from fer_edge.training.keras_backend import KerasBackend

    face = np.load(SAMPLE.parent / "golden_face_48.npy").astype(np.float32)[None]  # raw 0..255 pixels
    batch = np.concatenate([face, face[:, :, ::-1], np.full_like(face, 128.0)])
    np.save(tmp_path / "batch.npy", batch)
    code = BLOCK_TF_ONLY + textwrap.dedent(f"""
        import json, numpy as np
        from fer_edge.training.keras_backend import KerasBackend
        from fer_edge.errors import UsageError
        b = KerasBackend.load({str(BUNDLED_KERAS)!r})
        out = {{"framework": b.framework, "probs": b.predict(np.load({str(tmp_path / "batch.npy")!r})).tolist()}}
        try:
            KerasBackend.load({str(BUNDLED_KERAS)!r}, device="gpu")
            out["gpu"] = "loaded"
        except UsageError as exc:
            out["gpu"] = str(exc)
        print(json.dumps(out))
    """)
    env = dict(os.environ, KERAS_BACKEND=framework)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["framework"] == framework
    want = KerasBackend.load(BUNDLED_KERAS, framework="tensorflow").predict(batch)
    np.testing.assert_allclose(np.array(got["probs"]), want, atol=1e-4)
    assert got["gpu"] == "loaded" or got["gpu"].startswith(f"device gpu: Keras on {framework} sees no GPU")
    bench = [sys.executable, "-c", BLOCK_TF, "bench", str(BUNDLED_KERAS), "--backend", "keras", "--threads", "1",
             "--batch", "1", "--min-time", "0.05", "--min-runs", "3", "--no-pipeline", "--json", str(tmp_path / "b.json")]
    r = subprocess.run(bench, capture_output=True, text=True, env=dict(env, COLUMNS="200"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"keras ({framework})" in r.stdout  # the table's Backend column
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(x["framework"], x["status"], x["speedup_vs_tf"]) for x in rows] == [(framework, "ok", None)]
    assert rows[0]["backend_version"].startswith(framework) and rows[0]["ms_per_img_p50"] > 0
