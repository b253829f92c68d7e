"""The Backend interface: load a model file, read its spec, turn a uint8 batch into probabilities.

Quantized inputs/outputs are (de)quantized here, at this boundary, from the tensor's own scale
and zero point, so callers always pass raw 0..255 pixels and always get float probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.spec import ModelSpec


class Backend:
    name: str = "base"
    spec: ModelSpec
    path: Path

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None, device: str = "cpu") -> "Backend":
        raise NotImplementedError

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) pixels in 0..255 (uint8 or float) -> (N, num_classes) float32 probabilities."""
        raise NotImplementedError

    @property
    def version(self) -> str:
        return "?"

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch)
        if batch.ndim == 3:
            batch = batch[None]
        want = tuple(self.spec.input_shape)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != want:
            raise ValueError(f"{self.path.name} expects batches of shape (N, {', '.join(map(str, want))}), got {batch.shape}")
        return batch


def quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float (or uint8) pixels -> the integer input tensor's dtype via its scale/zero point."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype and abs(scale - 1.0) < 1e-6 and zero_point == 0:
        return x
    info = np.iinfo(dtype)
    q = np.round(x.astype(np.float32) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * scale
