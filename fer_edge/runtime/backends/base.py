"""The Backend interface: load a model file, read its spec, run a uint8 batch through it.

Every backend (LiteRT, tflite-runtime, onnxruntime here; Keras and TensorFlow Lite on TensorFlow in
fer_edge/training/) implements `load` and `run` (every output, probabilities first, then the CAM
feature map when the file has one); `predict` (probabilities only) is derived from `run` here, so a
backend cannot give CAM users and plain users two different answers.

Quantized inputs/outputs are (de)quantized here, at this boundary, from the tensor's own scale
and zero point, so callers always pass raw 0..255 pixels and always get float probabilities.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.spec import ModelSpec


class Backend(ABC):
    name: str = "base"
    spec: ModelSpec
    path: Path

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, threads: int | None = None, device: str = "cpu",
             spec: ModelSpec | None = None) -> "Backend":
        """Open `path` (its metadata read and checked against the graph) with `threads` intra-op threads.
        `spec`: the spec of a file this process has just written and not yet stamped (export measures its
        files before it embeds their final metadata, once); still checked against the graph."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """(N, H, W, C) pixels in 0..255 -> every output as float32: (N, num_classes) probabilities first,
        then (N, h, w, c) features for files exported with a CAM output."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, C) pixels in 0..255 (uint8 or float) -> (N, num_classes) float32 probabilities."""
        return np.asarray(self.run(batch)[0], np.float32)

    @property
    def version(self) -> str:
        return "?"

    def check_graph(self, input_shape, output_shapes) -> None:
        """Refuse a file whose metadata disagrees with its graph: the input must be (N, *spec.input_shape)
        and the probability output (the first 2-D one) must have one score per label. Otherwise scores
        would be dropped or paired with the wrong names, silently. Dynamic dims (None, -1, names) pass."""
        def dim(d):
            return int(d) if isinstance(d, (int, np.integer)) and d > 0 else None

        got = [dim(d) for d in input_shape]
        want = [int(v) for v in self.spec.input_shape]
        if len(got) != 4 or any(g is not None and g != w for g, w in zip(got[1:], want)):
            raise ModelError(f"{self.path}: its metadata says the input is (N, {', '.join(map(str, want))}) but the "
                             f"graph takes {tuple(input_shape)}; the file is corrupt or was edited. Re-export it.")
        probs = [s for s in output_shapes if len(s) == 2]
        n = self.spec.num_classes
        if not probs or dim(probs[0][-1]) not in (n, None):
            got_n = dim(probs[0][-1]) if probs else "no"
            raise ModelError(f"{self.path}: its metadata lists {n} labels but the graph outputs {got_n} scores; "
                             "the file is corrupt or was edited. Re-export it.")

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
