"""Write the study's results table (docs/results.md section) from finished runs and their int8 exports.

usage: python3 scripts/results_table.py RUNS_DIR [RUNS_DIR...] > table.md
       python3 scripts/results_table.py --ablation RUNS_DIR > ablation.md
       python3 scripts/results_table.py --epochs RUN [FIRST LAST] > epochs.md
Each run's numbers come from its metrics.json (written by `fer-edge train`); int8 size and latency from
RUN/export/export_report.json (written by `fer-edge export RUN --format tflite --quantize int8`).
The per-epoch tables (--epochs) come from RUN/history.csv, the file `fer-edge train` appends after every
epoch, so a run still in progress (checkpoints/) gets its record regenerated rather than copied by hand.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from fer_edge.rundir import RunDir, export_is_current, teacher_sources


def rows(runs_dirs):
    for d in runs_dirs:
        for cfg in sorted(Path(d).glob("*/config.json")):
            run = cfg.parent
            c = json.loads(cfg.read_text())
            m = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else None
            rep = run / "export" / "export_report.json"
            int8 = None
            if rep.is_file():
                for r in json.loads(rep.read_text())["rows"]:
                    if r["format"] == "tflite" and r["quantization"] == "int8":
                        int8 = r
            yield run, c, m, int8


def _source(path: str) -> str:
    """A run's name for a run directory or a run's model.keras; the file name for any other model."""
    p = Path(path)
    if p.suffix == ".keras":
        return p.parent.name if (p.parent / "config.json").is_file() else p.name
    return p.name


def main(argv):
    print("| model | classes | train acc | train loss | PublicTest acc | PublicTest loss | macro-F1 | params | MACs | "
          "int8 TFLite KB | int8 PublicTest acc | int8 ms/img | epochs (budget) | train min | status |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run, c, m, int8 in rows(argv):
        tc = c["train_config"]
        if m is None:
            print(f"| {tc['arch']} | {tc['classes']} | | | | | | | | | | | | | {c['status']} (run {run.name}) |")
            continue
        tr, va = m["splits"]["train"], m["splits"]["val"]
        budget = f"{m['epochs_run']}" + (f" ({m['budget_minutes']:.4g} min budget{', reached' if m.get('budget_reached') else ''})"
                                          if m.get("budget_minutes") else f" of {tc['epochs']}")
        if tc.get("max_train"):
            budget += f" on {tc['max_train']:,} images"
        if tc.get("init"):
            budget += f", warm start from {_source(tc['init'])}"
        if tc.get("teacher"):
            budget += (f", distilled from {' + '.join(_source(t) for t in teacher_sources(tc['teacher']))} "
                       f"(T {tc['kd_temperature']:g}, α {tc['kd_alpha']:g})")
        if int8 and export_is_current(RunDir(run)) is False:
            i8 = "stale export: the run trained on after it; re-export | | "
        elif int8 and int8["status"] == "ok":
            i8 = f"{int8['size_kb']:.0f} | {int8['val_acc'] * 100:.2f} % | {int8['ms_per_img']:.3f}"
        elif int8:
            i8 = f"gate failed: {int8['note'][:60]} | | "
        else:
            i8 = "not exported | | "
        print(f"| {tc['arch']} | {m['classes']} | {tr['accuracy'] * 100:.2f} % | {tr['loss']:.3f} | "
              f"{va['accuracy'] * 100:.2f} % | {va['loss']:.3f} | {va['macro_f1']:.3f} | {m['params']:,} | "
              f"{m['macs'] / 1e6:.1f} M | {i8} | {budget} | {m['train_seconds'] / 60:.1f} | {c['status']} |")


#: training options an ablation may change; the lever of a run is where it differs from the baseline
LEVERS = ("optimizer", "lr", "weight_decay", "schedule", "augment", "mix", "mix_alpha", "erasing",
          "label_smoothing", "epochs", "init", "classes", "arch")
DEFAULTS = {"mix": "none", "mix_alpha": 0.2, "erasing": 0.0, "init": None}  # fields older runs lack


def ablation(runs_dir):
    """One row per finished run of RUNS_DIR; the oldest run is the baseline, the others say what they changed."""
    runs = [(run, c, m) for run, c, m, _ in rows([runs_dir]) if m is not None]
    if not runs:
        print(f"no finished runs in {runs_dir}")
        return
    base_run, base_cfg, base_m = runs[0]
    base_tc = dict(DEFAULTS, **base_cfg["train_config"])
    base_acc = base_m["splits"]["val"]["accuracy"]
    print("| lever (vs the first row) | PublicTest acc | Δ points | macro-F1 | train acc | epochs | train min | run |")
    print("|---|---|---|---|---|---|---|---|")
    for run, c, m in runs:
        tc = dict(DEFAULTS, **c["train_config"])
        diff = [f"{k}={tc.get(k)}" for k in LEVERS if tc.get(k) != base_tc.get(k)]
        lever = ", ".join(diff) if diff else "baseline"
        va, tr = m["splits"]["val"], m["splits"]["train"]
        print(f"| {lever} | {va['accuracy'] * 100:.2f} % | {(va['accuracy'] - base_acc) * 100:+.2f} | "
              f"{va['macro_f1']:.3f} | {tr['accuracy'] * 100:.2f} % | {m['epochs_run']} | "
              f"{m['train_seconds'] / 60:.1f} | {run.name} |")


#: epochs per table in --epochs: 14 columns keep a row readable on GitHub
EPOCHS_PER_TABLE = 14


def epoch_tables(run: str, first: int | None = None, last: int | None = None) -> str:
    """Markdown tables of PublicTest (val) and training-batch accuracy per epoch, from RUN/history.csv.

    Epochs are numbered from 1 as `fer-edge train` prints them (history.csv counts from 0). The best
    validation epoch is the whole run's so far, not FIRST..LAST's: marked and bolded when it is in range,
    so a later slice of the record never crowns a lesser epoch.
    """
    path = Path(run) / "history.csv"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; pass a run directory written by `fer-edge train`.")
    with path.open(newline="") as f:
        hist = {int(r["epoch"]) + 1: r for r in csv.DictReader(f)}
    if not hist:
        raise SystemExit(f"error: {path} has no epochs yet.")
    best = max(hist, key=lambda e: (float(hist[e]["val_accuracy"]), -e))
    first, last = first or min(hist), last or max(hist)
    epochs = [e for e in sorted(hist) if first <= e <= last]
    if not epochs:
        raise SystemExit(f"error: no epochs between {first} and {last} in {path} (it has {min(hist)}-{max(hist)}).")
    out = []
    for i in range(0, len(epochs), EPOCHS_PER_TABLE):
        chunk = epochs[i:i + EPOCHS_PER_TABLE]
        val = [f"{float(hist[e]['val_accuracy']) * 100:.1f} %" for e in chunk]
        val = [f"**{v}**" if e == best else v for e, v in zip(chunk, val)]
        out += ["| epoch | " + " | ".join(f"{e} (best)" if e == best else str(e) for e in chunk) + " |",
                "|---" * (len(chunk) + 1) + "|",
                "| PublicTest | " + " | ".join(val) + " |",
                "| training batches | " + " | ".join(f"{float(hist[e]['accuracy']) * 100:.1f} %" for e in chunk) + " |",
                ""]
    return "\n".join(out[:-1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--epochs"]:
        if len(sys.argv) not in (3, 5):
            raise SystemExit("usage: python3 scripts/results_table.py --epochs RUN [FIRST LAST]")
        print(epoch_tables(sys.argv[2], *(int(a) for a in sys.argv[3:5])))
    elif sys.argv[1:2] == ["--ablation"]:
        ablation(sys.argv[2] if len(sys.argv) > 2 else "runs/ablation")
    else:
        main(sys.argv[1:] or ["runs"])
