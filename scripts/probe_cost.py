"""What the child-process probe of untrusted model files costs (docs/reliability.md): the first load of
each bundled file with an empty verified-files cache, the same load once verified, and the load with
the probe switched off (FER_EDGE_TRUST_MODELS=1). Median of --repeats runs, each in a fresh cache.

    python3 scripts/probe_cost.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fer_edge.runtime.backends import installed, load_backend
from fer_edge.runtime.recognizer import BUNDLED_DIR
from fer_edge.sysinfo import cpu_summary


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(cpu_summary())
    print(f"{'file':32} {'backend':12} {'first load':>11} {'verified':>9} {'no probe':>9}  (ms, median of {a.repeats})")
    for f in sorted(BUNDLED_DIR.glob("fer_edge_default_*")):
        backend = {".tflite": "litert", ".onnx": "onnxruntime"}.get(f.suffix)
        if backend is None or not installed(backend):
            continue
        first, again, trusted = [], [], []
        for _ in range(a.repeats):
            with tempfile.TemporaryDirectory() as cache:
                os.environ["FER_EDGE_CACHE"] = cache
                first.append(_ms(lambda: load_backend(f, backend=backend)))
                again.append(_ms(lambda: load_backend(f, backend=backend)))
            os.environ["FER_EDGE_TRUST_MODELS"] = "1"
            trusted.append(_ms(lambda: load_backend(f, backend=backend)))
            del os.environ["FER_EDGE_TRUST_MODELS"]
        print(f"{f.name:32} {backend:12} {statistics.median(first):11.1f} {statistics.median(again):9.1f} "
              f"{statistics.median(trusted):9.1f}")


if __name__ == "__main__":
    main()
