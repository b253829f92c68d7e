#!/usr/bin/env python3
"""Is a model's dense head alive? The cause check behind docs/results.md, "Why the scratch vgg sat in
the majority class".

A model stuck in the majority class outputs the same probabilities for every face. This script shows
where the face-to-face variation dies: for each ReLU layer, the share of units that fire (> 0) for at
least one of N PublicTest faces, and how much the layer's output varies across faces.

  # inspect saved models (a run directory or a .keras file), in inference and training mode
  python3 scripts/head_health.py runs/zoo-long6/<vgg run>/last.keras
  # the matched experiment: the study's head (Dense -> ReLU) against the normalised head
  # (Dense -> BatchNorm -> ReLU), same seed, same batches, the arch's default optimizer and rate
  python3 scripts/head_health.py --arch vgg --steps 400 --every 50

Prints the CPU it ran on; the experiment trains with Keras' train_on_batch, so it needs the [train] extra.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _relu_layers(model) -> list[str]:
    """Names of the layers whose output is a ReLU: conv blocks' `*_relu`, the head's ReLUs (a Dense with a
    relu activation in the study's head, `head_relu*` in the normalised one) and the flatten/GAP input."""
    names = []
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        if layer.name.endswith("_relu") or layer.name.startswith("head_relu") or layer.name in ("flatten", "gap") \
                or (layer.name.startswith("head_dense") and getattr(act, "__name__", "") == "relu"):
            names.append(layer.name)
    return names


def layer_health(model, x: np.ndarray, training: bool, names: list[str] | None = None) -> list[tuple[str, float, float]]:
    """-> [(layer, share of units alive for some face, mean std of the unit across faces)]."""
    import keras

    names = names or _relu_layers(model)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = probe(x, training=training)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    rows = []
    for n, o in zip(names, outs):
        o = np.asarray(keras.ops.convert_to_numpy(o)).reshape(len(x), -1)
        rows.append((n, float((o > 0).any(axis=0).mean()), float(o.std(axis=0).mean())))
    return rows


def _faces(data: str, n: int, split: str = "val"):
    """-> (splits, n faces of `split`, their labels): a stratified sample (folders list faces by class)."""
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.labels import parse_classes

    splits = load_splits(data, parse_classes("7"))
    x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
    idx = stratified_sample(y, n, 0)
    return splits, x[idx].astype("float32"), y[idx]


def inspect(paths: list[str], data: str, n: int) -> None:
    import keras

    from fer_edge.rundir import model_file

    missing = [p for p in paths if not model_file(p).is_file()]
    if missing:
        print(f"head_health: {missing[0]}: no such run directory or .keras file.", file=sys.stderr)
        raise SystemExit(2)
    _, x, _ = _faces(data, n)
    for p in paths:
        model = keras.models.load_model(model_file(p), safe_mode=True, compile=False)
        probs = np.asarray(model.predict(x, verbose=0, batch_size=128))
        top = probs.argmax(1)
        print(f"{p}: predictions' std across {n} PublicTest faces {probs.std(axis=0).mean():.2e}; "
              f"share given the most frequent answer {np.mean(top == np.bincount(top).argmax()):.1%}")
        for training in (False, True):
            print(f"  {'training' if training else 'inference'} mode: layer, units alive for some face, std across faces")
            for name, alive, std in layer_health(model, x, training):
                print(f"    {name:18s} {alive:7.1%}  {std:.3g}")


def experiment(arch: str, data: str, steps: int, every: int, seed: int, n: int) -> None:
    """Train `arch` from scratch twice, head_norm off and on, with the same seed and batches."""
    import keras

    from fer_edge.training.pipeline import make_batches
    from fer_edge.training.registry import create_model, get_arch

    splits, x_probe, y_probe = _faces(data, n, "train")
    info = get_arch(arch)
    lr = info.default_lr("none")  # the experiment trains from random weights
    print(f"{arch}: Adam {lr}, label smoothing 0.1, batch 64, augmentation on (train's defaults); head units "
          f"alive for some of {n} training faces (training mode), every {every} steps")
    for head_norm in (False, True):
        keras.utils.set_random_seed(seed)
        model = create_model(arch, info.input_shape, 7, head_norm=head_norm)
        model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
        head = [name for name in _relu_layers(model) if name.startswith("head_")]
        ds = make_batches(splits.x_train, splits.y_train, 7, 64, shuffle=True, augment=True, seed=seed)
        label = "Dense -> BatchNorm -> ReLU" if head_norm else "Dense -> ReLU (the study's)"
        print(f"  head {label}")
        step, losses = 0, []
        while step <= steps:
            for xb, yb in ds:
                if step % every == 0 or step == steps:
                    alive = "  ".join(f"{nm} {a:6.1%}" for nm, a, _ in layer_health(model, x_probe, True, head))
                    loss = f"{np.mean(losses[-every:]):.3f}" if losses else "  -  "
                    print(f"    step {step:5d}  loss {loss}  {alive}", flush=True)
                if step == steps:
                    step += 1
                    break
                losses.append(float(model.train_on_batch(xb, yb)[0]))
                step += 1
        probs = np.asarray(model.predict(x_probe, verbose=0, batch_size=128))
        top = probs.argmax(1)
        print(f"    after {steps} steps (inference mode): predictions' std across faces {probs.std(axis=0).mean():.2e}, "
              f"share given the most frequent answer {np.mean(top == np.bincount(top).argmax()):.1%}, "
              f"accuracy on these faces {np.mean(top == y_probe):.1%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="run directories or .keras files to inspect")
    ap.add_argument("--arch", help="run the matched experiment on this architecture instead")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--faces", type=int, default=512)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "fer2013"))
    a = ap.parse_args(argv)
    if bool(a.models) == bool(a.arch):
        print("head_health: give model paths to inspect, or --arch NAME for the experiment (not both).", file=sys.stderr)
        return 2
    from fer_edge.sysinfo import cpu_model, cpu_summary

    print(f"cpu: {cpu_model()}; {cpu_summary()}")
    if a.arch:
        experiment(a.arch, a.data, a.steps, a.every, a.seed, a.faces)
    else:
        inspect(a.models, a.data, a.faces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
