"""`fer-edge train`: one architecture, a list, or `--arch all` (then a leaderboard)."""
from __future__ import annotations

from typing import List, Optional

import typer

from fer_edge.cli.common import handle_errors
from fer_edge.cli.app import app
from fer_edge.spec import TTA_MODES

DEFAULT_DATA = "../shared/fer2013"


def _mp_help() -> str:
    from fer_edge.training.mixed_precision import MIXED_PRECISION

    return ("Mixed-precision training (GPUs): " + " | ".join(f"{k}: {v[1]}" for k, v in MIXED_PRECISION.items())
            + ". model.keras is always float32.")


@app.command("train")
@handle_errors
def train_cmd(
    ctx: typer.Context,
    data: str = typer.Option(DEFAULT_DATA, "--data", help="FER2013: Kaggle folder (train/, test/) or fer2013.csv."),
    arch: str = typer.Option("edgenet", "--arch", help="Architecture, comma list, or 'all' (see `fer-edge models`)."),
    classes: str = typer.Option("7", "--classes", help="7 | 4 | 2 | happy,angry | 'neg=angry+sad,happy'."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default: the architecture's)."),
    label_smoothing: float = typer.Option(0.1, "--label-smoothing", min=0.0, max=0.5),
    seed: int = typer.Option(42, "--seed"),
    out: str = typer.Option("runs", "--out", help="Folder that receives run directories and the leaderboard."),
    val_split: str = typer.Option("auto", "--val-split", help="auto (PublicTest when present) | publictest | 0.1"),
    class_weight: str = typer.Option("none", "--class-weight", help="balanced | none"),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Augment training batches (flip, rotate, "
                                 "shift, zoom, brightness, contrast); never part of the saved model."),
    weights: str = typer.Option("none", "--weights", help="Backbones: imagenet | none | PATH to no-top weights."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam | adamw | sgd (default: the arch's)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="plateau | cosine (default: the arch's)."),
    patience: int = typer.Option(10, "--patience", help="EarlyStopping patience (epochs)."),
    max_train: Optional[int] = typer.Option(None, "--max-train", help="Use a stratified subsample of N training images."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Wall-time budget per architecture; "
                                                "with --resume, for this continuation."),
    mix: str = typer.Option("none", "--mix", help="Batch mixing: none | mixup | cutmix."),
    mix_alpha: float = typer.Option(0.2, "--mix-alpha", min=0.01, help="Beta(alpha, alpha) for --mix."),
    erasing: float = typer.Option(0.0, "--erasing", min=0.0, max=1.0, help="Random Erasing probability."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", min=0.0, help="Decoupled weight decay (adamw, sgd)."),
    init: Optional[str] = typer.Option(None, "--init", help="Warm start from a run directory or .keras model (layers matched by name)."),
    strict: bool = typer.Option(False, "--strict", help="Stop on unreadable files / bad rows instead of skipping."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an interrupted run directory, or one that "
                                         "stopped on its --max-minutes budget (with its own options; only "
                                         "--max-minutes may be given)."),
    teacher: Optional[List[str]] = typer.Option(None, "--teacher", help="Distil from this run directory or .keras "
                                                "model (its soft targets on each augmented batch; never saved with the "
                                                "student). Repeat it for an ensemble: the mean of the teachers' "
                                                "probabilities. A teacher with a spec may know more classes than "
                                                "--classes (a 7-class model teaching 4)."),
    kd_temperature: float = typer.Option(3.0, "--kd-temperature", help="Distillation temperature T."),
    kd_alpha: float = typer.Option(0.7, "--kd-alpha", help="Weight of the teacher's soft targets (1 - A: the labels)."),
    kd_tta: str = typer.Option("none", "--kd-tta", help=f"Teacher test-time augmentation: {' | '.join(TTA_MODES)} "
                               "(flip: its predictions averaged over each batch and its mirror image)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Keras backend: tensorflow | jax | torch "
                                          "(default: $KERAS_BACKEND, else tensorflow). The run directory is the "
                                          "same on each; export loads model.keras under TensorFlow."),
    mixed_precision: str = typer.Option("off", "--mixed-precision", help=_mp_help()),
    precise_bn: Optional[int] = typer.Option(None, "--precise-bn", min=0, help="Re-estimate BatchNorm statistics on N "
                                             "clean training faces before each validation (0: off; default: the "
                                             "arch's, 4096 for the ImageNet backbones). Changes what is measured "
                                             "and saved, not the training; may be given with --resume."),
):
    """Train on FER2013 and write a complete run directory (printed last)."""
    if resume:
        _only_budget_with_resume(ctx)  # before Keras loads
    from fer_edge.keras_backends import select_backend

    select_backend(backend)  # before anything imports Keras: Keras reads its backend once
    from fer_edge.labels import parse_classes
    from fer_edge.training.registry import resolve_archs
    from fer_edge.training.train import TrainConfig, train, validate_config, write_leaderboard

    if resume:
        run = train(TrainConfig(data=data), resume=resume, more_minutes=max_minutes, precise_bn=precise_bn)
        typer.echo(str(run))
        return _exit_for([run])
    parse_classes(classes)
    names = resolve_archs(arch)
    configs = [
        TrainConfig(data=data, arch=name, classes=classes, epochs=epochs, batch_size=batch_size, lr=lr,
                    label_smoothing=label_smoothing, seed=seed, out=out, val_split=val_split,
                    class_weight=class_weight, augment=augment, weights=weights, optimizer=optimizer,
                    schedule=schedule, patience=patience, strict=strict, max_train=max_train,
                    max_minutes=max_minutes, mix=mix, mix_alpha=mix_alpha, erasing=erasing,
                    weight_decay=weight_decay, init=init,
                    # one teacher is a path in config.json, as before several were allowed
                    teacher=(teacher[0] if len(teacher) == 1 else list(teacher)) if teacher else None,
                    kd_temperature=kd_temperature,
                    kd_alpha=kd_alpha, kd_tta=kd_tta, mixed_precision=mixed_precision, precise_bn=precise_bn)
        for name in names
    ]
    for cfg in configs:
        validate_config(cfg)  # a bad option fails now, before TensorFlow loads and before any run directory
    runs = [train(cfg) for cfg in configs]
    if len(runs) > 1:
        from pathlib import Path

        typer.echo(f"leaderboard: {write_leaderboard(Path(out))}")
    for r in runs:
        typer.echo(str(r))
    _exit_for(runs)


#: what `train --resume` accepts besides the run: the run's saved options are the ones it goes on with
_RESUME_OPTIONS = ("resume", "max_minutes", "backend", "precise_bn")


def _only_budget_with_resume(ctx: typer.Context) -> None:
    """A resumed run continues with the options it was started with; an option given beside --resume
    would be silently ignored, so it is refused instead."""
    from fer_edge.errors import UsageError

    # by name: typer may vendor its own click, whose ParameterSource is another enum
    given = [p for p in ctx.command.params if p.name not in _RESUME_OPTIONS
             and getattr(ctx.get_parameter_source(p.name), "name", "") == "COMMANDLINE"]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        raise UsageError(f"--resume continues a run with its own options; {names} cannot change them "
                         "(only --max-minutes, this continuation's budget, and --precise-bn can). Start a new run, or "
                         "--init one from it.")


def _exit_for(runs) -> None:
    """A run stopped by Ctrl-C/SIGTERM/SIGHUP is saved (resumable) but did not finish: exit 128 + signal."""
    from fer_edge.rundir import RunDir
    from fer_edge.signals import interrupt_exit_code

    for r in runs:
        if RunDir(r).status() == "interrupted":
            raise typer.Exit(interrupt_exit_code())
