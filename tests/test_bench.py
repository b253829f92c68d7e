"""Benchmark on a tiny model with a tiny budget: every output is produced and well-formed."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_edge.bench import BenchRow, pareto_front, plot_pareto, run_bench, write_csv, write_json
from fer_edge.errors import UsageError
from fer_edge.metrics import percentiles


def test_percentiles_known_sample():
    p = percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5) and p["p90"] == pytest.approx(90.1) and p["p99"] == pytest.approx(99.01)
    assert p["min"] == 1 and p["n"] == 100


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.55), (0.5, 0.4), (2.5, 0.7)]
    assert pareto_front(pts) == [3, 0, 1, 4]


@pytest.fixture(scope="module")
def bench_dir(tiny_exports, tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    for key in (("tflite", "int8"), ("onnx", "none"), ("tflite", "none")):
        shutil.copy(tiny_exports["files"][key], d)
    (d / "corrupt.onnx").write_bytes(b"\x00garbage")
    return d


def test_bench_outputs(bench_dir, sample_data, tmp_path):
    pytest.importorskip("matplotlib")
    res = run_bench([str(bench_dir)], threads=[1], batches=[1, 4], data=str(sample_data), limit=None,
                    min_time=0.05, min_runs=5, pipeline=False, log=lambda *_: None)
    ok = [r for r in res.rows if r.status != "failed"]
    bad = [r for r in res.rows if r.status == "failed"]
    assert any("corrupt.onnx" in r.file and "not a well-formed ONNX file" in r.reason for r in bad)
    assert any(r.backend == "tflite-runtime" and "pip install" in r.reason for r in bad)
    assert {(r.format, r.quantization, r.batch) for r in ok} >= {("tflite", "int8", 1), ("onnx", "none", 4)}
    for r in ok:
        assert r.ms_per_img_p50 > 0 and r.img_per_s > 0 and r.latency_ms["n"] >= 5 and r.accuracy is not None
        assert r.size_kb > 0 and r.macs > 0 and r.efficiency > 0
    assert res.env["cpu_info"]["class"] and res.env["cpu_info"]["model"]
    assert res.env["gpu"]["summary"] and res.env["peak_gmacs"]["1"]["int8"] > 0
    write_json(res, tmp_path / "b.json")
    write_csv(res, tmp_path / "b.csv")
    plot_pareto(res, tmp_path / "b.png")
    j = json.loads((tmp_path / "b.json").read_text())
    assert j["schema"] == "fer-edge/bench/1" and len(j["rows"]) == len(res.rows)
    assert {"env", "settings", "detector", "end_to_end"} <= set(j)
    rows = list(csv.DictReader((tmp_path / "b.csv").read_text().splitlines()))
    assert len(rows) == len(res.rows) and "lat_p90" in rows[0]
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.xdist_group("scenes")  # one worker builds the composited scenes (5 s) for all of these
def test_bench_pipeline_rows(tmp_path):
    """The detector, end-to-end and video-recall rows (what `fer-edge bench` adds without --no-pipeline), on
    the bundled model and a corrupt file: measured side by side, a failing file is a row."""
    from fer_edge.bench import bench_detector, bench_end_to_end, bench_video_recall
    from fer_edge.runtime.recognizer import bundled_files

    det = bench_detector(scenes=4)
    assert {d["profile"] for d in det} == {"cam", "fast", "accurate"}
    assert all(d["ms_p50"] > 0 and 0 <= d["recall"] <= 1 and d["fp_per_frame"] >= 0 and d["faces"] >= 4 for d in det)
    model = bundled_files("onnxruntime")["int8"]
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage")
    e2e = {Path(e["file"]).name: e for e in bench_end_to_end([model, corrupt], None, None, 12, log=lambda *_: None)}
    assert e2e["corrupt.onnx"]["status"] == "failed"
    e = e2e[model.name]
    assert e["status"] == "ok" and e["fps"] > 0 and e["frames"] == 12 and 1 <= e["frames_with_face"] <= 12
    vr = bench_video_recall(model, frames=4, log=lambda *_: None)
    assert {v["profile"] for v in vr} == {"cam", "fast"} and all(v["frames"] == 40 for v in vr)


def test_tf_reference_row_and_speedup(tiny_exports, tiny_run):
    pytest.importorskip("tensorflow")
    files = [str(tiny_run / "model.keras"), str(tiny_exports["files"][("onnx", "none")])]
    res = run_bench(files, threads=[1], batches=[1], min_time=0.05, min_runs=5, pipeline=False, log=lambda *_: None)
    ref = [r for r in res.rows if r.backend == "keras"]
    assert ref and ref[0].status == "ok"
    onnx = [r for r in res.rows if r.format == "onnx"][0]
    assert onnx.speedup_vs_tf == pytest.approx(ref[0].ms_per_img_p50 / onnx.ms_per_img_p50, rel=0.02)


def test_gpu_request_without_gpu(bench_dir):
    """A GPU asked for where none exists: ❌ rows that say why, the rest of the run still produced."""
    files = [str(p) for p in sorted(bench_dir.glob("*int8.tflite"))] + [str(p) for p in sorted(bench_dir.glob("*fp32.onnx"))]
    res = run_bench(files, device="all", threads=[1], batches=[1], min_time=0.01, min_runs=2, pipeline=False,
                    log=lambda *_: None)
    gpu = [r for r in res.rows if r.device == "gpu"]
    cpu = [r for r in res.rows if r.device == "cpu" and r.backend in ("litert", "onnxruntime")]
    if res.env["gpu"]["onnxruntime_cuda"]:
        pytest.skip("a CUDA onnxruntime is installed here")
    assert gpu and all(r.status == "failed" and "gpu" in r.reason for r in gpu)
    assert cpu and all(r.status == "ok" for r in cpu)
    assert res.env["gpu"]["summary"] == "not available"


def test_bad_backend_name():
    with pytest.raises(UsageError, match="Did you mean 'litert'"):
        run_bench(backend="litrt")


def test_cli_bench_table(bench_dir, tmp_path):
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["bench", str(bench_dir), "--threads", "1", "--batch", "1", "--min-time", "0.02",
                                 "--min-runs", "3", "--no-pipeline", "--json", str(tmp_path / "x.json")])
    assert r.exit_code == 0, r.output
    from fer_edge.sysinfo import cpu_model

    # the header names this machine's CPU (a hard-coded or missing host line fails here)
    assert "fer-edge bench" in r.output and "❌" in r.output and cpu_model() in r.output
    assert json.loads((tmp_path / "x.json").read_text())["rows"]


def test_rounds_give_each_row_the_median_and_the_spread(bench_dir, tmp_path):
    """--rounds 3: every row times three times over the whole sweep; its p50 is the median of the three,
    its spread (slowest - fastest) / median; a row that failed stays failed; bad counts are refused."""
    from fer_edge.bench.rows import merge_rounds

    def row(p50, status="ok", backend="litert"):
        return BenchRow("m.tflite", "tflite", "int8", backend, status=status, ms_per_img_p50=p50,
                        ms_per_img_p90=p50 and p50 * 2, latency_ms=p50 and {"p50": p50, "p90": p50 * 2, "n": 30})

    merged = merge_rounds([[row(1.0), row(None, "failed", "onnxruntime")], [row(3.0), row(2.0, backend="onnxruntime")],
                           [row(2.0), row(2.0, backend="onnxruntime")]])
    assert merged[0].ms_per_img_p50 == 2.0 and merged[0].p50_rounds == [1.0, 3.0, 2.0]
    assert merged[0].spread == pytest.approx(1.0) and merged[0].img_per_s == 500.0
    assert merged[0].latency_ms == {"p50": 2.0, "p90": 4.0, "n": 90} and merged[0].ms_per_img_p90 == 4.0
    assert merged[1].status == "failed"
    files = [str(p) for p in sorted(bench_dir.glob("*int8.tflite"))]
    res = run_bench(files, backend="litert", threads=[1], batches=[1], min_time=0.01, min_runs=3, pipeline=False,
                    rounds=3, log=lambda *_: None)
    (r,) = [r for r in res.rows if r.status == "ok"]
    assert len(r.p50_rounds) == 3 and r.ms_per_img_p50 == pytest.approx(float(np.median(r.p50_rounds)), abs=1e-4)
    assert r.spread >= 0 and r.latency_ms["n"] >= 9 and res.settings["rounds"] == 3
    write_csv(res, tmp_path / "r.csv")
    assert len(next(csv.DictReader((tmp_path / "r.csv").read_text().splitlines()))["p50_rounds"].split(";")) == 3
    with pytest.raises(UsageError, match="--rounds"):
        run_bench(files, rounds=0)
