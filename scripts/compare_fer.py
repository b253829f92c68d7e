"""fer-edge's cam pipeline vs the `fer` package on the same one-face 640x480 videos, same machine.

Frames come from fer_edge.detect_bench.face_video (the astronaut's face and a FER2013 face, 60-240 px,
drifting, tilting +-10 degrees, exposure changing), in memory: no video codec in the timing. Each
tool gets the BGR frame and returns boxes; a frame counts when the true face is among them (IoU >=
0.3). Prints frame recall, wrong boxes and frames/s per tool, with the CPU they ran on.

usage: python3 scripts/compare_fer.py [--frames 300] [--json out.json]
`fer` is optional (pip install fer, or its wheel with --no-deps plus pandas/requests/setuptools and
PYTHONPATH); without it only fer-edge's rows are printed.
"""
from __future__ import annotations

import argparse
import json
import time

import cv2


def run(name, detect, videos):
    hits = wrong = n = 0
    seconds = 0.0
    per = {}
    for label, frames in videos:
        h = 0
        for frame, box in frames:
            bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            t0 = time.perf_counter()
            boxes = detect(bgr)
            seconds += time.perf_counter() - t0
            from fer_edge.detect_bench import match

            a, _, c = match(boxes, [box])
            h, wrong, n = h + a, wrong + c, n + 1
        hits += h
        per[label] = round(h / len(frames), 4)
    return {"tool": name, "frame_recall": round(hits / n, 4), "frames": n, "wrong_boxes": wrong,
            "fps": round(n / seconds, 1), "per_video": per, "worst_video": min(per.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="60,80,120,180,240")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.detect_bench import face_patches, face_video
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.sysinfo import cpu_summary

    sizes = [int(s) for s in a.sizes.split(",")]
    videos = [(f"{p.name}@{s}px", list(face_video(s, a.frames, seed=s, patch=p))) for p in face_patches()[:2] for s in sizes]
    rows = []
    for profile in ("cam", "fast"):
        settings = dict(CAM_DEFAULTS, detector_config=profile)
        recs = {}

        def fe(bgr):
            return [r.box for r in recs["r"].predict(bgr)]

        # a fresh recognizer (fresh tracks) per video, as a user starts cam on each
        rs = []
        for label, frames in videos:
            recs["r"] = EmotionRecognizer(**settings)
            rs.append(run(f"fer-edge cam ({profile})", fe, [(label, frames)]))
        rows.append(_merge(rs))
    try:
        from fer.fer import FER
    except ImportError:
        FER = None
    if FER is not None:
        det = FER()  # its defaults: Haar (default cascade), scale 1.1, min neighbours 5, min face 50 px, TFLite model

        def fer_detect(bgr):
            return [tuple(int(v) for v in f["box"]) for f in det.detect_emotions(bgr)]

        rows.append(run("fer (defaults)", fer_detect, videos))
    print(f"CPU: {cpu_summary()}")
    print(f"{'tool':28s} {'frame recall':>12s} {'worst video':>11s} {'wrong boxes':>11s} {'frames/s':>9s}")
    for r in rows:
        print(f"{r['tool']:28s} {r['frame_recall']:12.4f} {r['worst_video']:11.4f} {r['wrong_boxes']:11d} {r['fps']:9.1f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"cpu": cpu_summary(), "rows": rows}, fh, indent=2)


def _merge(rs):
    n = sum(r["frames"] for r in rs)
    sec = sum(r["frames"] / r["fps"] for r in rs)
    per = {k: v for r in rs for k, v in r["per_video"].items()}
    return {"tool": rs[0]["tool"], "frame_recall": round(sum(r["frame_recall"] * r["frames"] for r in rs) / n, 4),
            "frames": n, "wrong_boxes": sum(r["wrong_boxes"] for r in rs), "fps": round(n / sec, 1),
            "per_video": per, "worst_video": min(per.values())}


if __name__ == "__main__":
    main()
