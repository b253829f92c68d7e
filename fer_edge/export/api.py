"""`fer-edge export`: every requested format x quantization, each verified by a parity gate.

Each artifact is written under a temporary name, evaluated on the validation split through the
runtime backend (LiteRT / onnxruntime: no TensorFlow in that loop) and compared with the Keras
model. It gets its final name only when the gate passes; otherwise nothing is left under it.

One artifact, one function (`export_artifact`): the format's exporter (named in
`fer_edge.formats.FORMATS`) writes the graph; `measure` runs that file through the runtime backend,
given its spec in memory (the file carries none yet); `gate` decides from the numbers alone (a pure
function, unit-tested). `cross_format` (pure too) then compares the int8 files of two formats, and
`publish` embeds the final metadata once, with the format's embedder, before the file gets its name.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import DataError, ModelError, UsageError, unknown
from fer_edge.formats import Format, artifact_name, expand, load_ref
from fer_edge.metrics import classification_report
from fer_edge.outputs import atomic_write_text, check_output_folder
from fer_edge.rundir import EXPORT_DIR, RunDir, file_sha256, holdout_unseen, resolve_model
from fer_edge.spec import ModelSpec
from fer_edge.status import icon
from fer_edge.version import __version__

FLOAT_QUANTIZATIONS = ("none", "fp16")  # gated on top-1 agreement with Keras; the others on accuracy drop
EMULATED_QUANTIZATIONS = ("int8", "dynamic")  # the ones whose kernels depend on the CPU's features
EMULATED_MIN_AGREEMENT = 0.99  # int8 files on the emulated second CPU class vs this CPU, top-1
QEMU_HINT = "apt-get install qemu-user"  # what makes the emulated-CPU check possible


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
        return icon(self.status)


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
    # SHA-256 of the .keras file exported: a run trained on after its export (`train --resume` of a run
    # stopped on its time budget) has a new model.keras, and a reader can tell this report is of the old one
    source_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.rows)

    @property
    def emulated_cpu(self) -> str | None:
        """The second CPU class the int8 files were also run on, or None (no qemu-user here)."""
        return next((r.emulated_cpu for r in self.rows if r.emulated_cpu), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["fer_edge_version"] = __version__
        return d


# --- what the gate measures and decides on --------------------------------------------------------

@dataclass(frozen=True)
class GateSet:
    """Images the gate runs every file on, with the exported Keras graph's answers on them (the reference)."""
    name: str  # "val" | "holdout"
    x: np.ndarray
    y: np.ndarray
    ref: np.ndarray  # Keras probabilities
    keras_acc: float | None  # None (hold-out) or NaN (validation) when there are no images
    source: str  # where the images come from (Splits.val_source / holdout_source)


@dataclass(frozen=True)
class SetResult:
    """One file on one GateSet: the numbers the gate and the report use."""
    accuracy: float
    macro_f1: float
    agreement: float  # top-1 agreement with Keras
    delta: float  # accuracy minus Keras', in points (3 decimals)
    max_abs_dprob: float


@dataclass(frozen=True)
class EmulatedResult:
    """One int8 file's answers on the emulated second CPU class, compared with this CPU's."""
    cpu: str  # its description
    agreement: float
    n: int
    set_name: str  # the GateSet the images came from


@dataclass(frozen=True)
class Measurements:
    """Everything measured on one file: the gate's whole input besides the quantization and thresholds."""
    sets: dict[str, SetResult]  # by GateSet name, those with images, in gate order (val, holdout)
    emulated: EmulatedResult | None = None


def gate(measurements: Measurements, quantization: str, thresholds: dict) -> tuple[str, list[str]]:
    """ok | gate-failed and why, from the measured numbers only (no I/O, no model): testable on its own,
    and what the report records as thresholds is exactly what it applies. Float files must answer like
    Keras (top-1 agreement); quantized ones may change answers but must not lose accuracy (drop in points);
    a file run on an emulated CPU must give this CPU's answers there."""
    notes = []
    for name, r in measurements.sets.items():
        if quantization in FLOAT_QUANTIZATIONS:
            if r.agreement < thresholds["min_agreement"]:
                notes.append(f"{name}: top-1 agreement {r.agreement:.4f} < {thresholds['min_agreement']}")
        elif -r.delta > thresholds["max_drop_points"]:
            notes.append(f"{name}: accuracy drop {-r.delta:.2f} points > --max-drop {thresholds['max_drop_points']}")
    e = measurements.emulated
    if e is not None and e.agreement < thresholds["min_emulated_agreement"]:
        notes.append(f"gives other answers on {e.cpu}: top-1 agreement {e.agreement:.4f} with this CPU on "
                     f"{e.n} {e.set_name} faces")
    return ("gate-failed" if notes else "ok"), notes


def cross_format(top1: dict[str, np.ndarray], min_cross: float) -> tuple[list[dict], dict[str, list[str]]]:
    """int8 files of different formats must give the same top-1 on the gate images: a user who switches
    backend (LiteRT <-> onnxruntime) must not get other answers. Pure: `top1` maps each int8 file's format
    to its answers on the gate set; returns the report's pairs and the failure notes by format."""
    pairs: list[dict] = []
    notes: dict[str, list[str]] = {}
    names = list(top1)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            agree = float((top1[a] == top1[b]).mean())
            pairs.append({"a": f"{a} int8", "b": f"{b} int8", "agreement": round(agree, 4), "n": int(len(top1[a]))})
            if agree < min_cross:
                note = f"int8 {a} and {b} agree on {agree:.4f} < {min_cross} of gate faces"
                for fmt in (a, b):
                    notes.setdefault(fmt, []).append(note)
    return pairs, notes


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean()) if len(a) else 1.0


# --- one artifact -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportJob:
    """What every artifact of one export shares, so that `export_artifact` needs only the format."""
    model: Any  # the Keras graph being exported (with CAM head / flip TTA when asked)
    spec: ModelSpec  # the spec every file starts from (its metrics: training's, params, MACs)
    calib: np.ndarray | None
    int8_io: str
    options: dict  # exporter keywords by name; each format takes those its table row lists
    sets: tuple[GateSet, ...]  # those with images
    thresholds: dict  # as in the report
    emulator: Any  # sysinfo.EmulatedCpu or None
    emulate_n: int

    @property
    def gate_set(self) -> GateSet:
        """The hold-out when there is one (never trained, calibrated or selected on), else validation."""
        return next((s for s in self.sets if s.name == "holdout"), self.sets[0])


@dataclass
class Artifact:
    """One exported file awaiting its final name: its gate row, and what `publish` and the cross-format
    check need."""
    row: GateRow
    fmt: Format
    partial: Path
    final: Path
    spec: ModelSpec | None = None  # the file's spec with its measured metrics; None when it was not built
    top1: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # answers on the gate set


def export_artifact(job: ExportJob, fmt: Format, q: str, final: Path, log=print) -> Artifact:
    """Write one artifact under a temporary name, measure it and gate it; the decision is in the row.
    Errors end up in the row too: one failing format must not stop the others."""
    art = Artifact(GateRow(fmt.name, q, "error"), fmt, final.with_name(final.stem + ".partial" + final.suffix), final)
    final.unlink(missing_ok=True)  # a stale file must not pass for this export's result
    t0 = time.time()
    try:
        spec = _write_graph(job, fmt, q, art.partial)  # the graph only: its metadata is embedded once, by publish
        meas, gate_probs = measure(job, q, art.partial, art.row, spec)
        art.row.status, notes = gate(meas, q, job.thresholds)
        art.row.note = "; ".join(notes)
        art.spec, art.top1 = spec.replace(metrics=file_metrics(spec.metrics, meas, job.sets)), gate_probs.argmax(1)
        log(f"{fmt.name} {q}: measured ({time.time() - t0:.1f}s)")
        return art
    except (ModelError, UsageError, DataError) as exc:
        art.row.note = str(exc)
    except Exception as exc:  # one failing format must not stop the others
        art.row.note = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    art.partial.unlink(missing_ok=True)
    return art


def _write_graph(job: ExportJob, fmt: Format, q: str, path: Path) -> ModelSpec:
    """The format's exporter (looked up at call time, so it can be replaced in tests), quietly: the
    converters print to stdout, which is the CLI's (--json)."""
    options = {k: job.options[k] for k in fmt.options}
    with contextlib.redirect_stdout(io.StringIO()):
        return load_ref(fmt.exporter)(job.model, job.spec, path, q, job.calib, job.int8_io, **options)


def measure(job: ExportJob, q: str, path: Path, row: GateRow, spec: ModelSpec) -> tuple[Measurements, np.ndarray]:
    """Run the file through the runtime backend on every gate set (and on the emulated CPU for int8
    files); fills the row's measured columns. Returns the measurements and the gate set's probabilities.
    The file has no metadata yet: the backend is given its spec (and still checks it against the graph)."""
    from fer_edge.runtime.backends import load_backend

    backend = load_backend(path, trusted=True, spec=spec)  # written by this process a moment ago
    row.backend = backend.name
    row.size_kb = round(path.stat().st_size / 1024, 1)
    results, probs = {}, {}
    for s in job.sets:
        results[s.name], probs[s.name] = _measure_set(backend, s, job.spec.labels)
    gate_set = job.gate_set
    row.ms_per_img = round(_latency_ms(backend, gate_set.x[:1]), 4)
    del backend  # free the interpreter before the emulated run starts its own
    emulated = _emulated(job, path, row.backend, probs[gate_set.name], spec) if q in EMULATED_QUANTIZATIONS else None
    meas = Measurements(results, emulated)
    _fill_row(row, meas)
    return meas, probs[gate_set.name]


def _measure_set(backend, s: GateSet, labels: list[str]) -> tuple[SetResult, np.ndarray]:
    """One file on one gate set, in batches of 64, against the Keras reference."""
    probs = np.concatenate([backend.predict(s.x[i:i + 64]) for i in range(0, len(s.x), 64)])
    rep = classification_report(s.y, probs, labels)
    return SetResult(rep["accuracy"], rep["macro_f1"], _agreement(probs, s.ref),
                     round((rep["accuracy"] - s.keras_acc) * 100, 3), float(np.abs(probs - s.ref).max())), probs


def _latency_ms(backend, x1: np.ndarray, n: int = 30) -> float:
    """Median batch-1 latency: the benchmark's timing loop with a small budget."""
    from fer_edge.timing import time_calls

    return float(np.median(time_calls(lambda: backend.predict(x1), warmup=1, min_runs=n, min_time=0.0)))


def _emulated(job: ExportJob, path: Path, backend: str, gate_probs: np.ndarray,
              spec: ModelSpec) -> EmulatedResult | None:
    """The file on the emulated second CPU class, when this host has one: int8 kernels differ by CPU."""
    if job.emulator is None:
        return None
    from fer_edge.export.cpu_check import emulated_probs

    s = job.gate_set
    x_e = s.x[:job.emulate_n]
    emu = emulated_probs(path, x_e, job.emulator, backend, spec=spec)
    return EmulatedResult(job.emulator.description, _agreement(emu, gate_probs[:job.emulate_n]), len(x_e), s.name)


def _fill_row(row: GateRow, meas: Measurements) -> None:
    """The report's columns from the measurements."""
    if "val" in meas.sets:
        v = meas.sets["val"]
        row.val_acc, row.delta_acc, row.agreement, row.max_abs_dprob = v.accuracy, v.delta, v.agreement, v.max_abs_dprob
    if "holdout" in meas.sets:
        h = meas.sets["holdout"]
        row.holdout_acc, row.holdout_delta, row.holdout_agreement = h.accuracy, h.delta, h.agreement
    if meas.emulated is not None:
        row.emulated_cpu, row.emulated_agreement = meas.emulated.cpu, meas.emulated.agreement


def file_metrics(base: dict, meas: Measurements, sets: tuple[GateSet, ...]) -> dict:
    """The metrics a published file carries in its spec: the source's, plus what the gate measured on it
    (a file says how good it is, not only how good the Keras model was)."""
    m = dict(base)
    by_name = {s.name: s for s in sets}
    if "val" in meas.sets:
        v, s = meas.sets["val"], by_name["val"]
        m.update(val_accuracy=v.accuracy, val_macro_f1=v.macro_f1, keras_val_accuracy=s.keras_acc,
                 val_source=s.source, val_n=int(len(s.y)), agreement_with_keras=v.agreement)
    if "holdout" in meas.sets:
        h, s = meas.sets["holdout"], by_name["holdout"]
        m.update(holdout_accuracy=h.accuracy, holdout_agreement_with_keras=h.agreement,
                 holdout_source=s.source, holdout_n=int(len(s.y)))
    if meas.emulated is not None:
        m.update(emulated_cpu=meas.emulated.cpu, emulated_agreement=meas.emulated.agreement)
    return m


# --- after every artifact ---------------------------------------------------------------------------

def apply_cross_format(artifacts: list[Artifact], report: ExportReport) -> None:
    """Run the cross-format check on the int8 files that were measured; a failure fails both files."""
    top1 = {a.row.format: a.top1 for a in artifacts if a.row.quantization == "int8" and a.spec is not None
            and len(a.top1)}
    pairs, notes = cross_format(top1, report.thresholds["min_cross_agreement"])
    report.cross_format.extend(pairs)
    for a in artifacts:
        if a.row.quantization != "int8" or a.row.format not in top1:
            continue
        for note in notes.get(a.row.format, []):
            if a.row.status == "ok":
                a.row.status = "gate-failed"
            a.row.note = f"{a.row.note}; {note}" if a.row.note else note


def publish(art: Artifact, report: ExportReport) -> None:
    """Embed the final spec (the gate's measurements, its CPU and the cross-format check), once, with the
    format's embedder, then give the file its final name and remember it as verified."""
    from fer_edge.runtime.guard import remember

    spec = art.spec.replace(metrics=dict(art.spec.metrics, gate_cpu=report.cpu, cross_format=report.cross_format))
    load_ref(art.fmt.embedder)(art.partial, spec)
    os.replace(art.partial, art.final)
    art.row.file = art.final.name
    remember(art.final, art.fmt.backends)


def _finish(artifacts: list[Artifact], report: ExportReport, log) -> None:
    """Publish the files that passed; leave nothing behind for the others."""
    for a in artifacts:
        if a.row.status == "ok" and a.spec is not None:
            publish(a, report)
        a.partial.unlink(missing_ok=True)
        log(f"{a.row.icon} {a.row.format} {a.row.quantization}: {a.row.status} {a.row.note}")


def _annotate_speed(report: ExportReport) -> None:
    """Say where a quantization is slower than the same format's fp32 (e.g. ORT int8 on tiny nets)."""
    fp32 = {r.format: r.ms_per_img for r in report.rows if r.quantization == "none" and r.ms_per_img}
    for r in report.rows:
        base = fp32.get(r.format)
        if r.quantization != "none" and base and r.ms_per_img and r.ms_per_img > base:
            note = f"slower than {r.format} fp32 ({r.ms_per_img:.3f} vs {base:.3f} ms)"
            r.note = f"{r.note}; {note}" if r.note else note


# --- the export ---------------------------------------------------------------------------------------

def _stem(spec: ModelSpec) -> str:
    return f"{spec.arch}_{len(spec.labels)}c"


def _check_choices(formats: str, quantize: str, tta: str, onnx_int8: str, emulate: str):
    """Every name the caller chose, checked before any model is loaded; -> (pairs, emulator or None)."""
    from fer_edge.export.onnx import ONNX_INT8_METHODS
    from fer_edge.spec import TTA_MODES
    from fer_edge.sysinfo import EMULATED_CPUS, emulator_for

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
                         f"{QEMU_HINT}).")
    return pairs, emulator


def _out_dir(out, model_path: Path, run: RunDir | None) -> Path:
    """--out, or export/ inside the run (beside the .keras file when there is no run)."""
    out_dir = Path(out) if out else (run.export_dir if run else model_path.parent / EXPORT_DIR)
    check_output_folder(out_dir, "--out")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _run_config(run: RunDir | None) -> dict:
    """The training options of the run the model comes from ({} for a bare .keras file, or a folder that
    holds a model.keras but no config.json): the data and validation split export falls back to."""
    return run.read_config() if run and run.config.is_file() else {}


def _load_splits(data: str | None, config: dict, spec: ModelSpec, pairs):
    """The data the model was trained on (or --data), split as training split it: the calibration
    images must come from Training without the gate hold-out."""
    from fer_edge.data import load_splits

    data = data or config.get("train_config", {}).get("data")
    if not data:
        raise DataError("export needs --data (FER2013) for calibration and the parity gate.")
    splits = load_splits(data, spec.class_map_obj(), config.get("train_config", {}).get("val_split", "auto"))
    if len(splits.y_train) == 0 and any(q == "int8" for _, q in pairs):
        raise DataError(f"{data}: no training images to calibrate int8 on (need a train/ folder or Training rows).")
    return data, splits


def _gate_images(data: str, splits, val_limit: int | None):
    """(x_val, y_val), (x_hold, y_hold): validation (test when there is none) and the hold-out, each cut
    to a stratified `val_limit` when asked."""
    from fer_edge.data import stratified_sample

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
    return (x_val, y_val), (x_hold, y_hold)


def _export_graph(model, spec: ModelSpec, explain: bool, tta: str):
    """The Keras graph the files are made from (CAM head, flip TTA) -> (graph, cam info, MACs)."""
    from fer_edge.training.flops import count_macs

    macs = count_macs(model)
    export_keras, cam_info = model, spec.cam
    if explain:
        from fer_edge.export.cam_head import cam_model

        export_keras, cam_info = cam_model(model)
    if tta == "flip":
        from fer_edge.export.tta import flip_tta_model

        export_keras = flip_tta_model(export_keras)
        macs *= 2  # the model runs twice (the mirror matrices add < 0.3 %)
    return export_keras, cam_info, macs


def _gate_sets(export_keras, num_classes: int, splits, val, hold) -> tuple[GateSet, GateSet]:
    """Validation and hold-out with the reference: the graph being exported, as Keras runs it."""
    from fer_edge.training.keras_backend import predict_probs

    (x_val, y_val), (x_hold, y_hold) = val, hold
    ref_val = predict_probs(export_keras, x_val, 256) if len(y_val) else np.zeros((0, num_classes))
    ref_hold = predict_probs(export_keras, x_hold, 256) if len(y_hold) else np.zeros((0, num_classes))
    keras_acc = float((ref_val.argmax(1) == y_val).mean()) if len(y_val) else float("nan")
    keras_hold = float((ref_hold.argmax(1) == y_hold).mean()) if len(y_hold) else None
    return (GateSet("val", x_val, y_val, ref_val, keras_acc, splits.val_source),
            GateSet("holdout", x_hold, y_hold, ref_hold, keras_hold, splits.holdout_source))


def _thresholds(max_drop: float, min_agreement: float, min_cross_agreement: float, onnx_int8: str) -> dict:
    """The gate's limits, as the report records them and `gate` reads them."""
    return {"max_drop_points": max_drop, "min_agreement": min_agreement, "min_cross_agreement": min_cross_agreement,
            "min_emulated_agreement": EMULATED_MIN_AGREEMENT, "onnx_int8": onnx_int8}


def _log_reference(report: ExportReport, log) -> None:
    """What the files are compared with, said before the slow part; and a warning when the hold-out may be seen."""
    log(f"Keras reference: val accuracy {report.keras_val_acc:.4f} on {report.n_val} images ({report.val_source})"
        + (f"; hold-out {report.keras_holdout_acc:.4f} on {report.n_holdout}"
           if report.keras_holdout_acc is not None else ""))
    if report.holdout_unseen is False:
        log("note: this model, or a model it was warm-started or distilled from, does not say it was trained without "
            "the gate hold-out: its hold-out numbers may be on images it learned from; the validation split is gated too.")


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
    from fer_edge.data import stratified_sample
    from fer_edge.sysinfo import cpu_dict
    from fer_edge.training.keras_backend import KerasBackend

    pairs, emulator = _check_choices(formats, quantize, tta, onnx_int8, emulate)
    model_path, run = resolve_model(source)
    ref = KerasBackend.load(model_path, framework="tensorflow")
    spec = ref.spec
    out_dir = _out_dir(out, model_path, run)
    config = _run_config(run)
    data, splits = _load_splits(data, config, spec, pairs)
    # calibration: Training without the gate hold-out (make_splits took it out)
    calib = splits.x_train[stratified_sample(splits.y_train, calib_size, 0)] if len(splits.y_train) else None
    val, hold = _gate_images(data, splits, val_limit)
    export_keras, cam_info, macs = _export_graph(ref.model, spec, explain, tta)
    val_set, hold_set = _gate_sets(export_keras, spec.num_classes, splits, val, hold)
    # the model and every model it was warm-started or distilled from trained without the hold-out;
    # the exported files carry the answer, so `evaluate --split holdout` can say it too
    lineage_unseen = holdout_unseen(model_path)
    unseen = lineage_unseen if len(hold_set.y) else None
    metrics = dict(spec.metrics, params=int(ref.model.count_params()), macs=macs, holdout_unseen=lineage_unseen)
    base_spec = spec.replace(source_run=spec.source_run or (run.name if run else model_path.stem),
                             data_fingerprint=spec.data_fingerprint or splits.fingerprint, fer_edge_version=__version__,
                             metrics=metrics, tta=tta, cam=cam_info)
    report = ExportReport(str(model_path), str(out_dir), val_set.keras_acc, int(len(val_set.y)), splits.val_source,
                          _thresholds(max_drop, min_agreement, min_cross_agreement, onnx_int8),
                          keras_holdout_acc=hold_set.keras_acc, n_holdout=int(len(hold_set.y)),
                          holdout_source=splits.holdout_source, holdout_unseen=unseen, cpu=cpu_dict(),
                          source_sha256=file_sha256(model_path))
    _log_reference(report, log)
    stem = stem or (_stem(spec) + ("_cam" if explain else "") + ("_tta" if tta != "none" else ""))
    job = ExportJob(export_keras, base_spec, calib, int8_io, {"int8_method": onnx_int8},
                    tuple(s for s in (val_set, hold_set) if len(s.y)), report.thresholds, emulator, emulate_n)
    artifacts = [export_artifact(job, fmt, q, out_dir / artifact_name(stem, fmt, q), log) for fmt, q in pairs]
    report.rows.extend(a.row for a in artifacts)
    apply_cross_format(artifacts, report)
    _finish(artifacts, report, log)
    _annotate_speed(report)
    write_report(report, out_dir)
    return report


# --- the report ---------------------------------------------------------------------------------------

def report_markdown(report: ExportReport) -> str:
    """export_report.md: what was gated, where, against which limits, and each file's row."""
    src = Path(report.source)
    t = report.thresholds
    cpu = report.cpu or {}
    lines = [f"# Export report: {src.parent.name}/{src.name}", "",
             f"Gate CPU: {cpu.get('model', '?')} ({cpu.get('machine', '?')}, {cpu.get('class', '?')}): "
             f"{', '.join(cpu.get('features', [])) or '?'}.", "",
             f"Validation: Keras accuracy {report.keras_val_acc:.4f} on {report.n_val} images ({report.val_source})."]
    if report.n_holdout:
        seen = {True: "the model, and every model it was warm-started or distilled from, was trained without it",
                False: "this model, or a model it was warm-started or distilled from, does not say it was trained "
                "without it: treat its hold-out numbers as seen images", None: ""}
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
    lines += ["", f"Emulated CPU: {report.emulated_cpu or 'none (needs qemu-user on x86-64: ' + QEMU_HINT + ')'}."]
    if report.cross_format:
        lines += ["", "Cross-format top-1 agreement on the gate images: " + "; ".join(
            f"{c['a']} vs {c['b']} {c['agreement']:.4f} (n={c['n']})" for c in report.cross_format) + "."]
    return "\n".join(lines) + "\n"


def write_report(report: ExportReport, out_dir: Path) -> None:
    """export_report.json and .md, each complete or absent (atomic: a reader never sees half a report)."""
    atomic_write_text(out_dir / "export_report.json", json.dumps(report.to_dict(), indent=2))
    atomic_write_text(out_dir / "export_report.md", report_markdown(report))


def best_runs(runs_dir: str | Path, n: int) -> list[Path]:
    from fer_edge.rundir import leaderboard_rows

    rows = [r for r in leaderboard_rows(Path(runs_dir)) if r.get("status") == "finished" and r.get("val_acc") is not None]
    if not rows:
        raise DataError(f"{runs_dir}: no finished runs to export (train one with `fer-edge train`).")
    return [Path(runs_dir) / r["run"] for r in rows[:n]]
