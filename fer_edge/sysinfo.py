"""What CPU this is, in the terms that decide int8 speed and int8 correctness.

Ground floor (stdlib only). Every published number and every export report carries
`cpu_summary()`, because the same file runs at different speeds, and an int8 ONNX file can give
different answers, on another CPU class:

- x86-64 without VNNI runs onnxruntime's U8S8 int8 GEMMs with VPMADDUBSW, which adds pairs of
  u8 x s8 products in 16 bits and saturates unless weights are 7-bit (`reduce_range`);
- AVX-512 VNNI / AVX-VNNI (x86) and the dot-product extension (aarch64) make int8 fast.

`EMULATED_CPUS` names the second CPU classes this host can run code as, through user-mode QEMU
(`qemu-x86_64 -cpu Haswell` behaves as an AVX2-only x86-64: same answers as such a CPU, not its
speed): the export gate uses it to check int8 files on a CPU class it is not running on.
"""
from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from functools import lru_cache

#: flag in /proc/cpuinfo -> the name users know, in the order we print them
X86_FEATURES = (("sse4_2", "SSE4.2"), ("avx", "AVX"), ("avx2", "AVX2"), ("fma", "FMA"), ("f16c", "F16C"),
                ("avx512f", "AVX-512F"), ("avx512bw", "AVX-512BW"), ("avx512_vnni", "AVX-512 VNNI"),
                ("avx_vnni", "AVX-VNNI"), ("avx512_bf16", "AVX-512 BF16"), ("amx_int8", "AMX-INT8"),
                ("amx_bf16", "AMX-BF16"))
ARM_FEATURES = (("asimd", "NEON"), ("asimddp", "dot-product"), ("i8mm", "I8MM"), ("fphp", "FP16"),
                ("asimdhp", "NEON-FP16"), ("sve", "SVE"), ("sve2", "SVE2"), ("bf16", "BF16"))


def _cpuinfo() -> dict[str, str]:
    """First processor block of /proc/cpuinfo as key -> value (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    if out:
                        break
                    continue
                k, _, v = line.partition(":")
                out.setdefault(k.strip().lower(), v.strip())
    except OSError:
        pass
    return out


#: /proc/cpuinfo-style flags to assume instead of reading them: user-mode emulators show the host's
#: /proc/cpuinfo, so `export.cpu_check` tells the emulated process which CPU it is.
FLAGS_ENV = "FER_EDGE_CPU_FLAGS"


@lru_cache(maxsize=1)
def cpu_model() -> str:
    info = _cpuinfo()
    for key in ("model name", "hardware", "cpu model"):
        if info.get(key):
            return info[key]
    if info.get("cpu part"):  # aarch64 Linux shows implementer/part codes only
        return f"ARM implementer {info.get('cpu implementer', '?')} part {info['cpu part']}"
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def cpu_features() -> tuple[str, ...]:
    """The SIMD features that matter here, as user-facing names (empty when unknown)."""
    info = _cpuinfo()
    flags = set((os.environ.get(FLAGS_ENV) or info.get("flags") or info.get("features") or "").split())
    table = ARM_FEATURES if is_arm() else X86_FEATURES
    return tuple(name for flag, name in table if flag in flags)


def is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64", "armv8l", "armv7l")


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def has_int8_dot() -> bool:
    """An int8 dot-product instruction that accumulates in 32 bits (no 16-bit saturation)."""
    f = set(cpu_features())
    return bool(f & {"AVX-512 VNNI", "AVX-VNNI", "AMX-INT8", "dot-product", "I8MM"})


def has_amx_bf16() -> bool:
    """x86 matrix units for bfloat16 (AMX-BF16, Sapphire Rapids and newer): where TensorFlow's oneDNN
    convolutions run bfloat16 fast enough that `--mixed-precision bfloat16` can train faster on the CPU.
    AVX-512 BF16 alone (dot-product instructions, no tiles) does not: with oneDNN capped there, bfloat16
    steps were 1.4x slower than float32 (docs/results.md, "`vgg16` in one session")."""
    return is_x86() and "AMX-BF16" in cpu_features()


def u8s8_saturates() -> bool:
    """True where onnxruntime's U8S8 int8 kernels add pairs of products in 16 bits (x86 without VNNI)."""
    return is_x86() and not has_int8_dot()


def cpu_class() -> str:
    """A short CPU-class name: what decides which precision is fast and which int8 file is exact."""
    f = set(cpu_features())
    if is_x86():
        if f & {"AVX-512 VNNI", "AVX-VNNI", "AMX-INT8"}:
            return "x86-64 with VNNI"
        return "x86-64 AVX2, no VNNI" if "AVX2" in f else "x86-64 without AVX2"
    if is_arm():
        return "aarch64 NEON + dot-product" if "dot-product" in f else "aarch64 NEON, no dot-product"
    return platform.machine() or "unknown"


def cpu_summary() -> str:
    """One line for reports and tables, e.g. 'AMD EPYC (x86_64, 2 cores): AVX2, AVX-512 VNNI, ...'."""
    feats = ", ".join(cpu_features()) or "no SIMD features read"
    return f"{cpu_model()} ({platform.machine()}, {os.cpu_count()} cores; {cpu_class()}): {feats}"


def cpu_dict() -> dict:
    return {"model": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(),
            "class": cpu_class(), "features": list(cpu_features())}


@dataclass(frozen=True)
class EmulatedCpu:
    name: str
    qemu: str  # user-mode QEMU binary
    cpu: str  # its -cpu model
    host: str  # platform.machine() it runs on
    description: str
    flags: str  # its /proc/cpuinfo flags (what FLAGS_ENV tells the emulated process)


#: CPU classes a host can imitate for correctness checks (never for timings)
EMULATED_CPUS: tuple[EmulatedCpu, ...] = (
    EmulatedCpu("x86-avx2", "qemu-x86_64", "Haswell", "x86_64", "x86-64 AVX2, no AVX-512/VNNI (QEMU Haswell)",
                "sse4_1 sse4_2 avx avx2 fma f16c"),
)


def emulator_for(name: str) -> EmulatedCpu | None:
    """The emulated CPU `name` if this host can run it (right host arch, QEMU installed), else None."""
    for e in EMULATED_CPUS:
        if e.name == name and platform.machine().lower() == e.host and shutil.which(e.qemu):
            return e
    return None
