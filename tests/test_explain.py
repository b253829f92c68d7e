"""Grad-CAM / CAM on a tiny model: shapes and ranges, the checks, clear errors."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_edge.errors import UsageError  # noqa: E402
from fer_edge.explain import GradCAM, HostCAM, auc, deletion_curve, explain_images, last_conv_layer, run_checks, spearman  # noqa: E402
from fer_edge.training.registry import create_model  # noqa: E402


@pytest.mark.parametrize("arch", ["edgenet", "vgg", "sequential", "resnet50"])
def test_gradcam_every_family(arch):
    m = create_model(arch, (48, 48, 1), 4)
    x = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    maps, probs = GradCAM(m)(x)
    assert maps.ndim == 3 and len(maps) == 3 and probs.shape == (3, 4)
    assert maps.min() >= 0 and maps.max() <= 1
    keras.backend.clear_session()


def test_layer_choice_and_errors():
    m = create_model("edgenet", (48, 48, 1), 7)
    assert last_conv_layer(m).name == "stage3_out"
    assert last_conv_layer(m, "stage2_out").name == "stage2_out"
    with pytest.raises(UsageError, match="not a convolutional layer"):
        last_conv_layer(m, "predictions")
    inp = keras.Input((48, 48, 1))
    dense_only = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp)))
    with pytest.raises(UsageError, match="no convolutional layer"):
        GradCAM(dense_only)
    with pytest.raises(UsageError, match="does not qualify|not a single linear"):
        HostCAM(create_model("vgg", (48, 48, 1), 7))


def test_host_cam_matches_definition():
    m = create_model("edgenet", (48, 48, 1), 3)
    x = np.random.default_rng(1).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    maps, probs = HostCAM(m)(x)
    feats = np.asarray(keras.Model(m.inputs[0], m.get_layer("gap").input)(x))
    w = m.get_layer("predictions").get_weights()[0]
    c = probs.argmax(1)
    ref = np.maximum(np.einsum("nhwc,nc->nhw", feats, w[:, c].T), 0)
    ref = ref / ref.reshape(2, -1).max(1).reshape(-1, 1, 1)
    np.testing.assert_allclose(maps, ref, atol=1e-4)  # float32 conv paths differ in the last digits


def test_metrics_helpers():
    a = np.arange(10.0)
    assert spearman(a, a) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert auc(np.array([1.0, 1.0])) == pytest.approx(1.0)
    predict = lambda x: np.stack([x.mean((1, 2, 3)) / 255, 1 - x.mean((1, 2, 3)) / 255], 1)  # noqa: E731
    x = np.full((1, 4, 4, 1), 255.0)
    curve = deletion_curve(predict, x, np.ones((1, 2, 2)), np.array([0]), steps=4)
    assert curve[0] == pytest.approx(1.0) and curve[-1] == pytest.approx(127 / 255)


def test_explain_cli_outputs(tiny_run, astronaut, tmp_path, sample_data):
    recs = explain_images(tiny_run / "model.keras", [str(astronaut)], top_k=2, output=tmp_path)
    assert len(recs[0]["faces"]) == 1 and len(recs[0]["faces"][0]["explained"]) == 2
    assert (tmp_path / "astronaut_gradcam.png").is_file()
    crops = explain_images(tiny_run / "model.keras", [str(sample_data / "test" / "happy")], method="cam", target="happy")
    assert all(r["faces"][0]["explained"][0]["label"] == "happy" for r in crops)
    with pytest.raises(UsageError, match="Did you mean 'happy'"):
        explain_images(tiny_run / "model.keras", [str(astronaut)], target="hapy")
    a_file = tmp_path / "sheet.png"  # --output names a file: refused before any work, the file kept
    a_file.write_bytes(b"mine")
    with pytest.raises(UsageError, match="not a folder"):
        explain_images(tiny_run / "model.keras", [str(astronaut)], output=a_file)
    assert a_file.read_bytes() == b"mine"


def test_checks(tiny_run, tiny_exports, sample_data, tmp_path):
    res = run_checks(tiny_run / "model.keras", str(sample_data), edge_model=tiny_exports["files"][("onnx", "none")],
                     n=14, out=tmp_path)
    rho = res["randomisation"]["mean_spearman_trained_vs_random"]
    assert res["n"] == 14 and np.isfinite(rho) and -1 <= rho <= 1  # NaN (constant maps) fails here
    assert len(res["deletion"]["saliency_curve"]) == 11
    assert res["edge_agreement"]["top1_agreement"] == 1.0
    assert (tmp_path / "deletion_curve.png").is_file()
    json.dumps(res)
