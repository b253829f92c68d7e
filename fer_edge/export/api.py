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
from fer_edge.formats import Format, artifact_name, expand
from fer_edge.metrics import classification_report
from fer_edge.spec import ModelSpec


@dataclass
class GateRow:
    format: str
    quantization: str
    status: str  # ok | gate-failed | error
    file: str | None = None
    size_kb: float | None = None
    val_acc: float | None = None  # on the validation split (PublicTest when present)
    delta_acc: float | None = None  # points vs Keras
    agreement: float | None = None  # top-1 agreement with Keras
    max_abs_dprob: float | None = None
    holdout_acc: float | None = None  # on the gate hold-out (never trained, calibrated or selected on)
    holdout_delta: float | None = None
    holdout_agreement: float | None = None
    emulated_cpu: str | None = None  # a second CPU class the file was also run on (QEMU), for int8 files
    emulated_agreement: float | None = None  # top-1 agreement there with this machine's answers
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
    keras_holdout_acc: float | None = None
    n_holdout: int = 0
    holdout_source: str = "none"
    holdout_unseen: bool | None = None  # the source model was trained without the hold-out
    cpu: dict = field(default_factory=dict)  # where the gate ran (sysinfo.cpu_dict)
    cross_format: list[dict] = field(default_factory=list)  # top-1 agreement between int8 files

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
    from fer_edge.timing import time_calls

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


EMULATED_MIN_AGREEMENT = 0.99  # int8 files on the emulated second CPU class vs this CPU, top-1


@dataclass
class _Candidate:
    row: GateRow
    partial: Path
    final: Path
    fmt: Format
    spec: ModelSpec
    metrics: dict
    gate_top1: np.ndarray


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean()) if len(a) else 1.0


def export_model(source: str | Path, formats: str = "all", quantize: str = "all", data: str | None = None,
                 out: str | Path | None = None, int8_io: str = "uint8", max_drop: float = 1.5,
                 min_agreement: float = 0.995, calib_size: int = 500, val_limit: int | None = None,
                 explain: bool = False, stem: str | None = None, tta: str = "none", onnx_int8: str = "tflite",
                 emulate: str = "auto", emulate_n: int = 300, min_cross_agreement: float = 0.99,
                 log=print) -> ExportReport:
    """Export every (format, quantization) pair; each file passes the gate or is not left behind.

    The gate measures on the gate hold-out (`fer_edge.data.holdout_mask`: never trained on when the
    model was trained by this version, never calibrated or selected on) and on the validation split,
    through the runtime backend with the session settings the runtime uses. int8 files are also run
    on a second CPU class when this host can emulate one (`emulate`: auto | none | a name in
    sysinfo.EMULATED_CPUS) and must give the same top-1 there; int8 files of two formats must agree
    with each other (`min_cross_agreement`).
    """
    from fer_edge._optional import require
    from fer_edge.keras_backends import select_backend

    select_backend("tensorflow")  # the export toolchain (TFLite converter, tf2onnx) is TensorFlow's
    require("tensorflow")
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.export.onnx import ONNX_INT8_METHODS
    from fer_edge.export.tta import TTA_MODES
    from fer_edge.training.keras_backend import KerasBackend, predict_probs
    from fer_edge.sysinfo import EMULATED_CPUS, cpu_dict, emulator_for

    pairs = expand(formats, quantize)
    if tta not in TTA_MODES:
        raise unknown("tta mode", tta, TTA_MODES)
    if onnx_int8 not in ONNX_INT8_METHODS:
        raise unknown("ONNX int8 method", onnx_int8, ONNX_INT8_METHODS)
    if emulate not in ("auto", "none", *(e.name for e in EMULATED_CPUS)):
        raise unknown("emulated CPU", emulate, ["auto", "none", *(e.name for e in EMULATED_CPUS)])
    emulator = None if emulate == "none" else emulator_for("x86-avx2" if emulate == "auto" else emulate)
    if emulate not in ("auto", "none") and emulator is None:
        raise UsageError(f"--emulate {emulate}: this host cannot run it (needs qemu-user on a matching CPU: "
                         "apt-get install qemu-user).")
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
    # calibration: Training without the gate hold-out (make_splits took it out)
    calib = splits.x_train[stratified_sample(splits.y_train, calib_size, 0)] if len(splits.y_train) else None
    x_val, y_val = splits.x_val, splits.y_val
    if len(y_val) == 0:
        x_val, y_val = splits.x_test, splits.y_test
    x_hold, y_hold = splits.split("holdout")
    if len(y_val) == 0 and len(y_hold) == 0:
        raise DataError(f"{data}: no validation, test or hold-out images for the parity gate.")
    if val_limit:
        if val_limit < len(y_val):
            idx = stratified_sample(y_val, val_limit, 0)
            x_val, y_val = x_val[idx], y_val[idx]
        if val_limit < len(y_hold):
            idx = stratified_sample(y_hold, val_limit, 0)
            x_hold, y_hold = x_hold[idx], y_hold[idx]
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
    # the gate's reference: the graph being exported
    ref_val = predict_probs(export_keras, x_val, 256) if len(y_val) else np.zeros((0, spec.num_classes))
    ref_hold = predict_probs(export_keras, x_hold, 256) if len(y_hold) else np.zeros((0, spec.num_classes))
    keras_acc = float((ref_val.argmax(1) == y_val).mean()) if len(y_val) else float("nan")
    keras_hold = float((ref_hold.argmax(1) == y_hold).mean()) if len(y_hold) else None
    unseen = None
    if len(y_hold):
        unseen = bool(spec.metrics.get("holdout_unseen") or config.get("data", {}).get("n_holdout"))
    metrics = dict(spec.metrics, params=int(ref.model.count_params()), macs=macs)
    base_spec = spec.replace(source_run=spec.source_run or (run_dir.name if run_dir else model_path.stem),
                             data_fingerprint=spec.data_fingerprint or splits.fingerprint, fer_edge_version=__version__,
                             metrics=metrics, tta=tta, cam=cam_info)
    report = ExportReport(str(model_path), str(out_dir), keras_acc, int(len(y_val)), splits.val_source,
                          {"max_drop_points": max_drop, "min_agreement": min_agreement,
                           "min_cross_agreement": min_cross_agreement, "min_emulated_agreement": EMULATED_MIN_AGREEMENT,
                           "onnx_int8": onnx_int8},
                          keras_holdout_acc=keras_hold, n_holdout=int(len(y_hold)), holdout_source=splits.holdout_source,
                          holdout_unseen=unseen, cpu=cpu_dict())
    log(f"Keras reference: val accuracy {keras_acc:.4f} on {len(y_val)} images ({splits.val_source})"
        + (f"; hold-out {keras_hold:.4f} on {len(y_hold)}" if keras_hold is not None else ""))
    if unseen is False:
        log("note: this model does not say it was trained without the gate hold-out (trained before fer-edge 0.2 or "
            "elsewhere): its hold-out numbers may be on images it was trained on; the validation split is gated too.")
    stem = stem or (_stem(spec) + ("_cam" if explain else "") + ("_tta" if tta != "none" else ""))
    sets = {"val": (x_val, y_val, ref_val, keras_acc), "holdout": (x_hold, y_hold, ref_hold, keras_hold)}
    candidates: list[_Candidate] = []
    for fmt, q in pairs:
        c = _build_and_measure(fmt, q, export_keras, base_spec, out_dir / artifact_name(stem, fmt, q), calib, int8_io,
                               onnx_int8, sets, max_drop, min_agreement, emulator, emulate_n, metrics, splits, log)
        candidates.append(c)
        report.rows.append(c.row)
    _cross_format(candidates, report, min_cross_agreement)
    for c in candidates:
        if c.row.status == "ok" and c.spec is not None:
            c.spec.metrics = dict(c.metrics, gate_cpu=report.cpu, cross_format=report.cross_format)
            _rewrite_spec(c.partial, c.fmt, c.spec)
            os.replace(c.partial, c.final)
            c.row.file = c.final.name
            from fer_edge.runtime.guard import remember

            remember(c.final, c.fmt.backends)
        c.partial.unlink(missing_ok=True)
        log(f"{c.row.icon} {c.row.format} {c.row.quantization}: {c.row.status} {c.row.note}")
    _annotate_speed(report)
    write_report(report, out_dir)
    return report


def _build_and_measure(fmt, q, export_keras, base_spec, final, calib, int8_io, onnx_int8, sets, max_drop, min_agreement,
                       emulator, emulate_n, metrics, splits, log) -> _Candidate:
    """Write one artifact under a temporary name and measure it; the gate decision is in the row.
    `sets`: name -> (images, labels, Keras probabilities, Keras accuracy)."""
    from fer_edge.runtime.backends import load_backend

    partial = final.with_name(final.stem + ".partial" + final.suffix)
    row = GateRow(fmt.name, q, "error")
    final.unlink(missing_ok=True)  # a stale file must not pass for this export's result
    t0 = time.time()
    try:
        mod, _, fn = fmt.exporter.partition(":")
        kw = {"int8_method": onnx_int8} if fmt.name == "onnx" else {}
        with contextlib.redirect_stdout(io.StringIO()):
            art_spec = getattr(import_module(mod), fn)(export_keras, base_spec, partial, q, calib, int8_io, **kw)
        backend = load_backend(partial, trusted=True)  # written by this process a moment ago
        row.backend = backend.name
        row.size_kb = round(partial.stat().st_size / 1024, 1)
        results, fails = {}, []
        for name, (x, y, ref, keras_acc) in sets.items():
            if not len(y):
                continue
            probs = np.concatenate([backend.predict(x[i:i + 64]) for i in range(0, len(x), 64)])
            rep = classification_report(y, probs, base_spec.labels)
            agree, delta = _agreement(probs, ref), round((rep["accuracy"] - keras_acc) * 100, 3)
            results[name] = (rep, agree, delta, probs)
            if q in ("none", "fp16") and agree < min_agreement:
                fails.append(f"{name}: top-1 agreement {agree:.4f} < {min_agreement}")
            elif q not in ("none", "fp16") and -delta > max_drop:
                fails.append(f"{name}: accuracy drop {-delta:.2f} points > --max-drop {max_drop}")
        if "val" in results:
            rep, row.agreement, row.delta_acc, probs = results["val"]
            row.val_acc = rep["accuracy"]
            row.max_abs_dprob = float(np.abs(probs - sets["val"][2]).max())
        if "holdout" in results:
            rep, row.holdout_agreement, row.holdout_delta, _ = results["holdout"]
            row.holdout_acc = rep["accuracy"]
        gate_name = "holdout" if "holdout" in results else "val"
        row.ms_per_img = round(_latency_ms(backend, sets[gate_name][0][:1]), 4)
        del backend
        if emulator is not None and q in ("int8", "dynamic"):
            from fer_edge.export.cpu_check import emulated_probs

            x_e = sets[gate_name][0][:emulate_n]
            emu = emulated_probs(partial, x_e, emulator, row.backend)
            row.emulated_cpu = emulator.description
            row.emulated_agreement = _agreement(emu, results[gate_name][3][:emulate_n])
            if row.emulated_agreement < EMULATED_MIN_AGREEMENT:
                fails.append(f"gives other answers on {emulator.description}: top-1 agreement "
                             f"{row.emulated_agreement:.4f} with this CPU on {len(x_e)} {gate_name} faces")
        m = dict(metrics)
        if "val" in results:
            m.update(val_accuracy=results["val"][0]["accuracy"], val_macro_f1=results["val"][0]["macro_f1"],
                     keras_val_accuracy=sets["val"][3],
                     val_source=splits.val_source, val_n=int(len(sets["val"][1])), agreement_with_keras=row.agreement)
        if "holdout" in results:
            m.update(holdout_accuracy=row.holdout_acc, holdout_agreement_with_keras=row.holdout_agreement,
                     holdout_source=splits.holdout_source, holdout_n=int(len(sets["holdout"][1])))
        if row.emulated_agreement is not None:
            m.update(emulated_cpu=row.emulated_cpu, emulated_agreement=row.emulated_agreement)
        row.status = "gate-failed" if fails else "ok"
        row.note = "; ".join(fails)
        log(f"{fmt.name} {q}: measured ({time.time() - t0:.1f}s)")
        return _Candidate(row, partial, final, fmt, art_spec, m, results[gate_name][3].argmax(1))
    except (ModelError, UsageError, DataError) as exc:
        row.note = str(exc)
    except Exception as exc:  # one failing format must not stop the others
        row.note = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    partial.unlink(missing_ok=True)
    return _Candidate(row, partial, final, fmt, None, {}, np.zeros(0, np.int64))


def _cross_format(candidates: list[_Candidate], report: ExportReport, min_cross: float) -> None:
    """int8 files of different formats must give the same top-1 on the gate images: a user who switches
    backend (LiteRT <-> onnxruntime) must not get other answers."""
    q8 = [c for c in candidates if c.row.quantization == "int8" and c.spec is not None and len(c.gate_top1)]
    for i, a in enumerate(q8):
        for b in q8[i + 1:]:
            if a.row.format == b.row.format:
                continue
            agree = float((a.gate_top1 == b.gate_top1).mean())
            report.cross_format.append({"a": f"{a.row.format} int8", "b": f"{b.row.format} int8",
                                        "agreement": round(agree, 4), "n": int(len(a.gate_top1))})
            if agree < min_cross:
                for c in (a, b):
                    if c.row.status == "ok":
                        c.row.status = "gate-failed"
                    note = f"int8 {a.row.format} and {b.row.format} agree on {agree:.4f} < {min_cross} of gate faces"
                    c.row.note = f"{c.row.note}; {note}" if c.row.note else note


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
    t = report.thresholds
    cpu = report.cpu or {}
    lines = [f"# Export report: {src.parent.name}/{src.name}", "",
             f"Gate CPU: {cpu.get('model', '?')} ({cpu.get('machine', '?')}, {cpu.get('class', '?')}): "
             f"{', '.join(cpu.get('features', [])) or '?'}.", "",
             f"Validation: Keras accuracy {report.keras_val_acc:.4f} on {report.n_val} images ({report.val_source})."]
    if report.n_holdout:
        seen = {True: "the model was trained without it", False: "this model does not say it was trained without it "
                "(trained before the hold-out existed): treat its hold-out numbers as seen images", None: ""}
        lines.append(f"Hold-out: Keras accuracy {report.keras_holdout_acc:.4f} on {report.n_holdout} images "
                     f"({report.holdout_source}; {seen[report.holdout_unseen]}).")
    lines += ["", f"Gate: fp32/fp16 top-1 agreement >= {t['min_agreement']}, quantized accuracy drop <= "
              f"{t['max_drop_points']} points (on the hold-out and on validation); int8 files on the emulated CPU agree "
              f">= {t.get('min_emulated_agreement')} with this CPU; int8 files of two formats agree >= "
              f"{t.get('min_cross_agreement')}. ONNX int8 method: {t.get('onnx_int8')}. ms/img: batch 1, the backend's "
              "default threads (fer-edge bench measures properly).", "",
              "| Format | Quant | Status | Size KB | Val acc | Δacc (pts) | Agreement | Hold-out acc | Δ (pts) | Agreement "
              "| Emulated CPU agreement | ms/img (b1) | Backend | Note |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, spec):
        return "" if v is None else format(v, spec)

    for r in report.rows:
        lines.append(f"| {r.format} | {r.quantization} | {r.icon} | {f(r.size_kb, '.1f')} | {f(r.val_acc, '.4f')} | "
                     f"{f(r.delta_acc, '+.2f')} | {f(r.agreement, '.4f')} | {f(r.holdout_acc, '.4f')} | "
                     f"{f(r.holdout_delta, '+.2f')} | {f(r.holdout_agreement, '.4f')} | {f(r.emulated_agreement, '.4f')} | "
                     f"{f(r.ms_per_img, '.3f')} | {r.backend or ''} | {r.note} |")
    emu = next((r.emulated_cpu for r in report.rows if r.emulated_cpu), None)
    lines += ["", f"Emulated CPU: {emu or 'none (needs qemu-user on x86-64: apt-get install qemu-user)'}."]
    if report.cross_format:
        lines += ["", "Cross-format top-1 agreement on the gate images: " + "; ".join(
            f"{c['a']} vs {c['b']} {c['agreement']:.4f} (n={c['n']})" for c in report.cross_format) + "."]
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
