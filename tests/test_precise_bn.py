"""Precise BatchNorm statistics (`train --precise-bn`): what the refresh computes, and that a run saves them."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_edge.training.precise_bn import batchnorm_layers, refresh_statistics  # noqa: E402


def _model():
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(name="bn1")(inputs)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    frozen = keras.layers.BatchNormalization(name="bn_frozen")
    x = frozen(x)
    frozen.trainable = False
    return keras.Model(inputs, x)


def test_refresh_sets_the_mean_of_batch_statistics():
    model = _model()
    bn, frozen = model.get_layer("bn1"), model.get_layer("bn_frozen")
    bn.moving_mean.assign(np.full(4, 9.0, "float32"))  # stale statistics
    frozen_mean = keras.ops.convert_to_numpy(frozen.moving_mean).copy()
    x = np.random.default_rng(0).normal(3.0, 2.0, (96, 4)).astype("float32")
    assert batchnorm_layers(model) == [bn]  # a frozen layer keeps its statistics
    assert refresh_statistics(model, x, batch=32) == 3
    batches = x.reshape(3, 32, 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), batches.mean(1).mean(0), rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), batches.var(1).mean(0), rtol=1e-4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frozen.moving_mean), frozen_mean)
    assert bn.momentum == 0.99 and model.get_layer("drop").rate == 0.5  # restored
    assert refresh_statistics(model, x[:10], batch=32) == 0  # less than one batch: nothing to average


def test_a_run_saves_refreshed_statistics(tmp_path, sample_data, cache_dir):
    """The statistics in model.keras are the refresh of its own weights on the run's sample: refreshing
    them again changes nothing. Without --precise-bn they are the training batches' moving averages."""
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.labels import parse_classes
    from fer_edge.training.train import TrainConfig, train

    logs: list[str] = []
    cfg = TrainConfig(data=str(sample_data), arch="edgenet_tiny", epochs=1, batch_size=16, out=str(tmp_path),
                      cache_dir=str(cache_dir), augment=True, precise_bn=64)
    run = train(cfg, log=logs.append)
    assert any("precise BN" in m for m in logs), logs
    assert json.loads((run / "config.json").read_text())["resolved"]["precise_bn"] == 64
    model = keras.models.load_model(run / "model.keras")
    bn = batchnorm_layers(model)[0]
    saved = keras.ops.convert_to_numpy(bn.moving_variance).copy()
    splits = load_splits(str(sample_data), parse_classes("7"), "auto", 42, False, str(cache_dir))
    idx = np.random.default_rng(42).permutation(stratified_sample(splits.y_train, 64, 42))
    refresh_statistics(model, splits.x_train[idx].astype("float32"), 16)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), saved, rtol=1e-3, atol=1e-5)
    # without it: one epoch of moving averages from their initial values is far from that refresh
    off = train(TrainConfig(data=str(sample_data), arch="edgenet_tiny", epochs=1, batch_size=16, out=str(tmp_path),
                            cache_dir=str(cache_dir), augment=True, precise_bn=0), log=lambda *_: None)
    assert json.loads((off / "config.json").read_text())["resolved"]["precise_bn"] == 0
    m_off = keras.models.load_model(off / "model.keras")
    bn_off = batchnorm_layers(m_off)[0]
    before = keras.ops.convert_to_numpy(bn_off.moving_variance).copy()
    refresh_statistics(m_off, splits.x_train[idx].astype("float32"), 16)
    assert not np.allclose(keras.ops.convert_to_numpy(bn_off.moving_variance), before, rtol=1e-2)


def test_a_failing_refresh_is_reported_once_and_training_goes_on():
    from fer_edge.training.precise_bn import callback

    logs: list[str] = []
    cb = callback(np.zeros((8, 4), "float32"), 4, logs.append)
    cb.set_model(type("Broken", (), {"layers": property(lambda self: 1 / 0)})())  # the refresh raises
    cb.on_test_begin()
    cb.on_test_begin()
    assert len(logs) == 1 and "precise BN off" in logs[0] and "ZeroDivisionError" in logs[0], logs
