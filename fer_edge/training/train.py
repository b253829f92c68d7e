"""`fer-edge train`: fit loop, per-epoch checkpoints, resume.

A run directory holds everything needed to reproduce and to resume; its layout (config.json,
spec.json, last.keras + state.json written each epoch, model.keras best on val accuracy, history.csv,
metrics.json, plots) and the leaderboard are `fer_edge.rundir`'s. `train` runs named stages in order
(`_reopen`, `_settle_options`, `_load_data`, `_prepare_run`, `_fit_inputs`, `_build_model`,
`_fit_phases`, `_save_progress`, then `_interrupted` or `_final_evaluation` and `_finish`).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.version import __version__
from fer_edge.errors import UsageError
from fer_edge.labels import parse_classes, ClassMap
from fer_edge.rundir import (CONFIG, LEADERBOARD_COLUMNS, RunDir, export_is_current, holdout_unseen,
                            leaderboard_rows, model_file, teacher_sources, write_leaderboard)
from fer_edge.spec import ModelSpec

__all__ = ["TrainConfig", "train", "validate_config", "warm_start", "write_leaderboard", "leaderboard_rows",
           "LEADERBOARD_COLUMNS", "get_strategy", "write_json", "save_keras_atomic"]


@dataclass
class TrainConfig:
    data: str
    arch: str = "edgenet"
    classes: str = "7"
    epochs: int = 30
    batch_size: int = 64
    lr: float | None = None  # None: the architecture's default
    label_smoothing: float = 0.1
    seed: int = 42
    out: str = "runs"
    val_split: str = "auto"
    class_weight: str = "none"
    augment: bool = True
    weights: str = "none"
    optimizer: str | None = None  # adam | adamw | sgd ; None: arch default
    schedule: str | None = None  # plateau | cosine ; None: arch default
    weight_decay: float = 1e-4
    patience: int = 10
    strict: bool = False
    cache_dir: str | None = None
    max_train: int | None = None  # subsample training images (quick experiments, tests)
    two_phase: bool | None = None  # None: on for pretrained backbones with weights
    max_minutes: float | None = None  # wall-time budget: stop after the epoch that crosses it
    mix: str = "none"  # none | mixup | cutmix (training batches only)
    mix_alpha: float = 0.2  # Beta(alpha, alpha) for the mixing coefficient
    erasing: float = 0.0  # Random Erasing probability per training image
    init: str | None = None  # warm start: copy weights by layer name from this .keras model
    teacher: str | list[str] | None = None  # distillation: a run directory or .keras model, or a list of them
    #                                          (an ensemble: their mean probabilities; training.distill)
    kd_temperature: float = 3.0
    kd_alpha: float = 0.7  # weight of the teacher's soft targets (1 - alpha: the labels)
    kd_tta: str = "none"  # none | flip: the teacher's probabilities averaged over the batch and its mirror
    mixed_precision: str = "off"  # off | float16 | bfloat16 (training.mixed_precision.MIXED_PRECISION)
    precise_bn: int | None = None  # clean training faces to re-estimate BatchNorm statistics on before each
    #                                validation (training.precise_bn); None: the arch's default, 0: off
    extra: dict[str, Any] = field(default_factory=dict)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp name, then rename): never a half-written file."""
    from fer_edge.outputs import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=str))  # no sort_keys: class maps keep output order


def save_keras_atomic(model, path: Path) -> None:
    """Save a .keras model under a temporary name ending in .keras (Keras picks the format from it), then
    rename: a reader never sees a half-written model.keras or last.keras. On JAX and PyTorch, Keras'
    serializer would import TensorFlow only to probe for it: hidden (`tensorflow_hidden`)."""
    from fer_edge.keras_backends import tensorflow_hidden
    from fer_edge.outputs import atomic_path

    with atomic_path(path) as tmp, tensorflow_hidden():
        model.save(tmp)


class _SingleDevice:
    """The strategy stand-in for JAX and PyTorch: Keras places the model on the backend's default device."""

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def get_strategy(devices: list[str] | None = None):
    """MirroredStrategy over several GPUs (or the given devices), else the default strategy."""
    import tensorflow as tf

    if devices:
        return tf.distribute.MirroredStrategy(devices)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


CLASS_WEIGHTS = ("balanced", "none")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("plateau", "cosine")
_PATH_FIELDS = ("data", "out", "init", "cache_dir", "teacher")


def _absolute(cfg: TrainConfig, base: Path) -> TrainConfig:
    """Path options made absolute against `base` (the directory the run was started from), so that
    `train --resume RUN` works from any directory. `weights` is a path only when it is not a keyword."""
    changes = {f: str((base / getattr(cfg, f)).resolve()) for f in _PATH_FIELDS
               if isinstance(getattr(cfg, f), str) and getattr(cfg, f) and not Path(getattr(cfg, f)).is_absolute()}
    if isinstance(cfg.teacher, (list, tuple)):  # several teachers: each made absolute, a list in config.json
        changes["teacher"] = [str((base / t).resolve()) for t in cfg.teacher]
    w = str(cfg.weights)
    if w.lower() not in ("none", "imagenet") and not Path(w).is_absolute():
        changes["weights"] = str((base / w).resolve())
    return replace(cfg, **changes)


def _started_from(run_dir: Path, out: str) -> Path:
    """Where a run with a relative --out was started: run_dir = <cwd>/<out>/<name>."""
    parent = run_dir.resolve().parent
    parts = Path(out).parts
    if not Path(out).is_absolute() and len(parent.parts) > len(parts) and parent.parts[-len(parts):] == parts:
        return Path(*parent.parts[:-len(parts)])
    return Path.cwd()


def _new_run_dir(out: Path, name: str) -> Path:
    """`RunDir.create` as a path (kept for callers of the old name)."""
    return RunDir.create(out, name).path


def validate_config(cfg: TrainConfig) -> None:
    """The option checks that need no data or TensorFlow, run before any heavy work (the CLI calls this
    for every architecture of `--arch a,b` before training the first)."""
    from fer_edge.errors import unknown
    from fer_edge.training.pipeline import MIX_MODES

    if cfg.class_weight not in CLASS_WEIGHTS:
        raise unknown("class weight", cfg.class_weight, CLASS_WEIGHTS)
    if cfg.mix not in MIX_MODES:
        raise unknown("mix mode", cfg.mix, MIX_MODES)
    if not 0.0 <= cfg.erasing <= 1.0:
        raise UsageError(f"--erasing must be a probability in [0, 1], got {cfg.erasing}.")
    if cfg.optimizer is not None and cfg.optimizer not in OPTIMIZERS:
        raise unknown("optimizer", cfg.optimizer, OPTIMIZERS)
    if cfg.schedule is not None and cfg.schedule not in SCHEDULES:
        raise unknown("schedule", cfg.schedule, SCHEDULES)
    import math

    for name, zero_ok in (("lr", False), ("weight_decay", True), ("max_minutes", False), ("mix_alpha", False)):
        v = getattr(cfg, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite {'non-negative' if zero_ok else 'positive'} "
                             f"number, got {v}.")
    for name in ("epochs", "batch_size", "max_train"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise UsageError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {v}.")
    for name in ("patience", "precise_bn"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a whole number >= 0, got {v}.")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}.")
    from fer_edge.labels import parse_classes
    from fer_edge.training.registry import get_arch

    parse_classes(cfg.classes)
    get_arch(cfg.arch)
    if not (cfg.teacher is None or isinstance(cfg.teacher, str)
            or (isinstance(cfg.teacher, (list, tuple)) and all(isinstance(t, str) and t for t in cfg.teacher))):
        raise UsageError(f"--teacher must name run directories or .keras files, got {cfg.teacher!r}.")
    seen: dict[Path, str] = {}  # teachers by file: one named twice would only weigh double, rarely meant
    for option, value in (("--init", cfg.init), *(("--teacher", t) for t in teacher_sources(cfg.teacher))):
        if value and not model_file(value).is_file():
            raise UsageError(f"{option} {value}: no such run directory or .keras file.")
        if option == "--teacher":
            key = model_file(value).resolve()
            if key in seen:
                raise UsageError(f"--teacher {value}: the same model as --teacher {seen[key]}; name each teacher once.")
            seen[key] = value
    if not (isinstance(cfg.kd_temperature, (int, float)) and math.isfinite(cfg.kd_temperature) and cfg.kd_temperature > 0):
        raise UsageError(f"--kd-temperature must be a finite positive number, got {cfg.kd_temperature}.")
    if not (isinstance(cfg.kd_alpha, (int, float)) and 0.0 <= cfg.kd_alpha <= 1.0):
        raise UsageError(f"--kd-alpha must be in [0, 1], got {cfg.kd_alpha}.")
    from fer_edge.spec import TTA_MODES

    if cfg.kd_tta not in TTA_MODES:
        raise unknown("teacher TTA mode (--kd-tta)", cfg.kd_tta, TTA_MODES)
    if cfg.kd_tta != "none" and not cfg.teacher:
        raise UsageError(f"--kd-tta {cfg.kd_tta} averages a teacher's predictions: give --teacher RUN_OR_MODEL too.")
    from fer_edge.training.mixed_precision import policy_name

    policy_name(cfg.mixed_precision)


def warm_start(model, source: str | os.PathLike, log=print, class_map: ClassMap | None = None) -> int:
    """Copy weights from a saved .keras model into `model`, layer by layer, where name and weight shapes
    match (a 7-class model's features into a 2-class model: every layer but the classifier). Why by
    name: the registry's builders name every layer, so the same architecture lines up exactly.

    The classifier too, when the source's spec names its classes and each of the student's classes
    (`class_map`) is one of them: its columns for those classes are copied, so the new model starts as
    the source restricted to the student's classes (softmax over a subset of the logits is the source's
    probabilities renormalised over that subset) instead of from a random classifier."""
    from fer_edge.training.load import load_model_option

    src, path = load_model_option(source, "--init")
    by_name = {layer.name: layer for layer in src.layers}
    picked = _classifier_columns(path, class_map) if class_map is not None else None
    copied = skipped = 0
    head: list[str] = []  # classifier layers whose kept classes' columns were copied
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = by_name.get(layer.name)
        theirs = other.get_weights() if other is not None else []
        if len(theirs) == len(weights) and all(a.shape == b.shape for a, b in zip(weights, theirs)):
            layer.set_weights(theirs)
            copied += 1
        elif picked is not None and _is_classifier_of(weights, theirs, len(picked[0]), len(picked[1])):
            layer.set_weights([w[..., picked[1]] for w in theirs])
            copied += 1
            head.append(layer.name)
        else:
            skipped += 1
    if copied == 0:
        raise UsageError(f"--init {path}: no layer matches this architecture by name and shape; "
                         f"warm-start from a model of the same --arch.")
    kept = (f"; classifier ({', '.join(head)}): the columns of {len(picked[1])} of its {len(picked[0])} classes "
            f"({', '.join(picked[0][i] for i in picked[1])})" if head else "")
    log(f"warm start from {path}: {copied} layers copied, {skipped} left at their initialisation{kept}")
    return copied


def _classifier_columns(path, class_map: ClassMap) -> tuple[tuple[str, ...], list[int]] | None:
    """(the source's class names, the index of each student class among them) when the source's spec
    names its classes and each student class is exactly one of them (`labels.class_projection` with one
    source class per column); else None: no spec, a damaged one, or a merged class, which has no single
    column to copy."""
    from fer_edge.errors import ModelError
    from fer_edge.labels import class_projection
    from fer_edge.rundir import read_spec_beside

    try:
        spec = read_spec_beside(path)
        if spec is None:
            return None
        src_map = spec.class_map_obj()
        proj = class_projection(src_map, class_map)
    except (ModelError, UsageError):
        return None
    if proj is None or not np.all(proj.sum(axis=0) == 1):
        return None
    return src_map.labels, [int(i) for i in proj.argmax(axis=0)]


def _is_classifier_of(weights: list, theirs: list, n_source: int, n_student: int) -> bool:
    """Weights that differ from the source's only in a last axis of one entry per class: a Dense or
    1x1-conv classifier (kernel and bias), or a per-class BatchNormalization after it."""
    return (len(weights) == len(theirs) > 0
            and all(a.shape[:-1] == b.shape[:-1] and a.shape[-1] == n_student and b.shape[-1] == n_source
                    for a, b in zip(weights, theirs)))


def _classes_tag(cm: ClassMap) -> str:
    return f"{cm.num_classes}c" if cm.num_classes != 7 else "7c"


def _optimizer(name: str, lr, weight_decay: float):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=weight_decay)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    from fer_edge.errors import unknown

    raise unknown("optimizer", name, OPTIMIZERS)


def _set_backbone_trainable(model, fraction: float | None) -> None:
    """fraction None: freeze the backbone; else unfreeze its top `fraction` of layers (BN stays frozen)."""
    from keras import layers

    base = model.get_layer("backbone")
    if fraction is None:
        base.trainable = False
        return
    base.trainable = True
    n = len(base.layers)
    cut = int(n * (1 - fraction))
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut and not isinstance(layer, layers.BatchNormalization)


class _EpochCheckpoint:
    """Keras callback factory: each epoch saves last.keras + state.json, and model.keras when best."""

    @staticmethod
    def make(run: RunDir, state: dict, phase: int, as_float32):
        """`as_float32(student)`: the model written as model.keras (its float32 twin: weights only, no
        optimizer state); last.keras keeps the training model itself, the exact resume point."""
        import keras

        class EpochCheckpoint(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                # fit + validation time of each epoch (a resumed run keeps the earlier ones): the speed of
                # a device, first-epoch compilation included, without the checkpoint's own time
                state.setdefault("epoch_seconds", []).append(round(time.perf_counter() - self.t0, 3))
                logs = logs or {}
                student = getattr(self.model, "student", self.model)  # a distiller is never saved
                val_acc = float(logs.get("val_accuracy", float("nan")))
                if not math.isnan(val_acc) and val_acc > state.get("best_val_accuracy", -1.0):
                    state["best_val_accuracy"] = val_acc
                    state["best_epoch"] = epoch + 1
                    save_keras_atomic(as_float32(student), run.model)
                if student is not self.model:  # a distiller: its optimizer state beside the bare student
                    from fer_edge.training.distill import save_optimizer_state

                    save_optimizer_state(self.model.optimizer, run.last_optimizer, epoch + 1)
                save_keras_atomic(student, run.last)
                state["epoch"] = epoch + 1
                state["phase"] = phase
                state["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                write_json(run.state, state)

        return EpochCheckpoint()


#: train accuracy/loss in metrics.json is measured (eval mode, no augmentation) on a stratified sample
#: of at most this many training images; its size is the "n" of the train split.
TRAIN_EVAL_LIMIT = 8000


class _Budget:
    @staticmethod
    def make(seconds: float, log, state: dict):
        import keras

        class Budget(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                if time.time() - self.t0 >= seconds:
                    log(f"time budget reached after epoch {epoch + 1}; stopping")
                    state["budget_reached"] = True
                    self.model.stop_training = True

        return Budget()


def _plots(run: RunDir, cm: list, labels: list[str]) -> None:
    """curves.png (accuracy and loss per epoch, from history.csv) and confusion.png (row-normalised)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = run.read_history()
    if rows:
        ep = [int(r["epoch"]) + 1 for r in rows]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("accuracy", "loss")):
            ax.plot(ep, [r.get(key, np.nan) for r in rows], label="train")
            if any(f"val_{key}" in r for r in rows):
                ax.plot(ep, [r.get(f"val_{key}", np.nan) for r in rows], label="val")
            ax.set_xlabel("epoch"), ax.set_title(key), ax.legend(), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run.curves, dpi=100)
        plt.close(fig)
    if cm:
        a = np.asarray(cm, np.float64)
        norm = a / np.maximum(a.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{norm[i, j]:.2f}\n{int(a[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted"), ax.set_ylabel("true")
        fig.tight_layout()
        fig.savefig(run.confusion, dpi=100)
        plt.close(fig)


@dataclass
class _Session:
    """What the stages of one `train` call share. Stages fill it in order; each reads what the ones
    before it wrote (the fields below the line are None until their stage has run)."""

    cfg: TrainConfig
    resumed: bool
    log: Any
    keras: Any
    backend: str
    state: dict[str, Any]
    run: RunDir | None = None
    saved: dict[str, Any] = field(default_factory=dict)  # config.json of the resumed run
    # ---
    info: Any = None  # registry.ArchInfo
    class_map: ClassMap | None = None
    splits: Any = None
    x_train: Any = None
    y_train: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    spec: ModelSpec | None = None
    train_ds: Any = None
    val_ds: Any = None
    class_weight: dict | None = None
    strategy: Any = None
    phases: list[tuple] = field(default_factory=list)  # (phase, end epoch, lr, backbone fraction)
    t0: float = 0.0
    model: Any = None
    teacher: Any = None
    teacher_projection: Any = None  # per teacher: its classes -> the student's (labels.class_projection) or None
    policy: str = "float32"  # Keras dtype policy while training (training.mixed_precision)
    twin: Any = None  # the float32, uncompiled twin of the model that model.keras is written from
    status: str = "finished"
    train_seconds: float = 0.0


def train(cfg: TrainConfig, resume: str | os.PathLike | None = None, devices: list[str] | None = None,
          log=print, callbacks: list | None = None, more_minutes: float | None = None,
          precise_bn: int | None = None) -> Path:
    """Train one architecture; returns the run directory (complete, or marked interrupted).

    Runs on the Keras backend of this process (`training.backend.select_backend`, set by the CLI's
    --backend or $KERAS_BACKEND): TensorFlow, JAX or PyTorch, with the same run directory.
    Options are checked and the data loaded before a new run directory exists, so a bad option or data
    set leaves nothing behind; a Ctrl-C (KeyboardInterrupt) during the fit leaves a resumable run.
    `more_minutes` (with `resume`): this continuation's wall-time budget. A run that stopped on its time
    budget is finished (metrics, plots) yet keeps its resume point, so that slices of training spread
    over several sessions or machines add up to one run (`_continue_budget`). `precise_bn` (with
    `resume`): a new --precise-bn for the rest of the run; it changes what is measured, not what is trained."""
    s = _reopen(cfg, resume, log)
    if resume is not None and not _continue_budget(s, more_minutes):
        return s.run.path
    if resume is not None and precise_bn is not None:
        s.cfg = replace(s.cfg, precise_bn=precise_bn)
    _settle_options(s)
    _load_data(s)
    _prepare_run(s)
    _fit_inputs(s, devices)
    from fer_edge.training.mixed_precision import policy

    with policy(s.cfg.mixed_precision) as s.policy:  # layers built inside compute in it; restored after
        s.t0 = time.time()
        try:
            _build_model(s)
            _fit_phases(s, callbacks)
        except KeyboardInterrupt:
            s.status = "interrupted"
        _save_progress(s)
        if s.status != "finished":
            return _interrupted(s)
        _final_evaluation(s)
    return _finish(s)


def _reopen(cfg: TrainConfig, resume, log) -> _Session:
    """Select the Keras backend before anything imports Keras (it reads the choice once). With --resume,
    the run's own saved options and progress replace `cfg`: a resumed run continues as it was started,
    with its relative paths taken from the directory it was started in."""
    from fer_edge._optional import require
    from fer_edge import keras_backends as kb

    backend_name = kb.select_backend()
    keras = require("keras")
    state: dict[str, Any] = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "phase": 1}
    s = _Session(cfg=cfg, resumed=bool(resume), log=log, keras=keras, backend=backend_name, state=state)
    if not resume:
        return s
    s.run = RunDir(Path(resume))
    if not s.run.config.is_file():
        raise UsageError(f"--resume {s.run.path}: not a run directory (no {CONFIG}).")
    try:
        s.saved = s.run.read_config()
        s.cfg = TrainConfig(**s.saved["train_config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"--resume {s.run.path}: {CONFIG} is damaged ({exc.__class__.__name__}); "
                         "start a new run.") from None
    from fer_edge.runstatus import owner

    pid = owner(s.saved)
    if pid is not None:  # two processes writing one run directory would interleave its checkpoints
        raise UsageError(f"--resume {s.run.path}: process {pid} on this machine is training it now; wait for it, "
                         f"or stop it first (kill -TERM {pid} saves its last epoch).")
    s.cfg = _absolute(s.cfg, _started_from(s.run.path, s.cfg.out))
    state.update(s.run.read_state())
    return s


def _continue_budget(s: _Session, more_minutes: float | None) -> bool:
    """Whether a resumed run has epochs left to train, and its budget for them. An interrupted run goes
    on under its own total budget, or `more_minutes` beyond the time it has trained so far. A run that
    finished on its time budget goes on for `more_minutes`, else without a budget (until its --epochs or
    early stopping). A run that ended by its epochs or by early stopping has nothing left."""
    from fer_edge.runstatus import budget_left

    if more_minutes is not None and not more_minutes > 0:
        raise UsageError(f"--max-minutes {more_minutes}: give a positive number of minutes.")
    finished = s.saved.get("status") == "finished"
    if finished and not s.state.get("budget_reached"):
        s.log(f"{s.run.path} already finished; nothing to resume.")
        return False
    left = budget_left(s.state, s.cfg.epochs, s.run.last.is_file()) if finished else "train"
    if left == "done":  # (an unfinished run may owe its evaluation, so only a finished one is asked)
        s.log(f"{s.run.path}: all {s.cfg.epochs} epochs are done; nothing to resume "
              f"(start a longer run from it with --init {s.run.path}).")
        return False
    if left == "no-resume-point":
        raise UsageError(f"--resume {s.run.path}: it stopped on its time budget, but without its resume point "
                         f"({s.run.last.name}, which older fer-edge deleted); start a new run from its weights "
                         f"with --init {s.run.path}.")
    spent = float(s.state.get("train_seconds", 0.0)) / 60
    if more_minutes is not None:
        s.cfg = replace(s.cfg, max_minutes=round(spent + more_minutes, 3))
        s.log(f"continuing for {more_minutes:g} more minutes (the run has trained {spent:.1f})")
    elif finished:
        s.cfg = replace(s.cfg, max_minutes=None)
        s.log(f"continuing without a time budget, until epoch {s.cfg.epochs} or early stopping")
    s.state["budget_reached"] = False
    return True


def _settle_options(s: _Session) -> None:
    """Check every option before any heavy work, then make a new run's paths absolute (so that
    `--resume` works from any directory); look up the architecture and the class map once."""
    from fer_edge.training.registry import get_arch

    validate_config(s.cfg)
    if not s.resumed:
        s.cfg = _absolute(s.cfg, Path.cwd())
    s.info = get_arch(s.cfg.arch)
    s.class_map = parse_classes(s.cfg.classes)


def _load_data(s: _Session) -> None:
    """Seed every RNG, then load the splits (and a stratified --max-train subsample): a data error stops
    the run here, before a run directory exists."""
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.keras_backends import set_random_seed

    cfg = s.cfg
    set_random_seed(cfg.seed)
    s.splits = load_splits(cfg.data, s.class_map, cfg.val_split, cfg.seed, cfg.strict, cfg.cache_dir)
    s.x_train, s.y_train = s.splits.x_train, s.splits.y_train
    if len(s.y_train) == 0:
        raise UsageError(f"{cfg.data}: no training images (expected a train/ folder or Training rows).")
    if cfg.max_train and cfg.max_train < len(s.y_train):
        idx = stratified_sample(s.y_train, cfg.max_train, cfg.seed)
        s.x_train, s.y_train = s.x_train[idx], s.y_train[idx]


def _prepare_run(s: _Session) -> None:
    """Create the run directory of a new run, resolve the architecture's defaults, and write config.json
    (status running) and spec.json now: an interrupted or crashed run is still described on disk."""
    from fer_edge import keras_backends as kb
    from fer_edge.runstatus import process_identity, this_host
    from fer_edge.training.registry import from_scratch

    cfg, info = s.cfg, s.info
    if not s.resumed:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        s.run = RunDir.create(Path(cfg.out), f"{stamp}-{cfg.arch}-{_classes_tag(s.class_map)}")
    two_phase = cfg.two_phase
    if two_phase is None:
        two_phase = bool(info.defaults.get("two_phase")) and not from_scratch(cfg.weights)
    s.config = {
        "status": "running",
        "train_config": asdict(cfg),
        "resolved": {"lr": cfg.lr if cfg.lr is not None else info.default_lr(cfg.weights),
                     "optimizer": cfg.optimizer or info.defaults.get("optimizer", "adam"),
                     "schedule": cfg.schedule or info.defaults.get("schedule", "plateau"),
                     "precise_bn": cfg.precise_bn if cfg.precise_bn is not None else info.defaults.get("precise_bn", 0),
                     "two_phase": two_phase},
        "class_map": s.class_map.to_dict(),
        "data": s.splits.summary(),
        "fer_edge_version": __version__,
        "keras_backend": s.backend,
        "backend_version": kb.version(),
        "device": kb.describe(),
        "keras_version": s.keras.__version__,
        "started": datetime.now().isoformat(timespec="seconds"),
        # who trains it: `fer-edge runs` and `--resume` tell a live run from a killed one (runstatus)
        "pid": os.getpid(),
        "host": this_host(),
        **process_identity(os.getpid()),  # boot_id, pid_start: a reused id is not this run's trainer
    }
    if s.resumed:
        s.config["started"] = s.saved.get("started")
        s.config["resumed"] = datetime.now().isoformat(timespec="seconds")
        _check_same_data(s)
    write_json(s.run.config, s.config)
    s.spec = ModelSpec(labels=list(s.class_map.labels), input_shape=list(info.input_shape),
                       class_map=s.class_map.to_dict(), arch=cfg.arch, source_run=s.run.name,
                       data_fingerprint=s.splits.fingerprint, fer_edge_version=__version__)
    write_json(s.run.spec, json.loads(s.spec.to_json()))


def _check_same_data(s: _Session) -> None:
    """A resumed run reads its data again, maybe on another machine: say so when it is not the data of
    the earlier epochs (content fingerprints; runs started before them recorded a per-copy cache key,
    which cannot tell), and keep every fingerprint the run has trained on in config.json."""
    from fer_edge.data import is_content_fingerprint

    saved = s.saved.get("data") if isinstance(s.saved.get("data"), dict) else {}
    earlier = saved.get("earlier_fingerprints")
    before = [f for f in [*(earlier if isinstance(earlier, list) else []), saved.get("fingerprint")]
              if is_content_fingerprint(f)][-8:]
    now = s.splits.fingerprint
    if before and before[-1] != now:
        s.log(f"warning: {s.cfg.data} is not the data this run trained on so far (fingerprint {now[:19]}… "
              f"where its earlier epochs had {before[-1][:19]}…); training goes on, and config.json keeps both")
    earlier = [f for f in before if f != now]
    if earlier:
        s.config["data"]["earlier_fingerprints"] = list(dict.fromkeys(earlier))


def _fit_inputs(s: _Session, devices: list[str] | None) -> None:
    """Batches, class weights, the distribution strategy and the phase plan. Made before the model,
    in this order, so that seeded runs draw the same random numbers as before."""
    from fer_edge import keras_backends as kb
    from fer_edge.data import class_weights
    from fer_edge.training.mixed_precision import cpu_hint
    from fer_edge.training.pipeline import make_batches

    cfg, splits, num_classes = s.cfg, s.splits, s.class_map.num_classes
    s.log(f"training on {kb.describe()}")
    hint = cpu_hint(cfg.mixed_precision, s.backend, kb.gpus())
    if hint:
        s.log(hint)
    extra = {} if s.backend == "tensorflow" else {"prefetch": _loader_threads()}  # tf.data has its own
    first_epoch = int(s.state["epoch"]) if s.resumed else 0  # a resume goes on, not from epoch 0's batches
    s.train_ds = make_batches(s.x_train, s.y_train, num_classes, cfg.batch_size, first_epoch, shuffle=True,
                              augment=cfg.augment, seed=cfg.seed, mix=cfg.mix, mix_alpha=cfg.mix_alpha,
                              erasing=cfg.erasing, **extra)
    s.val_ds = make_batches(splits.x_val, splits.y_val, num_classes, 256) if len(splits.y_val) else None
    s.class_weight = class_weights(s.y_train, num_classes) if cfg.class_weight == "balanced" else None
    s.strategy = get_strategy(devices) if s.backend == "tensorflow" else _SingleDevice()
    lr = s.config["resolved"]["lr"]
    s.phases = [(1, cfg.epochs, lr, None)]
    if s.config["resolved"]["two_phase"]:  # pretrained backbone: frozen first, then its top fine-tuned
        defaults = s.info.defaults
        s.phases = [(1, max(1, cfg.epochs // 2), lr, None),
                    (2, cfg.epochs, defaults.get("finetune_lr", 1e-5), defaults.get("finetune_fraction", 0.3))]


def _loader_threads() -> int:
    """Threads that build the next training batches on JAX/PyTorch: with a GPU, all but two cores (at most
    8), since one thread cannot augment a batch as fast as the GPU trains on it; on a CPU none, where
    they would take cores from the training itself. $FER_EDGE_LOADER_THREADS overrides (several
    trainings sharing one machine split its cores)."""
    from fer_edge.keras_backends import gpus

    env = os.environ.get("FER_EDGE_LOADER_THREADS", "").strip()
    if env:
        if not env.isdigit():
            raise UsageError(f"FER_EDGE_LOADER_THREADS must be a whole number >= 0, got {env!r}.")
        return int(env)
    return min(8, max(1, (os.cpu_count() or 1) - 2)) if gpus() else 0


def _build_model(s: _Session) -> None:
    """The model to fit, inside the strategy's scope: the resume point (last.keras, with its optimizer)
    when resuming, else a new one (optionally warm-started from --init); and the frozen --teacher."""
    from fer_edge.training.mixed_precision import float32_twin
    from fer_edge.training.registry import create_model

    cfg = s.cfg
    with s.strategy.scope():
        if s.resumed and s.run.last.is_file():
            s.model = s.keras.models.load_model(s.run.last, safe_mode=True)
            s.log(f"resuming {s.run.path} at epoch {s.state['epoch']} (phase {s.state.get('phase', 1)})")
        else:
            s.model = create_model(cfg.arch, s.info.input_shape, s.class_map.num_classes, weights=cfg.weights)
            if cfg.init:
                warm_start(s.model, cfg.init, s.log, s.class_map)
        # built after the model, so that a seed initialises the model as it did before the twin existed
        s.twin = float32_twin(lambda: create_model(cfg.arch, s.info.input_shape, s.class_map.num_classes))
        if s.policy != "float32":
            s.log(f"mixed precision: {s.policy} (model.keras is saved as float32)")
        if cfg.teacher:
            from fer_edge.training.distill import load_teachers

            sources = teacher_sources(cfg.teacher)
            s.teacher, s.teacher_projection = load_teachers(sources, tuple(s.model.inputs[0].shape[1:]), s.class_map)
            whose = ["its"] if len(sources) == 1 else [f"{name}'s" for name in sources]
            mapped = "".join(f", {w} {p.shape[0]} classes mapped onto the student's {s.class_map.num_classes}"
                             for w, p in zip(whose, s.teacher_projection) if p is not None)
            tta = "" if cfg.kd_tta == "none" else f", teacher TTA {cfg.kd_tta}"
            names = (sources[0] if len(sources) == 1 else
                     f"the mean of {len(sources)} teachers ({', '.join(sources)})")
            s.log(f"distilling from {names} (T {cfg.kd_temperature}, alpha {cfg.kd_alpha}{tta}{mapped})")


def _fit_phases(s: _Session, callbacks: list | None) -> None:
    """Fit each phase not yet done. A phase resumed from last.keras keeps its compiled optimizer; a fresh
    phase (and any distillation: the wrapper is never saved) is compiled anew. Stops on the time budget,
    and after early stopping in the last phase."""
    resuming = s.resumed
    fit_model = s.model
    for phase, end_epoch, phase_lr, fraction in s.phases:
        if s.state["epoch"] >= end_epoch:
            continue
        fresh_phase = not (resuming and s.state.get("phase", 1) == phase and s.run.last.is_file())
        # a model loaded from last.keras without its optimizer (a distilled student is saved bare) has no
        # `optimizer` attribute at all on some backends, hence getattr
        if fresh_phase or s.teacher is not None or getattr(s.model, "optimizer", None) is None:
            compile_lr = phase_lr
            if s.teacher is not None and not fresh_phase and s.state.get("lr"):
                compile_lr = float(s.state["lr"])
            fit_model = _compile(s, compile_lr, fraction)
            if s.teacher is not None and not fresh_phase:
                _restore_distiller_optimizer(s, fit_model)
        # the monitors of a resumed phase continue from its epochs so far (the cosine schedule's base stays
        # the phase's own learning rate)
        start = max([0] + [end for p, end, *_ in s.phases if p < phase])
        done = _val_history(s.run, start, s.state["epoch"]) if not fresh_phase else []
        cbs = _callbacks(s, phase, end_epoch, phase_lr, callbacks, done)
        resuming = False if phase == 1 else resuming  # the next phase always starts fresh
        try:
            hist = fit_model.fit(s.train_ds, validation_data=s.val_ds, epochs=end_epoch,
                                 initial_epoch=s.state["epoch"], class_weight=s.class_weight, callbacks=cbs,
                                 verbose=2, shuffle=False)
        finally:
            _close_logs(cbs)
        if s.state.get("budget_reached"):
            break
        if len(hist.epoch) and hist.epoch[-1] + 1 < end_epoch:
            s.log(f"early stopping after epoch {hist.epoch[-1] + 1}")
            if phase == len(s.phases):
                break


def _restore_distiller_optimizer(s: _Session, distiller) -> None:
    """A resumed distillation continues its optimizer (moments, step count) from last_optimizer.npz; a run
    checkpointed before that file existed restarts it at the saved learning rate, and says so."""
    from fer_edge.training.distill import restore_optimizer_state

    with s.strategy.scope():
        why = restore_optimizer_state(distiller.optimizer, distiller.trainable_variables, s.run.last_optimizer,
                                      s.state["epoch"])
    if why:
        s.log(f"distillation optimizer restarted at learning rate {s.state.get('lr')}: {why}")


def _close_logs(callbacks: list) -> None:
    """Close the files callbacks hold open (CSVLogger's history.csv): Keras closes them in on_train_end,
    which an interrupted fit (Ctrl-C, SIGTERM) never reaches; the rows written so far are flushed."""
    for cb in callbacks:
        fh = getattr(cb, "csv_file", None)
        if fh is not None and not fh.closed:
            fh.close()


def _compile(s: _Session, lr: float, fraction: float | None):
    """Compile the model (or its distillation wrapper) for one phase; -> the model to fit."""
    cfg, keras = s.cfg, s.keras
    fit_model = s.model
    with s.strategy.scope():
        if s.config["resolved"]["two_phase"]:
            _set_backbone_trainable(s.model, fraction)
        if s.teacher is not None:
            from fer_edge.training.distill import make_distiller

            fit_model = make_distiller(s.model, s.teacher, cfg.kd_temperature, cfg.kd_alpha,
                                       s.teacher_projection, tta=cfg.kd_tta)
        fit_model.compile(optimizer=_optimizer(s.config["resolved"]["optimizer"], lr, cfg.weight_decay),
                          loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                          metrics=["accuracy"])
    return fit_model


def _callbacks(s: _Session, phase: int, end_epoch: int, lr: float, extra: list | None,
               done: list[float]) -> list:
    """In the order Keras calls them at each epoch's end: history (before the schedules add a
    learning_rate column, which would not match the header of a resumed run's history.csv), early stopping
    and the lr schedule (so that the checkpoint saves the rate the next epoch uses), the checkpoint
    (before the caller's callbacks, so that one that interrupts still finds the epoch saved), the
    caller's callbacks, and the time budget (what is left of it). `done`: the validation accuracies of
    this phase's epochs before a resume, which early stopping and the plateau schedule continue from."""
    from fer_edge.training import monitors
    from fer_edge.training.mixed_precision import float32_copy

    cfg, keras = s.cfg, s.keras
    resumed = monitors.replay(done, cfg.patience, lr) if done else None
    if resumed is not None and s.val_ds is not None:
        s.log(f"early stopping continues: best val accuracy {resumed.stop_best:.4f}, {resumed.stop_wait} of "
              f"{cfg.patience} epochs without improvement")
    cbs = [keras.callbacks.CSVLogger(str(s.run.history), append=True)]
    if s.val_ds is not None:
        cbs.append(monitors.early_stopping(cfg.patience, resumed))
    if s.config["resolved"]["schedule"] == "cosine":
        total, base = end_epoch, lr
        cbs.append(keras.callbacks.LearningRateScheduler(
            lambda e, _lr: float(base * 0.5 * (1 + math.cos(math.pi * e / total)))))
    elif s.val_ds is not None:
        cbs.append(monitors.plateau(cfg.patience, resumed))
    n_bn = s.config["resolved"].get("precise_bn", 0)
    if n_bn and s.val_ds is not None:  # measured on the statistics of the weights as they are (precise_bn)
        from fer_edge.data import stratified_sample
        from fer_edge.training import precise_bn

        # shuffled: the sample keeps the data's order, grouped by class, and one-class batches would
        # miss the variance between classes
        idx = np.random.default_rng(cfg.seed).permutation(stratified_sample(s.y_train, n_bn, cfg.seed))
        cbs.append(precise_bn.callback(s.x_train[idx].astype("float32"), cfg.batch_size, s.log))
        s.log(f"precise BN: BatchNorm statistics re-estimated on {len(idx)} training faces before each validation")
    cbs += [_EpochCheckpoint.make(s.run, s.state, phase, lambda m: float32_copy(m, s.twin)), *(extra or [])]
    if cfg.max_minutes:
        cbs.append(_Budget.make(cfg.max_minutes * 60 - float(s.state.get("train_seconds", 0.0))
                                - (time.time() - s.t0), s.log, s.state))
    return cbs


def _val_history(run: RunDir, start: int, stop: int) -> list[float]:
    """val_accuracy of epochs start..stop-1 from history.csv (`RunDir.read_history`: an epoch written twice
    keeps its last row). Empty if the file lacks any of them (a run without validation, or a damaged history)."""
    if stop <= start:
        return []
    rows = {int(r["epoch"]): r.get("val_accuracy") for r in run.read_history()}
    wanted = [rows.get(e) for e in range(start, stop)]
    return wanted if all(v is not None for v in wanted) else []


def _save_progress(s: _Session) -> None:
    """Add this session's wall time to the run's total (a resumed run keeps counting) in state.json."""
    s.train_seconds = time.time() - s.t0 + float(s.state.get("train_seconds", 0.0))
    s.state["train_seconds"] = s.train_seconds
    write_json(s.run.state, s.state)


def _interrupted(s: _Session) -> Path:
    """Mark the run interrupted (the CLI exits 128 + signal for it) and say how to continue it."""
    s.config["status"] = s.status
    write_json(s.run.config, s.config)
    s.log(f"interrupted after epoch {s.state['epoch']}; continue with: fer-edge train --resume {s.run.path}")
    s.log(str(s.run.path))
    return s.run.path


def _final_evaluation(s: _Session) -> None:
    """Evaluate the best model (model.keras; the last epoch when there was no validation split) on every
    split: metrics.json, the spec's validation metrics (export's gate reads them) and the plots."""
    from fer_edge.data import stratified_sample
    from fer_edge.metrics import classification_report
    from fer_edge.training.flops import count_macs

    cfg, run, state, splits, class_map = s.cfg, s.run, s.state, s.splits, s.class_map
    if not run.model.is_file():  # no validation split: the last epoch is the model
        from fer_edge.training.mixed_precision import float32_copy

        save_keras_atomic(float32_copy(s.model, s.twin), run.model)
    best = s.keras.models.load_model(run.model, safe_mode=True, compile=False)
    metrics: dict[str, Any] = {"labels": list(class_map.labels), "splits": {}}
    for name in ("train", "val", "test"):
        x, y = (s.x_train, s.y_train) if name == "train" else splits.split(name)
        if name == "train" and len(y) > TRAIN_EVAL_LIMIT:  # big backbones: a full pass costs minutes
            idx = stratified_sample(y, TRAIN_EVAL_LIMIT, cfg.seed)
            x, y = x[idx], y[idx]
        metrics["splits"][name] = classification_report(y, _predict(best, x), class_map.labels)
    metrics["val_source"], metrics["test_source"] = splits.val_source, splits.test_source
    metrics.update({
        "arch": cfg.arch,
        "classes": class_map.describe(),
        "params": int(best.count_params()),
        "macs": count_macs(best),
        "size_bytes": run.model.stat().st_size,
        "epochs_run": int(state["epoch"]),
        "budget_minutes": cfg.max_minutes,
        "budget_reached": bool(state.get("budget_reached")),
        "best_epoch": int(state["best_epoch"]),
        "train_seconds": round(s.train_seconds, 1),
        "images_per_second": round(len(s.y_train) * state["epoch"] / max(s.train_seconds, 1e-9), 1),
        "epoch_seconds": state.get("epoch_seconds", []),
        "hardware": _hardware(),
    })
    write_json(run.metrics, metrics)
    val = metrics["splits"]["val"]
    s.spec.metrics = {"val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                      "val_source": splits.val_source,
                      # the export gate measures on the hold-out: say whether this model never saw it,
                      # nor the models its weights (--init) or soft targets (--teacher) came from
                      "holdout_unseen": bool(splits.y_holdout is not None and len(splits.y_holdout))
                      and all(holdout_unseen(src) for src in (cfg.init, *teacher_sources(cfg.teacher)) if src),
                      "holdout_source": splits.holdout_source}
    write_json(run.spec, json.loads(s.spec.to_json()))
    _plots(run, val["confusion"], list(class_map.labels))


def _finish(s: _Session) -> Path:
    """Mark the run finished, drop the spent resume point (the best model is kept) and refresh the
    leaderboard of --out."""
    s.config["status"] = "finished"
    s.config["finished"] = datetime.now().isoformat(timespec="seconds")
    write_json(s.run.config, s.config)
    if s.state.get("budget_reached") and s.state["epoch"] < s.cfg.epochs:  # stopped on time, with epochs left
        s.log(f"stopped on its time budget after epoch {s.state['epoch']}; train on with: "
              f"fer-edge train --resume {s.run.path} --max-minutes M")
    else:
        s.run.last.unlink(missing_ok=True)
        s.run.last_optimizer.unlink(missing_ok=True)
    write_leaderboard(Path(s.cfg.out))
    if s.resumed and export_is_current(s.run) is False:
        s.log(f"{s.run.export_dir} is of an earlier model.keras (the run found a better epoch since): "
              f"export it again, e.g. fer-edge export {s.run.path} --format tflite --quantize int8")
    return s.run.path


def _hardware() -> str:
    from fer_edge.sysinfo import cpu_model

    gpus = _gpus()
    return f"{cpu_model()}, {os.cpu_count()} cores, " + (f"{gpus} GPU(s)" if gpus else "no GPU")


def _gpus() -> int:
    from fer_edge.keras_backends import gpus

    return gpus()


def _predict(model, x: np.ndarray) -> np.ndarray:
    """Probabilities of an in-memory model on any backend (a traced tf.function on TensorFlow)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from fer_edge.training.keras_backend import predict_probs

        return predict_probs(model, x)
    out = model.predict(x.astype(np.float32), batch_size=512, verbose=0)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out, np.float32)
