"""Writing a benchmark result: JSON (every field), CSV (one line per row, latency percentiles flattened),
and the accuracy-vs-latency Pareto chart. Every file appears under its final name only when complete
(`fer_edge.outputs`: a `.partial` file renamed), so the folder discovery never picks up half a file.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from fer_edge.bench.rows import BenchResult, BenchRow
from fer_edge.outputs import atomic_path

CSV_FIELDS = [f for f in BenchRow.__dataclass_fields__ if f != "latency_ms"] + ["lat_p50", "lat_p90", "lat_p99", "lat_n"]


def write_csv(result: BenchResult, path: str | Path) -> None:
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_FIELDS)
        w.writeheader()
        for r in result.rows:
            d = asdict(r)
            lat = d.pop("latency_ms") or {}
            d.update({"lat_p50": lat.get("p50"), "lat_p90": lat.get("p90"), "lat_p99": lat.get("p99"), "lat_n": lat.get("n")})
            if d.get("p50_rounds"):
                d["p50_rounds"] = ";".join(str(v) for v in d["p50_rounds"])
            w.writerow(d)


def write_json(result: BenchResult, path: str | Path) -> None:
    from fer_edge.outputs import atomic_write_text

    atomic_write_text(path, json.dumps(result.to_dict(), indent=2, default=str))


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated (lower latency and higher accuracy is better)."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in idx:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(result: BenchResult, path: str | Path) -> Path:
    from fer_edge._optional import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.rows if r.status != "failed" and r.accuracy is not None and r.batch == 1]
    if not rows:
        rows = [r for r in result.rows if r.status != "failed" and r.batch == 1]
    th = max((r.threads for r in rows), default=1)
    rows = [r for r in rows if r.threads == th]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if rows:
        pts = [(r.ms_per_img_p50, r.accuracy if r.accuracy is not None else 0.0) for r in rows]
        sizes = [max(20.0, (r.size_kb or 10) / 10) for r in rows]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=sizes, alpha=0.6)
        for r, p in zip(rows, pts):
            ax.annotate(f"{r.format}/{r.quantization}/{r.backend}", p, fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto_front(pts)
        fx = [pts[i][0] for i in front]
        fy = [pts[i][1] for i in front]
        ax.plot(fx, fy, "r--", lw=1, label="Pareto frontier")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel(f"ms per image (batch 1, {th} thread(s), p50, log scale)")
    ax.set_ylabel("accuracy")
    ax.set_title("fer-edge: accuracy vs latency (marker area ~ file size)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
