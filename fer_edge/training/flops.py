"""Parameter and multiply-accumulate counts from layer shapes (no profiler, works offline)."""
from __future__ import annotations

import numpy as np


def _spatial(shape) -> int:
    return int(np.prod([d for d in shape[1:-1] if d is not None])) if len(shape) > 2 else 1


def count_macs(model) -> int:
    """MACs for one image: Conv2D, DepthwiseConv2D, SeparableConv2D and Dense (nested models included)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # nested backbone
            total += count_macs(layer)
            continue
        try:
            out = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(layer, layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += _spatial(out) * (kh * kw * cin * layer.depth_multiplier + cin * layer.depth_multiplier * out[-1])
        elif isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += _spatial(out) * kh * kw * out[-1]
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += _spatial(out) * kh * kw * (cin // layer.groups) * out[-1]
        elif isinstance(layer, layers.Dense):
            total += _spatial(out) * layer.input.shape[-1] * out[-1]
    return int(total)
