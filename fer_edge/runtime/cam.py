"""Class activation maps at the edge, in numpy (Zhou et al. 2016).

A model exported with `fer-edge export --explain` has a second output, the last feature map
(h, w, c); its metadata carries the linear classifier (c x k weights). CAM for class k is then
features @ W[:, k]: no TensorFlow and no gradients needed on the device.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_edge.errors import UsageError


def weighted_maps(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """features (N, h, w, c) weighted by per-face channel weights (N, c), ReLU, each map scaled to 0..1.
    CAM (classifier weights) and Grad-CAM (pooled gradients) differ only in where the weights come from."""
    maps = np.maximum(np.einsum("nhwc,nc->nhw", features.astype(np.float32), weights.astype(np.float32)), 0)
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, maps / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def cam_maps(features: np.ndarray, weights: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """features (N, h, w, c), weights (c, k), classes (N,) -> (N, h, w) maps scaled to 0..1."""
    return weighted_maps(features, weights[:, classes].T)


def require_cam(spec) -> np.ndarray:
    if not spec.cam or "weights" not in spec.cam:
        raise UsageError(
            f"this model ({spec.arch}, {spec.format}) has no CAM output. Export a GAP-headed architecture "
            "(edgenet, mini_xception) with `fer-edge export --explain`, or run `fer-edge explain` on the host."
        )
    return np.asarray(spec.cam["weights"], np.float32)


def blend_heatmap(image: np.ndarray, box, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a 0..1 map into image[box] with the JET colour map (in place, returns image).

    The tiny map is coloured first and then resized (linear), and blended in place: 3x cheaper
    than resizing with cubic interpolation first, which matters for `cam --explain` frame rates."""
    x, y, w, h = box
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return image
    heat = cv2.applyColorMap((np.clip(cam, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)[y0 - y:y1 - y, x0 - x:x1 - x]
    roi = image[y0:y1, x0:x1]
    cv2.addWeighted(roi, 1 - alpha, heat, alpha, 0, dst=roi)
    return image


def draw_cams(image: np.ndarray, results) -> np.ndarray:
    """The overlay for draw pipelines (predict --explain, cam --explain): blend each result's CAM into its
    box, in place. The maps come from `EmotionRecognizer(..., explain=True)`; results without one are
    left as they are."""
    for r in results:
        if r.cam is not None:
            blend_heatmap(image, r.box, r.cam)
    return image
