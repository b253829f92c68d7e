"""tf.data input pipeline. Augmentation runs here, in the pipeline only, as Keras preprocessing
layers and batch ops, so it never reaches the saved inference model or an exported graph."""
from __future__ import annotations

import numpy as np

#: batch-mixing recipes accepted by `--mix` (one table: the CLI's validation reads it)
MIX_MODES = ("none", "mixup", "cutmix")


def build_augmenter(seed: int = 42):
    """Flip, small rotation/shift/zoom, brightness/contrast (operates on 0..255 floats)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 1),
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 2),
            layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 3),
            layers.RandomBrightness(0.1, value_range=(0.0, 255.0), seed=seed + 4),
            layers.RandomContrast(0.2, seed=seed + 5),
        ],
        name="augment",
    )


def _boxes(n, h: int, w: int, area, aspect):
    """Per-sample boolean (n, h, w, 1) masks of rectangles with the given area fraction and aspect ratio,
    placed uniformly at random (clipped at the border, as in the CutMix and Random Erasing papers)."""
    import tensorflow as tf

    bh = tf.clip_by_value(tf.round(tf.sqrt(area * aspect) * h), 0.0, float(h))
    bw = tf.clip_by_value(tf.round(tf.sqrt(area / aspect) * w), 0.0, float(w))
    cy = tf.random.uniform([n], 0.0, float(h))
    cx = tf.random.uniform([n], 0.0, float(w))
    y0, y1 = tf.maximum(cy - bh / 2, 0.0), tf.minimum(cy + bh / 2, float(h))
    x0, x1 = tf.maximum(cx - bw / 2, 0.0), tf.minimum(cx + bw / 2, float(w))
    ys = tf.range(h, dtype=tf.float32)[None, :, None] + 0.5
    xs = tf.range(w, dtype=tf.float32)[None, None, :] + 0.5
    inside = ((ys >= y0[:, None, None]) & (ys < y1[:, None, None]) &
              (xs >= x0[:, None, None]) & (xs < x1[:, None, None]))
    return inside[..., None]


def random_erasing(xb, p: float):
    """Random Erasing (Zhong et al. 2017, arXiv:1708.04896): with probability p per image, replace a
    rectangle of 2-25 % of the area (aspect 0.3-3.3) by uniform noise."""
    import tensorflow as tf

    n = tf.shape(xb)[0]
    h, w = int(xb.shape[1]), int(xb.shape[2])
    area = tf.random.uniform([n], 0.02, 0.25)
    aspect = tf.exp(tf.random.uniform([n], np.log(0.3), np.log(3.3)))
    mask = _boxes(n, h, w, area, aspect) & (tf.random.uniform([n, 1, 1, 1]) < p)
    noise = tf.random.uniform(tf.shape(xb), 0.0, 255.0)
    return tf.where(mask, noise, xb)


def mix_batch(xb, yb, mode: str, alpha: float):
    """MixUp (Zhang et al. 2018, arXiv:1710.09412) or CutMix (Yun et al. 2019, arXiv:1905.04899) of a
    batch with a shuffled copy of itself; per-sample lambda ~ Beta(alpha, alpha); soft labels follow
    the mixed pixel fraction."""
    import tensorflow as tf

    n = tf.shape(xb)[0]
    perm = tf.random.shuffle(tf.range(n))
    x2, y2 = tf.gather(xb, perm), tf.gather(yb, perm)
    g1, g2 = tf.random.gamma([n], alpha), tf.random.gamma([n], alpha)
    lam = g1 / tf.maximum(g1 + g2, 1e-8)
    if mode == "mixup":
        l4 = tf.reshape(lam, [-1, 1, 1, 1])
        x = l4 * xb + (1.0 - l4) * x2
    elif mode == "cutmix":
        h, w = int(xb.shape[1]), int(xb.shape[2])
        aspect = tf.ones([n])
        mask = _boxes(n, h, w, 1.0 - lam, aspect)
        x = tf.where(mask, x2, xb)
        lam = 1.0 - tf.reduce_mean(tf.cast(mask, tf.float32), axis=[1, 2, 3])  # the area really pasted
    else:
        raise ValueError(f"unknown mix mode {mode!r}; choose one of {MIX_MODES}")
    y = lam[:, None] * yb + (1.0 - lam[:, None]) * y2
    return x, y


def make_dataset(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, *, shuffle: bool = False,
                 augment: bool = False, seed: int = 42, mix: str = "none", mix_alpha: float = 0.2,
                 erasing: float = 0.0):
    """(uint8 images, int labels) -> batched tf.data of (float32 0..255, one-hot or mixed soft labels).

    `mix` and `erasing` apply to training batches only (callers pass them for the training set)."""
    import tensorflow as tf

    if mix not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mix!r}; choose one of {MIX_MODES}")
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(len(x), 50_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def cast(xb, yb):
        return tf.cast(xb, tf.float32), tf.one_hot(yb, num_classes)

    ds = ds.map(cast, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        aug = build_augmenter(seed)

        def apply(xb, yb):
            return tf.clip_by_value(aug(xb, training=True), 0.0, 255.0), yb

        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    if erasing > 0:
        ds = ds.map(lambda xb, yb: (random_erasing(xb, erasing), yb), num_parallel_calls=tf.data.AUTOTUNE)
    if mix != "none":
        ds = ds.map(lambda xb, yb: mix_batch(xb, yb, mix, mix_alpha), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
