"""onnxruntime backend (CPU, or CUDA when asked and available)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError, UsageError
from fer_edge.export.metadata import spec_from_onnx_props
from fer_edge.runtime.backends.base import Backend


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def load(cls, path, threads=None, device="cpu"):
        ort = require("onnxruntime")
        self = cls()
        self.path = Path(path)
        self._ort = ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting between calls: the runtime interleaves inference with OpenCV work (detection,
        # drawing) that needs the same cores; spinning ORT threads made detection 50 % slower here
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError("device gpu: onnxruntime has no CUDA execution provider here (no GPU or CPU-only build).")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise ModelError(f"{self.path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:200]}).") from None
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.spec = spec_from_onnx_props(props, str(self.path))
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._dtype = np.uint8 if "uint8" in inp.type else np.float32
        self._outputs = [o.name for o in self.session.get_outputs()]
        return self

    @property
    def version(self) -> str:
        return self._ort.__version__

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = self.check_batch(batch)
        return self.session.run(self._outputs, {self._input_name: batch.astype(self._dtype, copy=False)})

    def predict(self, batch):
        return np.asarray(self.run(batch)[0], np.float32)
