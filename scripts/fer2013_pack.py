#!/usr/bin/env python3
"""FER2013 as one small lossless file, for machines the data cannot reach otherwise (the lent GPU
machine takes at most 64 MiB of files in all, the repository included).

    python3 scripts/fer2013_pack.py pack ../shared/fer2013 .gpu/fer2013.pack [--usage Training]
    python3 scripts/fer2013_pack.py unpack .gpu/fer2013.pack /tmp/fer2013      # -> /tmp/fer2013/fer2013.csv

pack: every image of the chosen usages (Training, PublicTest; all by default), in fer-edge's decode
order, as the residuals of the LOCO-I/JPEG-LS median predictor (zigzag-coded bytes), xz-compressed:
about 1.7 KB per 48x48 face instead of 2.3 KB raw or 1.8 KB as PNG. unpack: inverts it, checks the
SHA-256 of the decoded pixels against the packed one (lossless, or an error), and writes a Kaggle
fer2013.csv (emotion,pixels,Usage) in the same order, so the gate hold-out (a stratified sample of the
Training rows, by position) is the same images on both machines.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_edge.data import USAGES, load_raw  # noqa: E402
from fer_edge.labels import CSV_CODES, FER2013_LABELS  # noqa: E402

MAGIC = "fer-edge fer2013 pack v1"


def _med(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The median edge detector: a = left, b = above, c = above-left (int16)."""
    return np.where(c >= np.maximum(a, b), np.minimum(a, b), np.where(c <= np.minimum(a, b), np.maximum(a, b), a + b - c))


def encode(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> zigzag MED residuals, uint8, same shape (0 outside the image)."""
    x = images.astype(np.int16)
    a, b, c = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    a[:, :, 1:], b[:, 1:, :], c[:, 1:, 1:] = x[:, :, :-1], x[:, :-1, :], x[:, :-1, :-1]
    r = (x - _med(a, b, c) + 128) % 256 - 128
    return np.where(r >= 0, 2 * r, -2 * r - 1).astype(np.uint8)


def decode(zz: np.ndarray) -> np.ndarray:
    """encode's inverse, one pixel position at a time over all images (prediction needs decoded neighbours)."""
    r = zz.astype(np.int16)
    r = np.where(r % 2 == 0, r // 2, -(r + 1) // 2)
    n, h, w = r.shape
    x = np.zeros((n, h + 1, w + 1), np.int16)  # a zero border row and column stand in for "outside"
    for i in range(1, h + 1):
        for j in range(1, w + 1):
            x[:, i, j] = (_med(x[:, i, j - 1], x[:, i - 1, j], x[:, i - 1, j - 1]) + r[:, i - 1, j - 1]) % 256
    return x[:, 1:, 1:].astype(np.uint8)


def pack(src: str, dest: Path, usages: list[str]) -> None:
    raw = load_raw(src)
    keep = np.isin(raw.usage, [USAGES.index(u) for u in usages])
    images, labels, usage = raw.images[keep], raw.labels[keep], raw.usage[keep]
    meta = {"magic": MAGIC, "source": str(src), "count": int(len(images)), "usages": usages,
            "sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()}
    buf = io.BytesIO()
    np.savez(buf, residuals=encode(images), labels=labels, usage=usage, meta=np.array(json.dumps(meta)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    os.replace(tmp, dest)
    print(f"{dest}: {len(images)} images ({', '.join(usages)}), {dest.stat().st_size / 2**20:.1f} MiB")


def unpack(src: Path, dest_dir: Path) -> Path:
    with np.load(io.BytesIO(lzma.decompress(src.read_bytes())), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("magic") != MAGIC:
            raise SystemExit(f"error: {src} is not a fer-edge FER2013 pack.")
        images, labels, usage = decode(z["residuals"]), z["labels"], z["usage"]
    if hashlib.sha256(images.tobytes()).hexdigest() != meta["sha256"]:
        raise SystemExit(f"error: {src}: decoded pixels do not match the packed checksum; pack it again.")
    code = {label: c for c, label in CSV_CODES.items()}
    digits = np.array([str(v) for v in range(256)])
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / "fer2013.csv"
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for img, lab, use in zip(images, labels, usage):
            fh.write(f"{code[FER2013_LABELS[lab]]},{' '.join(digits[img.ravel()])},{USAGES[use]}\n")
    os.replace(tmp, out)
    print(f"{out}: {len(images)} images ({', '.join(meta['usages'])}), lossless (SHA-256 checked)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src")
    p.add_argument("dest", type=Path)
    p.add_argument("--usage", default="Training,PublicTest", help="comma list of: " + ", ".join(USAGES[:3]))
    u = sub.add_parser("unpack")
    u.add_argument("src", type=Path)
    u.add_argument("dest_dir", type=Path)
    args = ap.parse_args()
    if args.cmd == "pack":
        usages = [s.strip() for s in args.usage.split(",") if s.strip()]
        bad = [s for s in usages if s not in USAGES[:3]]
        if bad:
            raise SystemExit(f"error: unknown usage {bad[0]!r}; choose from {', '.join(USAGES[:3])}.")
        pack(args.src, args.dest, usages)
    else:
        unpack(args.src, args.dest_dir)


if __name__ == "__main__":
    main()
