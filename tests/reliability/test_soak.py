"""Long runs under `-m slow`: a 10,000-frame cam soak with its resident-memory curve (figures in
docs/reliability.md)."""
from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_cam_soak_10000_frames_flat_memory(tmp_path, capsys):
    from fer_edge.demo import demo_faces, make_demo_video
    from fer_edge.defaults import CAM_DEFAULTS
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.runtime.video import rss_mb, run_cam

    video = make_demo_video(tmp_path / "soak.mp4", demo_faces(), frames=10_000)
    rec = EmotionRecognizer(**CAM_DEFAULTS)
    curve = []

    def on_frame(i, results):
        if i % 500 == 0:
            curve.append((i, rss_mb()))

    stats = run_cam(rec, str(video), display=False, output=tmp_path / "out.mp4", jsonl=tmp_path / "events.jsonl",
                    on_frame=on_frame, log=lambda *_: None)
    curve.append((stats.frames, rss_mb()))
    with capsys.disabled():
        print("\nSOAK " + json.dumps({"frames": stats.frames, "fps": round(stats.fps, 1),
                                      "frames_with_face": stats.frames_with_face, "rss_mb": curve}))
    assert stats.frames == 10_000
    after_warmup = [mb for i, mb in curve if i >= 1000]
    assert max(after_warmup) - min(after_warmup) < 25, curve
