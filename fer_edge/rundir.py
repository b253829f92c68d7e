"""The run directory of `fer-edge train`: the one place that knows its layout.

    RUN/config.json    options, class map, data fingerprint, status (running | interrupted | finished),
                       the training process's id and host (`fer_edge.runstatus`)
    RUN/spec.json      labels and input of the model (export, evaluate and the Keras backend read it)
    RUN/state.json     progress, written each epoch (what `train --resume` continues from)
    RUN/last.keras     the resume point, written each epoch; removed when the run finishes, kept when
                       it stopped on its time budget (`train --resume RUN --max-minutes M` goes on)
    RUN/last_optimizer.npz  a distilled run's optimizer state beside it (its last.keras is the bare
                       student, which carries none); removed when the run finishes
    RUN/model.keras    the best model on val accuracy
    RUN/history.csv    one row per epoch
    RUN/metrics.json   the final evaluation (the leaderboard reads only this and config.json)
    RUN/curves.png, RUN/confusion.png
    RUN/export/        `fer-edge export` writes here by default
    OUT/leaderboard.csv, OUT/leaderboard.md   the runs of one --out folder, best first

Ground floor: the standard library, `fer_edge.errors` and `fer_edge.outputs` only (no Keras), so the
CLI, export and bench can find runs and models without loading TensorFlow.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import ModelError, UsageError
from fer_edge.outputs import atomic_write_text

MODEL = "model.keras"
LAST = "last.keras"
LAST_OPTIMIZER = "last_optimizer.npz"
SPEC = "spec.json"
CONFIG = "config.json"
STATE = "state.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
CURVES = "curves.png"
CONFUSION = "confusion.png"
EXPORT_DIR = "export"
LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MD = "leaderboard.md"


@dataclass(frozen=True)
class RunDir:
    """A run directory by its path; each file of the layout is an attribute (nothing is read until asked)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> Path:
        return self.path / MODEL

    @property
    def last(self) -> Path:
        return self.path / LAST

    @property
    def last_optimizer(self) -> Path:
        return self.path / LAST_OPTIMIZER

    @property
    def spec(self) -> Path:
        return self.path / SPEC

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def state(self) -> Path:
        return self.path / STATE

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def curves(self) -> Path:
        return self.path / CURVES

    @property
    def confusion(self) -> Path:
        return self.path / CONFUSION

    @property
    def export_dir(self) -> Path:
        return self.path / EXPORT_DIR

    @classmethod
    def create(cls, out: str | os.PathLike, name: str) -> RunDir:
        """A new, empty run directory OUT/NAME. The exclusive mkdir is what makes it safe: two trainings
        started in the same second into one --out get NAME and NAME-2 instead of sharing one."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for k in range(1, 1000):
            path = out / (name if k == 1 else f"{name}-{k}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise UsageError(f"{out}: cannot create a new run directory named {name}.")

    @classmethod
    def find(cls, path: str | os.PathLike) -> RunDir | None:
        """The run directory `path` is, or the one that holds the file `path`; None when there is no
        config.json there (a .keras file copied elsewhere has no run)."""
        p = Path(path)
        run = cls(p if p.is_dir() else p.parent)
        return run if run.config.is_file() else None

    def read_config(self) -> dict[str, Any]:
        """config.json as written by `train` (OSError / ValueError when missing or damaged)."""
        return json.loads(self.config.read_text())

    def read_state(self) -> dict[str, Any]:
        """state.json (the progress `--resume` continues from); {} before the first epoch ends."""
        return json.loads(self.state.read_text()) if self.state.is_file() else {}

    def read_history(self) -> list[dict[str, float]]:
        """history.csv, one row per epoch in epoch order, its numbers as floats. An epoch written twice
        (a crash between its history row and its checkpoint, redone by the resume) keeps its last row.
        [] when the file is missing or damaged (a row that is not numbers)."""
        import csv

        if not self.history.is_file():
            return []
        rows: dict[int, dict[str, float]] = {}
        try:
            for row in csv.DictReader(self.history.read_text().splitlines()):
                rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if k != "epoch" and v not in (None, "")}
        except (KeyError, ValueError, TypeError, OSError):
            return []
        return [{"epoch": e, **rows[e]} for e in sorted(rows)]

    def status(self) -> str | None:
        """running | interrupted | finished; None when config.json is missing or unreadable."""
        try:
            return self.read_config().get("status")
        except (OSError, ValueError):
            return None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (a backbone's .keras is 100+ MB)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_is_current(run: RunDir) -> bool | None:
    """Whether RUN/export/export_report.json was made from the run's present model.keras: False after the
    run trained on (a budget-stopped run resumed) and found a better epoch; None when unknown (no report,
    or one written before reports carried `source_sha256`)."""
    report = run.export_dir / "export_report.json"
    try:
        sha = json.loads(report.read_text()).get("source_sha256")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(sha, str) or not run.model.is_file():
        return None
    return sha == file_sha256(run.model)


def model_file(source: str | os.PathLike) -> Path:
    """A run directory (a folder holding model.keras) -> its model.keras; anything else -> itself,
    unchecked: the commands and options that take either (evaluate, explain, --init, --teacher) say
    themselves what is wrong with it."""
    p = Path(source)
    return RunDir(p).model if RunDir(p).model.is_file() else p


def resolve_model(source: str | os.PathLike) -> tuple[Path, RunDir | None]:
    """A run directory or a .keras file -> (its model.keras, the run directory or None); a ModelError
    that says what to pass instead."""
    p = Path(source)
    if p.is_dir():
        run = RunDir(p)
        if run.model.is_file():
            return run.model, run
        raise ModelError(f"{p}: no {MODEL} in this folder; pass a run directory from `fer-edge train` or a .keras file.")
    if not p.exists():
        raise ModelError(f"{p}: no such model file or run directory.")
    if p.suffix != ".keras":
        raise ModelError(f"{p}: export takes a .keras model or a run directory (got {p.suffix or 'no suffix'}).")
    return p, RunDir.find(p)


def spec_file_beside(model: str | os.PathLike) -> Path | None:
    """The spec of a .keras model: <stem>.spec.json beside it, else its run's spec.json; None if neither."""
    path = Path(model)
    for spec_file in (path.with_name(path.stem + ".spec.json"), RunDir(path.parent).spec):
        if spec_file.is_file():
            return spec_file
    return None


def read_spec_beside(model: str | os.PathLike):
    """The spec beside a .keras model (`spec_file_beside`), read as untrusted metadata: a ModelSpec, None when
    there is none, ModelError when it is there but damaged or invalid."""
    from fer_edge.spec import ModelSpec

    spec_file = spec_file_beside(model)
    if spec_file is None:
        return None
    try:
        text = spec_file.read_bytes()
    except OSError as exc:
        raise ModelError(f"{spec_file}: cannot read it ({exc.__class__.__name__}).") from None
    return ModelSpec.from_json(text, where=str(spec_file))


def teacher_sources(value) -> list:
    """A run's `--teacher` record (`TrainConfig.teacher`, config.json's train_config) as a list: None -> [],
    one path (every run before ensembles, and still for one teacher) -> [it], several (an ensemble) -> them,
    as recorded: anything else is one entry, so that callers reading a hand-edited config.json see it and
    refuse it (each must be a string)."""
    if not value:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def holdout_unseen(model: str | os.PathLike, _visited: frozenset = frozenset()) -> bool:
    """True only when this model, and every model its weights or soft targets came from (`train --init`,
    `--teacher`, followed back), trained without the gate hold-out. Why follow them: a warm start from a
    model that saw the hold-out carries what it learned there, and the export gate would then report a
    hold-out accuracy on *seen* images as unseen. Anything unknown (no spec, no record, an ancestor moved
    away, a loop) counts as seen: the report may understate, never overstate."""
    path = model_file(model).resolve()
    if path in _visited or len(_visited) > 16:
        return False
    spec_file = spec_file_beside(path)
    run = RunDir.find(path)
    try:  # hand-edited or damaged JSON of any shape reads as "unknown"
        metrics = json.loads(spec_file.read_text()).get("metrics") or {} if spec_file else {}
        config = run.read_config() if run else {}
        own = metrics.get("holdout_unseen")
        if own is None:  # runs written before the spec said it: their config.json's count of hold-out images
            own = bool((config.get("data") or {}).get("n_holdout"))
        train_config = config.get("train_config") or {}
        # several teachers (an ensemble) are a list: each is followed back
        sources = [s for s in (train_config.get("init"), *teacher_sources(train_config.get("teacher"))) if s]
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return own is True and all(isinstance(src, str) and holdout_unseen(src, _visited | {path}) for src in sources)


# ----------------------------------------------------------------------------- leaderboard
LEADERBOARD_COLUMNS = ["run", "model", "classes", "status", "train_acc", "train_loss", "val_acc", "val_loss",
                       "val_macro_f1", "val_source", "params", "macs_m", "size_kb", "epochs", "train_min"]


def leaderboard_rows(runs_dir: str | os.PathLike) -> list[dict]:
    """One row per run directory of `runs_dir` (from config.json and metrics.json only), best val accuracy
    first; an unfinished run gets a row with its status and no numbers."""
    rows = []
    for cfg_file in sorted(Path(runs_dir).glob(f"*/{CONFIG}")):
        run = RunDir(cfg_file.parent)
        try:
            config = run.read_config()
            m = json.loads(run.metrics.read_text()) if run.metrics.is_file() else None
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


def write_leaderboard(runs_dir: str | os.PathLike) -> Path:
    """OUT/leaderboard.csv and .md: the study's results table, from the runs' metrics.json only."""
    import csv
    import io

    runs_dir = Path(runs_dir)
    rows = leaderboard_rows(runs_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, LEADERBOARD_COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in LEADERBOARD_COLUMNS})
    atomic_write_text(runs_dir / LEADERBOARD_CSV, buf.getvalue())

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))

    md = ["| " + " | ".join(LEADERBOARD_COLUMNS) + " |", "|" + "---|" * len(LEADERBOARD_COLUMNS)]
    md += ["| " + " | ".join(fmt(r.get(k)) for k in LEADERBOARD_COLUMNS) + " |" for r in rows]
    atomic_write_text(runs_dir / LEADERBOARD_MD, "\n".join(md) + "\n")
    return runs_dir / LEADERBOARD_MD
