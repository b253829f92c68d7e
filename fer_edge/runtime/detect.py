"""Face detection behind a small interface (`FaceDetector.detect(gray) -> list[Box]`).

The Haar cascade runs on a downscaled gray frame (detection cost grows with pixels; faces
stay findable at 320 px wide), and boxes are mapped back to full resolution as plain ints.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_edge.errors import ModelError

Box = tuple[int, int, int, int]  # x, y, w, h in full-resolution pixels


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Box]: ...


@dataclass
class DetectorConfig:
    scale_factor: float = 1.15
    min_neighbors: int = 5
    min_size: int = 40  # smallest face side, in full-resolution pixels
    max_width: int = 320  # frames wider than this are downscaled before detection (0 = never)
    equalize: bool = True


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (cv2.data.haarcascades), tunable."""

    def __init__(self, config: DetectorConfig | None = None, cascade: str | Path | None = None):
        self.config = config or DetectorConfig()
        if cascade is None:
            data = getattr(cv2, "data", None)
            if data is None:
                raise ModelError("this OpenCV has no bundled Haar cascades; install opencv-python-headless<5.")
            cascade = Path(data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError("this OpenCV has no CascadeClassifier (OpenCV 5 removed it); pip install 'opencv-python-headless<5'.")
        self.cascade = cv2.CascadeClassifier(str(cascade))
        if self.cascade.empty():
            raise ModelError(f"cannot load Haar cascade {cascade}.")

    def detect(self, gray: np.ndarray) -> list[Box]:
        c = self.config
        H, W = gray.shape[:2]
        scale = 1.0
        small = gray
        if c.max_width and W > c.max_width:
            scale = c.max_width / W
            small = cv2.resize(gray, (c.max_width, max(1, int(round(H * scale)))), interpolation=cv2.INTER_AREA)
        if c.equalize:
            small = cv2.equalizeHist(small)
        min_side = max(12, int(round(c.min_size * scale)))
        found = self.cascade.detectMultiScale(small, scaleFactor=c.scale_factor, minNeighbors=c.min_neighbors,
                                              minSize=(min_side, min_side))
        boxes = []
        for x, y, w, h in (found if len(found) else []):
            boxes.append((int(round(x / scale)), int(round(y / scale)), int(round(w / scale)), int(round(h / scale))))
        boxes.sort(key=lambda b: -b[2] * b[3])
        return boxes
