"""The synthetic demo video: bundled FER2013 faces drifting over a textured background, one face per frame.

What `fer-edge cam --source demo` and the benchmark's end-to-end row play. Its own module so that the
CLI, the benchmark and the tests share one generator without importing each other; it imports neither
the benchmark nor the CLI, and reaches the bundled samples (`fer_edge.runtime.recognizer`) only on use.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.errors import UsageError


def demo_faces(n: int = 8) -> list[np.ndarray]:
    """FER2013 PublicTest faces bundled for demos (one per class, chosen so the Haar detector finds them)."""
    import cv2

    from fer_edge.runtime.recognizer import BUNDLED_DIR

    files = sorted((BUNDLED_DIR / "samples").glob("*.png"))[:n]
    if not files:
        raise UsageError("no sample faces bundled; pass --video.")
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


def demo_frames(faces: list[np.ndarray], frames: int = 300, size=(640, 480), face_px: int = 200):
    """Gray frames of upscaled FER faces drifting over a textured background, one face per frame."""
    import cv2

    W, H = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(60, 200, (H, W), dtype=np.uint8), (0, 0), 8)
    pad = face_px // 5  # FER crops are tight: replicated borders give the detector the context it needs
    side = face_px + 2 * pad
    for i in range(frames):
        face = cv2.resize(faces[(i // 30) % len(faces)], (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        face = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        frame = bg.copy()
        x = int((W - side) / 2 + (W - side) / 3 * np.sin(i / 40))
        y = int((H - side) / 2 + (H - side) / 4 * np.cos(i / 55))
        frame[y:y + side, x:x + side] = face
        yield frame


def make_demo_video(path: str | Path, faces: list[np.ndarray], frames: int = 300, size=(640, 480), fps: float = 30.0,
                    face_px: int = 200) -> Path:
    """Write `demo_frames` to an mp4 (what `cam --source demo` and the end-to-end row play)."""
    import cv2

    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not writer.isOpened():
        raise UsageError(f"cannot write demo video {path}.")
    for frame in demo_frames(faces, frames, size, face_px):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path
