"""Class 2: outputs are never lost or destroyed: signals finalise them, an input is never overwritten,
names never collide, an existing file is replaced only with --overwrite."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pytest

import hostile as H
from conftest import run_cli


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    from fer_edge.demo import demo_faces, make_demo_video

    return make_demo_video(tmp_path_factory.mktemp("video") / "long.mp4", demo_faces(), frames=2400)


def _digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_cam_stopped_by_a_signal_leaves_complete_outputs(long_video, tmp_path, sig):
    out, events = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "cam", "--source", str(long_video), "--no-display",
                             "--output", str(out), "--jsonl", str(events)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            if events.is_file() and events.read_text().count("\n") >= 15:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "cam ended before the signal: " + proc.stderr.read()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert f"interrupted ({signal.Signals(sig).name})" in stdout, stdout + stderr
    assert out.is_file() and not list(tmp_path.glob("*.partial*")), list(tmp_path.iterdir())
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    lines = events.read_text().splitlines()
    assert frames >= 15 and len(lines) >= 15
    assert all(isinstance(json.loads(l)["faces"], list) for l in lines)


def test_cam_never_overwrites_its_input_or_an_existing_file(long_video, tmp_path):
    src = tmp_path / "a.mp4"
    shutil.copy(long_video, src)
    before = _digest(src)
    for opt in ("--output", "--jsonl"):
        r = run_cli("cam", "--source", str(src), "--no-display", opt, str(src), "--max-frames", "3")
        assert r.returncode == 2 and "input" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert _digest(src) == before
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"keep me")
    r = run_cli("cam", "--source", str(src), "--no-display", "--output", str(existing), "--max-frames", "3")
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert existing.read_bytes() == b"keep me"
    r = run_cli("cam", "--source", str(src), "--no-display", "--output", str(existing), "--max-frames", "3",
                "--overwrite")
    assert r.returncode == 0, r.stderr
    assert cv2.VideoCapture(str(existing)).read()[0]


def test_predict_names_never_collide_and_existing_files_are_kept(tmp_path):
    face = H.sample_faces()[0]
    img = cv2.imread(str(face))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "photo.jpg"), img)
    cv2.imwrite(str(tmp_path / "a" / "photo.png"), img)
    cv2.imwrite(str(tmp_path / "b" / "photo.jpg"), img)
    out = tmp_path / "out"
    r = run_cli("predict", str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(out), "--json")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 3 and len({rec["annotated"] for rec in records}) == 3, written
    stamp = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run_cli("predict", str(tmp_path / "a"), "--output", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamp
    r = run_cli("predict", str(tmp_path / "a"), "--output", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr


def test_predict_never_writes_over_an_input(tmp_path):
    img = cv2.imread(str(H.sample_faces()[0]))
    cv2.imwrite(str(tmp_path / "face.png"), img)
    cv2.imwrite(str(tmp_path / "face_fer.png"), img)  # an input with the name an output would take
    before = _digest(tmp_path / "face_fer.png")
    r = run_cli("predict", str(tmp_path), "--output", str(tmp_path), "--overwrite")
    assert r.returncode == 2 and "input" in r.stderr, r.stderr
    assert _digest(tmp_path / "face_fer.png") == before


def test_predict_output_that_is_a_file_is_refused(tmp_path):
    img = cv2.imread(str(H.sample_faces()[0]))
    cv2.imwrite(str(tmp_path / "face.png"), img)
    (tmp_path / "out.png").write_bytes(b"mine")
    r = run_cli("predict", str(tmp_path / "face.png"), "--output", str(tmp_path / "out.png"))
    last = r.stderr.strip().splitlines()[-1]  # LiteRT's own INFO line may come before it
    assert r.returncode == 2 and "Traceback" not in r.stderr and last.startswith("error:") and "not a folder" in last, r.stderr
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_interrupted_writes_leave_no_file_under_the_final_name(tmp_path, monkeypatch):
    from fer_edge import outputs

    target = tmp_path / "report.json"

    def boom(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(target), "write_bytes", boom)
    with pytest.raises(KeyboardInterrupt):
        outputs.atomic_write_text(target, "{}")
    monkeypatch.undo()
    assert not target.exists() and not os.listdir(tmp_path)
