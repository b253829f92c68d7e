"""`fer-edge bench`: latency, throughput, size and accuracy per artifact x backend x threads x batch,
plus face-detector and end-to-end rows, with the machine described above the table.

Honesty rules: every speed-up is a ratio to a TensorFlow row measured in the same run; a failing
row is reported (❌ with the reason), never dropped; inputs are fixed and seeded; threads pinned.

What lives where, one responsibility per module, each importing only downward:

- `fer_edge.machine`: the host (CPU, RAM, runtime versions, GPUs, GEMM peaks); ground floor, so other
  reports can describe the machine without the benchmark.
- `fer_edge.demo`: the synthetic one-face demo video, shared with `cam --source demo` and the tests.
- `fer_edge.bench.rows`: `BenchRow`/`BenchResult` and `run_bench`, the per-model rows and their ratios.
- `fer_edge.bench.pipeline`: detector, video-recall and end-to-end rows (the cam loop around a model).
- `fer_edge.bench.writers`: JSON, CSV and the Pareto chart, each written atomically.

This package re-exports the public names, so `from fer_edge.bench import X` keeps working.
"""
from __future__ import annotations

from fer_edge.bench.pipeline import bench_detector, bench_end_to_end, bench_video_recall
from fer_edge.bench.rows import BenchResult, BenchRow, run_bench
from fer_edge.bench.writers import pareto_front, plot_pareto, write_csv, write_json
from fer_edge.demo import demo_faces, make_demo_video
from fer_edge.machine import environment, measure_peaks

__all__ = ["BenchRow", "BenchResult", "run_bench", "write_csv", "write_json", "pareto_front", "plot_pareto",
           "bench_detector", "bench_video_recall", "bench_end_to_end", "environment", "measure_peaks",
           "demo_faces", "make_demo_video"]
