#!/usr/bin/env python3
"""Seconds per training step of each architecture on this machine, and the epoch that makes: how long a
zoo row would take here before starting it (docs/results.md, "The whole zoo").

  python3 scripts/step_time.py edgenet efficientnetb0 resnet50v2 resnet50     # ~1 minute on 2 cores
  python3 scripts/step_time.py --mixed-precision bfloat16 vgg16 resnet50        # under a mixed policy

Batch 64 of random 48x48 faces, Adam, the model built as `fer-edge train` builds it (7 classes), two
warm-up steps, then the mean of six; an epoch is the Training faces the trainer sees: the 28,709 less the
gate hold-out (data.HOLDOUT_FRACTION, 27,272 faces), validation not included. With TensorFlow,
`ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI` (oneDNN's switch) times the oneDNN kernels (convolutions, matmuls)
of an AVX-512 CPU without bfloat16 units (Cascade Lake), e.g. bfloat16 converted in software;
TensorFlow's other kernels keep theirs, so it approximates such a CPU, and the first line says so.
(Capped at AVX2, TensorFlow still asks oneDNN for bfloat16 convolutions, which it then refuses.)
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np


def main(argv: list[str]) -> int:
    import argparse

    import keras

    from fer_edge.data import HOLDOUT_FRACTION
    from fer_edge.sysinfo import cpu_model
    from fer_edge.training.mixed_precision import MIXED_PRECISION, policy
    from fer_edge.training.registry import create_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["edgenet"])
    parser.add_argument("--mixed-precision", default="off", choices=list(MIXED_PRECISION),
                        help="the policy `fer-edge train --mixed-precision` would train under")
    args = parser.parse_args(argv)
    names = args.names
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")  # oneDNN's own switch: time a CPU without AMX on one with it
    print(f"{cpu_model()}{f' (oneDNN capped at {cap})' if cap else ''}, keras {keras.__version__} on "
          f"{keras.backend.backend()}, mixed precision {args.mixed_precision}")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 48, 48, 1)).astype("float32")
    y = np.eye(7, dtype="float32")[rng.integers(0, 7, 64)]
    faces = round(28709 * (1 - HOLDOUT_FRACTION))  # per class rounding makes it 27,272
    for name in names:
        with policy(args.mixed_precision):
            model = create_model(name, (48, 48, 1), 7)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
        for _ in range(2):
            model.train_on_batch(x, y)
        t0, n = time.perf_counter(), 6
        for _ in range(n):
            model.train_on_batch(x, y)
        step = (time.perf_counter() - t0) / n
        print(f"{name}: {step * 1000:.0f} ms per step of 64 -> {faces / 64 * step / 60:.1f} min per epoch (training only)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
