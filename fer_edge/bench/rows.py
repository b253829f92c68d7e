"""The benchmark table: one row per artifact x backend x device x threads x batch (latency percentiles,
throughput, size, accuracy), with speed-ups against the TensorFlow row of the same run and efficiency
against this host's GEMM peak (`fer_edge.machine`).

`run_bench` is the entry point: it discovers the files, describes the machine, measures every row and
then adds the pipeline rows (`fer_edge.bench.pipeline`).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_edge.version import __version__
from fer_edge.bench.pipeline import bench_detector, bench_end_to_end, bench_video_recall
from fer_edge.errors import FerEdgeError, MissingDependency, UsageError, unknown
from fer_edge.formats import BACKENDS, FORMATS, format_for_path
from fer_edge.keras_backends import for_inference
from fer_edge.machine import _version, environment, measure_peaks
from fer_edge.metrics import classification_report, percentiles
from fer_edge.runtime.video import rss_mb
from fer_edge.status import icon
from fer_edge.timing import time_calls

BACKEND_CHOICES = ("all", *BACKENDS)  # the runtime backends table, in its order
DEVICES = ("cpu", "gpu", "all")


@dataclass
class BenchRow:
    file: str
    format: str
    quantization: str
    backend: str
    backend_version: str = ""
    framework: str = ""  # keras rows: the Keras backend that ran them (tensorflow | jax | torch)
    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    status: str = "ok"  # ok | accuracy-failed | failed (fer_edge.status)
    reason: str = ""
    size_kb: float | None = None
    params: int | None = None
    macs: int | None = None
    load_ms: float | None = None
    latency_ms: dict | None = None  # per batch: p50, p90, p99, mean, min, n
    ms_per_img_p50: float | None = None
    ms_per_img_p90: float | None = None
    img_per_s: float | None = None
    rss_mb: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    acc_n: int | None = None
    speedup_vs_tf: float | None = None
    efficiency: float | None = None  # achieved MAC/s over this host's measured GEMM peak, same threads and
    # arithmetic (fp32 peak for float rows, int8 peak for int8/dynamic rows)
    p50_rounds: list | None = None  # ms/img p50 of each round (--rounds): the row's p50 is their median
    spread: float | None = None  # (slowest - fastest round) / the median: how far this machine's timing wanders

    @property
    def icon(self) -> str:
        return icon(self.status)


@dataclass
class BenchResult:
    env: dict
    settings: dict
    rows: list[BenchRow] = field(default_factory=list)
    detector: list[dict] = field(default_factory=list)
    video_recall: list[dict] = field(default_factory=list)
    end_to_end: list[dict] = field(default_factory=list)
    precision: dict = field(default_factory=dict)  # what --precision auto picks on this CPU

    def to_dict(self) -> dict:
        return {"schema": "fer-edge/bench/1", "fer_edge_version": __version__, "env": self.env,
                "settings": self.settings, "rows": [asdict(r) | {"icon": r.icon} for r in self.rows],
                "detector": self.detector, "video_recall": self.video_recall, "end_to_end": self.end_to_end,
                "precision": self.precision}


def discover(models: list[str] | None) -> list[Path]:
    """No models: the bundled ones. A folder: every model file in it. Files: themselves."""
    if not models:
        from fer_edge.runtime.recognizer import BUNDLED_DIR

        found = sorted(p for p in BUNDLED_DIR.glob("*") if p.suffix in (".tflite", ".onnx"))
        if not found:
            raise UsageError(f"no bundled models in {BUNDLED_DIR}; pass model files or an export folder.")
        return found
    suffixes = {f.suffix for f in FORMATS}
    out: list[Path] = []
    for m in map(Path, models):
        if m.is_dir():
            files = sorted(p for p in m.iterdir() if p.suffix in suffixes and ".partial" not in p.name)
            if not files:
                raise UsageError(f"{m}: no .tflite/.onnx/.keras files in this folder.")
            out += files
        else:
            out.append(m)  # missing/corrupt files become ❌ rows
    return out


def _reference_keras(files: list[Path]) -> Path | None:
    """The Keras model the files came from: a .keras among them, or RUN/model.keras above RUN/export."""
    for f in files:
        if f.suffix == ".keras":
            return f
    from fer_edge.rundir import RunDir

    for f in files:
        for cand in (RunDir(f.parent.parent).model, f.parent / (f.stem.rsplit("_", 1)[0] + ".keras")):
            if cand.is_file():
                return cand
    return None


def _fixed_inputs(shape, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


# ----------------------------------------------------------------------------- main
def run_bench(models: list[str] | None = None, backend: str = "all", threads: list[int] = (1, 2),
              batches: list[int] = (1, 8, 32), device: str = "cpu", data: str | None = None, split: str = "val",
              limit: int | None = 1000, video: str | None = None, min_time: float = 1.0, min_runs: int = 30,
              pipeline: bool = True, e2e_frames: int = 300, detector_scenes: int = 96, recall_frames: int = 150,
              rounds: int = 1, log=print) -> BenchResult:
    """Every model x backend x threads x batch row, then (pipeline) the detector, end-to-end and video
    rows. `rounds` > 1 times the whole sweep that many times, one round after the other, and gives each
    row the median of its rounds and their spread: on a shared or throttled machine a slow minute then
    shows up as spread instead of as one row's speed."""
    if backend not in BACKEND_CHOICES:
        raise unknown("backend", backend, BACKEND_CHOICES)
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UsageError(f"--rounds must be a whole number >= 1, got {rounds}.")
    files = discover(models)
    env = environment()
    peaks = measure_peaks(list(threads))
    env["peak_gmacs"] = peaks
    settings = {"models": [str(f) for f in files], "backend": backend, "threads": list(threads),
                "batches": list(batches), "device": device, "data": data, "split": split, "limit": limit,
                "min_time": min_time, "min_runs": min_runs, "rounds": rounds, "input_seed": 0}
    result = BenchResult(env, settings)
    ref = _reference_keras(files)
    if ref is not None and ref not in files and backend in ("all", "tensorflow", "keras"):
        files = [ref] + files
    if ref is None:
        env["tensorflow_reference"] = "none: no .keras model among or above the files"
    elif not _version("tensorflow") and not _version("tensorflow-cpu"):
        env["tensorflow_reference"] = 'none: TensorFlow not installed (pip install "fer-edge[train]")'
    elif (fw := for_inference()) != "tensorflow":
        env["tensorflow_reference"] = f"none: Keras runs on {fw} in this process (KERAS_BACKEND)"
    else:
        env["tensorflow_reference"] = f"Keras/TensorFlow (tf.function) on {ref}"
    eval_sets: dict = {}
    devices = ["cpu", "gpu"] if device == "all" else [device]
    # what to time, decided once for every round: (file, its backends) or the row that says why it cannot be
    plan: list[tuple[Path, list[str]] | BenchRow] = []
    for f in files:
        try:
            fmt = format_for_path(f)
        except FerEdgeError as exc:
            plan.append(BenchRow(str(f), "?", "?", backend, status="failed", reason=str(exc)))
            continue
        if fmt.name == "keras" and backend in ("all", "tensorflow"):
            names = ["keras"]
        else:
            names = list(fmt.backends) if backend == "all" else [backend]
        plan.append((f, [n for n in names if n in fmt.backends]))
    sweeps: list[list[BenchRow]] = []
    for r in range(rounds):
        if rounds > 1:
            log(f"round {r + 1} of {rounds}")
        sweep: list[BenchRow] = []
        for item in plan:
            if isinstance(item, BenchRow):
                sweep.append(item)
                continue
            f, names = item
            for name in names:
                for dev in devices:
                    # accuracy once, in the first round: the same file gives the same answers
                    sweep += _bench_artifact(f, name, dev, threads, batches, data if r == 0 else None, split, limit,
                                             min_time, min_runs, eval_sets, log)
        sweeps.append(sweep)
    result.rows = merge_rounds(sweeps)
    _ratios(result.rows, peaks)
    if pipeline:
        try:
            result.detector = bench_detector(scenes=detector_scenes)
        except FerEdgeError as exc:
            result.detector = [{"status": "failed", "reason": str(exc)}]
        try:
            result.end_to_end = bench_end_to_end(files, video, data, e2e_frames, log)
        except FerEdgeError as exc:
            result.end_to_end = [{"status": "failed", "reason": str(exc)}]
        runnable = [Path(e["file"]) for e in result.end_to_end if e.get("status") == "ok"]
        if runnable:
            try:
                result.video_recall = bench_video_recall(runnable[0], frames=recall_frames, log=log)
            except FerEdgeError as exc:
                result.video_recall = [{"status": "failed", "reason": str(exc)}]
    if not models:
        result.precision = _precision_choices(threads)
    return result


def merge_rounds(sweeps: list[list[BenchRow]]) -> list[BenchRow]:
    """One row per (file, backend, device, threads, batch) from several rounds of the same sweep: the first
    round's row (its accuracy, load time) with the median of the rounds' ms/img p50 and p90 (and of each
    batch-latency percentile; n summed), the per-round p50s and their spread. A row that failed in any
    round is that failure."""
    if len(sweeps) == 1:
        return sweeps[0]
    first = sweeps[0]

    def key(row: BenchRow) -> tuple:
        return row.file, row.backend, row.device, row.threads, row.batch

    later = [{key(row): row for row in sweep} for sweep in sweeps[1:]]
    merged = []
    for row in first:
        rounds = [row] + [m[key(row)] for m in later if key(row) in m]
        failed = next((x for x in rounds if x.status == "failed"), None)
        if failed is not None or row.ms_per_img_p50 is None:
            merged.append(failed or row)
            continue
        p50s = [x.ms_per_img_p50 for x in rounds]
        med = float(np.median(p50s))
        lat = {k: (sum(x.latency_ms[k] for x in rounds) if k == "n" else
                   round(float(np.median([x.latency_ms[k] for x in rounds])), 4))
               for k in row.latency_ms if all(x.latency_ms and k in x.latency_ms for x in rounds)}
        out = replace(row, latency_ms=lat, ms_per_img_p50=round(med, 4),
                      ms_per_img_p90=round(float(np.median([x.ms_per_img_p90 for x in rounds])), 4),
                      img_per_s=round(1000 / med, 1) if med > 0 else None, p50_rounds=p50s,
                      spread=round((max(p50s) - min(p50s)) / med, 4) if med > 0 else None,
                      rss_mb=max(x.rss_mb or 0 for x in rounds) or None)
        merged.append(out)
    return merged


def _precision_choices(threads) -> dict:
    """What `--precision auto` picks for the bundled model on this CPU, per installed format (measured now)."""
    from fer_edge.runtime.precision import choose
    from fer_edge.runtime.recognizer import bundled_files

    out = {}
    for prefer in ("litert", "onnxruntime"):
        try:
            c = choose(bundled_files(prefer), prefer, "auto", threads[0] if threads else None, use_cache=False)
            out[prefer] = {"precision": c.precision, "ms": c.ms, "file": c.path.name}
        except FerEdgeError as exc:
            out[prefer] = {"status": "failed", "reason": str(exc)}
    return out


def _bench_artifact(path: Path, name: str, device: str, threads, batches, data, split, limit, min_time, min_runs,
                    eval_sets, log) -> list[BenchRow]:
    from fer_edge.runtime.backends import BACKENDS, backend_class, vet
    from fer_edge.training.keras_backend import KerasBackend

    rows = []
    acc_cache: dict = {}
    for th in threads:
        base = BenchRow(str(path), path.suffix.lstrip("."), "?", name, device=device, threads=th)
        try:
            size = path.stat().st_size
        except OSError:
            size = None
        base.size_kb = round(size / 1024, 1) if size else None
        try:
            vet(name, path)  # before the clock starts: an untrusted file is prechecked and test-loaded once
            t0 = time.perf_counter()
            b = backend_class(name).load(path, threads=th, device=device)
            base.load_ms = round((time.perf_counter() - t0) * 1e3, 2)
        except MissingDependency:
            rows.append(_failed(base, f"{name} not installed: {BACKENDS[name][1]}", batches))
            continue
        except FerEdgeError as exc:
            rows.append(_failed(base, str(exc), batches))
            continue
        except Exception as exc:  # a backend's own crash is a row, not the end of the run
            rows.append(_failed(base, f"{exc.__class__.__name__}: {str(exc)[:160]}", batches))
            continue
        spec = b.spec
        base.format, base.quantization = spec.format, spec.quantization
        base.backend_version = b.version
        base.params = spec.metrics.get("params")
        base.macs = spec.metrics.get("macs")
        if isinstance(b, KerasBackend):
            base.framework = b.framework
            if b.threads_effective not in (None, th):
                base.reason = f"{b.framework} threads are fixed per process: ran with {b.threads_effective}"
            if base.macs is None:
                from fer_edge.training.flops import count_macs

                base.params, base.macs = int(b.model.count_params()), count_macs(b.model)
        if data and "acc" not in acc_cache:
            try:
                acc_cache["acc"] = _accuracy(b, data, split, limit, eval_sets)
            except FerEdgeError as exc:
                acc_cache["acc"] = {"error": str(exc)}
        for bs in batches:
            row = BenchRow(**{**asdict(base), "batch": bs})
            x = _fixed_inputs(spec.input_shape, bs)
            try:
                samples = time_calls(lambda: b.predict(x), min_runs=min_runs, min_time=min_time)
            except Exception as exc:
                rows.append(_failed(row, f"inference failed: {exc.__class__.__name__}: {str(exc)[:160]}", []))
                continue
            pct = percentiles(samples)
            row.latency_ms = {k: round(v, 4) if isinstance(v, float) else v for k, v in pct.items()}
            row.ms_per_img_p50 = round(pct["p50"] / bs, 4)
            row.ms_per_img_p90 = round(pct["p90"] / bs, 4)
            row.img_per_s = round(bs * 1000 / pct["p50"], 1)
            row.rss_mb = rss_mb()
            acc = acc_cache.get("acc")
            if acc and "error" in acc:
                row.status, row.reason = "accuracy-failed", acc["error"]
            elif acc:
                row.accuracy, row.macro_f1, row.acc_n = acc["accuracy"], acc["macro_f1"], acc["n"]
                claimed = spec.metrics.get("val_accuracy")
                if claimed is not None and split == "val" and limit is None and abs(claimed - acc["accuracy"]) > 0.02:
                    row.status = "accuracy-failed"
                    row.reason = f"accuracy {acc['accuracy']:.4f} differs from the file's claim {claimed:.4f}"
            rows.append(row)
            log(f"{row.icon} {path.name} {name} t{th} b{bs}: {row.ms_per_img_p50} ms/img")
        del b
    return rows


def _failed(row: BenchRow, reason: str, batches) -> BenchRow:
    row.status, row.reason = "failed", reason
    return row


def _accuracy(b, data, split, limit, cache) -> dict:
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.evaluate import predict_all
    spec = b.spec
    key = (str(data), json.dumps([spec.labels, spec.class_map], sort_keys=True), split, limit)
    if key not in cache:
        cm = spec.class_map_obj()
        x, y = load_splits(data, cm).split(split)
        if limit and limit < len(y):
            idx = stratified_sample(y, limit, 0)
            x, y = x[idx], y[idx]
        cache[key] = (x, y)
    x, y = cache[key]
    rep = classification_report(y, predict_all(b, x), spec.labels)
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"]}


def _ratios(rows: list[BenchRow], peaks: dict) -> None:
    """speed-up vs the Keras-on-TensorFlow row of the same threads/batch/device; efficiency vs the peak of
    the same arithmetic."""
    ref = {(r.threads, r.batch, r.device): r.ms_per_img_p50 for r in rows
           if r.backend == "keras" and r.framework == "tensorflow" and r.ms_per_img_p50}
    for r in rows:
        t = ref.get((r.threads, r.batch, r.device))
        if t and r.ms_per_img_p50:
            r.speedup_vs_tf = round(t / r.ms_per_img_p50, 2)
        kind = "int8" if r.quantization in ("int8", "dynamic") else "fp32"
        peak = peaks.get(str(r.threads), {}).get(kind)
        if r.macs and r.img_per_s and peak and r.device == "cpu":
            r.efficiency = round(r.macs * r.img_per_s / (peak * 1e9), 4)

