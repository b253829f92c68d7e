"""Find a CAM-ready head (GAP -> [Dropout] -> linear softmax classifier) and build the two-output
model that `export --explain` converts: (probabilities, last feature map)."""
from __future__ import annotations

import numpy as np

from fer_edge.errors import UsageError


def cam_model(model):
    """-> (keras.Model with outputs [probs, features], cam dict for the spec)."""
    import keras
    from keras import layers

    gaps = [l for l in model.layers if isinstance(l, layers.GlobalAveragePooling2D)]
    if len(gaps) != 1:
        raise UsageError(f"{model.name}: --explain needs one global-average-pooling head; this model does not "
                         "qualify. Use `fer-edge explain` (Grad-CAM) on the host.")
    gap = gaps[0]
    after = model.layers[model.layers.index(gap) + 1:]
    dense = [l for l in after if isinstance(l, layers.Dense)]
    extra = [l for l in after if not isinstance(l, (layers.Dense, layers.Dropout, layers.Activation))]
    if len(dense) > 1 or extra:
        raise UsageError(f"{model.name}: the head after global pooling is not a single linear classifier, so edge "
                         "CAM would be wrong. Use `fer-edge explain` (Grad-CAM) on the host.")
    features = gap.input
    channels = int(features.shape[-1])
    if dense:
        w, b = dense[0].get_weights()
    else:  # class maps pooled straight into the softmax (Mini-Xception): the maps are the CAMs
        w, b = np.eye(channels, dtype=np.float32), np.zeros(channels, np.float32)
    two = keras.Model(model.inputs[0], [model.outputs[0], features], name=f"{model.name}_cam")
    info = {"feature_layer": features.name if hasattr(features, "name") else "gap_input",
            "feature_shape": [int(d) for d in features.shape[1:]],
            "weights": np.asarray(w, np.float32).round(6).tolist(),
            "bias": np.asarray(b, np.float32).round(6).tolist()}
    return two, info
