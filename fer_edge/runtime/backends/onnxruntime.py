"""onnxruntime backend (CPU, or CUDA when asked and available)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError, UsageError
from fer_edge.metadata import read_onnx_metadata
from fer_edge.runtime.backends.base import Backend


def _needs_exact_kernels(spec) -> bool:
    """An int8 file with 8-bit weights on an x86 CPU without VNNI: onnxruntime's fused U8S8 kernels add
    pairs of u8 x s8 products in 16 bits there and saturate, so the file gives other answers (measured
    on an emulated AVX2 CPU: 84 % top-1 agreement with fp32 for the fer-edge 0.1 bundled file). Files
    with 7-bit weights (`weight_bits` 7: reduce_range, export --onnx-int8 ort) cannot saturate and keep
    the fast path; files that do not say (fer-edge 0.1) are taken as 8-bit."""
    from fer_edge.sysinfo import u8s8_saturates

    return (spec.format == "onnx" and spec.quantization in ("int8", "dynamic")
            and spec.quant_params.get("weight_bits", 8) != 7 and u8s8_saturates())


def _exact_session(ort, path, opts, providers):
    """Reload with onnxruntime's exact U8U8 kernels (session.x64quantprecision); where a graph trips that
    transformer (files exported before fer-edge gave each weight's DequantizeLinear one consumer), run the
    QDQ graph unfused instead (basic optimisations: float arithmetic, no saturation, 2x slower)."""
    opts.add_session_config_entry("session.x64quantprecision", "1")
    opts.log_severity_level = 4  # a failed attempt is handled below: its ERROR line is not the user's concern
    try:
        return (ort.InferenceSession(str(path), opts, providers=providers),
                "int8 with 8-bit weights on a CPU without VNNI: exact U8U8 kernels (session.x64quantprecision)")
    except Exception:
        plain = ort.SessionOptions()
        plain.log_severity_level = 3
        plain.add_session_config_entry("session.intra_op.allow_spinning", "0")
        plain.intra_op_num_threads, plain.inter_op_num_threads = opts.intra_op_num_threads, opts.inter_op_num_threads
        plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        return (ort.InferenceSession(str(path), plain, providers=providers),
                "int8 with 8-bit weights on a CPU without VNNI: QDQ graph run unfused (exact, slower)")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def load(cls, path, threads=None, device="cpu", spec=None):
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
        self.spec = spec or read_onnx_metadata(self.path)
        self.note = ""
        if _needs_exact_kernels(self.spec):
            self.session, self.note = _exact_session(ort, self.path, opts, providers)
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._dtype = np.uint8 if "uint8" in inp.type else np.float32
        self._outputs = [o.name for o in self.session.get_outputs()]
        self.check_graph(inp.shape, [o.shape for o in self.session.get_outputs()])
        return self

    @property
    def version(self) -> str:
        return self._ort.__version__

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = self.check_batch(batch)
        return self.session.run(self._outputs, {self._input_name: batch.astype(self._dtype, copy=False)})
