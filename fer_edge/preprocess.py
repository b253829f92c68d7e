"""THE face -> tensor function, shared by the training data loader and the runtime.

Training images and live camera crops go through exactly the same code, so the two
cannot drift (a golden-array test pins the output). Normalisation (scaling to 0..1)
is NOT done here: it lives inside each model as a Rescaling layer, so every exported
file carries it and the runtime feeds raw 0..255 pixels.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

PREPROCESS_VERSION = 1  # bump when the output of `preprocess_face` changes (invalidates caches)


def to_gray(image: np.ndarray, rgb: bool = False) -> np.ndarray:
    """Any image (gray, BGR, RGB with rgb=True, BGRA; uint8, uint16 or float) -> 2-D uint8 gray.

    uint16 is scaled from 0..65535; floats in 0..1 are scaled from 0..1, other floats and integers are
    taken as 0..255; values outside those ranges, NaN or infinity are an error, never clipped silently."""
    img = np.asarray(image)
    if img.size == 0 or img.ndim not in (2, 3) or min(img.shape[:2]) == 0:
        raise ValueError(f"image must be a non-empty 2-D gray or 3-D colour array, got shape {img.shape}")
    if img.dtype == np.uint16:
        # 16-bit images (PNG/TIFF from cameras and scanners) span 0..65535: scale, never clip
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        if not (np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating)):
            raise ValueError(f"image dtype {img.dtype} is not a pixel type (use uint8, uint16 or float)")
        was_float = np.issubdtype(img.dtype, np.floating)
        img = img.astype(np.float32)
        if not np.all(np.isfinite(img)):
            raise ValueError("image has NaN or infinite pixels")
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"image pixels span {lo:g}..{hi:g}; expected 0..1 or 0..255 (uint16 images: pass the "
                             "uint16 array, it is scaled)")
        # floats in 0..1 are scaled up; anything else is taken as 0..255
        if was_float and hi <= 1.0:
            img = img * 255.0
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 1:
            img = img[:, :, 0]
        elif channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if rgb else cv2.COLOR_BGR2GRAY)
        elif channels == 4:
            img = cv2.cvtColor(img, cv2.COLOR_RGBA2GRAY if rgb else cv2.COLOR_BGRA2GRAY)
        else:
            raise ValueError(f"image has {channels} channels; expected 1, 3 or 4")
    return np.ascontiguousarray(img)


def preprocess_face(
    image: np.ndarray, size: Sequence[int] = (48, 48), channels: int = 1, rgb: bool = False
) -> np.ndarray:
    """Face crop (any size/colour/dtype) -> uint8 array of shape (H, W, channels).

    Gray conversion, then INTER_AREA when shrinking (anti-aliased, like the FER2013
    crops were made) or INTER_LINEAR when enlarging.
    """
    gray = to_gray(image, rgb=rgb)
    h, w = int(size[0]), int(size[1])
    if gray.shape != (h, w):
        shrink = gray.shape[0] > h or gray.shape[1] > w
        gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    out = gray[:, :, None]
    if channels == 3:
        out = np.repeat(out, 3, axis=2)
    elif channels != 1:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return np.ascontiguousarray(out)


def crop_box(image: np.ndarray, box: Sequence[int], margin: float = 0.0) -> np.ndarray:
    """Crop box=(x, y, w, h) grown by `margin` (fraction of the box side), clipped to the image."""
    x, y, w, h = (int(v) for v in box)
    dx, dy = int(round(w * margin)), int(round(h * margin))
    H, W = image.shape[:2]
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(W, x + w + dx), min(H, y + h + dy)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} lies outside the {W}x{H} image")
    return image[y0:y1, x0:x1]


def preprocess_batch(crops: Sequence[np.ndarray], size: Sequence[int], channels: int = 1, rgb: bool = False) -> np.ndarray:
    """Several crops -> one (N, H, W, C) uint8 batch for a single inference call."""
    if not crops:
        return np.zeros((0, int(size[0]), int(size[1]), channels), np.uint8)
    return np.stack([preprocess_face(c, size, channels, rgb) for c in crops])
