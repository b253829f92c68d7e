"""Small functional-Keras helpers shared by the builders (keras-hub style apply_* blocks)."""
from __future__ import annotations

from fer_edge.training.models._lazy import keras, layers


#: dtype of every builder's `predictions` layer: float32 even under a mixed-precision policy, so the
#: probabilities (and the loss computed from them) keep float32 precision (training.mixed_precision)
OUTPUT_DTYPE = "float32"


def apply_predictions(x, num_classes: int | None = None):
    """The softmax output, named `predictions`, in float32: Dense(num_classes) + softmax, or (num_classes
    None) a softmax over `x` itself (heads whose last conv already has one map per class)."""
    if num_classes is None:
        return layers.Activation("softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)
    return layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)


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


def apply_dense_head(x, num_classes: int, units=(512, 256), dropouts=(0.5, 0.3), name: str = "head",
                     norm: bool = False):
    """The study's head: Dense 512 -> Dropout 0.5 -> Dense 256 -> Dropout 0.3 -> softmax.

    `norm` puts a BatchNormalization between each Dense and its ReLU. Why: the head's input is a wide
    (2,304 for vgg's Flatten), all-positive ReLU feature vector, so one Adam step, which moves every
    weight by about the learning rate, can shift a unit's pre-activation by lr x fan-in x mean feature
    (~2 at 1e-3) for every face at once; the first Dense's units are pushed below zero for all faces
    within the first epoch, never get a gradient again, and the model outputs the class prior
    (docs/results.md, "Why the scratch vgg sat in the majority class"). BN re-centres each unit."""
    for i, (u, d) in enumerate(zip(units, dropouts)):
        if norm:
            x = layers.Dense(u, use_bias=False, name=f"{name}_dense{i + 1}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i + 1}")(x)
            x = layers.Activation("relu", name=f"{name}_relu{i + 1}")(x)
        else:
            x = layers.Dense(u, activation="relu", name=f"{name}_dense{i + 1}")(x)
        x = layers.Dropout(d, name=f"{name}_drop{i + 1}")(x)
    return apply_predictions(x, num_classes)
