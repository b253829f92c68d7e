"""`sequential`: the study's small CNN (Conv -> Pool x2 -> Flatten -> 128 -> Dropout 0.5 -> softmax)."""
from __future__ import annotations

from fer_edge.training.models._lazy import keras, layers

from fer_edge.training.models.common import apply_input, apply_predictions
from fer_edge.training.registry import register_model


@register_model("sequential", source="the study's baseline Sequential CNN", family="sequential",
                defaults={"lr": 1e-3})
def sequential(input_shape, num_classes, **_):
    inputs, x = apply_input(input_shape)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    outputs = apply_predictions(x, num_classes)
    return keras.Model(inputs, outputs, name="sequential")
