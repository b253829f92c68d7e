"""Video sources, writer and the `cam` loop (webcam index, file or URL).

The loop survives frames with no face, corrupt frames and end of stream; a camera that
disappears is retried a few times, then the loop ends cleanly. The output video is written
under a temporary name and renamed when closed (also on Ctrl-C), so a file under the final
name is always complete.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fer_edge.errors import DataError, UsageError
from fer_edge.runtime.draw import draw_fps, draw_results


def rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _peak_rss_mb() -> float | None:
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        return None


def has_gui() -> tuple[bool, str]:
    """Can this process open a window? (headless OpenCV builds and no-DISPLAY sessions cannot)."""
    info = cv2.getBuildInformation()
    gui_line = next((l for l in info.splitlines() if l.strip().startswith("GUI:")), "GUI: NONE")
    if "NONE" in gui_line.upper():
        return False, "this OpenCV build has no GUI (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no DISPLAY is set"
    return True, ""


def open_source(source: str | int) -> tuple[cv2.VideoCapture, bool]:
    """-> (capture, is_live). '0', '1'... are webcam indices; anything else a path or URL."""
    live = isinstance(source, int) or str(source).isdigit()
    if live:
        cap = cv2.VideoCapture(int(source))
    else:
        s = str(source)
        if "://" not in s and not Path(s).is_file():
            raise DataError(f"{s}: no such video file (use --source 0 for the first webcam).")
        cap = cv2.VideoCapture(s)
        live = s.startswith(("rtsp://", "http://", "https://", "udp://", "tcp://"))
    if not cap.isOpened():
        raise DataError(f"cannot open video source {source!r} (no camera at that index, or an unreadable file).")
    return cap, live


class AtomicVideoWriter:
    """cv2.VideoWriter into NAME.partial.EXT, renamed to NAME.EXT on close."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.check_name(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.stem + ".partial" + self.path.suffix)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
        self.writer = cv2.VideoWriter(str(self.tmp), fourcc, float(fps or 25.0), size)
        if not self.writer.isOpened():
            raise DataError(f"cannot write video {self.path}.")
        self.frames = 0

    @staticmethod
    def check_name(path: str | Path) -> None:
        if Path(path).suffix.lower() not in (".mp4", ".avi", ".mkv"):
            raise UsageError(f"--output {path}: use a .mp4, .avi or .mkv file name.")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        self.writer.release()
        if self.frames:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


@dataclass
class CamStats:
    frames: int = 0
    faces: int = 0
    frames_with_face: int = 0
    corrupt: int = 0
    seconds: float = 0.0
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    draw_ms: float = 0.0
    end_reason: str = "end of stream"
    signal: int | None = None  # the signal that ended the run (SIGINT 2, SIGHUP 1, SIGTERM 15), if any
    rss_mb: dict = None  # resident memory: after 10 frames, at the end, and the process peak


    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        n = max(self.frames, 1)
        return {"frames": self.frames, "faces": self.faces, "frames_with_face": self.frames_with_face,
                "corrupt_frames": self.corrupt,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 1), "end_reason": self.end_reason,
                "rss_mb": self.rss_mb or {},
                "ms_per_frame": {"decode": round(self.decode_ms / n, 3), "detect": round(self.detect_ms / n, 3),
                                 "classify": round(self.classify_ms / n, 3), "draw": round(self.draw_ms / n, 3)}}


def run_cam(recognizer, source: str | int = 0, display: bool = True, output: str | Path | None = None,
            jsonl: str | Path | None = None, max_frames: int | None = None, fps_overlay: bool = False,
            retries: int = 5, draw: bool = True, on_frame: Callable | None = None, log=print,
            overlay: Callable | None = None, force_draw: bool = False) -> CamStats:
    """Run the camera/video loop; returns per-stage timing statistics."""
    if display:
        ok, why = has_gui()
        if not ok:
            raise UsageError(f"cannot open a window: {why}. Run with --no-display and --output out.mp4 "
                             "(annotated video) and/or --jsonl events.jsonl instead.")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise UsageError(f"--max-frames must be a whole number >= 1, got {max_frames}.")
    if output:
        AtomicVideoWriter.check_name(output)
    cap, live = open_source(source)
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    events = None
    stats = CamStats()
    failures = 0
    t_start = time.perf_counter()
    fps_ema = 0.0
    rss_after_warmup = None
    try:
        if jsonl:
            # written line by line so it can be followed live (tail -f); every line is a complete event
            Path(jsonl).parent.mkdir(parents=True, exist_ok=True)
            events = open(jsonl, "w", buffering=1)
        while max_frames is None or stats.frames < max_frames:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            t1 = time.perf_counter()
            if not ok or frame is None:
                if live and failures < retries:
                    failures += 1
                    log(f"warning: no frame from {source!r}; retrying ({failures}/{retries})")
                    time.sleep(0.2 * failures)
                    continue
                stats.end_reason = "camera lost" if live else "end of stream"
                break
            failures = 0
            if frame.size == 0 or frame.ndim != 3:
                stats.corrupt += 1
                continue
            try:
                results = recognizer.predict(frame)
            except Exception as exc:  # a corrupt frame must not end the stream
                stats.corrupt += 1
                log(f"warning: frame {stats.frames} skipped ({exc.__class__.__name__}: {exc})")
                continue
            t2 = time.perf_counter()
            shown = frame
            if draw and (writer is not None or output or display or force_draw):
                shown = draw_results(frame, results)
                if overlay is not None:
                    shown = overlay(shown, results)
                if fps_overlay:
                    shown = draw_fps(shown, fps_ema)
            if output and writer is None:
                writer = AtomicVideoWriter(output, src_fps, (shown.shape[1], shown.shape[0]))
            if writer is not None:
                writer.write(shown)
            t3 = time.perf_counter()
            if events is not None:
                events.write(json.dumps({
                    "frame": stats.frames, "timestamp": round(time.time(), 3),
                    "pos_ms": round(float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0), 1),
                    "faces": [r.to_dict() for r in results],
                    "detect_ms": round(recognizer.timings["detect_ms"], 3),
                    "classify_ms": round(recognizer.timings["classify_ms"], 3),
                }) + "\n")
            if on_frame is not None:
                on_frame(stats.frames, results)
            if display:
                cv2.imshow("fer-edge", shown)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    stats.end_reason = "quit"
                    break
            stats.frames += 1
            stats.faces += len(results)
            stats.frames_with_face += bool(results)
            stats.decode_ms += (t1 - t0) * 1e3
            stats.detect_ms += recognizer.timings["detect_ms"]
            stats.classify_ms += recognizer.timings["classify_ms"]
            stats.draw_ms += (t3 - t2) * 1e3
            if stats.frames == 10:
                rss_after_warmup = rss_mb()
            dt = time.perf_counter() - t0
            fps_ema = 1 / dt if fps_ema == 0 else 0.9 * fps_ema + 0.1 / max(dt, 1e-6)
        else:
            stats.end_reason = f"--max-frames {max_frames}"
    except KeyboardInterrupt as exc:
        from fer_edge.signals import signal_name

        stats.end_reason = f"interrupted ({signal_name(getattr(exc, 'signum', None))})"
        stats.signal = getattr(exc, "signum", None) or 2
    finally:
        stats.seconds = time.perf_counter() - t_start
        end_rss = rss_mb()
        # ru_maxrss is updated lazily by the kernel and can read below the current RSS: never report less
        stats.rss_mb = {"after_10_frames": rss_after_warmup, "end": end_rss,
                        "peak": max((v for v in (_peak_rss_mb(), end_rss) if v is not None), default=None)}
        cap.release()
        if writer is not None:
            writer.close()
        if events is not None:
            events.close()
        if display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
    return stats
