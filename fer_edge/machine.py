"""What machine a benchmark ran on: CPU, cores, RAM, OS, runtime versions, GPUs the runtimes can see, and
this host's measured GEMM peaks (the ceiling a row's efficiency is a share of).

Ground floor (stdlib, numpy, `fer_edge.sysinfo`, `fer_edge.version`; onnxruntime imported on use), split
out of the benchmark so that anything reporting numbers can describe the host without the benchmark rows.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path

import numpy as np

from fer_edge.version import __version__
from fer_edge.sysinfo import cpu_dict, cpu_model
from fer_edge.timing import time_calls

RUNTIME_VERSIONS = ("numpy", "opencv-python-headless", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert",
                    "tflite-runtime", "tensorflow-cpu", "tensorflow", "keras", "jax", "jaxlib", "torch")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def gpu_status() -> dict:
    """What GPUs the installed runtimes can see (without importing TensorFlow)."""
    out = {"onnxruntime_cuda": False, "nvidia_smi": False}
    try:
        import onnxruntime as ort

        out["onnxruntime_cuda"] = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        pass
    out["nvidia_smi"] = any(Path(p, "nvidia-smi").is_file() for p in os.environ.get("PATH", "").split(os.pathsep))
    out["devices"] = _nvidia_gpus() if out["nvidia_smi"] else []
    if out["devices"]:
        out["summary"] = ", ".join(out["devices"]) + ("; onnxruntime CUDA" if out["onnxruntime_cuda"] else
                                                      "; onnxruntime on CPU only (no onnxruntime-gpu)")
    else:
        out["summary"] = "available (onnxruntime CUDA)" if out["onnxruntime_cuda"] else "not available"
    return out


def _nvidia_gpus() -> list[str]:
    """'NAME (MEMORY)' of each NVIDIA GPU, from nvidia-smi (no CUDA library is loaded); [] on any failure."""
    import subprocess

    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if r.returncode != 0:
        return []
    return [" (".join(p.strip() for p in line.split(",", 1)) + ")" for line in r.stdout.splitlines() if "," in line]


def environment() -> dict:
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "ram_gb": _ram_gb(), "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "versions": {d: v for d in RUNTIME_VERSIONS if (v := _version(d))}, "fer_edge": __version__,
        "gpu": gpu_status(), "cpu_info": cpu_dict(),
        "blas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ},
    }


# Two one-node ONNX graphs (MatMul fp32, MatMulInteger u8 x s8), serialised once with the onnx package,
# so the runtime-only install can measure this host's compute ceiling with onnxruntime's own GEMMs.
_PEAK_MODELS = {
    "fp32": "CAg6XgoRCgFBCgFCEgFZIgZNYXRNdWwSBHBlYWtaFQoBQRIQCg4IARIKCgMSAW4KAxIBa1oVCgFCEhAKDggBEgoKAxIBawoDEgFtYhUKAVkSEAoOCAESCgoDEgFuCgMSAW1CBAoAEA0=",
    "int8": "CAg6ZQoYCgFBCgFCEgFZIg1NYXRNdWxJbnRlZ2VyEgRwZWFrWhUKAUESEAoOCAISCgoDEgFuCgMSAWtaFQoBQhIQCg4IAxIKCgMSAWsKAxIBbWIVCgFZEhAKDggGEgoKAxIBbgoDEgFtQgQKABAN",
}


def measure_peaks(threads: list[int], n: int = 1024, seconds: float = 0.4) -> dict:
    """GMAC/s of a large fp32 and int8 (VNNI where the CPU has it) matrix product, per thread count."""
    import base64

    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    rng = np.random.default_rng(0)
    inputs = {"fp32": (rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)),
              "int8": (rng.integers(0, 255, (n, n), dtype=np.uint8), rng.integers(-127, 127, (n, n), dtype=np.int8))}
    peaks: dict = {}
    for th in threads:
        for kind, blob in _PEAK_MODELS.items():
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = th
            sess = ort.InferenceSession(base64.b64decode(blob), opts, providers=["CPUExecutionProvider"])
            a, b = inputs[kind]
            feed = {"A": a, "B": b}
            # The fastest run, not the mean: a peak is what the hardware reached, and on a shared VM the
            # mean of a 0.4 s window read lower than the backends' own rows (efficiency above 100 %).
            ms = time_calls(lambda: sess.run(None, feed), warmup=1, min_runs=3, min_time=seconds)
            peaks.setdefault(str(th), {})[kind] = round(n ** 3 / (min(ms) / 1e3) / 1e9, 1)
    return peaks
