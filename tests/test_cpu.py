"""Every CPU: CPU facts, int8 answers on a second CPU class (emulated), precision choice, gate hold-out."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fer_edge import sysinfo
from fer_edge.errors import UsageError
from fer_edge.runtime.recognizer import BUNDLED_DIR, BUNDLED_STEM

AVX2_ONLY = "sse4_1 sse4_2 avx avx2 fma f16c"
WITH_VNNI = AVX2_ONLY + " avx512f avx512bw avx512_vnni"


@pytest.fixture
def flags(monkeypatch):
    def set_flags(value: str | None):
        if value is None:
            monkeypatch.delenv(sysinfo.FLAGS_ENV, raising=False)
        else:
            monkeypatch.setenv(sysinfo.FLAGS_ENV, value)
        sysinfo.cpu_features.cache_clear()

    yield set_flags
    sysinfo.cpu_features.cache_clear()


def test_cpu_summary_names_model_and_features():
    s = sysinfo.cpu_summary()
    assert sysinfo.cpu_model() in s and sysinfo.cpu_class() in s
    d = sysinfo.cpu_dict()
    assert d["cores"] >= 1 and isinstance(d["features"], list)


@pytest.mark.skipif(not sysinfo.is_x86(), reason="x86 CPU classes")
def test_cpu_class_from_flags(flags):
    flags(AVX2_ONLY)
    assert sysinfo.cpu_class() == "x86-64 AVX2, no VNNI" and sysinfo.u8s8_saturates()
    flags(WITH_VNNI)
    assert sysinfo.cpu_class() == "x86-64 with VNNI" and not sysinfo.u8s8_saturates()


@pytest.mark.skipif(not sysinfo.is_x86(), reason="x86 CPU classes")
def test_bfloat16_hint_only_where_the_cpu_has_bfloat16_units(flags):
    """`fer-edge train` suggests --mixed-precision bfloat16 on a CPU with AMX-BF16 (TensorFlow, float32,
    no GPU), and nowhere else."""
    from fer_edge.training.mixed_precision import cpu_hint

    flags(WITH_VNNI)
    assert not sysinfo.has_amx_bf16() and cpu_hint("off", "tensorflow", 0) is None
    flags(WITH_VNNI + " avx512_bf16")  # bfloat16 dot products without AMX tiles: slower than float32
    assert not sysinfo.has_amx_bf16() and cpu_hint("off", "tensorflow", 0) is None
    flags(WITH_VNNI + " avx512_bf16 amx_tile amx_int8 amx_bf16")
    assert sysinfo.has_amx_bf16() and "AMX-BF16" in sysinfo.cpu_summary()
    assert "--mixed-precision bfloat16" in cpu_hint("off", "tensorflow", 0)
    assert cpu_hint("bfloat16", "tensorflow", 0) is None  # already asked for
    assert cpu_hint("off", "tensorflow", 1) is None  # a GPU trains
    assert cpu_hint("off", "jax", 0) is None  # not measured there


@pytest.mark.skipif(not sysinfo.is_x86(), reason="x86 CPU classes")
def test_onnx_backend_uses_exact_kernels_where_u8s8_saturates(flags):
    """8-bit-weight int8 files get onnxruntime's exact U8U8 kernels on CPUs without VNNI. Their answers are
    the int8 graph's own: the same probabilities as LiteRT running the TFLite file the ONNX file was made
    from, on any host. The fast path agrees only on a host with VNNI: on a real AVX2 CPU without it
    (session 20's AMD EPYC) its U8S8 kernels changed the top-1 of 4 of these 16 noise images."""
    from fer_edge.runtime.backends import load_backend

    path = BUNDLED_DIR / f"{BUNDLED_STEM}_int8.onnx"
    x = np.random.default_rng(0).integers(0, 256, (16, 48, 48, 1), dtype=np.uint8)
    host_saturates = sysinfo.u8s8_saturates()  # this machine's real CPU, before the flags are faked
    reference = load_backend(path.with_suffix(".tflite"), backend="litert").predict(x)
    flags(WITH_VNNI)
    fast = load_backend(path, backend="onnxruntime")
    assert fast.note == ""
    flags(AVX2_ONLY)
    exact = load_backend(path, backend="onnxruntime")
    assert "without VNNI" in exact.note
    got = exact.predict(x)
    np.testing.assert_array_equal(got.argmax(1), reference.argmax(1))
    np.testing.assert_allclose(got, reference, atol=1 / 256 + 1e-6)  # within one step of the uint8 output
    if not host_saturates:
        np.testing.assert_array_equal(fast.predict(x).argmax(1), got.argmax(1))


def _emulated_top1(path, x, cpu_flags: str) -> np.ndarray:
    emu = sysinfo.emulator_for("x86-avx2")
    from fer_edge.export.cpu_check import emulated_probs

    cpu = sysinfo.EmulatedCpu(emu.name, emu.qemu, emu.cpu, emu.host, emu.description, cpu_flags)
    return emulated_probs(path, x, cpu).argmax(1)


NEEDS_QEMU = pytest.mark.skipif(sysinfo.emulator_for("x86-avx2") is None,
                                reason="needs qemu-user on x86-64 (apt-get install qemu-user)")


def _sample_faces(sample_data, n: int) -> np.ndarray:
    import cv2

    files = sorted(sample_data.glob("*/*/*.jpg"))[:n]
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])[..., None]


@NEEDS_QEMU
def test_bundled_int8_onnx_same_answers_on_an_avx2_cpu(sample_data):
    """On an (emulated) x86-64 CPU without VNNI the bundled int8 ONNX file gives this host's answers
    (32 real faces: ~7 s under QEMU; -m large runs 120 faces and shows the check can fail)."""
    x = _sample_faces(sample_data, 32)
    path = BUNDLED_DIR / f"{BUNDLED_STEM}_int8.onnx"
    native = load_backend_top1(path, x)
    assert (_emulated_top1(path, x, AVX2_ONLY) == native).mean() == 1.0


@pytest.mark.large
@NEEDS_QEMU
def test_bundled_int8_onnx_old_settings_differ_on_an_avx2_cpu(sample_data):
    """With fer-edge 0.1's session settings (fast U8S8 kernels on every CPU: here, the runtime told the CPU
    has VNNI) the same file saturates on the AVX2-only CPU and gives other answers: the check can fail."""
    x = _sample_faces(sample_data, 120)
    path = BUNDLED_DIR / f"{BUNDLED_STEM}_int8.onnx"
    native = load_backend_top1(path, x)
    assert (_emulated_top1(path, x, AVX2_ONLY) == native).mean() == 1.0
    assert (_emulated_top1(path, x, WITH_VNNI) == native).mean() < 0.99


def load_backend_top1(path, x) -> np.ndarray:
    from fer_edge.runtime.backends import load_backend

    return load_backend(path, backend="onnxruntime").predict(x).argmax(1)


def test_ort_int8_method_has_7bit_weights(tiny_run, sample_data, tmp_path, flags):
    """--onnx-int8 ort: onnxruntime's calibration with reduce_range, whose weights cannot saturate, so the
    runtime keeps the fast kernels even on a CPU without VNNI."""
    from fer_edge.export.api import export_model
    from fer_edge.export.onnx import int8_weight_range
    from fer_edge.runtime.backends import load_backend

    rep = export_model(tiny_run, "onnx", "int8", data=str(sample_data), out=tmp_path, max_drop=100.0, calib_size=300,
                       onnx_int8="ort", emulate="none", log=lambda *_: None)
    assert rep.ok, [r.note for r in rep.rows]
    path = tmp_path / rep.rows[0].file
    assert int8_weight_range(path) <= 64
    flags(AVX2_ONLY)
    b = load_backend(path, backend="onnxruntime")
    assert b.spec.quant_params["weight_bits"] == 7 and b.note == ""
    with pytest.raises(UsageError, match="Did you mean 'tflite'"):
        export_model(tiny_run, "onnx", "int8", data=str(sample_data), out=tmp_path, onnx_int8="tflit")


def test_int8_files_of_both_formats_agree(tiny_exports):
    """The default ONNX int8 file is the TFLite int8 quantization converted: same decisions."""
    rep = tiny_exports["report"]
    cross = [c for c in rep.cross_format if {c["a"], c["b"]} == {"tflite int8", "onnx int8"}]
    assert cross and cross[0]["agreement"] >= 0.99
    from fer_edge.runtime.backends import load_backend

    spec = load_backend(tiny_exports["files"][("onnx", "int8")]).spec
    assert spec.quant_params["int8_method"] == "tflite"
    assert rep.cpu["model"] and "Gate CPU" in (tiny_exports["dir"] / "export_report.md").read_text()


def test_gate_holdout_is_fixed_and_disjoint(sample_data, cache_dir, monkeypatch):
    import fer_edge.data as data
    from fer_edge.labels import parse_classes

    monkeypatch.setattr(data, "HOLDOUT_MIN_TRAIN", 10)
    raw = data.load_raw(sample_data, cache_dir=cache_dir)
    s7 = data.make_splits(raw, parse_classes("7"))
    s2 = data.make_splits(raw, parse_classes("2"))
    assert len(s7.y_holdout) == 7 and len(s7.y_train) == 7 * 13  # 1 of each class's 14 Training images
    assert "without it" in s7.holdout_source
    train_px = {x.tobytes() for x in s7.x_train}
    assert not any(x.tobytes() in train_px for x in s7.x_holdout)
    # the same images whatever the class mapping (those the mapping keeps)
    hold7 = {x.tobytes() for x in s7.x_holdout}
    assert {x.tobytes() for x in s2.x_holdout} <= hold7 and len(s2.y_holdout) == 2
    x, y = s7.split("holdout")
    assert len(y) == 7
    with pytest.raises(Exception, match="Did you mean 'holdout'"):
        s7.split("holdot")


def test_precision_choice(tmp_path, monkeypatch):
    from fer_edge.runtime.precision import choose

    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path))
    files = {p: BUNDLED_DIR / f"{BUNDLED_STEM}_{p}.onnx" for p in ("int8", "fp32")}
    c = choose(files, "onnxruntime", "auto", threads=1)
    assert c.precision in files and set(c.ms) == {"int8", "fp32"} and c.ms[c.precision] == min(c.ms.values())
    again = choose(files, "onnxruntime", "auto", threads=1)
    assert again.precision == c.precision and "cached" in again.reason
    assert choose(files, "onnxruntime", "fp32").path == files["fp32"]
    with pytest.raises(UsageError, match="Did you mean 'int8'"):
        choose(files, "onnxruntime", "int9")


def test_candidates_are_timed_in_turns():
    """time_interleaved calls a, b, a, b, ...: a slow spell of the machine falls on both candidates alike
    (timed one after the other, the whole spell could fall on one of them and flip --precision auto)."""
    from fer_edge.timing import time_interleaved

    calls: list[str] = []
    got = time_interleaved({"int8": lambda: calls.append("int8"), "fp32": lambda: calls.append("fp32")},
                           warmup=2, min_runs=4)
    assert calls[4:] == ["int8", "fp32"] * 4 and [len(v) for v in got.values()] == [4, 4]
    assert all(t >= 0 for v in got.values() for t in v)


def test_cli_precision_and_detector_options(astronaut):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["predict", str(astronaut), "--precision", "fp32", "--backend", "onnxruntime", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["predict", str(astronaut), "--detector", "acurate"])
    assert r.exit_code == 2 and "Did you mean 'accurate'" in r.output
    r = CliRunner().invoke(app, ["predict", str(astronaut), "--model", str(BUNDLED_DIR / f"{BUNDLED_STEM}_int8.onnx"),
                                 "--precision", "fp32"])
    assert r.exit_code == 2 and "--precision" in r.output


def _shared_weight_qdq_graph():
    """The shape of a `--tta flip` int8 file in miniature: one weight DequantizeLinear feeding two Convs."""
    from onnx import TensorProto, helper, numpy_helper

    from fer_edge.export.onnx import OPSET

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s_x"), numpy_helper.from_array(np.array(128, np.uint8), "z_x"),
             numpy_helper.from_array(rng.integers(-127, 128, (4, 1, 3, 3)).astype(np.int8), "w"),
             numpy_helper.from_array(np.full(4, 0.01, np.float32), "s_w"), numpy_helper.from_array(np.zeros(4, np.int8), "z_w"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s_y"), numpy_helper.from_array(np.array(128, np.uint8), "z_y")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s_x", "z_x"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "s_w", "z_w"], ["wd"], axis=0, name="w_dq")]
    for i in (1, 2):
        nodes += [helper.make_node("Conv", ["xd", "wd"], [f"c{i}"], pads=[i - 1] * 4, name=f"conv{i}"),
                  helper.make_node("QuantizeLinear", [f"c{i}", "s_y", "z_y"], [f"q{i}"]),
                  helper.make_node("DequantizeLinear", [f"q{i}", "s_y", "z_y"], [f"d{i}"]),
                  helper.make_node("ReduceMean", [f"d{i}"], [f"m{i}"], keepdims=0)]
    nodes.append(helper.make_node("Add", ["m1", "m2"], ["y"]))
    graph = helper.make_graph(nodes, "shared_weight", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@pytest.mark.skipif(not sysinfo.is_x86(), reason="onnxruntime's x86-64 exact int8 kernels")
def test_a_weight_used_twice_still_gets_the_exact_kernels(tmp_path):
    """onnxruntime's exact-kernel transformer (session.x64quantprecision) cannot load a graph whose weight
    DequantizeLinear feeds two nodes, as the flip-TTA export's did; the export gives each use a DQ node of
    its own, and the file then loads with those kernels and computes what the original graph computes."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fer_edge.export.onnx import _dedicated_weight_dq, _uint8_activations
    from fer_edge.runtime.backends.onnxruntime import _exact_session

    def exact(model, name):
        path = tmp_path / name
        onnx.save(model, path)
        return _exact_session(ort, path, ort.SessionOptions(), ["CPUExecutionProvider"])

    _, note = exact(_shared_weight_qdq_graph(), "shared.onnx")
    assert "unfused" in note  # onnxruntime 1.32 refuses it; if a release fixes that, this line says so
    fixed = _uint8_activations(_dedicated_weight_dq(_shared_weight_qdq_graph()))
    onnx.checker.check_model(fixed)
    assert sum(n.op_type == "DequantizeLinear" and n.input[0].startswith("w") for n in fixed.graph.node) == 2
    session, note = exact(fixed, "dedicated.onnx")
    assert "exact U8U8 kernels" in note
    x = np.random.default_rng(1).normal(size=(1, 1, 8, 8)).astype(np.float32)
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(_shared_weight_qdq_graph().SerializeToString(), plain).run(None, {"x": x})[0]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, atol=1e-3)
