"""tf.data input pipeline. Augmentation runs here, in the pipeline only, as Keras preprocessing
layers, so it never reaches the saved inference model or an exported graph."""
from __future__ import annotations

import numpy as np


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


def make_dataset(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, *, shuffle: bool = False,
                 augment: bool = False, seed: int = 42):
    """(uint8 images, int labels) -> batched tf.data of (float32 0..255, one-hot)."""
    import tensorflow as tf

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
    return ds.prefetch(tf.data.AUTOTUNE)
