"""Face detection behind a small interface (`FaceDetector.detect(gray) -> list[Box]`).

OpenCV's Haar cascades, in named profiles (`DETECTOR_PROFILES`, one table): each is a point on the
speed/recall curve that `fer-edge bench` measures (`fer_edge.detect_bench`: composited real faces
with known boxes, 48-240 px, +-15 degrees roll, dark/bright). `cam` uses "cam", `predict` uses
"accurate" (still images: finer scale steps, upscaling, a padded border for face-only crops and
rolled copies), "fast" is the old cam setting, kept for its speed with its recall printed.

Deterministic: OpenCV groups the raw cascade hits in the order its worker threads return them,
so the same frame could give other boxes with another thread count. We ask for the raw hits
(minNeighbors=0), sort them, and group them ourselves with the same rule (`cv2.groupRectangles`,
eps 0.2): the same frame gives the same boxes whatever `cv2.setNumThreads` says.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_edge.errors import ModelError, unknown
from fer_edge.runtime.boxes import Box, iou

GROUP_EPS = 0.2  # OpenCV's own grouping tolerance in detectMultiScale


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class DetectorConfig:
    cascade: str = "haarcascade_frontalface_alt2.xml"  # a file in cv2.data.haarcascades, or a path
    scale_factor: float = 1.1
    min_neighbors: int = 3
    min_size: int = 48  # smallest face side, in full-resolution pixels
    max_width: int = 320  # frames wider than this are downscaled before detection (0 = never)
    equalize: bool = False
    upscale_below: int = 0  # images whose shorter side is below this are enlarged to it first (0 = never)
    pad: float = 0.0  # border added around such small images (fraction of their side): a face crop that
    # fills the whole image has no context around it, which the cascade needs
    rolls: tuple[float, ...] = ()  # extra in-plane rotations (degrees) searched when the upright pass finds nothing
    near_rolls: tuple[float, ...] = (-15.0, 15.0)  # rotations tried when re-finding a tracked face
    near_min_neighbors: int = 8  # grouping threshold when re-finding a tracked face in its small window: strict, so
    # a background pattern the full pass found once is not kept alive by re-finding (28 % fewer wrong boxes
    # in video at the same frame recall than with 3)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rolls"], d["near_rolls"] = list(self.rolls), list(self.near_rolls)
        return d


#: name -> (config, what it is for). `fer-edge bench` prints each one's recall, false positives and ms.
DETECTOR_PROFILES: dict[str, tuple[DetectorConfig, str]] = {
    "cam": (DetectorConfig(), "video default: alt2 cascade, 1.1 steps, frames at 320 px wide, faces >= 48 px"),
    "fast": (DetectorConfig("haarcascade_frontalface_default.xml", 1.2, 5, 64, 256, near_rolls=()),
             "the earlier cam default: cheapest, misses faces below ~100 px (see its recall)"),
    "accurate": (DetectorConfig(scale_factor=1.05, min_neighbors=4, min_size=24, max_width=0, upscale_below=400,
                                pad=0.25, rolls=(-15.0, 15.0)),
                 "still images: 1.05 steps at full size, small images enlarged, padded, rolled +-15 degrees"),
}


def detector_config(profile: str) -> DetectorConfig:
    if profile not in DETECTOR_PROFILES:
        raise unknown("detector profile", profile, DETECTOR_PROFILES)
    return DETECTOR_PROFILES[profile][0]


def _rotate(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre, same size; -> (image, 2x3 matrix mapping rotated -> original points)."""
    H, W = gray.shape[:2]
    M = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    return cv2.warpAffine(gray, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), cv2.invertAffineTransform(M)


def _nms(boxes: list[Box], thr: float = 0.3) -> list[Box]:
    keep: list[Box] = []
    for b in sorted(boxes, key=lambda b: (-b[2] * b[3], b)):
        if all(iou(b, k) < thr for k in keep):
            keep.append(b)
    return keep


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascades (cv2.data.haarcascades), in a profile or a config."""

    def __init__(self, config: DetectorConfig | str | None = None, cascade: str | Path | None = None):
        if isinstance(config, str):
            config = detector_config(config)
        self.config = config or detector_config("cam")
        if cascade is not None:
            self.config = replace(self.config, cascade=str(cascade))
        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError("this OpenCV has no CascadeClassifier (OpenCV 5 removed it); pip install 'opencv-python-headless<5'.")
        path = Path(self.config.cascade)
        if not path.is_file():
            data = getattr(cv2, "data", None)
            if data is None:
                raise ModelError("this OpenCV has no bundled Haar cascades; install opencv-python-headless<5.")
            path = Path(data.haarcascades) / self.config.cascade
        self._path = str(path)
        self._local = threading.local()
        if self.cascade.empty():
            raise ModelError(f"cannot load Haar cascade {path}.")

    @property
    def cascade(self) -> "cv2.CascadeClassifier":
        """One CascadeClassifier per thread: OpenCV's classifier keeps per-call buffers, and one shared by
        threads returned boxes of other threads' frames. A detector can thus be shared by threads and
        still run them in parallel (each thread pays the cascade load once, ~20 ms)."""
        c = getattr(self._local, "cascade", None)
        if c is None:
            c = self._local.cascade = cv2.CascadeClassifier(self._path)
        return c

    def _raw(self, img: np.ndarray, min_side: int, max_side: int = 0, scale_factor: float | None = None,
             min_neighbors: int | None = None) -> list[Box]:
        """Cascade hits grouped in a fixed order (see the module docstring)."""
        c = self.config
        kw = {"maxSize": (max_side, max_side)} if max_side else {}
        hits = self.cascade.detectMultiScale(img, scaleFactor=scale_factor or c.scale_factor, minNeighbors=0,
                                             minSize=(min_side, min_side), **kw)
        if not len(hits):
            return []
        rects = sorted(tuple(int(v) for v in r) for r in hits)
        grouped, _ = cv2.groupRectangles([list(r) for r in rects], c.min_neighbors if min_neighbors is None else min_neighbors,
                                         GROUP_EPS)
        return [tuple(int(v) for v in r) for r in (grouped if len(grouped) else [])]

    def _detect_upright(self, img: np.ndarray, min_side: int) -> list[Box]:
        if self.config.equalize:
            img = cv2.equalizeHist(img)
        return self._raw(img, min_side)

    def detect(self, gray: np.ndarray) -> list[Box]:
        c = self.config
        H, W = gray.shape[:2]
        scale = 1.0
        img = gray
        small = bool(c.upscale_below and min(H, W) < c.upscale_below)
        if c.max_width and W > c.max_width:
            scale = c.max_width / W
        elif small:
            scale = c.upscale_below / min(H, W)
        if scale != 1.0:
            img = cv2.resize(gray, (max(1, round(W * scale)), max(1, round(H * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        off = 0
        if c.pad and small:
            off = int(round(c.pad * max(img.shape[:2])))
            img = cv2.copyMakeBorder(img, off, off, off, off, cv2.BORDER_REPLICATE)
        min_side = max(20, int(round(c.min_size * scale)))
        found = self._detect_upright(img, min_side)
        if not found:
            for angle in c.rolls:
                rot, inv = _rotate(img, angle)
                for x, y, w, h in self._detect_upright(rot, min_side):
                    cx, cy = inv @ np.array([x + w / 2, y + h / 2, 1.0])
                    found.append((int(round(cx - w / 2)), int(round(cy - h / 2)), w, h))
            found = _nms(found)
        boxes = []
        for x, y, w, h in found:
            x0, y0 = (x - off) / scale, (y - off) / scale
            x1, y1 = (x + w - off) / scale, (y + h - off) / scale
            x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(W), x1), min(float(H), y1)
            if x1 - x0 >= 4 and y1 - y0 >= 4:
                boxes.append((int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))))
        boxes.sort(key=lambda b: (-b[2] * b[3], b))
        return boxes

    def detect_near(self, gray: np.ndarray, box: Box, grow: float = 0.4, face_px: int = 48) -> Box | None:
        """Re-find a tracked face in a small window around its last box (far cheaper than a full frame):
        the window is scaled so the face is about `face_px` wide, only nearby sizes are tried, and
        then the window rolled by `near_rolls` when the upright pass finds nothing."""
        x, y, w, h = box
        H, W = gray.shape[:2]
        g = int(round(grow * max(w, h)))
        x0, y0, x1, y1 = max(0, x - g), max(0, y - g), min(W, x + w + g), min(H, y + h + g)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = face_px / max(w, 1)
        roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        lo, hi = int(face_px * 0.7), int(face_px * 1.45)
        for angle in (0.0, *self.config.near_rolls):
            img, inv = (roi, None) if angle == 0 else _rotate(roi, angle)
            found = self._raw(img, lo, hi, scale_factor=1.1, min_neighbors=self.config.near_min_neighbors)
            if found:
                fx, fy, fw, fh = max(found, key=lambda b: (b[2] * b[3], b))
                cx, cy = fx + fw / 2, fy + fh / 2
                if inv is not None:
                    cx, cy = inv @ np.array([cx, cy, 1.0])
                return (int(round(x0 + (cx - fw / 2) / scale)), int(round(y0 + (cy - fh / 2) / scale)),
                        int(round(fw / scale)), int(round(fh / scale)))
        return None
