"""Input pipelines. Augmentation runs here, in the pipeline only, so it never reaches the saved inference
model or an exported graph: tf.data with Keras preprocessing layers and TF batch ops on the TensorFlow
backend; numpy/OpenCV twins of the same recipes in a Keras PyDataset on JAX and PyTorch
(`make_batches` picks)."""
from __future__ import annotations

from typing import Any

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


# ---------------------------------------------------------------------------------------------------
# The same recipes without TensorFlow, for the JAX and PyTorch backends: numpy + OpenCV in a Keras
# PyDataset (batches of float32 0..255 and one-hot or mixed soft labels), on the host, never in the model.
# Random streams are derived from (seed, epoch, batch), so a batch does not depend on worker order.

def augment_np(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """build_augmenter()'s recipe on a (N, H, W, C) float32 batch: horizontal flip (p 0.5), rotation
    ±0.05 turn, translation ±10 %, zoom ±10 % (edges replicated, as fill_mode="nearest"), brightness
    ±0.1 x 255, contrast x[0.8, 1.2] about each image's mean; clipped to 0..255."""
    import cv2

    n, h, w, c = xb.shape
    out = np.empty_like(xb)
    flips = rng.random(n) < 0.5
    angles = rng.uniform(-0.05, 0.05, n) * 360.0
    zooms = 1.0 + rng.uniform(-0.1, 0.1, n)
    shifts = rng.uniform(-0.1, 0.1, (n, 2)) * (w, h)
    for i in range(n):
        img = xb[i, :, :, 0] if c == 1 else xb[i]
        if flips[i]:
            img = img[:, ::-1]
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), float(angles[i]), float(zooms[i]))
        m[:, 2] += shifts[i]
        warped = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out[i] = warped.reshape(h, w, c)
    out += rng.uniform(-0.1, 0.1, (n, 1, 1, 1)).astype(np.float32) * 255.0
    mean = out.mean(axis=(1, 2), keepdims=True)
    out = (out - mean) * rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32) + mean
    return np.clip(out, 0.0, 255.0)


def _boxes_np(rng: np.random.Generator, n: int, h: int, w: int, area: np.ndarray, aspect: np.ndarray) -> np.ndarray:
    """numpy twin of _boxes: (n, h, w, 1) masks of rectangles of the given area fraction and aspect."""
    bh = np.clip(np.round(np.sqrt(area * aspect) * h), 0, h)
    bw = np.clip(np.round(np.sqrt(area / aspect) * w), 0, w)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    y0, y1 = np.maximum(cy - bh / 2, 0), np.minimum(cy + bh / 2, h)
    x0, x1 = np.maximum(cx - bw / 2, 0), np.minimum(cx + bw / 2, w)
    ys = np.arange(h)[None, :, None] + 0.5
    xs = np.arange(w)[None, None, :] + 0.5
    inside = ((ys >= y0[:, None, None]) & (ys < y1[:, None, None]) & (xs >= x0[:, None, None]) & (xs < x1[:, None, None]))
    return inside[..., None]


def random_erasing_np(xb: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """numpy twin of random_erasing (same area, aspect and noise distributions)."""
    n, h, w = xb.shape[:3]
    area = rng.uniform(0.02, 0.25, n)
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3), n))
    mask = _boxes_np(rng, n, h, w, area, aspect) & (rng.random((n, 1, 1, 1)) < p)
    return np.where(mask, rng.uniform(0, 255, xb.shape).astype(np.float32), xb)


def mix_batch_np(xb: np.ndarray, yb: np.ndarray, mode: str, alpha: float, rng: np.random.Generator):
    """numpy twin of mix_batch: MixUp or CutMix with a shuffled copy, labels follow the mixed pixels."""
    n, h, w = xb.shape[:3]
    perm = rng.permutation(n)
    x2, y2 = xb[perm], yb[perm]
    lam = rng.beta(alpha, alpha, n).astype(np.float32)
    if mode == "mixup":
        x = lam[:, None, None, None] * xb + (1 - lam[:, None, None, None]) * x2
    elif mode == "cutmix":
        mask = _boxes_np(rng, n, h, w, 1.0 - lam, np.ones(n))
        x = np.where(mask, x2, xb)
        lam = 1.0 - mask.mean(axis=(1, 2, 3)).astype(np.float32)
    else:
        raise ValueError(f"unknown mix mode {mode!r}; choose one of {MIX_MODES}")
    return x.astype(np.float32), (lam[:, None] * yb + (1 - lam[:, None]) * y2).astype(np.float32)


def make_array_batches(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, *, shuffle: bool = False,
                       augment: bool = False, seed: int = 42, mix: str = "none", mix_alpha: float = 0.2,
                       erasing: float = 0.0, prefetch: int = 0, first_epoch: int = 0):
    """make_dataset's contract as a keras.utils.PyDataset: runs on every Keras backend, no TensorFlow.

    A batch is a function of (seed, epoch, index) alone, so `prefetch` > 0 threads may build the next
    batches while the accelerator runs this one (OpenCV and numpy release the GIL) and the batches stay
    the same: a GPU step takes less time than one thread needs to augment its batch. `first_epoch`: the
    epoch the first pass is (a resumed run passes the epoch it resumes at, and gets the very batches the
    uninterrupted run would have had)."""
    import keras

    if mix not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mix!r}; choose one of {MIX_MODES}")

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()  # Keras reads batches in order from this thread; the pool is ours
            self.epoch = first_epoch
            self.order = self._order()
            self.pool = None
            self.ahead: dict[int, Any] = {}  # batch index -> future, for this epoch

        def _order(self) -> np.ndarray:
            if not shuffle:
                return np.arange(len(x))
            return np.random.default_rng([seed, self.epoch]).permutation(len(x))

        def __len__(self) -> int:
            return (len(x) + batch_size - 1) // batch_size

        def _make(self, i: int, epoch: int, order: np.ndarray):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = x[idx].astype(np.float32)
            if xb.ndim == 3:
                xb = xb[..., None]
            yb = np.eye(num_classes, dtype=np.float32)[y[idx]]
            rng = np.random.default_rng([seed, epoch, i])
            if augment:
                xb = augment_np(xb, rng)
            if erasing > 0:
                xb = random_erasing_np(xb, erasing, rng)
            if mix != "none":
                xb, yb = mix_batch_np(xb, yb, mix, mix_alpha, rng)
            return xb, yb

        def __getitem__(self, i: int):
            if prefetch <= 0:
                return self._make(i, self.epoch, self.order)
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self.pool = ThreadPoolExecutor(prefetch, thread_name_prefix="fer-edge-batches")
            for j in range(i, min(i + 2 * prefetch + 1, len(self))):
                if j not in self.ahead:
                    self.ahead[j] = self.pool.submit(self._make, j, self.epoch, self.order)
            return self.ahead.pop(i).result()

        def on_epoch_end(self):
            for fut in self.ahead.values():
                fut.cancel()
            self.ahead = {}
            self.epoch += 1
            self.order = self._order()

    return ArrayBatches()


def make_batches(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int, first_epoch: int = 0, **kw):
    """The input pipeline for the active Keras backend: tf.data on TensorFlow (as every bundled and
    documented run was trained), the numpy PyDataset on JAX and PyTorch.

    `first_epoch` > 0 (a resumed run) must not replay the batches of epochs 0, 1, ...: a seeded tf.data
    pipeline starts every process with the same shuffle orders (and at times the same augmentation
    draws), so a resume would train again on batches the run has already fitted (session 9 saw training
    accuracy jump 5 points on a resumed vgg run, with PublicTest flat). The PyDataset starts at that epoch's
    batches. tf.data cannot skip to a later pass, so it takes a stream of its own
    (`resumed_stream_seed`), for its shuffle and augmentation layers and for the global generator that
    Random Erasing and the mixes draw from (reseeded here)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        if first_epoch:
            kw["seed"] = resumed_stream_seed(kw.get("seed", 42), first_epoch)
            keras.utils.set_random_seed(kw["seed"])  # the TensorFlow backend: tf.data's seed too
        return make_dataset(x, y, num_classes, batch_size, **kw)
    return make_array_batches(x, y, num_classes, batch_size, first_epoch=first_epoch, **kw)


def resumed_stream_seed(seed: int, first_epoch: int) -> int:
    """The tf.data seed of a run resumed at `first_epoch`: distinct for every resume epoch, and the run's
    own seed for a run that starts at epoch 0 (so fresh seeded runs draw what they always drew)."""
    return int(seed) + 100_003 * int(first_epoch)
