#!/usr/bin/env python3
"""Are a model's BatchNorm statistics what its weights need? The cause check behind docs/results.md's
from-scratch backbones, whose PublicTest accuracy can sit far below their training accuracy early on.

A BatchNormalization layer normalises with the batch's own statistics while training, and with moving
averages of them (momentum 0.99 in keras.applications: about the last 100 batches) at inference. When
the weights change fast (early epochs, a high learning rate), those averages lag behind them, and the
inference model is another network than the one being trained. This script measures PublicTest
accuracy three ways on one saved model:

  saved       the inference model as saved (moving averages)
  batch       every BatchNorm on the test batch's own statistics (training mode, dropout off)
  refreshed   the moving averages re-estimated on N clean training faces with the weights as they are
              (`fer_edge.training.precise_bn.refresh_statistics`: the mean of the batch statistics,
              dropout off, what `train --precise-bn` does before each validation), then inference

`refreshed` far above `saved` means the statistics lag, not the weights: the gap closes as the learning
rate falls, or with a refresh before export.

  python3 scripts/bn_check.py runs/zoo-bb/<run>/last.keras --faces 3589 --calib 4096
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _accuracy(model, x, y, training: bool, batch: int = 256) -> float:
    import keras

    hits = 0
    for i in range(0, len(x), batch):
        p = keras.ops.convert_to_numpy(model(x[i:i + batch], training=training))
        hits += int((np.asarray(p).argmax(1) == y[i:i + batch]).sum())
    return hits / len(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a .keras file or a run directory")
    ap.add_argument("--data", default="../shared/fer2013")
    ap.add_argument("--faces", type=int, default=3589, help="PublicTest faces to score (stratified)")
    ap.add_argument("--calib", type=int, default=4096, help="training faces to re-estimate the statistics on")
    ap.add_argument("--batch", type=int, default=64, help="batch size of the re-estimation (train's default)")
    args = ap.parse_args(argv)

    import keras

    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.labels import parse_classes
    from fer_edge.rundir import model_file
    from fer_edge.sysinfo import cpu_model
    from fer_edge.training.precise_bn import batchnorm_layers, dropout_off, refresh_statistics

    path = model_file(args.model)
    if not path.is_file():
        print(f"bn_check: {args.model}: no such run directory or .keras file.", file=sys.stderr)
        return 2
    splits = load_splits(args.data, parse_classes("7"))
    iv = stratified_sample(splits.y_val, min(args.faces, len(splits.y_val)), 0)
    it = stratified_sample(splits.y_train, min(args.calib, len(splits.y_train)), 0)
    iv = np.random.default_rng(1).permutation(iv)  # batches of mixed classes (the sample is ordered by class)
    xv, yv = splits.x_val[iv].astype("float32"), splits.y_val[iv]
    xt = splits.x_train[it].astype("float32")
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    bns = batchnorm_layers(model)
    print(f"{path}: {len(bns)} BatchNorm layers; PublicTest, {len(yv)} faces ({cpu_model()})")
    saved = _accuracy(model, xv, yv, training=False)
    with dropout_off(model):  # training mode for BatchNorm only
        batch = _accuracy(model, xv, yv, training=True)  # (this updates the moving averages too)
    order = np.random.default_rng(0).permutation(len(xt))
    refresh_statistics(model, xt[order], args.batch)  # replaces the moving averages: `batch` left no trace
    refreshed = _accuracy(model, xv, yv, training=False)
    print(f"  saved statistics      {saved:.2%}")
    print(f"  batch statistics      {batch:.2%}")
    print(f"  refreshed statistics  {refreshed:.2%}  (re-estimated on {len(order) // args.batch * args.batch} "
          f"training faces, batch {args.batch})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
