"""Keras -> ONNX: fp32 via tf2onnx.from_keras (explicit input signature, pinned opset); int8 by one
of `ONNX_INT8_METHODS`; or dynamic-range quantization. Every file passes the onnx checker.

int8, why two methods. Two int8 files quantized independently (TFLite's converter, onnxruntime's
calibrator) each agree with fp32 on ~98.5 % of faces but with each other on only ~98 %: a user
switching backend gets other answers. The default, "tflite", converts the TFLite int8 flatbuffer
itself to ONNX (tf2onnx.from_tflite: the same int8 weights, scales and zero points in QDQ form, int8
activations), so both files make the same decisions (99.97 % on PublicTest, bundled model), and it
gives bit-identical outputs on an emulated AVX2-only CPU (onnxruntime's U8S8 kernels, which saturate
there, are not the ones it runs). "ort" is onnxruntime's own static QDQ calibration (uint8
activations) with 7-bit weights (`reduce_range`), so U8S8 pair sums stay inside int16 on any CPU:
also bit-identical on the emulated AVX2 CPU, on a quantization of its own. The export gate runs
every int8 file on that emulated CPU (`export.cpu_check`) when qemu-user is installed.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from fer_edge._optional import require
from fer_edge.errors import ModelError, UsageError
from fer_edge.export.metadata import write_bytes_atomic
from fer_edge.spec import ModelSpec

OPSET = 17
INPUT_NAME = "pixels"
#: --onnx-int8 choices -> what they are (one table; the CLI and the report read it)
ONNX_INT8_METHODS = {
    "tflite": "the TFLite int8 quantization, converted to ONNX QDQ: the same answers as the .tflite",
    "ort": "onnxruntime static QDQ, per-channel, 7-bit weights (reduce_range): exact in any onnxruntime session",
}


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


def _outputs_probs_first(proto) -> None:
    """tf2onnx.from_tflite lists outputs in the flatbuffer's order; ours put probabilities first."""
    outs = list(proto.graph.output)
    outs.sort(key=lambda o: len(o.type.tensor_type.shape.dim))
    del proto.graph.output[:]
    proto.graph.output.extend(outs)


def _from_tflite_int8(model, calib: np.ndarray, td: Path):
    """The TFLite int8 quantization (float in/out) as an ONNX QDQ graph."""
    tf2onnx = require("tf2onnx")
    from fer_edge.export.tflite import convert

    blob, _ = convert(model, "int8", calib, int8_io="float")
    path = td / "int8.tflite"
    path.write_bytes(blob)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            proto, _ = tf2onnx.convert.from_tflite(str(path), opset=OPSET)
    except Exception as exc:
        raise ModelError(f"TFLite int8 -> ONNX conversion failed: {str(exc).splitlines()[0][:200]}") from None
    _outputs_probs_first(proto)
    return _uint8_activations(_dedicated_weight_dq(proto))


def _dedicated_weight_dq(proto):
    """One weight DequantizeLinear per consumer. A graph that runs a layer twice (`--tta flip`: the face
    and its mirror through the same weights) comes out of tf2onnx with one DQ node feeding both Convs;
    onnxruntime's S8->U8 weight transformer (session.x64quantprecision, the exact kernels of a CPU
    without VNNI) then fails to load it ("Attempt to replace the existing tensor") and the runtime falls
    back to the unfused QDQ graph: 6.6 against 3.0 ms a face for the bundled flip file on an AVX2 EPYC
    (session 20). A DQ of its own per node is onnxruntime's `DedicatedQDQPair` layout; the weights are
    stored once per use, which `_uint8_activations` then gives initializers of their own."""
    import copy

    init = {i.name for i in proto.graph.initializer}
    consumers: dict[str, list] = {}
    for n in proto.graph.node:
        for k, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, k))
    extra = []
    for n in proto.graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in init:
            continue
        for j, (user, k) in enumerate(consumers.get(n.output[0], [])[1:], 1):
            dup = copy.deepcopy(n)
            dup.name, dup.output[0] = f"{n.name}__use{j}", f"{n.output[0]}__use{j}"
            user.input[k] = dup.output[0]
            extra.append(dup)
    if extra:  # their inputs are initializers only, so they can run first
        nodes = extra + list(proto.graph.node)
        del proto.graph.node[:]
        proto.graph.node.extend(nodes)
    return proto


def _uint8_activations(proto):
    """int8 activations -> uint8 with zero point + 128: the same quantization grid (q_u8 = q_s8 + 128), but
    onnxruntime then fuses Q/DQ pairs into its fast U8S8 QLinearConv (0.40 vs 1.03 ms a face here, where
    int8 activations stay unfused). Each Q/DQ node also gets initializers of its own: tf2onnx shares
    equal constants, which onnxruntime's S8->U8 weight transformer (session.x64quantprecision) cannot
    rewrite twice."""
    from onnx import numpy_helper

    init = {i.name: i for i in proto.graph.initializer}
    fresh = []
    for i, n in enumerate(proto.graph.node):
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        weight = n.op_type == "DequantizeLinear" and n.input[0] in init
        for k in range(len(n.input)):
            if n.input[k] not in init or (k == 0 and not weight):
                continue
            a = numpy_helper.to_array(init[n.input[k]])
            if k == 2 and not weight and a.dtype == np.int8:
                a = (a.astype(np.int16) + 128).astype(np.uint8)
            name = f"{n.input[k]}__{i}_{k}"
            fresh.append(numpy_helper.from_array(a, name))
            n.input[k] = name
    proto.graph.initializer.extend(fresh)
    used = {x for n in proto.graph.node for x in n.input}
    keep = [t for t in proto.graph.initializer if t.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
    return proto


def export_onnx(model, spec: ModelSpec, out_path: Path, quantization: str, calib: np.ndarray | None,
                int8_io: str = "float", int8_method: str = "tflite") -> ModelSpec:
    """Convert, check and write the graph to `out_path` (atomically); returns the file's spec, which the
    caller embeds (`export.metadata.embed_onnx_spec`, once it knows the file's metrics)."""
    onnx = require("onnx")
    if quantization not in ("none", "dynamic", "int8"):
        raise UsageError(f"ONNX has no quantization '{quantization}' here; choose none, dynamic or int8.")
    if quantization == "int8":
        if int8_method not in ONNX_INT8_METHODS:
            from fer_edge.errors import unknown

            raise unknown("ONNX int8 method", int8_method, ONNX_INT8_METHODS)
        if calib is None or len(calib) == 0:
            raise UsageError("int8 export needs calibration images: pass --data pointing at FER2013.")
    out_spec = spec.replace(format="onnx", quantization=quantization, input_dtype="float32")
    with tempfile.TemporaryDirectory(dir=out_path.parent) as td:
        final = Path(td) / "q.onnx"
        if quantization == "int8" and int8_method == "tflite":
            onnx.save(_from_tflite_int8(model, calib, Path(td)), final)
            out_spec.quant_params = {"int8_method": "tflite", "weight_bits": 8, "weights": "int8 per-channel (8-bit)",
                                     "activations": "uint8 (TFLite's int8 grid + 128)",
                                     "x86_without_vnni": "session.x64quantprecision=1 (fer-edge sets it)"}
        else:
            proto = _to_onnx(model, spec)
            input_name = proto.graph.input[0].name
            fp32 = Path(td) / "fp32.onnx"
            onnx.save(proto, fp32)
            if quantization == "none":
                final = fp32
            else:
                from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
                from onnxruntime.quantization.shape_inference import quant_pre_process

                pre = Path(td) / "pre.onnx"
                try:
                    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
                except Exception:
                    pre = fp32  # pre-processing is an optimisation; quantize the plain graph
                if quantization == "dynamic":
                    quantize_dynamic(str(pre), str(final), weight_type=QuantType.QInt8, reduce_range=True)
                    out_spec.quant_params = {"weight_bits": 7, "weights": "int8 (7-bit, reduce_range)",
                                             "activations": "dynamic"}
                else:
                    quantize_static(str(pre), str(final), _Reader(calib, input_name), quant_format=QuantFormat.QDQ,
                                    per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                                    weight_type=QuantType.QInt8)
                    out_spec.quant_params = {"int8_method": "ort", "weight_bits": 7,
                                             "weights": "int8 per-channel (7-bit, reduce_range)",
                                             "activations": "uint8"}
        q = onnx.load(final)
        try:
            onnx.checker.check_model(q)
        except Exception as exc:
            raise ModelError(f"exported ONNX ({quantization}) fails the onnx checker: {str(exc)[:200]}") from None
        write_bytes_atomic(out_path, q.SerializeToString())
    return out_spec


def int8_weight_range(path: str | Path) -> int:
    """Largest |q| over the int8 weights that feed Conv/MatMul/Gemm through DequantizeLinear: <= 64
    means no u8 x s8 pair sum can leave int16 (2 x 255 x 64 = 32,640), whatever the CPU."""
    onnx = require("onnx")
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: i for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    worst = 0
    for n in m.graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm") or len(n.input) < 2:
            continue
        dq = producer.get(n.input[1])
        if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in init:
            q = numpy_helper.to_array(init[dq.input[0]])
            if q.dtype == np.int8:
                worst = max(worst, int(np.abs(q.astype(np.int16)).max()))
    return worst
