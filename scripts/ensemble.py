#!/usr/bin/env python3
"""Would an ensemble of our own models make a stronger distillation teacher? PublicTest accuracy of each
model (single crop and flip-averaged) and of every equal-weight average of their flip-averaged
probabilities (docs/results.md, "Distillation").

  python3 scripts/ensemble.py fer_edge/models/fer_edge_default.keras runs/kd7/<run> runs/zoo-bn8/<run> \
      --data ../shared/fer2013            # ~3 minutes on 2 cores for five models

A model is a run directory (its model.keras) or a .keras file; all must name the same labels in their
spec (RUN/spec.json, or NAME.spec.json or its run's spec.json beside a .keras file). Needs the [train] extra (keras).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np


def _resolve(arg: str) -> tuple[Path, list[str]]:
    """A run directory or a .keras file -> (model.keras, the labels its spec names), the way `fer-edge
    export` and `--teacher` find them (rundir.resolve_model, rundir.read_spec_beside)."""
    from fer_edge.errors import ModelError
    from fer_edge.rundir import read_spec_beside, resolve_model

    try:
        model, _run = resolve_model(arg)
        spec = read_spec_beside(model)
    except ModelError as exc:
        raise SystemExit(f"error: {exc}") from None
    if spec is None:
        raise SystemExit(f"error: {arg}: no spec.json says its labels; pass a run directory or a .keras file with "
                         "its .spec.json beside it.")
    return model, list(spec.labels)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="../shared/fer2013")
    args = ap.parse_args(argv)
    resolved = [_resolve(m) for m in args.models]
    labels = resolved[0][1]
    if any(lab != labels for _, lab in resolved):
        raise SystemExit("error: the models name different labels; ensemble models of one label set.")

    import keras

    from fer_edge.data import load_splits
    from fer_edge.labels import parse_classes
    from fer_edge.sysinfo import cpu_model

    x, y = load_splits(args.data, parse_classes(",".join(labels)), "auto").split("val")
    print(f"{cpu_model()}; {len(y)} PublicTest faces; labels {','.join(labels)}")
    probs = []  # by position: the same model may be named twice
    for i, ((path, _), name) in enumerate(zip(resolved, args.models), 1):
        m = keras.models.load_model(path, compile=False)
        single = m.predict(x, batch_size=256, verbose=0)
        probs.append((single + m.predict(x[:, :, ::-1], batch_size=256, verbose=0)) / 2)
        print(f"{i}. {name}: single {np.mean(single.argmax(1) == y):.2%}, flip {np.mean(probs[-1].argmax(1) == y):.2%}",
              flush=True)
    for r in range(2, len(probs) + 1):
        for combo in itertools.combinations(range(len(probs)), r):
            avg = sum(probs[i] for i in combo) / r
            print(f"flip average of models {'+'.join(str(i + 1) for i in combo)}: {np.mean(avg.argmax(1) == y):.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
