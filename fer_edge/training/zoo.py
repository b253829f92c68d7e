"""Describe the registry: used by `fer-edge models` and the docs."""
from __future__ import annotations


def describe_models(num_classes: int = 7) -> list[dict]:
    import keras

    from fer_edge.training.flops import count_macs
    from fer_edge.training.registry import create_model, get_arch, list_models

    rows = []
    for name in list_models(("full", "upscaled")):  # not the test-size tiny ones
        info = get_arch(name)
        m = create_model(name, info.input_shape, num_classes)
        rows.append({"name": name, "family": info.family, "source": info.source, "params": int(m.count_params()),
                     "macs": count_macs(m), "cam": info.cam, "pretrained": info.pretrained, "tier": info.tier})
        del m
        keras.backend.clear_session()
    return rows
