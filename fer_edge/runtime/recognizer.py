"""EmotionRecognizer: detect -> crop -> preprocess -> one batched inference -> results.

`EmotionRecognizer().predict(image)` works right after `pip install fer-edge`: with no model
it loads the bundled int8 model (TFLite when a TFLite interpreter is installed, else ONNX);
`EmotionRecognizer("fer_edge_flip")` its flip-TTA variant (BUNDLED_MODELS).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_edge.bundled import BUNDLED_DIR, BUNDLED_MODELS, BUNDLED_STEM, bundled_names  # noqa: F401 (re-exported)
from fer_edge.errors import ModelError, UsageError
from fer_edge.preprocess import crop_box, preprocess_batch, to_gray
from fer_edge.runtime.backends import Backend, load_backend
from fer_edge.runtime.boxes import Box, iou
from fer_edge.runtime.detect import DetectorConfig, FaceDetector, HaarFaceDetector
from fer_edge.runtime.track import Tracker


def bundled_files(prefer: str | None = None, stem: str = BUNDLED_STEM) -> dict[str, Path]:
    """The packaged default model, precision -> file, in the format of the first usable backend: `prefer`
    (a backend or format name) decides, else the exported formats in FORMATS order whose runtime backend
    (one under fer_edge/runtime, not TensorFlow) is installed first: TFLite with LiteRT, else ONNX."""
    from fer_edge.formats import BACKENDS, EXPORT_FORMATS, get_format
    from fer_edge.runtime.backends import installed

    if stem not in BUNDLED_MODELS:
        from fer_edge.errors import unknown

        raise unknown("bundled model", stem, BUNDLED_MODELS)
    formats = [get_format(name) for name in EXPORT_FORMATS]
    chosen = [f for f in formats if prefer in (f.name, *f.backends)]
    if not chosen:
        def runnable(f) -> bool:
            return any(b in BACKENDS and BACKENDS[b][0].startswith("fer_edge.runtime.") and installed(b)
                       for b in f.backends)

        chosen = sorted(formats, key=lambda f: not runnable(f))  # stable: FORMATS order among equals
    for fmt in chosen:
        files = {p: BUNDLED_DIR / f"{stem}_{p}{fmt.suffix}" for p in ("int8", "fp32")}
        files = {p: f for p, f in files.items() if f.is_file()}
        if files:
            return files
    raise ModelError(f"no bundled model {stem} in {BUNDLED_DIR}; pass --model PATH to a fer-edge .tflite/.onnx file.")


def bundled_model(prefer: str | None = None, precision: str = "int8", threads: int | None = None,
                  stem: str = BUNDLED_STEM):
    """The bundled file for `precision` (auto: the faster one on this CPU, see runtime.precision)."""
    from fer_edge.runtime.precision import choose

    return choose(bundled_files(prefer, stem), prefer, precision, threads).path


def _bundled_name(model) -> bool:
    """A bundled model's name (BUNDLED_MODELS) that is not also a path here: a file wins. A word that is
    neither a file nor a name (no suffix, e.g. a misspelt name) is a one-line error with a suggestion."""
    if not isinstance(model, str) or Path(model).exists():
        return False
    if model in BUNDLED_MODELS:
        return True
    if not Path(model).suffix and not any(sep in model for sep in ("/", "\\")):
        from fer_edge.errors import unknown

        raise unknown("bundled model (or no such file)", model, BUNDLED_MODELS)
    return False


@dataclass
class FaceResult:
    """One face: box (x, y, w, h) in image pixels, top label and score, every class's score."""

    box: tuple[int, int, int, int]
    label: str
    score: float
    scores: dict[str, float]
    track_id: int | None = None
    cam: np.ndarray | None = field(default=None, repr=False)  # class activation map (0..1), when asked

    def to_dict(self) -> dict:
        d = {"box": [int(v) for v in self.box], "label": self.label, "score": round(float(self.score), 6),
             "scores": {k: round(float(v), 6) for k, v in self.scores.items()}}
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        return d


class EmotionRecognizer:
    """Faces and their expressions in images or video frames.

    Thread safety: one recognizer may be shared by threads; `predict` calls are serialized by a lock,
    so each returns exactly what a sequential call would. For parallel throughput, give each thread its
    own recognizer (the models are small). With tracking (`smoothing`, `detect_every > 1`) a recognizer
    follows ONE stream: frames of two streams through one tracker would be matched to each other's faces.
    """

    def __init__(self, model: str | Path | Backend | None = None, detector: FaceDetector | None = None,
                 backend: str | None = None, threads: int | None = None, smoothing: float | None = None,
                 margin: float | None = None, detect_every: int = 1, detector_config: DetectorConfig | str | None = None,
                 precision: str = "auto", explain: bool = False, classes: str | None = None):
        """`explain=True`: every FaceResult also carries its class activation map (`cam`, 0..1), from the
        file's CAM output (see runtime.cam); a file exported without one is refused here, not per frame.

        `classes` ("4", "2", "happy,angry", merges): read the model as a classifier of those classes, its
        probabilities of the kept classes renormalised (`labels.class_projection`); a 7-class model then
        answers the study's 4- or 2-class question without another file. Faces of a dropped class still
        get the nearest kept one."""
        from fer_edge.runtime.precision import PRECISIONS, choose

        if precision not in PRECISIONS:
            from fer_edge.errors import unknown

            raise unknown("precision", precision, PRECISIONS)
        self.precision_note = ""
        if isinstance(model, Backend):
            self.backend = model
        elif model and not _bundled_name(model):
            if precision != "auto":
                raise UsageError(f"--precision {precision} picks among the bundled files; with --model, pass the file "
                                 "of the precision you want.")
            self.backend = load_backend(Path(model), backend=backend, threads=threads)
        else:
            choice = choose(bundled_files(backend, str(model or BUNDLED_STEM)), backend, precision, threads)
            self.precision_note = choice.describe()
            self.backend = load_backend(choice.path, backend=backend, threads=threads)
        self.spec = self.backend.spec
        self._labels, self._projection = list(self.spec.labels), None
        if classes:
            from fer_edge.labels import class_projection, parse_classes

            wanted = parse_classes(classes)
            try:
                self._projection = class_projection(self.spec.class_map_obj(), wanted)
            except UsageError as exc:
                raise UsageError(f"--classes {classes}: {exc}") from None
            self._labels = list(wanted.labels)
        self.detector = detector or HaarFaceDetector(detector_config)
        self.margin = self.spec.crop_margin if margin is None else margin
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) \
                or not math.isfinite(self.margin) or not 0 <= self.margin <= 1:
            raise UsageError(f"margin must be a number between 0 and 1, got {margin}.")
        self.margin = float(self.margin)
        if smoothing is not None and not (isinstance(smoothing, (int, float)) and 0 < smoothing <= 1):
            raise UsageError(f"smoothing must be in (0, 1], got {smoothing}.")
        if not isinstance(detect_every, int) or isinstance(detect_every, bool) or detect_every < 1:
            raise UsageError(f"detect_every must be >= 1, got {detect_every}.")
        self.tracker = Tracker(alpha=smoothing) if (smoothing is not None or detect_every > 1) else None
        self.detect_every = detect_every
        self._frame = 0
        self.timings = {"detect_ms": 0.0, "classify_ms": 0.0}
        self.explain = bool(explain)
        self._cam_weights = None
        if self.explain:
            from fer_edge.runtime.cam import require_cam

            self._cam_weights = require_cam(self.spec)
        self._lock = threading.RLock()

    @property
    def labels(self) -> list[str]:
        """The classes this recognizer answers in (the model's, or those of `classes`)."""
        return list(self._labels)

    def _project(self, probs: np.ndarray) -> np.ndarray:
        """The model's probabilities -> this recognizer's classes (identity without `classes`)."""
        if self._projection is None:
            return probs
        from fer_edge.labels import project_probs

        return project_probs(probs, self._projection).astype(np.float32)

    def classify(self, faces: list[np.ndarray], rgb: bool = False) -> np.ndarray:
        """Face crops (any size/colour) -> (N, K) probabilities in one inference call."""
        with self._lock:
            return self._classify(faces, rgb)

    def _classify(self, faces: list[np.ndarray], rgb: bool = False) -> np.ndarray:
        batch = self._batch(faces, rgb)
        if len(batch) == 0:
            return np.zeros((0, len(self._labels)), np.float32)
        return self._project(self.backend.predict(batch))

    def _batch(self, faces: list[np.ndarray], rgb: bool = False) -> np.ndarray:
        try:
            return preprocess_batch(faces, self.spec.size, self.spec.channels, rgb=rgb)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def gray(self, image: np.ndarray, rgb: bool = False) -> np.ndarray:
        """Any image the API takes (BGR/RGB/gray/BGRA; uint8, uint16 or float) -> 8-bit gray, or UsageError."""
        if not isinstance(image, np.ndarray):
            raise UsageError(f"image must be a numpy array, got {type(image).__name__}.")
        try:
            return to_gray(image, rgb=rgb)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def face_batch(self, gray: np.ndarray, boxes: list[Box], margins: list[float] | None = None) -> np.ndarray:
        """crop -> preprocess: the model-ready (N, H, W, C) batch of these boxes of a gray image, each
        cropped with its margin (the recognizer's by default). The one path from a detection to the
        model's input: predict and `fer-edge explain` both go through it."""
        margins = [self.margin] * len(boxes) if margins is None else margins
        return self._batch([crop_box(gray, b, m) for b, m in zip(boxes, margins)])

    def _find_faces(self, gray: np.ndarray) -> tuple[list[Box], list | None]:
        """Boxes for this frame, and their tracks when tracking. Full detection every `detect_every`
        frames; between them each tracked face is re-found near its last box. A tracked face that
        detection misses is looked for near its box too, and an established track that is still not
        found is reported where it was for a few frames (`Tracker.max_coast`): one-frame misses of
        a face that is plainly there are what users see as 'it lost my face'."""
        if self.tracker is None:
            return self.detector.detect(gray), None
        near = getattr(self.detector, "detect_near", None)
        if self._frame % self.detect_every == 0:
            boxes = list(self.detector.detect(gray))
            for t in self.tracker.live() if near else []:
                if all(iou(t.box, b) < self.tracker.iou_threshold for b in boxes):
                    b = near(gray, t.box)
                    if b is not None:
                        boxes.append(b)
            tracks = self.tracker.match(boxes) + self.tracker.coasting()
        else:
            for t in self.tracker.live():
                self.tracker.confirm(t, near(gray, t.box) if near else t.box)
            tracks = self.tracker.live()
        return [t.box for t in tracks], tracks

    def predict(self, image: np.ndarray, rgb: bool = False) -> list[FaceResult]:
        """All faces of one image (BGR by default; RGB with rgb=True; gray, BGRA; uint8, uint16 or float).
        Safe to call from several threads (serialized; see the class docstring)."""
        with self._lock:
            return self._predict(image, rgb)

    def _predict(self, image: np.ndarray, rgb: bool) -> list[FaceResult]:
        gray = self.gray(image, rgb)
        t0 = time.perf_counter()
        boxes, tracks = self._find_faces(gray)
        self._frame += 1
        t1 = time.perf_counter()
        batch = self.face_batch(gray, boxes)
        cams = None
        if not len(batch):
            probs = np.zeros((0, len(self._labels)), np.float32)
        elif self.explain:
            from fer_edge.runtime.cam import cam_maps

            raw, features = self.backend.run(batch)[:2]
            probs = self._project(raw)
            # the map of the answer's own model class; for a merged class, of its most probable member
            members = raw if self._projection is None else raw * self._projection[:, probs.argmax(1)].T
            cams = cam_maps(features, self._cam_weights, members.argmax(1))
        else:
            probs = self._project(self.backend.predict(batch))
        t2 = time.perf_counter()
        self.timings = {"detect_ms": (t1 - t0) * 1e3, "classify_ms": (t2 - t1) * 1e3}
        results = []
        for i, box in enumerate(boxes):
            p = probs[i]
            tid = None
            if tracks is not None and self.tracker.alpha is not None:
                p = self.tracker.smooth(tracks[i], p)
            if tracks is not None:
                tid = tracks[i].id
            k = int(np.argmax(p))
            results.append(FaceResult(tuple(int(v) for v in box), self._labels[k], float(p[k]),
                                      {lab: float(v) for lab, v in zip(self._labels, p)}, tid,
                                      cams[i] if cams is not None else None))
        return results
