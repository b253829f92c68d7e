"""`mini_xception`: Arriaga, Valdenegro-Toro & Ploeger 2017, "Real-time Convolutional Neural
Networks for Emotion and Gender Classification" (arXiv:1710.07557): depthwise-separable
residual blocks, no dense layers, GAP over per-class maps (~60 k params)."""
from __future__ import annotations

from fer_edge.training.models._lazy import keras, layers

from fer_edge.training.models.common import apply_conv_bn, apply_input, apply_predictions
from fer_edge.training.registry import register_model


def apply_xception_block(x, filters: int, name: str):
    # 1x1 stride-2 conv written as subsample + 1x1 conv (identical maths): TF 2.21's oneDNN
    # backward pass of a strided 1x1 Conv2D corrupts the heap on this CPU.
    residual = layers.MaxPooling2D(1, strides=2, padding="same", name=f"{name}_res_subsample")(x)
    residual = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_res_conv")(residual)
    residual = layers.BatchNormalization(name=f"{name}_res_bn")(residual)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep1")(x)
    x = layers.BatchNormalization(name=f"{name}_sep1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_sep1_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep2")(x)
    x = layers.BatchNormalization(name=f"{name}_sep2_bn")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


@register_model("mini_xception", source="Arriaga et al. 2017, arXiv:1710.07557", family="xception",
                defaults={"lr": 1e-3}, cam=True)
def mini_xception(input_shape, num_classes, **_):
    inputs, x = apply_input(input_shape)
    x = apply_conv_bn(x, 8, name="stem1")
    x = apply_conv_bn(x, 8, name="stem2")
    for i, f in enumerate((16, 32, 64, 128)):
        x = apply_xception_block(x, f, name=f"block{i + 1}")
    x = layers.Conv2D(num_classes, 3, padding="same", name="class_maps")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = apply_predictions(x)
    return keras.Model(inputs, outputs, name="mini_xception")
