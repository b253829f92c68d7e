"""Class 5: scripts can trust stdout and exit codes: JSON alone on stdout, interrupted work exits
128 + signal, resume works from any directory, a bench with no working row fails, and file names or
labels are printed as text, never as rich markup or terminal escapes."""
from __future__ import annotations

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
from conftest import SAMPLE, run_cli


def test_evaluate_json_stdout_is_only_json_on_a_cold_cache(tmp_path):
    # >= 500 images, so the decode progress bar is shown (it goes to stderr)
    root = tmp_path / "data"
    faces = sorted((SAMPLE / "train").rglob("*.jpg"))
    for i in range(520):
        f = faces[i % len(faces)]
        dst = root / "train" / f.parent.name / f"{i}_{f.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst)
    r = run_cli("evaluate", str(H.INT8_ONNX), "--data", str(root), "--split", "train", "--json", "-",
                env={"FER_EDGE_CACHE": str(tmp_path / "cold"), "COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] > 400  # (the rest is the validation split carved from it)


@pytest.mark.large  # two TensorFlow processes: ~20 s (in-process interrupt/resume: test_train.py, default tier)
def test_train_interrupted_exits_130_and_resumes_from_another_directory(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    data = os.path.relpath(SAMPLE, work)  # relative paths, as users type them
    env = dict(os.environ, FER_EDGE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "fer_edge", "train", "--data", data, "--arch", "sequential",
                             "--epochs", "2", "--batch-size", "1", "--out", "runs", "--no-augment"],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if list(work.glob("runs/*/state.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    run = next(work.glob("runs/*"))
    assert json.loads((run / "config.json").read_text())["status"] == "interrupted"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([sys.executable, "-m", "fer_edge", "train", "--resume", str(run)], cwd=elsewhere, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["status"] == "finished"
    assert not list(elsewhere.iterdir())  # nothing written relative to the other directory


def test_bench_with_no_working_row_exits_1(tmp_path):
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(b"\0" * 100)
    r = run_cli("bench", str(bad), "--no-pipeline", "--batch", "1", "--threads", "1")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "every benchmark row failed" in r.stderr


def test_names_are_printed_as_text(tmp_path):
    img = cv2.imread(str(H.MODELS / "detect" / "astronaut_face.png"))
    img = cv2.copyMakeBorder(img, 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    (tmp_path / "x[").mkdir()  # so that the path reads x[/bold]y.png
    names = ["[draft] me.png", "x[/bold]y.png", "esc\x1b[2Jz.png"]
    for n in names:
        assert cv2.imwrite(str(tmp_path / n), img)
    r = run_cli("predict", *[str(tmp_path / n) for n in names], env={"COLUMNS": "300"})
    assert r.returncode == 0, r.stderr
    assert "[draft] me.png: face 0" in r.stdout and "x[/bold]y.png: face 0" in r.stdout
    assert "\x1b" not in r.stdout and "esc[2Jz.png: face 0" in r.stdout
