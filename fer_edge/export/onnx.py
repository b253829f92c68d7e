"""Keras -> ONNX: fp32 via tf2onnx.from_keras (explicit input signature, pinned opset), then
int8 by onnxruntime static quantization (QDQ, per-channel, after quant_pre_process) or
dynamic-range quantization. Every file passes the onnx checker."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError, UsageError
from fer_edge.export.metadata import set_onnx_metadata
from fer_edge.spec import ModelSpec

OPSET = 17
INPUT_NAME = "pixels"


def _to_onnx(model, spec: ModelSpec, extra_outputs=None):
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    sig = (tf.TensorSpec((None, *spec.input_shape), tf.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=OPSET)
    except Exception as exc:
        raise ModelError(f"ONNX conversion failed: {str(exc).splitlines()[0][:200]}") from None
    try:  # optional graph simplification
        import onnxslim

        proto = onnxslim.slim(proto)
    except Exception:
        pass
    return proto


class _Reader:
    """onnxruntime CalibrationDataReader over the calibration images."""

    def __init__(self, calib: np.ndarray, input_name: str):
        self.items = iter([{input_name: calib[i:i + 1].astype(np.float32)} for i in range(len(calib))])

    def get_next(self):
        return next(self.items, None)

    def rewind(self):  # pragma: no cover - required by newer ORT versions only
        pass


def export_onnx(model, spec: ModelSpec, out_path: Path, quantization: str, calib: np.ndarray | None,
                int8_io: str = "float") -> ModelSpec:
    onnx = require("onnx")
    proto = _to_onnx(model, spec)
    input_name = proto.graph.input[0].name
    out_spec = spec.replace(format="onnx", quantization=quantization, input_dtype="float32")
    with tempfile.TemporaryDirectory(dir=out_path.parent) as td:
        fp32 = Path(td) / "fp32.onnx"
        onnx.save(proto, fp32)
        if quantization == "none":
            final = fp32
        elif quantization in ("int8", "dynamic"):
            from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = Path(td) / "pre.onnx"
            try:
                quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
            except Exception:
                pre = fp32  # pre-processing is an optimisation; quantize the plain graph
            final = Path(td) / "q.onnx"
            if quantization == "dynamic":
                quantize_dynamic(str(pre), str(final), weight_type=QuantType.QInt8)
            else:
                if calib is None or len(calib) == 0:
                    raise UsageError("int8 export needs calibration images: pass --data pointing at FER2013.")
                quantize_static(str(pre), str(final), _Reader(calib, input_name), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        else:
            raise UsageError(f"ONNX has no quantization '{quantization}' here; choose none, dynamic or int8.")
        q = onnx.load(final)
        set_onnx_metadata(q, out_spec)
        try:
            onnx.checker.check_model(q)
        except Exception as exc:
            raise ModelError(f"exported ONNX ({quantization}) fails the onnx checker: {str(exc)[:200]}") from None
        tmp = out_path.with_name(out_path.name + ".partial")
        onnx.save(q, tmp)
        os.replace(tmp, out_path)
    return out_spec


def rewrite_onnx_spec(path: Path, spec: ModelSpec) -> None:
    onnx = require("onnx")
    q = onnx.load(path)
    set_onnx_metadata(q, spec)
    tmp = path.with_name(path.name + ".partial")
    onnx.save(q, tmp)
    os.replace(tmp, path)
