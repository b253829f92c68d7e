"""Face-detection recall with known boxes: a detector is fast *at a recall*.

Real faces (the astronaut photo's face, bundled with its box, and the bundled FER2013 sample
faces) are composited into 640x480 frames over generated clutter: 48-240 px faces, roll up to
+-15 degrees, dark / normal / bright exposure, one face or three, plus sensor noise. The scene set
is fixed by its seed, so every detector setting and every machine sees the same frames.

- `still_scenes()` + `score_detector()`: recall, false positives per frame, ms per frame.
- `face_video()` + `video_recall()`: the share of frames of a one-face video in which the whole
  `cam` pipeline (tracking included) reports the face: what a user sees as "it lost my face".
- `real_photos()`: the astronaut photo and the bundled samples as a user's still images.

A detection counts when its IoU with a true box is >= MATCH_IOU (0.3: Haar boxes are a little
tighter or looser than the annotation; a wrong place or size still fails). Runtime-only: numpy + cv2.
"""
from __future__ import annotations

import functools

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from fer_edge.runtime.boxes import Box, iou

MATCH_IOU = 0.3
DETECT_DIR = Path(__file__).resolve().parent / "models" / "detect"
SAMPLES_DIR = Path(__file__).resolve().parent / "models" / "samples"
#: astronaut_face.png: a 180x180 gray crop of scikit-image's `astronaut` (NASA, public domain) at
#: x 135..315, y 24..204 of the 512x512 photo; the face box inside it, and in the full photo
ASTRONAUT_CROP_BOX: Box = (40, 40, 100, 100)
ASTRONAUT_PHOTO_BOX: Box = (175, 64, 100, 100)
SIZES = (48, 60, 80, 100, 140, 180, 240)
ROLLS = (-15, 0, 15)
LIGHTS = ("dark", "normal", "bright")


@dataclass
class FacePatch:
    """A face with context around it, and where the face is inside the patch."""

    name: str
    image: np.ndarray  # gray uint8
    box: Box


@dataclass
class Scene:
    frame: np.ndarray  # (H, W) gray uint8
    boxes: list[Box]
    tags: dict


def face_patches() -> list[FacePatch]:
    """The astronaut's face and the FER2013 sample faces (tight 48x48 crops, given a replicated
    border, as a face in a frame has a head and shoulders around it)."""
    out = []
    astro = cv2.imread(str(DETECT_DIR / "astronaut_face.png"), cv2.IMREAD_GRAYSCALE)
    if astro is not None:
        out.append(FacePatch("astronaut", astro, ASTRONAUT_CROP_BOX))
    for f in sorted(SAMPLES_DIR.glob("*.png")):
        face = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if face is None:
            continue
        face = cv2.resize(face, (96, 96), interpolation=cv2.INTER_CUBIC)
        pad = 24
        out.append(FacePatch(f"fer-{f.stem}", cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE),
                             (pad, pad, 96, 96)))
    return out


def background(rng: np.random.Generator, size=(640, 480)) -> np.ndarray:
    """Indoor-ish clutter: smooth shading, blocks, edges, round shapes, text and noise."""
    W, H = size
    coarse = cv2.resize(rng.integers(40, 220, (6, 8), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    img = coarse.astype(np.float32)
    img += cv2.GaussianBlur(rng.normal(0, 25, (H, W)).astype(np.float32), (0, 0), 3)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        x1, y1 = x0 + int(rng.integers(20, 220)), y0 + int(rng.integers(20, 200))
        cv2.rectangle(img, (x0, y0), (x1, y1), float(rng.integers(20, 235)), -1 if rng.random() < 0.6 else 3)
    for _ in range(int(rng.integers(3, 8))):
        c = (int(rng.integers(0, W)), int(rng.integers(0, H)))
        cv2.ellipse(img, c, (int(rng.integers(8, 60)), int(rng.integers(8, 60))), float(rng.integers(0, 180)), 0, 360,
                    float(rng.integers(20, 235)), -1 if rng.random() < 0.5 else 2)
    for _ in range(int(rng.integers(2, 6))):
        cv2.line(img, (int(rng.integers(0, W)), int(rng.integers(0, H))), (int(rng.integers(0, W)), int(rng.integers(0, H))),
                 float(rng.integers(0, 255)), int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(1, 4))):
        cv2.putText(img, "fer-edge 2026", (int(rng.integers(0, W - 200)), int(rng.integers(20, H))),
                    cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.5, 1.5)), float(rng.integers(0, 255)), 2)
    return np.clip(img, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, patch: FacePatch, face_px: int, roll: float, cx: float, cy: float) -> Box:
    """Scale the patch so its face is face_px wide, roll it, blend it in with a soft edge; -> true box."""
    s = face_px / patch.box[2]
    ph, pw = patch.image.shape
    img = cv2.resize(patch.image, (max(1, round(pw * s)), max(1, round(ph * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    fx, fy = (patch.box[0] + patch.box[2] / 2) * s, (patch.box[1] + patch.box[3] / 2) * s  # face centre in patch
    h, w = img.shape
    M = cv2.getRotationMatrix2D((fx, fy), roll, 1.0)
    img = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = np.minimum.reduce([xx, yy, w - 1 - xx, h - 1 - yy])
    alpha = np.clip(edge / max(2.0, 0.12 * min(w, h)), 0, 1)
    x0, y0 = int(round(cx - fx)), int(round(cy - fy))
    H, W = frame.shape
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return (0, 0, 0, 0)
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    a = alpha[sub]
    frame[fy0:fy1, fx0:fx1] = (a * img[sub] + (1 - a) * region).astype(np.uint8)
    return (int(round(cx - face_px / 2)), int(round(cy - face_px / 2)), int(face_px), int(face_px))


def _expose(frame: np.ndarray, light: str, rng: np.random.Generator) -> np.ndarray:
    f = frame.astype(np.float32)
    if light == "dark":
        f = 255.0 * (f / 255.0) ** 1.6 * 0.45
    elif light == "bright":
        f = f * 1.15 + 55
    f += rng.normal(0, 3.0, f.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


def _place(rng, sizes: Sequence[int], W: int, H: int) -> list[tuple[float, float]] | None:
    """Centres for faces of these sizes inside the frame, not overlapping (None when they do not fit)."""
    centres: list[tuple[float, float, int]] = []
    for s in sizes:
        for _ in range(50):
            m = 0.75 * s  # room for the head around the face
            if W - 2 * m <= 0 or H - 2 * m <= 0:
                return None
            cx, cy = rng.uniform(m, W - m), rng.uniform(m, H - m)
            if all(abs(cx - ox) > (s + os) * 0.75 or abs(cy - oy) > (s + os) * 0.75 for ox, oy, os in centres):
                centres.append((cx, cy, s))
                break
        else:
            return None
    return [(cx, cy) for cx, cy, _ in centres]


def still_scenes(seed: int = 0, size=(640, 480), multi: int = 3) -> list[Scene]:
    """Every face x size x roll x light once with one face, plus multi-face frames: 48..240 px.
    Built once per (seed, size, multi) in a process (about 5 s for the 192 frames on 2 cores): the
    benchmark and the tests score several detectors on the same frames. Callers must not draw on them."""
    return list(_still_scenes(seed, tuple(size), multi))


@functools.lru_cache(maxsize=4)
def _still_scenes(seed: int, size: tuple[int, int], multi: int) -> tuple[Scene, ...]:
    rng = np.random.default_rng(seed)
    patches = face_patches()
    W, H = size
    out = []
    for p in patches:
        for s in SIZES:
            for roll in ROLLS:
                light = LIGHTS[int(rng.integers(0, len(LIGHTS)))]
                frame = background(rng, size)
                cx, cy = _place(rng, [s], W, H)[0]
                box = _paste(frame, p, s, roll, cx, cy)
                out.append(Scene(_expose(frame, light, rng), [box], {"face": p.name, "size": s, "roll": roll,
                                                                    "light": light, "faces": 1}))
    for _ in range(len(patches) * 3):  # several faces per frame, 60..140 px
        sizes = [int(rng.choice(SIZES[1:5])) for _ in range(multi)]
        frame = background(rng, size)
        spots = _place(rng, sizes, W, H)
        if spots is None:
            continue
        boxes = []
        for s, (cx, cy) in zip(sizes, spots):
            p = patches[int(rng.integers(0, len(patches)))]
            boxes.append(_paste(frame, p, s, float(rng.uniform(-15, 15)), cx, cy))
        light = LIGHTS[int(rng.integers(0, len(LIGHTS)))]
        out.append(Scene(_expose(frame, light, rng), boxes, {"face": "mixed", "size": min(sizes), "roll": None,
                                                            "light": light, "faces": len(boxes)}))
    for scene in out:
        scene.frame.setflags(write=False)  # shared by every caller in this process
    return tuple(out)


def match(dets: Sequence[Box], gts: Sequence[Box], min_iou: float = MATCH_IOU) -> tuple[int, int, int]:
    """Greedy one-to-one matching by IoU -> (true positives, missed faces, false positives)."""
    pairs = sorted(((iou(tuple(d), tuple(g)), di, gi) for di, d in enumerate(dets) for gi, g in enumerate(gts)), reverse=True)
    used_d, used_g = set(), set()
    for score, di, gi in pairs:
        if score < min_iou or di in used_d or gi in used_g:
            continue
        used_d.add(di), used_g.add(gi)
    tp = len(used_g)
    return tp, len(gts) - tp, len(dets) - len(used_d)


def score_detector(detect: Callable[[np.ndarray], list[Box]], scenes: Sequence[Scene], min_face: int = 0) -> dict:
    """One detection pass over the scenes: recall over faces >= min_face px ("recall") and over every
    face ("recall_all"), recall by size, false positives per frame, ms per frame."""
    fp = 0
    by_size: dict[int, list[int]] = {}
    ms = []
    for sc in scenes:
        t0 = time.perf_counter()
        dets = detect(sc.frame)
        ms.append((time.perf_counter() - t0) * 1e3)
        fp += match(dets, sc.boxes)[2]
        for g in sc.boxes:
            by_size.setdefault(g[2], [0, 0])
            by_size[g[2]][0] += match(dets, [g])[0]
            by_size[g[2]][1] += 1
    tp = sum(h for size, (h, _) in by_size.items() if size >= min_face)
    n = sum(k for size, (_, k) in by_size.items() if size >= min_face)
    tp_all, n_all = sum(h for h, _ in by_size.values()), sum(k for _, k in by_size.values())
    return {"recall": round(tp / n, 4) if n else None, "faces": n, "found": tp,
            "recall_all": round(tp_all / n_all, 4) if n_all else None, "faces_all": n_all,
            "fp_per_frame": round(fp / max(1, len(scenes)), 3), "false_positives": fp, "frames": len(scenes),
            "ms_p50": round(float(np.median(ms)), 3), "ms_mean": round(float(np.mean(ms)), 3),
            "recall_by_size": {str(k): round(v[0] / v[1], 3) for k, v in sorted(by_size.items())}}


def face_video(face_px: int, frames: int = 300, seed: int = 0, size=(640, 480),
               patch: FacePatch | None = None) -> Iterator[tuple[np.ndarray, Box]]:
    """A one-face 640x480 video: the face drifts slowly, tilts +-10 degrees, exposure changes."""
    rng = np.random.default_rng(seed)
    p = patch or face_patches()[0]
    W, H = size
    bg = background(rng, size)
    m = 0.8 * face_px
    for i in range(frames):
        frame = bg.copy()
        cx = W / 2 + max(0.0, W / 2 - m) * 0.8 * np.sin(i / 45 + seed)
        cy = H / 2 + max(0.0, H / 2 - m) * 0.7 * np.cos(i / 60 + seed)
        box = _paste(frame, p, face_px, 10 * np.sin(i / 25), cx, cy)
        gain = 1.0 + 0.25 * np.sin(i / 70)
        f = np.clip(frame.astype(np.float32) * gain + rng.normal(0, 3.0, frame.shape), 0, 255).astype(np.uint8)
        yield f, box


def video_recall(make_recognizer: Callable[[], object], face_sizes: Sequence[int] = (60, 80, 120, 180, 240),
                 frames: int = 300, patches: Sequence[FacePatch] | None = None) -> dict:
    """Frames in which the recognizer (detection + tracking as configured) reports the true face,
    over one-face videos of each size and face; plus wrong boxes and the pipeline's frames/s."""
    patches = list(patches) if patches is not None else face_patches()[:2]
    per = {}
    hit_total = n_total = fp_total = 0
    t_total = 0.0
    for p in patches:
        for s in face_sizes:
            rec = make_recognizer()
            hits = fps = 0
            t = 0.0
            for i, (frame, box) in enumerate(face_video(s, frames, seed=s, patch=p)):
                t0 = time.perf_counter()
                res = rec.predict(frame)
                t += time.perf_counter() - t0
                a, _, c = match([r.box for r in res], [box])
                hits += a
                fps += c
            per[f"{p.name}@{s}px"] = round(hits / frames, 4)
            hit_total, n_total, fp_total, t_total = hit_total + hits, n_total + frames, fp_total + fps, t_total + t
    return {"frame_recall": round(hit_total / n_total, 4), "frames": n_total, "found": hit_total,
            "wrong_boxes": fp_total, "fps": round(n_total / t_total, 1), "ms_per_frame": round(1e3 * t_total / n_total, 3),
            "per_video": per, "min_video_recall": min(per.values())}


def real_photos() -> list[tuple[str, np.ndarray, list[Box]]]:
    """The user's-photo set: the astronaut face patch at its own size, and the bundled samples
    (the whole 48x48 image is the face)."""
    out = []
    for p in face_patches()[:1]:
        out.append((p.name, p.image, [p.box]))
    for f in sorted(SAMPLES_DIR.glob("*.png")):
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            out.append((f"sample-{f.stem}", img, [(0, 0, img.shape[1], img.shape[0])]))
    return out
