"""`fer-edge predict` on image files and folders: annotated copies plus per-face JSON."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fer_edge.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"}


def collect_images(paths: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{p}: no image files in this folder.")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or folder.")
    return files


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise DataError(f"{path}: not a readable image (empty, corrupt or unsupported format).")
    if img.dtype == np.uint16:
        img = (img / 257).astype(np.uint8)
    return img


def write_image_atomic(path: Path, image: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    if not cv2.imwrite(str(tmp), image):
        raise DataError(f"cannot write {path}.")
    os.replace(tmp, path)


def predict_images(recognizer, paths: list[str | Path], output: str | Path | None = None,
                   overlay=None) -> list[dict]:
    """Run the recognizer on every image; write annotated copies to `output` when given."""
    from fer_edge.runtime.draw import draw_results

    files = collect_images(paths)
    out_dir = Path(output) if output else None
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise DataError(f"--output {out_dir}: exists and is not a folder.")
        out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for f in files:
        img = read_image(f)
        results = recognizer.predict(img)
        rec = {"image": str(f), "width": int(img.shape[1]), "height": int(img.shape[0]),
               "faces": [r.to_dict() for r in results]}
        if out_dir is not None:
            drawn = draw_results(img, results)
            if overlay is not None:
                drawn = overlay(drawn, results)
            target = out_dir / (f.stem + "_fer.png")
            write_image_atomic(target, drawn)
            rec["annotated"] = str(target)
        records.append(rec)
    return records
