"""Precise BatchNorm statistics before each validation (`train --precise-bn N`).

Why: a BatchNormalization layer trains on each batch's own statistics but infers with moving averages
of them (momentum 0.99 in keras.applications: roughly the last 100 batches), gathered on *augmented*
batches while the weights move. From scratch, early on, those averages describe neither the present
weights nor clean faces, and the inference model is another network than the one being trained:
`scripts/bn_check.py` measured PublicTest 19.9 % with the saved statistics of an `efficientnetb0` at
epoch 6 and 37.9 % with statistics re-estimated on 1,024 clean training faces (`resnet50v2` at epoch 2:
33.9 % and 38.9 %). Validation then steers early stopping, the plateau schedule and the choice of
model.keras by noise. The fix (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", arXiv:2105.07576,
their "precise BN"): just before each validation, set every trainable BatchNorm's moving mean and
variance to the average of its batch statistics over N clean training faces with the weights as they
are. Training itself is unchanged (it uses batch statistics); only what is measured and saved is.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np


def all_layers(model) -> list:
    """Every layer, nested models (a keras.applications backbone) included."""
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(all_layers(layer))
    return out


def batchnorm_layers(model) -> list:
    import keras

    return [layer for layer in all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


@contextmanager
def dropout_off(model) -> Iterator[None]:
    """Every Dropout layer of `model` at rate 0 inside the block, its own rate restored after: training
    mode then means BatchNorm on batch statistics, and nothing else."""
    import keras

    drops = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Dropout)]
    rates = [d.rate for d in drops]
    try:
        for d in drops:
            d.rate = 0.0
        yield
    finally:
        for d, r in zip(drops, rates):
            d.rate = r


def refresh_statistics(model, x: np.ndarray, batch: int) -> int:
    """Set the moving statistics of `model`'s trainable BatchNorm layers to the mean of their batch
    statistics over `x` (whole batches of `batch`), dropout off; -> the number of batches used (0: the
    model has no such layer, or `x` holds less than one batch)."""
    bns = batchnorm_layers(model)
    n_batches = len(x) // batch
    if not bns or n_batches == 0:
        return 0
    momenta = [b.momentum for b in bns]
    try:
        with dropout_off(model):
            for k in range(1, n_batches + 1):
                for b in bns:  # moving = moving * m + batch * (1 - m): with m = (k-1)/k, the mean of k batches
                    b.momentum = (k - 1) / k
                model(x[(k - 1) * batch:k * batch], training=True)
    finally:
        for b, m in zip(bns, momenta):
            b.momentum = m
    return n_batches


def callback(x: np.ndarray, batch: int, log=print):
    """A Keras callback that refreshes the statistics when validation begins (`on_test_begin`, after the
    epoch's training steps, before its validation); a distiller's student is the model refreshed. Should
    the refresh fail where it was never tried (a multi-device strategy's variables), the run goes on
    with the moving averages, and says so once: a measurement aid must not end a training."""
    import keras

    class PreciseBN(keras.callbacks.Callback):
        failed = False

        def on_test_begin(self, logs=None):
            if self.failed:
                return
            try:
                refresh_statistics(getattr(self.model, "student", self.model), x, batch)
            except Exception as exc:  # noqa: BLE001 - reported, then off for the rest of the run
                self.failed = True
                log(f"precise BN off for the rest of this run ({exc.__class__.__name__}: {str(exc)[:160]}); "
                    "validation uses the moving averages")

    return PreciseBN()
