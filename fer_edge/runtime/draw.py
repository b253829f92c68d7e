"""Overlays: face boxes, label + confidence, small per-class bars, FPS."""
from __future__ import annotations

import cv2
import numpy as np

# one BGR colour per FER2013 label (others fall back to grey)
COLORS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (40, 200, 240),
          "neutral": (200, 200, 200), "sad": (200, 120, 40), "surprise": (40, 160, 255)}


def ensure_bgr(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img.copy()


def draw_results(image: np.ndarray, results, bars: bool = True) -> np.ndarray:
    """Return a BGR copy of `image` with every FaceResult drawn on it."""
    out = ensure_bgr(image)
    H, W = out.shape[:2]
    scale = max(0.4, min(1.2, W / 1000))
    for r in results:
        x, y, w, h = r.box
        color = COLORS.get(r.label, (180, 180, 180))
        cv2.rectangle(out, (x, y), (x + w, y + h), color, max(1, int(2 * scale)))
        text = f"{r.label} {r.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        ty = max(th + 4, y - 4)
        cv2.rectangle(out, (x, ty - th - 4), (x + tw + 4, ty + base - 2), color, -1)
        cv2.putText(out, text, (x + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), 1, cv2.LINE_AA)
        if bars:
            bx = x + w + 4 if x + w + 100 < W else max(0, x - 100)
            bh = max(8, int(12 * scale))
            for i, (lab, s) in enumerate(r.scores.items()):
                by = y + i * (bh + 2)
                if by + bh > H:
                    break
                cv2.rectangle(out, (bx, by), (bx + 40, by + bh), (60, 60, 60), -1)
                cv2.rectangle(out, (bx, by), (bx + int(40 * s), by + bh), COLORS.get(lab, (180, 180, 180)), -1)
                cv2.putText(out, f"{lab[:3]} {s:.2f}", (bx + 43, by + bh - 2), cv2.FONT_HERSHEY_SIMPLEX,
                            0.35 * scale + 0.05, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    cv2.putText(image, f"{fps:.0f} FPS", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
    return image
