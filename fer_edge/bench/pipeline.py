"""The pipeline rows: face-detector profiles on composited scenes, cam-pipeline face recall on one-face
videos, and end-to-end frames/s of the whole cam loop on a video (the generated demo by default).

Separate from the per-model rows (`fer_edge.bench.rows`) because these measure the detector and the cam
loop around a model, not the model; every heavy import happens on use.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from fer_edge.demo import demo_faces, make_demo_video
from fer_edge.errors import FerEdgeError, UsageError


def bench_detector(scenes: int = 96) -> list[dict]:
    """Every detector profile on the same composited 640x480 frames with known face boxes
    (fer_edge.detect_bench): recall (all faces, and faces >= 60 px), false positives per frame and
    ms per frame side by side: a detector is fast *at a recall*."""
    from fer_edge.detect_bench import score_detector, still_scenes
    from fer_edge.runtime.detect import DETECTOR_PROFILES, HaarFaceDetector

    frames = still_scenes()
    frames = frames[:: max(1, len(frames) // scenes)]
    rows = []
    for name, (cfg, what) in DETECTOR_PROFILES.items():
        det = HaarFaceDetector(cfg)
        det.detect(frames[0].frame)  # warm-up
        r = score_detector(det.detect, frames, min_face=60)
        rows.append({"profile": name, "resolution": "640x480", "ms_p50": r["ms_p50"], "ms_mean": r["ms_mean"],
                     "recall": r["recall_all"], "recall_60px": r["recall"], "faces": r["faces_all"],
                     "fp_per_frame": r["fp_per_frame"], "frames": r["frames"], "recall_by_size": r["recall_by_size"],
                     "what": what, "config": cfg.to_dict()})
    return rows


def bench_video_recall(model: Path, frames: int = 150, log=print) -> list[dict]:
    """The cam pipeline (detection + tracking, CAM_DEFAULTS) per detector profile on one-face videos
    (60-240 px faces, two faces): share of frames in which the true face is reported, and frames/s."""
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.detect_bench import video_recall
    from fer_edge.runtime.recognizer import EmotionRecognizer

    rows = []
    for profile in ("cam", "fast"):
        settings = dict(CAM_DEFAULTS, detector_config=profile)
        r = video_recall(lambda: EmotionRecognizer(model, **settings), frames=frames)
        rows.append({"profile": profile, "model": model.name, "settings": settings, **r})
        log(f"video recall {profile}: {r['frame_recall']:.4f} of {r['frames']} frames at {r['fps']} frames/s")
    return rows


def bench_end_to_end(files: list[Path], video: str | None, data: str | None, frames: int, log=print) -> list[dict]:
    """frames/s of the whole cam pipeline (decode -> detect -> preprocess -> classify -> draw)."""
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.runtime.video import run_cam

    runnable = [f for f in files if f.suffix in (".tflite", ".onnx")]
    if not runnable:
        return []
    with tempfile.TemporaryDirectory() as td:
        if video is None:
            video = str(make_demo_video(Path(td) / "demo.mp4", demo_faces(), frames=frames))
        elif not Path(video).is_file():
            raise UsageError(f"--video {video}: no such file.")
        rows = []
        for f in runnable:
            try:
                rec = EmotionRecognizer(f, **CAM_DEFAULTS)
                stats = run_cam(rec, video, display=False, max_frames=frames, force_draw=True, log=lambda *_: None)
                d = stats.to_dict()
                rows.append({"file": str(f), "backend": rec.backend.name, "status": "ok", "video": Path(video).name,
                             "settings": dict(CAM_DEFAULTS),
                             "frames": d["frames"], "faces": d["faces"], "frames_with_face": d["frames_with_face"],
                             "fps": d["fps"], "ms_per_frame": d["ms_per_frame"]})
            except FerEdgeError as exc:
                rows.append({"file": str(f), "status": "failed", "reason": str(exc)})
            log(f"end-to-end {f.name}: {rows[-1].get('fps')} frames/s")
    return rows
