"""Probe-load untrusted model files in a child process before this process opens them.

The TFLite interpreter (and, rarely, onnxruntime) trusts the flatbuffer/protobuf it is given: a
bit-flipped `.tflite` with valid metadata segfaulted LiteRT at load (exit 139). A crash cannot be
caught in-process, so the first time a file is seen, a child process (runtime.probe) loads it with the chosen
backend and runs two small batches; if the child dies, times out or fails, the file is refused
with a one-line error. Files that pass are remembered by SHA-256 (and backend) in the cache
(`$FER_EDGE_CACHE/verified_models.json`), so the cost (about 0.25 s, measured on the dev box)
is paid once per file. Files fer-edge itself exported in this process are recorded as verified.

`FER_EDGE_TRUST_MODELS=1` skips the probe (for files you produced yourself, in tight loops).
A file that passes the probe can still be wrong in ways no probe sees (weights flipped on purpose,
with the checksum recomputed): metadata checks bound what it can claim, not what it computes.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from fer_edge.errors import ModelError

PROBE_TIMEOUT_S = 120
TRUST_ENV = "FER_EDGE_TRUST_MODELS"
_MAX_ENTRIES = 2000


def cache_file() -> Path:
    return Path(os.environ.get("FER_EDGE_CACHE", Path.home() / ".cache" / "fer-edge")) / "verified_models.json"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key(digest: str, backend: str) -> str:
    return f"{digest}:{backend}"


def _load_cache() -> dict:
    try:
        d = json.loads(cache_file().read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def remember(path: str | Path, backends: str | tuple[str, ...] | list[str], digest: str | None = None) -> None:
    """Record a file as verified for `backends` (best effort: a read-only cache only costs a re-probe)."""
    from fer_edge.outputs import atomic_write_text

    d = _load_cache()
    digest = digest or file_digest(path)
    for backend in [backends] if isinstance(backends, str) else backends:
        d[_key(digest, backend)] = Path(path).name
    if len(d) > _MAX_ENTRIES:
        d = dict(list(d.items())[-_MAX_ENTRIES:])
    try:
        atomic_write_text(cache_file(), json.dumps(d))
    except OSError:
        pass


def is_verified(path: str | Path, backend: str) -> bool:
    return _key(file_digest(path), backend) in _load_cache()


def verify(path: str | Path, backend: str) -> None:
    """Raise ModelError unless `backend` can load and run `path` in a child process without dying. A file
    not verified before is first prechecked in Python (metadata and checksum: most bad files end there,
    before a process is spawned); a verified one is not read twice (the backend's load re-checks both)."""
    if os.environ.get(TRUST_ENV) == "1":
        return
    digest = file_digest(path)
    if _key(digest, backend) in _load_cache():
        return
    from fer_edge.metadata import precheck

    precheck(path)
    cmd = [sys.executable, "-m", "fer_edge.runtime.probe", backend, str(path)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{path}: {backend} did not finish loading this file in {PROBE_TIMEOUT_S} s; "
                         "it is corrupt or hostile.") from None
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        raise ModelError(f"{path}: {backend} crashes on this file ({sig} in a test load); it is corrupt or "
                         "hostile. Re-download or re-export it.")
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("error: ")]
        msg = lines[-1][len("error: "):] if lines else f"{backend} failed to run it (exit {proc.returncode})"
        raise ModelError(msg if msg.startswith(str(path)) else f"{path}: {msg}")
    remember(path, backend, digest)
