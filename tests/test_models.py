"""Every registered architecture builds, has normalisation inside, and takes one training step."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_edge.errors import ModelError, UsageError  # noqa: E402
from fer_edge.training.flops import count_macs  # noqa: E402
from fer_edge.training.registry import create_model, get_arch, list_models, resolve_archs  # noqa: E402

STUDY = {"vgg", "vgg16", "resnet50", "resnet50v2", "efficientnetb0", "mini_xception", "sequential"}


def test_registry_lists_the_study_and_ours():
    names = set(list_models())
    assert STUDY <= names and "edgenet" in names
    assert get_arch("edgenet").cam and get_arch("vgg16").pretrained
    with pytest.raises(UsageError, match="Did you mean 'mini_xception'"):
        get_arch("mini_xeption")
    assert resolve_archs("all") == list_models()


def test_default_learning_rate_from_scratch_and_from_weights(tmp_path):
    """vgg16 (no normalisation layers) blows up from scratch at 1e-3: its default there is 1e-4; with
    weights it keeps the family's 1e-3; a family without a scratch rate has one rate for both."""
    vgg16 = get_arch("vgg16")
    for scratch in ("none", None, "None", ""):
        assert vgg16.default_lr(scratch) == pytest.approx(1e-4)
    for weights in ("imagenet", str(tmp_path / "backbone.weights.h5")):
        assert vgg16.default_lr(weights) == pytest.approx(1e-3)
    assert get_arch("edgenet").default_lr("none") == get_arch("edgenet").default_lr("imagenet") == pytest.approx(2e-3)
    assert get_arch("resnet50").default_lr("none") == pytest.approx(1e-3)


TINY = {"edgenet": "edgenet_tiny", "vgg": "vgg_tiny"}  # families with a width knob: their test-size variant
SMALL = {"mini_xception", "sequential"}  # small enough as they are


def _tiers():
    """Default tier: the tiny variants and the small models; `-m large`: every full-size architecture."""
    for name in sorted(STUDY | {"edgenet"}):
        yield pytest.param(name, marks=() if name in SMALL else pytest.mark.large)
    yield from sorted(TINY.values())


def test_tiny_variants_are_registered_but_not_in_the_zoo():
    from fer_edge.training.registry import list_models

    assert set(TINY.values()) == set(list_models(("tiny",)))
    assert not set(TINY.values()) & set(list_models()) and not set(TINY.values()) & set(resolve_archs("all"))
    for full, tiny in TINY.items():
        a, b = get_arch(full), get_arch(tiny)
        assert (a.family, a.cam, a.input_shape, a.defaults) == (b.family, b.cam, b.input_shape, b.defaults)
        assert count_macs(create_model(tiny, None, 7)) < count_macs(create_model(full, None, 7)) / 10


def test_upscaled_variants_resize_inside_and_stay_out_of_the_zoo():
    """`efficientnetb0_96`: the same weights as `efficientnetb0`, the 48x48 face resized to 96x96 inside
    the model (so exported files keep the 48x48 input), about 3x the MACs, not trained by `--arch all`."""
    upscaled = set(list_models(("upscaled",)))
    assert upscaled == {"vgg16_96", "resnet50_96", "resnet50v2_96", "efficientnetb0_96"}
    assert not upscaled & set(resolve_archs("all"))
    base, big = create_model("efficientnetb0", None, 7), create_model("efficientnetb0_96", None, 7)
    assert big.input_shape == base.input_shape == (None, 48, 48, 1)
    assert big.get_layer("upscale").output.shape[1:3] == (96, 96)
    assert big.get_layer("backbone").output.shape[1:3] == (3, 3) and base.get_layer("backbone").output.shape[1:3] == (2, 2)
    assert big.count_params() == base.count_params()
    assert 2.5 < count_macs(big) / count_macs(base) < 4.5  # 3.1x: at 48x48 "same" padding rounds the maps up
    a, b = get_arch("efficientnetb0"), get_arch("efficientnetb0_96")
    assert (a.family, a.defaults, a.pretrained) == (b.family, b.defaults, b.pretrained)
    x = np.random.default_rng(0).integers(0, 255, (2, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(big(x, training=False)).sum(1), 1.0, rtol=1e-4)
    keras.backend.clear_session()


@pytest.mark.parametrize("name", list(_tiers()))
def test_builds_and_trains_one_step(name):
    keras.utils.set_random_seed(0)
    m = create_model(name, (48, 48, 1), 3)
    assert m.input_shape == (None, 48, 48, 1) and m.output_shape == (None, 3)
    assert not any(l.__class__.__name__ == "Lambda" for l in m.layers)
    assert not any(l.__class__.__name__.startswith("Random") for l in m.layers)  # no augmentation inside
    assert count_macs(m) > 0
    m.compile("adam", "categorical_crossentropy", run_eagerly=True)  # one step: tracing would cost more than it
    x = np.random.default_rng(0).integers(0, 255, (4, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 0], 3)
    loss = m.train_on_batch(x, y)
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
    p = np.asarray(m(x, training=False))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-4)
    keras.backend.clear_session()


def test_edge_budget():
    m = create_model("edgenet", (48, 48, 1), 7)
    assert count_macs(m) <= 50e6


def test_macs_of_known_layers():
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 64 * 9 * 2 * 4 = 4608
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)  # 256 * 5 = 1280
    assert count_macs(keras.Model(inp, out)) == 4608 + 1280


def test_imagenet_offline_message(monkeypatch):
    """The real Keras download path is used; offline, the error says what to do."""
    import keras.src.utils.file_utils as fu

    def offline(*a, **k):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(fu, "get_file", offline)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    import keras.src.applications.vgg16 as v

    monkeypatch.setattr(v.file_utils, "get_file", offline)
    with pytest.raises(ModelError, match="--weights none"):
        create_model("vgg16", (48, 48, 1), 7, weights="imagenet")


def test_local_weights_file(tmp_path):
    base = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(48, 48, 3))
    base.save_weights(tmp_path / "b0.weights.h5")
    m = create_model("efficientnetb0", (48, 48, 1), 2, weights=str(tmp_path / "b0.weights.h5"))
    np.testing.assert_allclose(m.get_layer("backbone").get_weights()[0], base.get_weights()[0])
    with pytest.raises(ModelError, match="no such file"):
        create_model("efficientnetb0", (48, 48, 1), 2, weights=str(tmp_path / "missing.h5"))


def test_normalised_head_stays_alive_where_the_studys_dies():
    """Why `vgg` builds its head with BatchNorm (docs/results.md, "Why the scratch vgg sat in the majority
    class"): on a wide all-positive ReLU feature vector, Adam at the arch's rate pushes most units of the
    study's Dense -> ReLU head below zero for every input within a few dozen steps; with Dense -> BN ->
    ReLU every unit still fires for some input."""
    from fer_edge.training.models.common import apply_dense_head

    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(0.3, 0.6, (640, 2304)), 0).astype("float32")  # like vgg's 3x3x256 Flatten
    y = keras.utils.to_categorical(rng.integers(0, 7, 640), 7)
    alive = {}
    for norm in (False, True):
        keras.utils.set_random_seed(0)
        inp = keras.Input((2304,))
        m = keras.Model(inp, apply_dense_head(inp, 7, norm=norm))
        m.compile(keras.optimizers.Adam(get_arch("vgg").defaults["lr"]),
                  keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
        for _ in range(3):
            for i in range(0, 640, 64):
                m.train_on_batch(x[i:i + 64], y[i:i + 64])
        first = m.get_layer("head_relu1" if norm else "head_dense1").output
        a = np.asarray(keras.Model(inp, first)(x[:256], training=True))
        alive[norm] = float((a > 0).any(axis=0).mean())
    assert alive[True] == 1.0 and alive[False] < 0.8, alive
    names = [l.name for l in create_model("vgg_tiny", None, 7).layers]
    assert names.index("head_dense1") < names.index("head_bn1") < names.index("head_relu1")
    keras.backend.clear_session()
