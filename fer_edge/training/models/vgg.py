"""`vgg`: VGG-style CNN trained from scratch, as in the study.

Source: Simonyan & Zisserman 2015 (arXiv:1409.1556), scaled to 48x48 inputs; head from the study
(Flatten -> 512 -> 0.5 -> 256 -> 0.3 -> softmax) with a BatchNorm between each Dense and its ReLU:
the study's own head (`head_norm=False`) dies within the first epoch and leaves the model predicting the
class prior (common.apply_dense_head; docs/results.md).
"""
from __future__ import annotations

from fer_edge.training.models._lazy import keras, layers

from fer_edge.training.models.common import apply_conv_bn, apply_dense_head, apply_input
from fer_edge.training.registry import register_model


def apply_vgg_block(x, filters: int, convs: int, name: str, dropout: float = 0.0):
    for i in range(convs):
        x = apply_conv_bn(x, filters, name=f"{name}_c{i + 1}")
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


@register_model("vgg", source="Simonyan & Zisserman 2015 (VGG), study's scratch variant", family="vgg",
                defaults={"lr": 1e-3}, tiny={"widths": (8, 16, 16, 16)})
def vgg(input_shape, num_classes, widths=(32, 64, 128, 256), head_norm: bool = True, **_):
    inputs, x = apply_input(input_shape)
    for i, w in enumerate(widths):
        x = apply_vgg_block(x, w, 2, name=f"block{i + 1}", dropout=0.25)
    x = layers.Flatten(name="flatten")(x)
    outputs = apply_dense_head(x, num_classes, norm=head_norm)
    return keras.Model(inputs, outputs, name="vgg")
