"""`fer-edge train`: fit loop, run directory, per-epoch checkpoints, resume, leaderboard.

A run directory holds everything needed to reproduce and to resume:
config.json (arguments, class map, data fingerprint, status), spec.json (labels/input for
export and evaluate), last.keras + state.json (written each epoch), model.keras (best on
val accuracy), history.csv, metrics.json, curves.png, confusion.png.
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

from fer_edge import __version__
from fer_edge.errors import UsageError
from fer_edge.labels import parse_classes, ClassMap
from fer_edge.spec import ModelSpec


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
    teacher: str | None = None  # distillation: a run directory or .keras model (training.distill)
    kd_temperature: float = 3.0
    kd_alpha: float = 0.7  # weight of the teacher's soft targets (1 - alpha: the labels)
    extra: dict[str, Any] = field(default_factory=dict)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp name, then rename): never a half-written file."""
    from fer_edge.outputs import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=str))  # no sort_keys: class maps keep output order


def save_keras_atomic(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


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
               if getattr(cfg, f) and not Path(getattr(cfg, f)).is_absolute()}
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
    """Create a run directory atomically; two trainings started in the same second into one --out get
    NAME and NAME-2 instead of colliding."""
    out.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        run_dir = out / (name if k == 1 else f"{name}-{k}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise UsageError(f"{out}: cannot create a new run directory named {name}.")


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
    if isinstance(cfg.patience, bool) or not isinstance(cfg.patience, int) or cfg.patience < 0:
        raise UsageError(f"--patience must be a whole number >= 0, got {cfg.patience}.")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise UsageError(f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}.")
    from fer_edge.labels import parse_classes
    from fer_edge.training.registry import get_arch

    parse_classes(cfg.classes)
    get_arch(cfg.arch)
    for option, value in (("--init", cfg.init), ("--teacher", cfg.teacher)):
        if value and not (Path(value).is_file() or (Path(value) / "model.keras").is_file()):
            raise UsageError(f"{option} {value}: no such run directory or .keras file.")
    if not (isinstance(cfg.kd_temperature, (int, float)) and math.isfinite(cfg.kd_temperature) and cfg.kd_temperature > 0):
        raise UsageError(f"--kd-temperature must be a finite positive number, got {cfg.kd_temperature}.")
    if not (isinstance(cfg.kd_alpha, (int, float)) and 0.0 <= cfg.kd_alpha <= 1.0):
        raise UsageError(f"--kd-alpha must be in [0, 1], got {cfg.kd_alpha}.")


def warm_start(model, source: str | os.PathLike, log=print) -> int:
    """Copy weights from a saved .keras model into `model`, layer by layer, where name and weight shapes
    match (a 7-class model's features into a 2-class model: every layer but the classifier). Why by
    name: the registry's builders name every layer, so the same architecture lines up exactly."""
    from fer_edge.training.load import load_model_option

    src, path = load_model_option(source, "--init")
    by_name = {layer.name: layer for layer in src.layers}
    copied = skipped = 0
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        other = by_name.get(layer.name)
        theirs = other.get_weights() if other is not None else []
        if len(theirs) == len(weights) and all(a.shape == b.shape for a, b in zip(weights, theirs)):
            layer.set_weights(theirs)
            copied += 1
        else:
            skipped += 1
    if copied == 0:
        raise UsageError(f"--init {path}: no layer matches this architecture by name and shape; "
                         f"warm-start from a model of the same --arch.")
    log(f"warm start from {path}: {copied} layers copied, {skipped} left at their initialisation")
    return copied


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
    def make(run_dir: Path, state: dict, phase: int):
        import keras

        class EpochCheckpoint(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                student = getattr(self.model, "student", self.model)  # a distiller is never saved
                val_acc = float(logs.get("val_accuracy", float("nan")))
                if not math.isnan(val_acc) and val_acc > state.get("best_val_accuracy", -1.0):
                    state["best_val_accuracy"] = val_acc
                    state["best_epoch"] = epoch + 1
                    save_keras_atomic(student, run_dir / "model.keras")
                save_keras_atomic(student, run_dir / "last.keras")
                state["epoch"] = epoch + 1
                state["phase"] = phase
                state["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                write_json(run_dir / "state.json", state)

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


def _plots(run_dir: Path, history_csv: Path, cm: list, labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history_csv.is_file():
        import csv

        rows = list(csv.DictReader(history_csv.open()))
        if rows:
            ep = [int(r["epoch"]) + 1 for r in rows]
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            for ax, key in zip(axes, ("accuracy", "loss")):
                ax.plot(ep, [float(r[key]) for r in rows], label="train")
                if f"val_{key}" in rows[0]:
                    ax.plot(ep, [float(r[f"val_{key}"]) for r in rows], label="val")
                ax.set_xlabel("epoch"), ax.set_title(key), ax.legend(), ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(run_dir / "curves.png", dpi=100)
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
        fig.savefig(run_dir / "confusion.png", dpi=100)
        plt.close(fig)


def train(cfg: TrainConfig, resume: str | os.PathLike | None = None, devices: list[str] | None = None,
          log=print, callbacks: list | None = None) -> Path:
    """Train one architecture; returns the run directory (complete, or marked interrupted).

    Runs on the Keras backend of this process (`training.backend.select_backend`, set by the CLI's
    --backend or $KERAS_BACKEND): TensorFlow, JAX or PyTorch, with the same run directory."""
    from fer_edge._optional import require
    from fer_edge import keras_backends as kb

    backend_name = kb.select_backend()
    keras = require("keras")

    from fer_edge.data import class_weights, load_splits
    from fer_edge.metrics import classification_report
    from fer_edge.training.flops import count_macs
    from fer_edge.training.pipeline import make_batches
    from fer_edge.training.registry import create_model, get_arch

    state: dict[str, Any] = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "phase": 1}
    if resume:
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise UsageError(f"--resume {run_dir}: not a run directory (no config.json).")
        try:
            saved = json.loads((run_dir / "config.json").read_text())
            cfg = TrainConfig(**saved["train_config"])
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"--resume {run_dir}: config.json is damaged ({exc.__class__.__name__}); "
                             "start a new run.") from None
        cfg = _absolute(cfg, _started_from(run_dir, cfg.out))
        if (run_dir / "state.json").is_file():
            state.update(json.loads((run_dir / "state.json").read_text()))
        if saved.get("status") == "finished":
            log(f"{run_dir} already finished; nothing to resume.")
            return run_dir
    validate_config(cfg)
    if not resume:
        cfg = _absolute(cfg, Path.cwd())
    info = get_arch(cfg.arch)
    class_map = parse_classes(cfg.classes)
    keras.utils.set_random_seed(cfg.seed)
    splits = load_splits(cfg.data, class_map, cfg.val_split, cfg.seed, cfg.strict, cfg.cache_dir)
    x_train, y_train = splits.x_train, splits.y_train
    if len(y_train) == 0:
        raise UsageError(f"{cfg.data}: no training images (expected a train/ folder or Training rows).")
    if cfg.max_train and cfg.max_train < len(y_train):
        from fer_edge.data import stratified_sample

        idx = stratified_sample(y_train, cfg.max_train, cfg.seed)
        x_train, y_train = x_train[idx], y_train[idx]
    if not resume:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = _new_run_dir(Path(cfg.out), f"{stamp}-{cfg.arch}-{_classes_tag(class_map)}")
    lr = cfg.lr if cfg.lr is not None else info.defaults.get("lr", 1e-3)
    opt_name = cfg.optimizer or info.defaults.get("optimizer", "adam")
    schedule = cfg.schedule or info.defaults.get("schedule", "plateau")
    two_phase = cfg.two_phase
    if two_phase is None:
        two_phase = bool(info.defaults.get("two_phase")) and str(cfg.weights).lower() != "none"
    config = {
        "status": "running",
        "train_config": asdict(cfg),
        "resolved": {"lr": lr, "optimizer": opt_name, "schedule": schedule, "two_phase": two_phase},
        "class_map": class_map.to_dict(),
        "data": splits.summary(),
        "fer_edge_version": __version__,
        "keras_backend": backend_name,
        "backend_version": kb.version(),
        "device": kb.describe(),
        "keras_version": keras.__version__,
        "started": datetime.now().isoformat(timespec="seconds"),
    }
    if resume:
        config["started"] = json.loads((run_dir / "config.json").read_text()).get("started")
        config["resumed"] = datetime.now().isoformat(timespec="seconds")
    write_json(run_dir / "config.json", config)
    spec = ModelSpec(labels=list(class_map.labels), class_map=class_map.to_dict(), arch=cfg.arch,
                     source_run=run_dir.name, data_fingerprint=splits.fingerprint, fer_edge_version=__version__)
    write_json(run_dir / "spec.json", json.loads(spec.to_json()))

    num_classes = class_map.num_classes
    log(f"training on {kb.describe()}")
    train_ds = make_batches(x_train, y_train, num_classes, cfg.batch_size, shuffle=True, augment=cfg.augment,
                            seed=cfg.seed, mix=cfg.mix, mix_alpha=cfg.mix_alpha, erasing=cfg.erasing)
    val_ds = make_batches(splits.x_val, splits.y_val, num_classes, 256) if len(splits.y_val) else None
    cw = class_weights(y_train, num_classes) if cfg.class_weight == "balanced" else None
    strategy = get_strategy(devices) if backend_name == "tensorflow" else _SingleDevice()
    phases = [(1, cfg.epochs, lr, None)]
    if two_phase:
        p1 = max(1, cfg.epochs // 2)
        phases = [(1, p1, lr, None), (2, cfg.epochs, info.defaults.get("finetune_lr", 1e-5),
                                      info.defaults.get("finetune_fraction", 0.3))]
    t0 = time.time()
    status = "finished"
    try:
        with strategy.scope():
            if resume and (run_dir / "last.keras").is_file():
                model = keras.models.load_model(run_dir / "last.keras", safe_mode=True)
                log(f"resuming {run_dir} at epoch {state['epoch']} (phase {state.get('phase', 1)})")
            else:
                model = create_model(cfg.arch, (48, 48, 1), num_classes, weights=cfg.weights)
                if cfg.init:
                    warm_start(model, cfg.init, log)
            teacher = None
            if cfg.teacher:
                from fer_edge.training.distill import load_teacher

                teacher = load_teacher(cfg.teacher, tuple(model.inputs[0].shape[1:]), num_classes)
                log(f"distilling from {cfg.teacher} (T {cfg.kd_temperature}, alpha {cfg.kd_alpha})")
        fit_model = model
        for phase, end_epoch, phase_lr, fraction in phases:
            if state["epoch"] >= end_epoch:
                continue
            fresh_phase = not (resume and state.get("phase", 1) == phase and (run_dir / "last.keras").is_file())
            if fresh_phase or model.optimizer is None or teacher is not None:
                with strategy.scope():
                    if two_phase:
                        _set_backbone_trainable(model, fraction)
                    if teacher is not None:
                        from fer_edge.training.distill import make_distiller

                        # resumed distillation restarts the optimizer at the saved learning rate
                        if not fresh_phase and state.get("lr"):
                            phase_lr = float(state["lr"])
                        fit_model = make_distiller(model, teacher, cfg.kd_temperature, cfg.kd_alpha)
                    fit_model.compile(optimizer=_optimizer(opt_name, phase_lr, cfg.weight_decay),
                                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                                  metrics=["accuracy"])
            resume = None if phase == 1 else resume  # next phase always starts fresh
            cbs = [
                _EpochCheckpoint.make(run_dir, state, phase),
                keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
                *(callbacks or []),
            ]
            if cfg.max_minutes:
                cbs.append(_Budget.make(cfg.max_minutes * 60 - float(state.get("train_seconds", 0.0))
                                        - (time.time() - t0), log, state))
            if val_ds is not None:
                cbs.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=cfg.patience,
                                                               mode="max"))
            start = state["epoch"]
            if schedule == "cosine":
                total, base = end_epoch, phase_lr
                cbs.append(keras.callbacks.LearningRateScheduler(
                    lambda e, _lr: float(base * 0.5 * (1 + math.cos(math.pi * e / total)))))
            elif val_ds is not None:
                cbs.append(keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5,
                                                                   patience=max(2, cfg.patience // 3), min_lr=1e-6))
            hist = fit_model.fit(train_ds, validation_data=val_ds, epochs=end_epoch, initial_epoch=start,
                             class_weight=cw, callbacks=cbs, verbose=2, shuffle=False)
            if state.get("budget_reached"):
                break
            if len(hist.epoch) and hist.epoch[-1] + 1 < end_epoch:
                log(f"early stopping after epoch {hist.epoch[-1] + 1}")
                if phase == len(phases):
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    train_seconds = time.time() - t0 + float(state.get("train_seconds", 0.0))
    state["train_seconds"] = train_seconds
    write_json(run_dir / "state.json", state)
    if status != "finished":
        config["status"] = status
        write_json(run_dir / "config.json", config)
        log(f"interrupted after epoch {state['epoch']}; continue with: fer-edge train --resume {run_dir}")
        log(str(run_dir))
        return run_dir

    best_path = run_dir / "model.keras"
    if not best_path.is_file():  # no validation split: the last epoch is the model
        save_keras_atomic(model, best_path)
    best = keras.models.load_model(best_path, safe_mode=True, compile=False)
    metrics: dict[str, Any] = {"labels": list(class_map.labels), "splits": {}}
    from fer_edge.data import stratified_sample

    for name in ("train", "val", "test"):
        x, y = (x_train, y_train) if name == "train" else splits.split(name)
        if name == "train" and len(y) > TRAIN_EVAL_LIMIT:  # big backbones: a full pass costs minutes
            idx = stratified_sample(y, TRAIN_EVAL_LIMIT, cfg.seed)
            x, y = x[idx], y[idx]
        rep = classification_report(y, _predict(best, x), class_map.labels)
        metrics["splits"][name] = rep
    metrics["val_source"], metrics["test_source"] = splits.val_source, splits.test_source
    metrics.update({
        "arch": cfg.arch,
        "classes": class_map.describe(),
        "params": int(best.count_params()),
        "macs": count_macs(best),
        "size_bytes": best_path.stat().st_size,
        "epochs_run": int(state["epoch"]),
        "budget_minutes": cfg.max_minutes,
        "budget_reached": bool(state.get("budget_reached")),
        "best_epoch": int(state["best_epoch"]),
        "train_seconds": round(train_seconds, 1),
        "images_per_second": round(len(y_train) * state["epoch"] / max(train_seconds, 1e-9), 1),
        "hardware": _hardware(),
    })
    write_json(run_dir / "metrics.json", metrics)
    spec.metrics = {"val_accuracy": metrics["splits"]["val"]["accuracy"], "val_macro_f1": metrics["splits"]["val"]["macro_f1"],
                    "val_source": splits.val_source,
                    # the export gate measures on the hold-out: say whether this model never saw it
                    "holdout_unseen": bool(splits.y_holdout is not None and len(splits.y_holdout)),
                    "holdout_source": splits.holdout_source}
    write_json(run_dir / "spec.json", json.loads(spec.to_json()))
    _plots(run_dir, run_dir / "history.csv", metrics["splits"]["val"]["confusion"], list(class_map.labels))
    config["status"] = "finished"
    config["finished"] = datetime.now().isoformat(timespec="seconds")
    write_json(run_dir / "config.json", config)
    (run_dir / "last.keras").unlink(missing_ok=True)  # the best model is kept; the resume point is spent
    write_leaderboard(Path(cfg.out))
    return run_dir


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


LEADERBOARD_COLUMNS = ["run", "model", "classes", "status", "train_acc", "train_loss", "val_acc", "val_loss",
                       "val_macro_f1", "val_source", "params", "macs_m", "size_kb", "epochs", "train_min"]


def leaderboard_rows(runs_dir: Path) -> list[dict]:
    rows = []
    for cfg_file in sorted(Path(runs_dir).glob("*/config.json")):
        run = cfg_file.parent
        try:
            config = json.loads(cfg_file.read_text())
            m = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else None
        except ValueError:
            continue
        if m is None:
            rows.append({"run": run.name, "model": config.get("train_config", {}).get("arch"),
                         "classes": ", ".join(config.get("class_map", {})), "status": config.get("status", "?")})
            continue
        tr, va = m["splits"]["train"], m["splits"]["val"]
        rows.append({
            "run": run.name, "model": m["arch"], "classes": m["classes"], "status": config.get("status"),
            "train_acc": tr["accuracy"], "train_loss": tr["loss"], "val_acc": va["accuracy"], "val_loss": va["loss"],
            "val_macro_f1": va["macro_f1"], "val_source": m.get("val_source"), "params": m["params"],
            "macs_m": round(m["macs"] / 1e6, 1), "size_kb": round(m["size_bytes"] / 1024, 1),
            "epochs": m["epochs_run"], "train_min": round(m["train_seconds"] / 60, 1),
        })
    rows.sort(key=lambda r: -(r.get("val_acc") or -1))
    return rows


def write_leaderboard(runs_dir: Path) -> Path:
    """runs/leaderboard.csv and .md: the study's results table, from the runs' metrics.json only."""
    import csv
    import io

    rows = leaderboard_rows(runs_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, LEADERBOARD_COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in LEADERBOARD_COLUMNS})
    (runs_dir / "leaderboard.csv.partial").write_text(buf.getvalue())
    os.replace(runs_dir / "leaderboard.csv.partial", runs_dir / "leaderboard.csv")

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))

    md = ["| " + " | ".join(LEADERBOARD_COLUMNS) + " |", "|" + "---|" * len(LEADERBOARD_COLUMNS)]
    md += ["| " + " | ".join(fmt(r.get(k)) for k in LEADERBOARD_COLUMNS) + " |" for r in rows]
    (runs_dir / "leaderboard.md.partial").write_text("\n".join(md) + "\n")
    os.replace(runs_dir / "leaderboard.md.partial", runs_dir / "leaderboard.md")
    return runs_dir / "leaderboard.md"
