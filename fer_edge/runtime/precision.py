"""`--precision auto|int8|fp32`: which bundled file to run on *this* CPU.

int8 is not faster everywhere: it is 3-4x faster than fp32 on an x86 CPU with VNNI (LiteRT, measured
here), but other CPU classes (x86 without VNNI, where onnxruntime needs its slower exact kernels;
small ARM cores without the dot-product extension) can be the other way round. Rather than a table
of guesses, `auto` measures both files for a fraction of a second on the machine it lands on, keeps
the faster one and remembers the verdict (keyed by CPU, backend, library version and files) in the
cache folder. Both files passed the same export gate, so this trades no accuracy for speed (the
export report gives each file's accuracy and agreement). The choice and its numbers are printed.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.errors import UsageError, unknown

PRECISIONS = ("auto", "int8", "fp32")


@dataclass
class Choice:
    precision: str
    path: Path
    reason: str
    ms: dict  # precision -> measured ms per face (batch 1), when measured

    def describe(self) -> str:
        return f"precision {self.precision} ({self.reason})"


def _cache_file() -> Path:
    return Path(os.environ.get("FER_EDGE_CACHE", Path.home() / ".cache" / "fer-edge")) / "precision.json"


def _key(backend: str, files: dict[str, Path], threads: int | None) -> str:
    from fer_edge.sysinfo import cpu_features, cpu_model

    h = hashlib.sha1()
    for part in (cpu_model(), " ".join(cpu_features()), backend, str(threads or 0), os.environ.get("FER_EDGE_CPU_FLAGS", "")):
        h.update(part.encode())
    for p in sorted(files.values()):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    try:
        import importlib.metadata as md

        h.update(md.version({"litert": "ai-edge-litert"}.get(backend, backend)).encode())
    except Exception:
        pass
    return h.hexdigest()[:20]


def _time_ms(backends: dict, n: int = 40) -> dict[str, float]:
    """precision -> median ms per face at batch 1, the candidates timed in turns (`timing.time_interleaved`)."""
    from fer_edge.timing import time_interleaved

    def call(b):
        x = np.random.default_rng(0).integers(0, 256, (1, *b.spec.input_shape), dtype=np.uint8)
        return lambda: b.predict(x)

    samples = time_interleaved({p: call(b) for p, b in backends.items()}, warmup=5, min_runs=n)
    return {p: float(np.median(v)) for p, v in samples.items()}


def choose(files: dict[str, Path], backend: str | None, precision: str = "auto", threads: int | None = None,
           use_cache: bool = True) -> Choice:
    """files: precision -> path of the same model (e.g. {"int8": ..., "fp32": ...})."""
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if precision != "auto":
        if precision not in files:
            raise UsageError(f"no {precision} file here (have: {', '.join(files)}).")
        return Choice(precision, files[precision], "asked for", {})
    if len(files) == 1:
        (p, path), = files.items()
        return Choice(p, path, "the only file", {})
    from fer_edge.runtime.backends import load_backend

    key = _key(backend or "auto", files, threads)
    cache = _cache_file()
    saved: dict = {}
    if use_cache:
        try:
            saved = json.loads(cache.read_text())
        except (OSError, ValueError):
            saved = {}
    if isinstance(saved.get(key), dict) and saved[key].get("precision") in files:
        hit = saved[key]
        return Choice(hit["precision"], files[hit["precision"]], hit["reason"] + ", cached", hit.get("ms", {}))
    loaded = {p: load_backend(path, backend=backend, threads=threads) for p, path in files.items()}
    ms = {p: round(v, 4) for p, v in _time_ms(loaded).items()}
    best = min(ms, key=ms.get)
    other = ", ".join(f"{p} {v:.3f} ms" for p, v in sorted(ms.items(), key=lambda kv: kv[1]))
    reason = f"fastest on this CPU: {other} per face"
    if use_cache:
        saved[key] = {"precision": best, "reason": reason, "ms": ms}
        try:
            from fer_edge.outputs import atomic_write_text

            atomic_write_text(cache, json.dumps(saved))
        except OSError:
            pass  # a cache is an optimisation
    return Choice(best, files[best], reason, ms)
