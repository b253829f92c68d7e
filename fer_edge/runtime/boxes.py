"""Face boxes and their overlap: the geometry that detection (NMS over rolled passes) and tracking
(matching boxes across frames) both need, kept below both so neither imports the other."""
from __future__ import annotations

Box = tuple[int, int, int, int]  # x, y, w, h in full-resolution pixels


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; 0 when either is empty."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
