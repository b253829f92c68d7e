"""Small functional-Keras helpers shared by the builders (keras-hub style apply_* blocks)."""
from __future__ import annotations

from fer_edge.training.models._lazy import keras, layers


def apply_input(input_shape, name: str = "pixels"):
    """Input of raw 0..255 pixels, normalised inside the model so exported files carry it."""
    inputs = keras.Input(shape=input_shape, name=name)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    return inputs, x


def apply_conv_bn(x, filters: int, kernel: int = 3, strides: int = 1, name: str = "conv", activation: str | None = "relu"):
    """Conv (no bias) -> BatchNorm -> activation."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_dense_head(x, num_classes: int, units=(512, 256), dropouts=(0.5, 0.3), name: str = "head"):
    """The study's head: Dense 512 -> Dropout 0.5 -> Dense 256 -> Dropout 0.3 -> softmax."""
    for i, (u, d) in enumerate(zip(units, dropouts)):
        x = layers.Dense(u, activation="relu", name=f"{name}_dense{i + 1}")(x)
        x = layers.Dropout(d, name=f"{name}_drop{i + 1}")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)
