"""`python -m fer_edge.runtime.batch_predict MODEL IN.npy OUT.npy [--backend B] [--threads N]`

Probabilities of a model on a saved batch of images, in a process of its own. The export gate
runs this under an emulated CPU (`fer_edge.sysinfo.EMULATED_CPUS`) to see what a file answers on a
CPU class it is not running on. Runtime only: no TensorFlow.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fer_edge.runtime.batch_predict")
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("outputs")
    ap.add_argument("--backend", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--spec", default=None, help="the spec (JSON file) of a model export has just written and "
                    "not yet stamped: the file is then trusted")
    a = ap.parse_args(argv)
    from fer_edge.errors import FerEdgeError
    from fer_edge.runtime.backends import load_backend

    try:
        spec = None
        if a.spec:
            from pathlib import Path

            from fer_edge.spec import ModelSpec

            spec = ModelSpec.from_json(Path(a.spec).read_bytes(), a.spec)
        b = load_backend(a.model, backend=a.backend, threads=a.threads, trusted=spec is not None, spec=spec)
        x = np.load(a.inputs, allow_pickle=False)
        probs = [b.predict(x[i:i + a.batch]) for i in range(0, len(x), a.batch)]
        out = np.concatenate(probs) if probs else np.zeros((0, b.spec.num_classes), np.float32)
    except (FerEdgeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from fer_edge.outputs import atomic_path

    with atomic_path(a.outputs) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save adds no .npy suffix to it
            np.save(fh, out.astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
