"""Real-data checks (run with `python3 -m pytest -q -m slow`; need ../shared/fer2013)."""
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "fer2013"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/fer2013")]


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
@pytest.mark.parametrize("stem", ["fer_edge_default", "fer_edge_flip"])
def test_bundled_model_publictest_accuracy_matches_its_metadata(stem, suffix):
    """The bundled int8 files (BUNDLED_MODELS) score on PublicTest what their metadata (and the README) claim."""
    from fer_edge.evaluate import evaluate
    from fer_edge.runtime.recognizer import BUNDLED_DIR, BUNDLED_MODELS

    assert stem in BUNDLED_MODELS
    path = BUNDLED_DIR / f"{stem}_int8{suffix}"
    rep = evaluate(path, DATA, split="val")
    from fer_edge.runtime.backends import load_backend

    claimed = load_backend(path).spec.metrics["val_accuracy"]
    assert rep["n"] == 3589 and rep["split_source"] == "PublicTest"
    assert rep["accuracy"] == pytest.approx(claimed, abs=1e-9)


def test_bundled_int8_close_to_keras():
    from fer_edge.runtime.backends import load_backend
    from fer_edge.runtime.recognizer import BUNDLED_DIR, BUNDLED_STEM

    m = load_backend(BUNDLED_DIR / f"{BUNDLED_STEM}_int8.tflite").spec.metrics
    assert m["keras_val_accuracy"] - m["val_accuracy"] <= 0.015


def test_train_one_epoch_on_fer2013(tmp_path):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["train", "--data", str(DATA), "--arch", "sequential", "--epochs", "1", "--out",
                                 str(tmp_path)])
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    assert (run / "metrics.json").is_file()
    r = CliRunner().invoke(app, ["export", str(run), "--data", str(DATA), "--format", "all", "--quantize", "all"])
    assert r.exit_code == 0, r.output
