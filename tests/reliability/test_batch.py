"""Class 6: one bad item does not stop a batch; malformed CSV rows are counted and skipped; two
trainings into one --out never share a run directory."""
from __future__ import annotations

import json
import shutil
import threading

import numpy as np

import hostile as H
from conftest import run_cli


def _folder(tmp_path, good: int, bad: int):
    d = tmp_path / "imgs"
    d.mkdir()
    for f in H.sample_faces()[:good]:
        shutil.copy(f, d / f.name)
    for i in range(bad):
        (d / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * (i + 1))
    return d


def test_predict_processes_the_good_images_and_reports_the_bad(tmp_path):
    d = _folder(tmp_path, 5, 2)
    r = run_cli("predict", str(d), "--json")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert len(records) == 7
    assert sum("error" in rec for rec in records) == 2 and sum("faces" in rec for rec in records) == 5
    assert "5 of 7 images processed" in r.stderr
    assert "[ERROR" not in r.stderr  # OpenCV's decoder log is silenced: each bad file is one error: line
    assert sum(l.startswith("error: ") for l in r.stderr.splitlines()) == 2
    r = run_cli("predict", str(d), "--json", "--strict")
    assert r.returncode == 1 and len(json.loads(r.stdout)) == 7


def test_predict_where_nothing_succeeds_exits_2(tmp_path):
    d = _folder(tmp_path, 0, 2)
    r = run_cli("predict", str(d))
    assert r.returncode == 2 and "0 of 2" in r.stderr and "Traceback" not in r.stderr


def _row(code: int, usage: str = "Training") -> bytes:
    return f'{code},"{" ".join(["100"] * 2304)}",{usage}\n'.encode()


def test_malformed_csv_rows_are_counted_and_skipped(tmp_path):
    from fer_edge.data import load_raw

    csv = tmp_path / "fer2013.csv"
    csv.write_bytes(b"\xef\xbb\xbfemotion,pixels,Usage\n" + _row(3) + b'3,"\xff\xfe 1 2",Training\n'
                    + b'1,"' + b"9 " * 100_000 + b'",Training\n' + b"\xef\xbb\xbf" + _row(4, "PublicTest")
                    + b"x,y,z\n" + _row(0) + b'5,"1 2 3",Training\n')
    raw = load_raw(csv, use_cache=False)
    assert len(raw.images) == 3
    assert len(raw.problems) == 4, raw.problems
    assert np.all(raw.images == 100)


def test_run_directories_are_unique_under_concurrency(tmp_path):
    from fer_edge.training.train import _new_run_dir

    made, errors = [], []

    def work():
        try:
            made.append(_new_run_dir(tmp_path, "20261125-120000-edgenet-7c"))
        except Exception as exc:  # noqa: BLE001 (asserted empty)
            errors.append(exc)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(set(made)) == 8
