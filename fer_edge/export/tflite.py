"""Keras -> TFLite: fp32, fp16, dynamic-range and full-integer int8 (built-in ops only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError, UsageError
from fer_edge.export.metadata import write_bytes_atomic
from fer_edge.spec import ModelSpec

INT8_IO = ("uint8", "int8", "float")


def export_tflite(model, spec: ModelSpec, out_path: Path, quantization: str, calib: np.ndarray | None,
                  int8_io: str = "uint8") -> ModelSpec:
    """Convert and write the flatbuffer to `out_path` (atomically); returns the file's spec, which the
    caller embeds (`export.metadata.embed_tflite_spec`, once it knows the file's metrics)."""
    blob, input_dtype = convert(model, quantization, calib, int8_io)
    qparams = _io_quant_params(blob)
    write_bytes_atomic(out_path, blob)
    return spec.replace(format="tflite", quantization=quantization, input_dtype=input_dtype, quant_params=qparams)


def convert(model, quantization: str, calib: np.ndarray | None, int8_io: str = "uint8") -> tuple[bytes, str]:
    """Keras -> TFLite flatbuffer bytes and the input dtype. The int8 conversion is deterministic for
    the same calibration images, so the ONNX int8 export can reuse it (`export.onnx`, method tflite)."""
    tf = require("tensorflow")
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    # the slim interpreters (LiteRT, tflite-runtime) cannot run TF (Flex) ops: refuse them
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    input_dtype = "float32"
    if quantization == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if calib is None or len(calib) == 0:
            raise UsageError("int8 export needs calibration images: pass --data pointing at FER2013.")
        if int8_io not in INT8_IO:
            raise UsageError(f"--int8-io must be one of {', '.join(INT8_IO)}, got '{int8_io}'.")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = calib.astype(np.float32)

        def representative():
            for i in range(len(samples)):
                yield [samples[i:i + 1]]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io != "float":
            conv.inference_input_type = tf.uint8 if int8_io == "uint8" else tf.int8
            conv.inference_output_type = tf.uint8 if int8_io == "uint8" else tf.int8
            input_dtype = int8_io
    elif quantization != "none":
        raise UsageError(f"TFLite has no quantization '{quantization}'.")
    try:
        blob = conv.convert()
    except Exception as exc:
        raise ModelError(f"TFLite conversion ({quantization}) failed: {str(exc).splitlines()[0][:200]}") from None
    return blob, input_dtype


def _io_quant_params(blob: bytes) -> dict:
    """Scale/zero point of the input and outputs, read back with TF's interpreter."""
    tf = require("tensorflow")
    interp = tf.lite.Interpreter(model_content=blob)
    out = {}
    for kind, details in (("input", interp.get_input_details()), ("output", interp.get_output_details())):
        out[kind] = [{"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
                      "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])} for d in details]
    return out
