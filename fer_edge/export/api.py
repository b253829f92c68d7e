"""`fer-edge export`: every requested format x quantization, each verified by a parity gate.

Each artifact is written under a temporary name, evaluated on the validation split through the
runtime backend (LiteRT / onnxruntime: no TensorFlow in that loop) and compared with the Keras
model. It gets its final name only when the gate passes; otherwise nothing is left under it.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from importlib import import_module
from pathlib import Path

import numpy as np

from fer_edge import __version__
from fer_edge.errors import DataError, ModelError, UsageError, unknown
from fer_edge.export.formats import Format, artifact_name, expand
from fer_edge.metrics import classification_report
from fer_edge.spec import ModelSpec


@dataclass
class GateRow:
    format: str
    quantization: str
    status: str  # ok | gate-failed | error
    file: str | None = None
    size_kb: float | None = None
    val_acc: float | None = None
    delta_acc: float | None = None  # points vs Keras
    agreement: float | None = None  # top-1 agreement with Keras
    max_abs_dprob: float | None = None
    ms_per_img: float | None = None  # batch-1 latency through the backend (median of a short run)
    backend: str | None = None
    note: str = ""

    @property
    def icon(self) -> str:
        return {"ok": "✅", "gate-failed": "❎", "error": "❌"}[self.status]


@dataclass
class ExportReport:
    source: str
    out_dir: str
    keras_val_acc: float
    n_val: int
    val_source: str
    thresholds: dict
    rows: list[GateRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.rows)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["fer_edge_version"] = __version__
        return d


def resolve_source(source: str | Path) -> tuple[Path, Path | None]:
    """A run directory or a .keras file -> (model.keras, run dir or None)."""
    p = Path(source)
    if p.is_dir():
        if (p / "model.keras").is_file():
            return p / "model.keras", p
        raise ModelError(f"{p}: no model.keras in this folder; pass a run directory from `fer-edge train` or a .keras file.")
    if not p.exists():
        raise ModelError(f"{p}: no such model file or run directory.")
    if p.suffix != ".keras":
        raise ModelError(f"{p}: export takes a .keras model or a run directory (got {p.suffix or 'no suffix'}).")
    return p, (p.parent if (p.parent / "config.json").is_file() else None)


def _stem(spec: ModelSpec) -> str:
    return f"{spec.arch}_{len(spec.labels)}c"


def _latency_ms(backend, x1: np.ndarray, n: int = 30) -> float:
    """Median batch-1 latency: the benchmark's timing loop with a small budget."""
    from fer_edge.bench import time_calls

    return float(np.median(time_calls(lambda: backend.predict(x1), warmup=1, min_runs=n, min_time=0.0)))


def _rewrite_spec(path: Path, fmt: Format, spec: ModelSpec) -> None:
    if fmt.name == "tflite":
        from fer_edge.export.metadata import append_tflite_metadata, tflite_flatbuffer, write_bytes_atomic

        tmp = path.with_name(path.name + ".meta")
        tmp.write_bytes(tflite_flatbuffer(path))
        append_tflite_metadata(tmp, spec)
        write_bytes_atomic(path, tmp.read_bytes())
        tmp.unlink()
    else:
        from fer_edge.export.onnx import rewrite_onnx_spec

        rewrite_onnx_spec(path, spec)


def export_model(source: str | Path, formats: str = "all", quantize: str = "all", data: str | None = None,
                 out: str | Path | None = None, int8_io: str = "uint8", max_drop: float = 1.5,
                 min_agreement: float = 0.995, calib_size: int = 500, val_limit: int | None = None,
                 explain: bool = False, stem: str | None = None, tta: str = "none", log=print) -> ExportReport:
    from fer_edge._optional import require

    require("tensorflow")
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.runtime.backends import load_backend
    from fer_edge.runtime.backends.keras import KerasBackend, predict_probs

    from fer_edge.export.tta import TTA_MODES

    pairs = expand(formats, quantize)
    if tta not in TTA_MODES:
        raise unknown("tta mode", tta, TTA_MODES)
    model_path, run_dir = resolve_source(source)
    ref = KerasBackend.load(model_path)
    spec = ref.spec
    out_dir = Path(out) if out else (run_dir / "export" if run_dir else model_path.parent / "export")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((run_dir / "config.json").read_text()) if run_dir else {}
    data = data or config.get("train_config", {}).get("data")
    if not data:
        raise DataError("export needs --data (FER2013) for calibration and the parity gate.")
    class_map = spec.class_map_obj()
    splits = load_splits(data, class_map, config.get("train_config", {}).get("val_split", "auto"))
    if len(splits.y_train) == 0 and any(q == "int8" for _, q in pairs):
        raise DataError(f"{data}: no training images to calibrate int8 on (need a train/ folder or Training rows).")
    calib = splits.x_train[stratified_sample(splits.y_train, calib_size, 0)] if len(splits.y_train) else None
    x_val, y_val = splits.x_val, splits.y_val
    if len(y_val) == 0:
        x_val, y_val = splits.x_test, splits.y_test
    if len(y_val) == 0:
        raise DataError(f"{data}: no validation or test images for the parity gate.")
    if val_limit and val_limit < len(y_val):
        idx = stratified_sample(y_val, val_limit, 0)
        x_val, y_val = x_val[idx], y_val[idx]
    from fer_edge.training.flops import count_macs

    macs = count_macs(ref.model)
    export_keras, cam_info = ref.model, spec.cam
    if explain:
        from fer_edge.export.cam_head import cam_model

        export_keras, cam_info = cam_model(ref.model)
    if tta == "flip":
        from fer_edge.export.tta import flip_tta_model

        export_keras = flip_tta_model(export_keras)
        macs *= 2  # the model runs twice (the mirror matrices add < 0.3 %)
    ref_probs = predict_probs(export_keras, x_val, 256)  # the gate's reference: the graph being exported
    keras_acc = float((ref_probs.argmax(1) == y_val).mean())
    metrics = dict(spec.metrics, params=int(ref.model.count_params()), macs=macs)
    base_spec = spec.replace(source_run=spec.source_run or (run_dir.name if run_dir else model_path.stem),
                             data_fingerprint=spec.data_fingerprint or splits.fingerprint, fer_edge_version=__version__,
                             metrics=metrics, tta=tta, cam=cam_info)
    report = ExportReport(str(model_path), str(out_dir), keras_acc, int(len(y_val)), splits.val_source,
                          {"max_drop_points": max_drop, "min_agreement": min_agreement})
    log(f"Keras reference: val accuracy {keras_acc:.4f} on {len(y_val)} images ({splits.val_source})")
    stem = stem or (_stem(spec) + ("_cam" if explain else "") + ("_tta" if tta != "none" else ""))
    for fmt, q in pairs:
        final = out_dir / artifact_name(stem, fmt, q)
        partial = final.with_name(final.stem + ".partial" + final.suffix)
        row = GateRow(fmt.name, q, "error")
        final.unlink(missing_ok=True)  # a stale file must not pass for this export's result
        t0 = time.time()
        try:
            mod, _, fn = fmt.exporter.partition(":")
            with contextlib.redirect_stdout(io.StringIO()):
                art_spec = getattr(import_module(mod), fn)(export_keras, base_spec, partial, q, calib, int8_io)
            backend = load_backend(partial)
            probs = np.concatenate([backend.predict(x_val[i:i + 64]) for i in range(0, len(x_val), 64)])
            rep = classification_report(y_val, probs, spec.labels)
            row.backend = backend.name
            row.size_kb = round(partial.stat().st_size / 1024, 1)
            row.val_acc = rep["accuracy"]
            row.delta_acc = round((rep["accuracy"] - keras_acc) * 100, 3)
            row.agreement = float((probs.argmax(1) == ref_probs.argmax(1)).mean())
            row.max_abs_dprob = float(np.abs(probs - ref_probs).max())
            row.ms_per_img = round(_latency_ms(backend, x_val[:1]), 4)
            if q in ("none", "fp16"):
                passed = row.agreement >= min_agreement
                why = f"top-1 agreement {row.agreement:.4f} < {min_agreement}"
            else:
                passed = -row.delta_acc <= max_drop
                why = f"accuracy drop {-row.delta_acc:.2f} points > --max-drop {max_drop}"
            if passed:
                art_spec.metrics = dict(metrics, val_accuracy=rep["accuracy"], val_macro_f1=rep["macro_f1"],
                                        keras_val_accuracy=keras_acc, val_source=splits.val_source,
                                        val_n=int(len(y_val)), agreement_with_keras=row.agreement)
                del backend
                _rewrite_spec(partial, fmt, art_spec)
                os.replace(partial, final)
                row.status, row.file = "ok", final.name
            else:
                row.status, row.note = "gate-failed", why
        except (ModelError, UsageError, DataError) as exc:
            row.note = str(exc)
        except Exception as exc:  # one failing format must not stop the others
            row.note = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        finally:
            partial.unlink(missing_ok=True)
        log(f"{row.icon} {fmt.name} {q}: {row.status} {row.note} ({time.time() - t0:.1f}s)")
        report.rows.append(row)
    _annotate_speed(report)
    write_report(report, out_dir)
    return report


def _annotate_speed(report: ExportReport) -> None:
    """Say where a quantization is slower than the same format's fp32 (e.g. ORT int8 on tiny nets)."""
    fp32 = {r.format: r.ms_per_img for r in report.rows if r.quantization == "none" and r.ms_per_img}
    for r in report.rows:
        base = fp32.get(r.format)
        if r.quantization != "none" and base and r.ms_per_img and r.ms_per_img > base:
            note = f"slower than {r.format} fp32 ({r.ms_per_img:.3f} vs {base:.3f} ms)"
            r.note = f"{r.note}; {note}" if r.note else note


def report_markdown(report: ExportReport) -> str:
    src = Path(report.source)
    lines = [f"# Export report: {src.parent.name}/{src.name}", "",
             f"Keras val accuracy {report.keras_val_acc:.4f} on {report.n_val} images ({report.val_source}); "
             f"gate: fp32/fp16 top-1 agreement >= {report.thresholds['min_agreement']}, "
             f"quantized accuracy drop <= {report.thresholds['max_drop_points']} points. "
             "ms/img: batch 1, the backend's default threads (fer-edge bench measures properly).", "",
             "| Format | Quant | Status | Size KB | Val acc | Δacc (pts) | Agreement | max abs Δp | ms/img (b1) | Backend | Note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, spec):
        return "" if v is None else format(v, spec)

    for r in report.rows:
        lines.append(f"| {r.format} | {r.quantization} | {r.icon} | {f(r.size_kb, '.1f')} | {f(r.val_acc, '.4f')} | "
                     f"{f(r.delta_acc, '+.2f')} | {f(r.agreement, '.4f')} | {f(r.max_abs_dprob, '.4f')} | "
                     f"{f(r.ms_per_img, '.3f')} | {r.backend or ''} | {r.note} |")
    return "\n".join(lines) + "\n"


def write_report(report: ExportReport, out_dir: Path) -> None:
    for name, text in (("export_report.json", json.dumps(report.to_dict(), indent=2)),
                       ("export_report.md", report_markdown(report))):
        tmp = out_dir / (name + ".partial")
        tmp.write_text(text)
        os.replace(tmp, out_dir / name)


def best_runs(runs_dir: str | Path, n: int) -> list[Path]:
    from fer_edge.training.train import leaderboard_rows

    rows = [r for r in leaderboard_rows(Path(runs_dir)) if r.get("status") == "finished" and r.get("val_acc") is not None]
    if not rows:
        raise DataError(f"{runs_dir}: no finished runs to export (train one with `fer-edge train`).")
    return [Path(runs_dir) / r["run"] for r in rows[:n]]
