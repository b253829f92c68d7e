"""Test-time flip averaging baked into the exported graph (`fer-edge export --tta flip`).

The exported file computes the model on the face and on its mirror image and averages the class
probabilities, so every runtime and backend gets the TTA gain with no code of its own; the price is
twice the MACs and latency, which the spec and the export report say. Mirroring is written as a fixed
permutation matrix (Reshape -> Dense -> Reshape) rather than a reverse op: Dense/FullyConnected and
MatMul run in every TFLite and ONNX runtime, int8 included, and a 0/1 matrix quantizes exactly.
With a CAM output (`--explain`), the mirrored branch's feature map is mirrored back and averaged, so the
CAM of the file is the CAM of its averaged logits (GAP and the linear head commute with averaging).
"""
from __future__ import annotations

import numpy as np


def _mirror(width: int) -> np.ndarray:
    return np.eye(width, dtype=np.float32)[::-1].copy()


def apply_hflip(x, name: str):
    """Mirror an NHWC tensor along W with fixed, non-trainable weights (exact in float and int8)."""
    from keras import layers

    h, w, c = (int(d) for d in x.shape[1:])
    y = layers.Permute((1, 3, 2), name=f"{name}_to_hcw")(x) if c > 1 else layers.Reshape((h, w), name=f"{name}_to_hw")(x)
    dense = layers.Dense(w, use_bias=False, trainable=False, name=f"{name}_mirror")
    y = dense(y)
    dense.set_weights([_mirror(w)])
    return layers.Permute((1, 3, 2), name=f"{name}_to_hwc")(y) if c > 1 else layers.Reshape((h, w, c), name=f"{name}_to_hwc")(y)


def flip_tta_model(model):
    """model (outputs: probs, or [probs, features]) -> the same outputs, averaged over (face, mirrored face)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="pixels")
    plain = model(inputs)
    mirrored = model(apply_hflip(inputs, "tta_in"))
    if isinstance(plain, (list, tuple)):
        probs = layers.Average(name="tta_probs")([plain[0], mirrored[0]])
        feats = layers.Average(name="tta_features")([plain[1], apply_hflip(mirrored[1], "tta_feat")])
        return keras.Model(inputs, [probs, feats], name=f"{model.name}_tta")
    return keras.Model(inputs, layers.Average(name="tta_probs")([plain, mirrored]), name=f"{model.name}_tta")
