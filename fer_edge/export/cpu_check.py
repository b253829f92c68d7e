"""Run a model file on a second CPU class: user-mode QEMU imitating that CPU's instruction set
(`fer_edge.sysinfo.EMULATED_CPUS`), in a child process running `fer_edge.runtime.batch_predict`.

What it proves: the answers a file gives on such a CPU (the int8 kernels a runtime picks depend on
the CPU's features: onnxruntime's U8S8 GEMMs saturate on x86 without VNNI). What it does not:
speed (emulation is 10-100x slower and not in proportion).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from fer_edge.errors import ModelError
from fer_edge.sysinfo import FLAGS_ENV, EmulatedCpu


def emulated_probs(model: str | Path, x: np.ndarray, cpu: EmulatedCpu, backend: str | None = None,
                   timeout: float = 3600, spec=None) -> np.ndarray:
    """Probabilities of `model` on `x`, computed by this Python under `cpu.qemu -cpu cpu.cpu`. `spec`: the
    spec of a file export has written and not yet stamped (passed to the child as a JSON file)."""
    pkg_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               TF_CPP_MIN_LOG_LEVEL="3", **{FLAGS_ENV: cpu.flags})
    with tempfile.TemporaryDirectory() as td:
        inp, out = Path(td) / "x.npy", Path(td) / "p.npy"
        np.save(inp, np.ascontiguousarray(x))
        extra = []
        if spec is not None:
            (Path(td) / "spec.json").write_text(spec.to_json())
            extra = ["--spec", str(Path(td) / "spec.json")]
        # the real interpreter binary: QEMU runs an ELF file, not a shell shim
        exe = os.path.realpath(sys.executable)
        cmd = [cpu.qemu, "-cpu", cpu.cpu, exe, "-m", "fer_edge.runtime.batch_predict", str(model), str(inp), str(out),
               "--threads", "1"] + (["--backend", backend] if backend else []) + extra
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ModelError(f"emulated run on {cpu.description} took over {timeout:.0f}s.") from None
        if r.returncode != 0 or not out.is_file():
            tail = [ln for ln in (r.stderr or "").splitlines() if ln.strip() and "warning" not in ln.lower()][-1:]
            raise ModelError(f"emulated run on {cpu.description} failed (exit {r.returncode}): {' '.join(tail)[:200]}")
        return np.load(out)
