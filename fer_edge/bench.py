"""`fer-edge bench`: latency, throughput, size and accuracy per artifact x backend x threads x batch,
plus face-detector and end-to-end rows, with the machine described above the table.

Honesty rules: every speed-up is a ratio to a TensorFlow row measured in the same run; a failing
row is reported (❌ with the reason), never dropped; inputs are fixed and seeded; threads pinned.
"""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fer_edge import __version__
from fer_edge.errors import FerEdgeError, MissingDependency, UsageError, unknown
from fer_edge.formats import FORMATS, format_for_path
from fer_edge.metrics import classification_report, percentiles
from fer_edge.runtime.video import rss_mb
from fer_edge.sysinfo import cpu_dict, cpu_model
from fer_edge.timing import time_calls

BACKEND_CHOICES = ("all", "onnxruntime", "litert", "tflite-runtime", "tensorflow", "keras")
DEVICES = ("cpu", "gpu", "all")
RUNTIME_VERSIONS = ("numpy", "opencv-python-headless", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert",
                    "tflite-runtime", "tensorflow-cpu", "tensorflow", "keras")


@dataclass
class BenchRow:
    file: str
    format: str
    quantization: str
    backend: str
    backend_version: str = ""
    device: str = "cpu"
    threads: int = 1
    batch: int = 1
    status: str = "ok"  # ok (✅) | accuracy-failed (❎) | failed (❌)
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

    @property
    def icon(self) -> str:
        return {"ok": "✅", "accuracy-failed": "❎", "failed": "❌"}[self.status]


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


# ----------------------------------------------------------------------------- environment
def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _ram_gb() -> float | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def gpu_status() -> dict:
    """What GPUs the installed runtimes can see (without importing TensorFlow)."""
    out = {"onnxruntime_cuda": False, "nvidia_smi": False}
    try:
        import onnxruntime as ort

        out["onnxruntime_cuda"] = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        pass
    out["nvidia_smi"] = any(Path(p, "nvidia-smi").is_file() for p in os.environ.get("PATH", "").split(os.pathsep))
    out["summary"] = "available" if out["onnxruntime_cuda"] else "gpu: not available"
    return out


def environment() -> dict:
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "ram_gb": _ram_gb(), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "versions": {d: v for d in RUNTIME_VERSIONS if (v := _version(d))}, "fer_edge": __version__,
        "gpu": gpu_status(), "cpu_info": cpu_dict(),
        "blas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ},
    }


# Two one-node ONNX graphs (MatMul fp32, MatMulInteger u8 x s8), serialised once with the onnx package,
# so the runtime-only install can measure this host's compute ceiling with onnxruntime's own GEMMs.
_PEAK_MODELS = {
    "fp32": "CAg6XgoRCgFBCgFCEgFZIgZNYXRNdWwSBHBlYWtaFQoBQRIQCg4IARIKCgMSAW4KAxIBa1oVCgFCEhAKDggBEgoKAxIBawoDEgFtYhUKAVkSEAoOCAESCgoDEgFuCgMSAW1CBAoAEA0=",
    "int8": "CAg6ZQoYCgFBCgFCEgFZIg1NYXRNdWxJbnRlZ2VyEgRwZWFrWhUKAUESEAoOCAISCgoDEgFuCgMSAWtaFQoBQhIQCg4IAxIKCgMSAWsKAxIBbWIVCgFZEhAKDggGEgoKAxIBbgoDEgFtQgQKABAN",
}


def measure_peaks(threads: list[int], n: int = 1024, seconds: float = 0.4) -> dict:
    """GMAC/s of a large fp32 and int8 (VNNI where the CPU has it) matrix product, per thread count."""
    import base64

    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    rng = np.random.default_rng(0)
    inputs = {"fp32": (rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)),
              "int8": (rng.integers(0, 255, (n, n), dtype=np.uint8), rng.integers(-127, 127, (n, n), dtype=np.int8))}
    peaks: dict = {}
    for th in threads:
        for kind, blob in _PEAK_MODELS.items():
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = th
            sess = ort.InferenceSession(base64.b64decode(blob), opts, providers=["CPUExecutionProvider"])
            a, b = inputs[kind]
            feed = {"A": a, "B": b}
            sess.run(None, feed)
            runs, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds or runs < 3:
                sess.run(None, feed)
                runs += 1
            peaks.setdefault(str(th), {})[kind] = round(n ** 3 * runs / (time.perf_counter() - t0) / 1e9, 1)
    return peaks


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
    for f in files:
        for cand in (f.parent.parent / "model.keras", f.parent / (f.stem.rsplit("_", 1)[0] + ".keras")):
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
              log=print) -> BenchResult:
    if backend not in BACKEND_CHOICES:
        raise unknown("backend", backend, BACKEND_CHOICES)
    if device not in DEVICES:
        raise unknown("device", device, DEVICES)
    files = discover(models)
    env = environment()
    peaks = measure_peaks(list(threads))
    env["peak_gmacs"] = peaks
    settings = {"models": [str(f) for f in files], "backend": backend, "threads": list(threads),
                "batches": list(batches), "device": device, "data": data, "split": split, "limit": limit,
                "min_time": min_time, "min_runs": min_runs, "input_seed": 0}
    result = BenchResult(env, settings)
    ref = _reference_keras(files)
    if ref is not None and ref not in files and backend in ("all", "tensorflow", "keras"):
        files = [ref] + files
    if ref is None:
        env["tensorflow_reference"] = "none: no .keras model among or above the files"
    elif not _version("tensorflow") and not _version("tensorflow-cpu"):
        env["tensorflow_reference"] = 'none: TensorFlow not installed (pip install "fer-edge[train]")'
    else:
        env["tensorflow_reference"] = f"Keras/TensorFlow (tf.function) on {ref}"
    eval_sets: dict = {}
    devices = ["cpu", "gpu"] if device == "all" else [device]
    for f in files:
        try:
            fmt = format_for_path(f)
            names = list(fmt.backends) if backend == "all" else [backend]
            if backend == "tensorflow" and fmt.name == "keras":
                names = ["keras"]
        except FerEdgeError as exc:
            result.rows.append(BenchRow(str(f), "?", "?", backend, status="failed", reason=str(exc)))
            continue
        if fmt.name == "keras" and backend in ("all", "tensorflow"):
            names = ["keras"]
        for name in names:
            if name not in fmt.backends:
                continue
            for dev in devices:
                result.rows += _bench_artifact(f, name, dev, threads, batches, data, split, limit, min_time, min_runs,
                                               eval_sets, log)
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
            if b.threads_effective not in (None, th):
                base.reason = f"TensorFlow threads are fixed per process: ran with {b.threads_effective}"
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
    """speed-up vs the TF row of the same threads/batch; efficiency vs the peak of the same arithmetic."""
    ref = {(r.threads, r.batch, r.device): r.ms_per_img_p50 for r in rows if r.backend == "keras" and r.ms_per_img_p50}
    for r in rows:
        t = ref.get((r.threads, r.batch, r.device))
        if t and r.ms_per_img_p50:
            r.speedup_vs_tf = round(t / r.ms_per_img_p50, 2)
        kind = "int8" if r.quantization in ("int8", "dynamic") else "fp32"
        peak = peaks.get(str(r.threads), {}).get(kind)
        if r.macs and r.img_per_s and peak and r.device == "cpu":
            r.efficiency = round(r.macs * r.img_per_s / (peak * 1e9), 4)


# ----------------------------------------------------------------------------- pipeline rows
def demo_faces(n: int = 8) -> list[np.ndarray]:
    """FER2013 PublicTest faces bundled for demos (one per class, chosen so the Haar detector finds them)."""
    import cv2

    from fer_edge.runtime.recognizer import BUNDLED_DIR

    files = sorted((BUNDLED_DIR / "samples").glob("*.png"))[:n]
    if not files:
        raise UsageError("no sample faces bundled; pass --video.")
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


def demo_frames(faces: list[np.ndarray], frames: int = 300, size=(640, 480), face_px: int = 200):
    """Gray frames of upscaled FER faces drifting over a textured background, one face per frame."""
    import cv2

    W, H = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (H, W), dtype=np.uint8), (0, 0), 8)
    pad = face_px // 5  # FER crops are tight: replicated borders give the detector the context it needs
    side = face_px + 2 * pad
    for i in range(frames):
        face = cv2.resize(faces[(i // 30) % len(faces)], (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        face = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        frame = bg.copy()
        x = int((W - side) / 2 + (W - side) / 3 * np.sin(i / 40))
        y = int((H - side) / 2 + (H - side) / 4 * np.cos(i / 55))
        frame[y:y + side, x:x + side] = face
        yield frame


def make_demo_video(path: str | Path, faces: list[np.ndarray], frames: int = 300, size=(640, 480), fps: float = 30.0,
                    face_px: int = 200) -> Path:
    """Write `demo_frames` to an mp4 (what `cam --source demo` and the end-to-end row play)."""
    import cv2

    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not writer.isOpened():
        raise UsageError(f"cannot write demo video {path}.")
    for frame in demo_frames(faces, frames, size, face_px):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def bench_detector(scenes: int = 96) -> list[dict]:
    """Every detector profile on the same composited 640x480 frames with known face boxes
    (fer_edge.detect_bench): recall (all faces, and faces >= 60 px), false positives per frame and
    ms per frame side by side: a detector is fast *at a recall*."""
    from fer_edge.detect_bench import score_detector, still_scenes
    from fer_edge.runtime.detect import DETECTOR_PROFILES, HaarFaceDetector

    frames = still_scenes()
    frames = frames[:: max(1, len(frames) // scenes)]
    rows = []
    for name, (cfg, what) in DETECTOR_PROFILES.items():
        det = HaarFaceDetector(cfg)
        det.detect(frames[0].frame)  # warm-up
        r = score_detector(det.detect, frames, min_face=60)
        rows.append({"profile": name, "resolution": "640x480", "ms_p50": r["ms_p50"], "ms_mean": r["ms_mean"],
                     "recall": r["recall_all"], "recall_60px": r["recall"], "faces": r["faces_all"],
                     "fp_per_frame": r["fp_per_frame"], "frames": r["frames"], "recall_by_size": r["recall_by_size"],
                     "what": what, "config": cfg.to_dict()})
    return rows


def bench_video_recall(model: Path, frames: int = 150, log=print) -> list[dict]:
    """The cam pipeline (detection + tracking, CAM_DEFAULTS) per detector profile on one-face videos
    (60-240 px faces, two faces): share of frames in which the true face is reported, and frames/s."""
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.detect_bench import video_recall
    from fer_edge.runtime.recognizer import EmotionRecognizer

    rows = []
    for profile in ("cam", "fast"):
        settings = dict(CAM_DEFAULTS, detector_config=profile)
        r = video_recall(lambda: EmotionRecognizer(model, **settings), frames=frames)
        rows.append({"profile": profile, "model": model.name, "settings": settings, **r})
        log(f"video recall {profile}: {r['frame_recall']:.4f} of {r['frames']} frames at {r['fps']} frames/s")
    return rows


def bench_end_to_end(files: list[Path], video: str | None, data: str | None, frames: int, log=print) -> list[dict]:
    """frames/s of the whole cam pipeline (decode -> detect -> preprocess -> classify -> draw)."""
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.runtime.video import run_cam

    runnable = [f for f in files if f.suffix in (".tflite", ".onnx")]
    if not runnable:
        return []
    with tempfile.TemporaryDirectory() as td:
        if video is None:
            video = str(make_demo_video(Path(td) / "demo.mp4", demo_faces(), frames=frames))
        elif not Path(video).is_file():
            raise UsageError(f"--video {video}: no such file.")
        rows = []
        for f in runnable:
            try:
                rec = EmotionRecognizer(f, **CAM_DEFAULTS)
                stats = run_cam(rec, video, display=False, max_frames=frames, force_draw=True, log=lambda *_: None)
                d = stats.to_dict()
                rows.append({"file": str(f), "backend": rec.backend.name, "status": "ok", "video": Path(video).name,
                             "settings": dict(CAM_DEFAULTS),
                             "frames": d["frames"], "faces": d["faces"], "frames_with_face": d["frames_with_face"],
                             "fps": d["fps"], "ms_per_frame": d["ms_per_frame"]})
            except FerEdgeError as exc:
                rows.append({"file": str(f), "status": "failed", "reason": str(exc)})
            log(f"end-to-end {f.name}: {rows[-1].get('fps')} frames/s")
    return rows


# ----------------------------------------------------------------------------- outputs
CSV_FIELDS = [f for f in BenchRow.__dataclass_fields__ if f != "latency_ms"] + ["lat_p50", "lat_p90", "lat_p99", "lat_n"]


def write_csv(result: BenchResult, path: str | Path) -> None:
    import csv

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_FIELDS)
        w.writeheader()
        for r in result.rows:
            d = asdict(r)
            lat = d.pop("latency_ms") or {}
            d.update({"lat_p50": lat.get("p50"), "lat_p90": lat.get("p90"), "lat_p99": lat.get("p99"), "lat_n": lat.get("n")})
            w.writerow(d)
    os.replace(tmp, path)


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
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
