"""TFLite backend on LiteRT (`ai-edge-litert`, the successor of tflite-runtime): numpy 2, no TF.

`tflite_runtime.py` and `training/tensorflow_lite.py` reuse this class with another interpreter import.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError
from fer_edge.metadata import read_tflite_metadata
from fer_edge.runtime.backends.base import Backend, dequantize, quantize


class LiteRTBackend(Backend):
    name = "litert"
    _module = "ai_edge_litert.interpreter"

    @classmethod
    def _interpreter_module(cls):
        return require(cls._module)

    @classmethod
    def load(cls, path, threads=None, device="cpu", spec=None):
        if device == "gpu":
            from fer_edge.errors import UsageError

            raise UsageError(f"device gpu: fer-edge runs {cls.name} on the CPU only (no GPU delegate wired in); "
                             "use onnxruntime with a CUDA build for GPU rows.")
        mod = cls._interpreter_module()
        self = cls()
        self.path = Path(path)
        self._mod = mod
        self.spec = spec or read_tflite_metadata(self.path)  # refuse files without metadata before anything else
        self._threads = threads
        self._lock = threading.Lock()  # a TFLite interpreter is not thread-safe: one call at a time
        self.delegate = "xnnpack"
        try:
            self._make(None)
        except (ValueError, RuntimeError) as exc:
            if not self._fallback(exc):
                raise ModelError(f"{self.path}: {self.name} cannot load it ({str(exc).splitlines()[0][:200]}).") from None
        self.check_graph(self._in["shape_signature"] if "shape_signature" in self._in else self._in["shape"],
                         [list(d.get("shape_signature", d["shape"])) for d in self._outs])
        return self

    def _make(self, resolver) -> None:
        kw = {"experimental_op_resolver_type": resolver} if resolver is not None else {}
        self.interp = self._mod.Interpreter(model_path=str(self.path), num_threads=self._threads or None, **kw)
        self.interp.allocate_tensors()
        self._in = self.interp.get_input_details()[0]
        self._outs = self.interp.get_output_details()
        self._batch = int(self._in["shape"][0])

    def _fallback(self, exc: Exception) -> bool:
        """XNNPACK refuses some int8 graphs ("failed to prepare", at load or first invoke): rebuild the
        interpreter on the built-in kernels. Returns False when that is not the problem or not possible."""
        resolver = getattr(getattr(self._mod, "OpResolverType", None), "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
        if resolver is None or "XNNPACK" not in str(exc) or self.delegate != "xnnpack":
            return False
        self._make(resolver)
        self.delegate = "none (XNNPACK refused this graph)"
        return True

    @property
    def version(self) -> str:
        import importlib.metadata as md

        for dist in ("ai-edge-litert", "tflite-runtime", "tensorflow-cpu", "tensorflow"):
            try:
                return md.version(dist)
            except md.PackageNotFoundError:
                continue
        return "?"

    def _resize(self, n: int) -> None:
        if n != self._batch:
            shape = list(self._in["shape"])
            shape[0] = n
            self.interp.resize_tensor_input(self._in["index"], shape)
            self.interp.allocate_tensors()
            self._in = self.interp.get_input_details()[0]
            self._outs = self.interp.get_output_details()
            self._batch = n

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = self.check_batch(batch)
        with self._lock:
            return self._run(batch)

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        self._resize(len(batch))
        dtype = self._in["dtype"]
        if np.issubdtype(dtype, np.integer):
            scale, zp = self._in["quantization"]
            x = quantize(batch, dtype, scale or 1.0, int(zp))
        else:
            x = batch.astype(dtype, copy=False)
        self.interp.set_tensor(self._in["index"], x)
        try:
            self.interp.invoke()
        except RuntimeError as exc:
            if not self._fallback(exc):
                raise
            self._resize(len(batch))
            self.interp.set_tensor(self._in["index"], x)
            self.interp.invoke()
        outs = []
        for d in self._outs:
            y = self.interp.get_tensor(d["index"])
            if np.issubdtype(d["dtype"], np.integer):
                scale, zp = d["quantization"]
                y = dequantize(y, scale, int(zp))
            outs.append(np.asarray(y, np.float32))
        return self._order_outputs(outs)

    def _order_outputs(self, outs: list[np.ndarray]) -> list[np.ndarray]:
        """Probabilities first: TFLite does not keep Keras' output order, so sort by rank (2-D first)."""
        return sorted(outs, key=lambda a: a.ndim)
