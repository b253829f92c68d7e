#!/usr/bin/env python3
"""Is model B better than model A, or only different? Both score the same faces (PublicTest and the gate
hold-out): each one's accuracy, single crop and flip-averaged, the faces only one of them gets right, the
exact two-sided McNemar p-value on those, and their top-1 agreement (docs/results.md, "The bundle's
successor"). A half-point gain on 3,589 faces is often p > 0.3: chance.

  python3 scripts/paired.py fer_edge/models/fer_edge_default_int8.tflite \
      zoo/20261207-183201-edgenet-7c/export/edgenet_7c_int8.tflite --data ../shared/fer2013   # ~1 minute

Any file `fer-edge evaluate` reads (.tflite, .onnx; .keras with the [train] extra), through the same
backends; both must name the same labels.
"""
from __future__ import annotations

import argparse
import sys
from math import comb

import numpy as np


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p: under "no difference" each discordant face is a fair coin."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--data", default="../shared/fer2013")
    ap.add_argument("--splits", default="val,holdout", help="comma list of val, holdout, train, test")
    args = ap.parse_args(argv)

    from fer_edge.data import SPLIT_NAMES, load_splits
    from fer_edge.errors import FerEdgeError
    from fer_edge.evaluate import predict_all
    from fer_edge.runtime.backends import load_backend
    from fer_edge.sysinfo import cpu_model

    splits_wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
    bad = [s for s in splits_wanted if s not in SPLIT_NAMES]
    if bad or not splits_wanted:
        print(f"error: --splits {args.splits}: use a comma list of {', '.join(SPLIT_NAMES)}.", file=sys.stderr)
        return 2
    try:
        a, b = load_backend(args.a), load_backend(args.b)
        if list(a.spec.labels) != list(b.spec.labels):
            print("error: the two models name different labels; compare models of one label set.", file=sys.stderr)
            return 2
        data = load_splits(args.data, a.spec.class_map_obj(), "auto")
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{cpu_model()}; A = {args.a} ({a.name}); B = {args.b} ({b.name})")
    for split in splits_wanted:
        x, y = data.split(split)
        if not len(y):
            print(f"{split}: no faces")
            continue
        pa, pb = predict_all(a, x), predict_all(b, x)
        mirror = x[:, :, ::-1].copy()  # NHWC: axis 2 is the width
        fa, fb = pa + predict_all(a, mirror), pb + predict_all(b, mirror)
        ra, rb = pa.argmax(1) == y, pb.argmax(1) == y
        only_a, only_b = int((ra & ~rb).sum()), int((~ra & rb).sum())
        print(f"{split} ({len(y)} faces): A {ra.mean():.2%} (flip {np.mean(fa.argmax(1) == y):.2%}), "
              f"B {rb.mean():.2%} (flip {np.mean(fb.argmax(1) == y):.2%}); right only for A {only_a}, only for B "
              f"{only_b}; exact McNemar p = {mcnemar_exact(only_a, only_b):.2f}; "
              f"top-1 agreement {np.mean(pa.argmax(1) == pb.argmax(1)):.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
