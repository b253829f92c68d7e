"""The one timing loop (ground floor): the benchmark, the export gate's latency column and the
precision chooser all time calls the same way."""
from __future__ import annotations

import time


def time_calls(fn, *, warmup: int = 5, min_runs: int = 30, min_time: float = 1.0, max_time: float = 30.0) -> list[float]:
    """Warm up, then call until both min_runs and min_time are reached (capped at max_time)."""
    for _ in range(warmup):
        fn()
    samples = []
    t_start = time.perf_counter()
    while True:
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
        elapsed = time.perf_counter() - t_start
        if (len(samples) >= min_runs and elapsed >= min_time) or elapsed >= max_time:
            return samples


def time_interleaved(fns: dict, *, warmup: int = 5, min_runs: int = 30) -> dict[str, list[float]]:
    """Time several functions in turns (a, b, a, b, ...) -> each one's samples in ms. Used where two
    candidates are compared (`--precision auto`): on a shared or throttled CPU a slow spell then slows
    both alike, where timing one after the other can hand it to one of them and flip the choice."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(min_runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t) * 1e3)
    return samples
