"""The measuring scripts whose numbers docs/results.md quotes: they run, and they compute what they say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=300)


def test_ensemble_averages_flip_probabilities(tiny_run, sample_data):
    r = _script("ensemble.py", str(tiny_run), str(tiny_run), "--data", str(sample_data))
    assert r.returncode == 0, r.stderr[-2000:]
    flip = re.search(r"single [\d.]+%, flip ([\d.]+)%", r.stdout).group(1)
    assert f"flip average of models 1+2: {flip}%" in r.stdout
    assert r.stdout.count("flip average of models") == 1 and "2. " in r.stdout


def test_ensemble_refuses_a_missing_model_in_one_line(tmp_path):
    r = _script("ensemble.py", str(tmp_path / "nope.keras"))
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_step_time_under_a_mixed_policy():
    r = _script("step_time.py", "--mixed-precision", "bfloat16", "sequential")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mixed precision bfloat16" in r.stdout
    assert re.search(r"sequential: \d+ ms per step of 64 -> [\d.]+ min per epoch", r.stdout)
    bad = _script("step_time.py", "--mixed-precision", "fp8", "sequential")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
