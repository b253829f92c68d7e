"""`fer-edge predict` on image files and folders: annotated copies plus per-face JSON."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_edge.formats import IMAGE_SUFFIXES
from fer_edge.errors import DataError, FerEdgeError



def collect_images(paths: list[str | Path]) -> list[Path]:
    """Files named, and image files under folders named (sorted); each file once."""
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
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def read_image(path: Path) -> np.ndarray:
    try:
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. an image whose header claims more pixels than OpenCV allows
        raise DataError(f"{path}: not a readable image ({str(exc).strip().splitlines()[-1][:120]}).") from None
    if img is None or img.size == 0:
        raise DataError(f"{path}: not a readable image (empty, corrupt or unsupported format).")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:  # 32-bit float TIFF/EXR and the like: the shared converter checks the range
        from fer_edge.preprocess import to_gray

        try:
            img = to_gray(img)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}.") from None
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise DataError(f"{path}: {img.shape[2]} colour channels; expected gray, BGR or BGRA.")
    return img


def write_image_atomic(path: Path, image: np.ndarray) -> None:
    """cv2.imwrite under a temporary name with the same suffix (OpenCV picks the format from it), then
    renamed: an annotated image is complete or absent."""
    from fer_edge.outputs import atomic_path

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise DataError(f"cannot write {path}.")


def predict_images(recognizer, paths: list[str | Path], output: str | Path | None = None,
                   overlay=None, overwrite: bool = False, log=None) -> list[dict]:
    """Run the recognizer on every image; write annotated copies to `output` when given.

    One bad image does not stop the batch: its record has an "error" and no "faces" (callers decide
    the exit code). Output names are unique per input (see outputs.plan_annotated_outputs), never an input,
    and existing files are refused before any work unless `overwrite`."""
    from fer_edge.outputs import plan_annotated_outputs
    from fer_edge.runtime.draw import draw_results

    files = collect_images(paths)
    targets = plan_annotated_outputs(files, output, overwrite)
    records = []
    for f, target in zip(files, targets):
        try:
            img = read_image(f)
            results = recognizer.predict(img)
        except (FerEdgeError, cv2.error) as exc:
            exc = exc if isinstance(exc, FerEdgeError) else DataError(f"{f}: OpenCV cannot process it ({exc.__class__.__name__}).")
            records.append({"image": str(f), "error": str(exc)})
            if log:
                log(f"skipped {f}: {exc}")
            continue
        rec = {"image": str(f), "width": int(img.shape[1]), "height": int(img.shape[0]),
               "faces": [r.to_dict() for r in results]}
        if target is not None:
            drawn = draw_results(img, results)
            if overlay is not None:
                drawn = overlay(drawn, results)
            write_image_atomic(target, drawn)
            rec["annotated"] = str(target)
        records.append(rec)
    return records
