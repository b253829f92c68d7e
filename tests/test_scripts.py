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


def test_answers_agreement_on_one_machine(tmp_path):
    """`aarch64_guest.py agree`: int8 against the fp32 file of its backend, each file across backends,
    counted from the per-image answers (written here by hand: 2 of 4 images differ between precisions)."""
    import json

    def model(top1, probs, acc):
        return {"top1": top1, "probs": probs, "accuracy": acc}

    p = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    q = [[0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.55, 0.45]]
    runs = {"ids": list("abcd"), "machine": "x86_64", "cpu": "test CPU",
            "models": {"onnxruntime:m_int8.onnx": model(["x", "y", "x", "y"], p, 0.5),
                       "onnxruntime:m_fp32.onnx": model(["y", "y", "x", "x"], q, 0.75),
                       "litert:m_int8.tflite": model(["x", "y", "x", "y"], p, 0.5)}}
    (tmp_path / "preds.json").write_text(json.dumps(runs))
    r = _script("aarch64_guest.py", "agree", str(tmp_path / "preds.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert "test CPU" in lines[0] and len(lines) == 3
    assert "m_fp32.onnx" in lines[1] and "50.00% (2/4)" in lines[1] and "max |dprob| 0.5000" in lines[1]
    assert "litert:m_int8.tflite" in lines[2] and "100.00% (4/4)" in lines[2] and "max |dprob| 0.0000" in lines[2]


def test_epoch_tables_from_a_runs_history(tmp_path):
    """`results_table.py --epochs`: the per-epoch record docs/results.md keeps for a run in progress,
    numbered from 1, 14 epochs a table, the best epoch the whole run's (a later slice crowns none)."""
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    rows += [f"{e},{0.30 + e / 100},1.0,{0.40 + e / 100},1.0" for e in range(16)]
    rows[5] = "4,0.34,1.0,0.90,1.0"  # epoch 5 (history.csv counts from 0) is the best
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")
    r = _script("results_table.py", "--epochs", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    tables = r.stdout.strip().split("\n\n")
    assert len(tables) == 2
    head, rule, val, train = tables[0].splitlines()
    assert head.startswith("| epoch | 1 | 2 |") and "| 5 (best) |" in head and head.endswith("| 14 |")
    assert rule.count("|---") == 15 and val.split(" | ")[5] == "**90.0 %**" and val.split(" | ")[1] == "40.0 %"
    assert train.split(" | ")[1] == "30.0 %" and train.split(" | ")[5] == "34.0 %"
    assert tables[1].splitlines()[0] == "| epoch | 15 | 16 |"
    late = _script("results_table.py", "--epochs", str(tmp_path), "15", "16")
    assert late.stdout.splitlines()[0] == "| epoch | 15 | 16 |" and "best" not in late.stdout
    empty = _script("results_table.py", "--epochs", str(tmp_path), "20", "30")
    assert empty.returncode != 0 and empty.stderr.strip().startswith("error: no epochs between 20 and 30")
    missing = _script("results_table.py", "--epochs", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "history.csv not found" in missing.stderr


def test_packed_data_has_the_fingerprint_of_its_folders(tmp_path, sample_data):
    """`fer2013_pack.py`, the data's way to the lent GPU: unpacked as fer2013.csv, it is the same data by
    fer-edge's content fingerprint as the Kaggle folders it came from, so a run trained there records the
    id a run trained here does."""
    from fer_edge.data import load_raw

    assert _script("fer2013_pack.py", "pack", str(sample_data), str(tmp_path / "s.pack")).returncode == 0
    r = _script("fer2013_pack.py", "unpack", str(tmp_path / "s.pack"), str(tmp_path / "csv"))
    assert r.returncode == 0 and "lossless" in r.stdout, r.stderr[-2000:]
    folders = load_raw(sample_data, use_cache=False)
    csv = load_raw(tmp_path / "csv" / "fer2013.csv", use_cache=False)
    assert csv.fingerprint == folders.fingerprint and len(csv.images) == len(folders.images)


def test_paired_comparison_counts_the_faces_each_model_alone_gets_right(sample_data):
    """`paired.py A B`: the same file twice ties exactly (p 1, agreement 100 %); int8 against its fp32 file
    gives the accuracies `evaluate` gives; the exact McNemar p is the binomial tail, checked by hand."""
    import runpy

    from fer_edge.evaluate import evaluate

    models = Path(__file__).resolve().parents[1] / "fer_edge" / "models"
    int8, fp32 = models / "fer_edge_default_int8.tflite", models / "fer_edge_default_fp32.tflite"
    same = _script("paired.py", str(int8), str(models / "fer_edge_default_int8.onnx"), "--data", str(sample_data),
                   "--splits", "val")
    assert same.returncode == 0, same.stderr[-2000:]
    assert "right only for A 0, only for B 0; exact McNemar p = 1.00; top-1 agreement 100.00%" in same.stdout
    r = _script("paired.py", str(int8), str(fp32), "--data", str(sample_data), "--splits", "val")
    assert r.returncode == 0, r.stderr[-2000:]
    acc_a, acc_b = (evaluate(m, sample_data, split="val")["accuracy"] for m in (int8, fp32))
    assert f"A {acc_a:.2%}" in r.stdout and f"B {acc_b:.2%}" in r.stdout
    mcnemar = runpy.run_path(str(SCRIPTS / "paired.py"))["mcnemar_exact"]
    assert mcnemar(0, 10) == 2 / 1024 and mcnemar(5, 5) == 1.0 and mcnemar(0, 0) == 1.0
    assert mcnemar(233, 249) == mcnemar(249, 233) and 0.4 < mcnemar(233, 249) < 0.6
    bad = _script("paired.py", str(int8), str(fp32), "--data", str(sample_data), "--splits", "vall")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --splits vall")
