"""`fer-edge runs` and the resume guard: a run's status from its JSON and the live processes of this machine."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fer_edge.cli.main import app
from fer_edge.rundir import RunDir
from fer_edge.runstatus import (RUN_STATUSES, budget_left, liveness, owner, process_identity, progress, runs_table,
                                 this_host)


def _run(root, name, status, epoch=3, epochs=10, budget=False, last=False, **config):
    d = root / name
    d.mkdir(parents=True)
    cfg = {"status": status, "train_config": {"data": "x", "arch": "edgenet", "epochs": epochs},
           "class_map": {k: [k] for k in ("angry", "happy")}, **config}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "state.json").write_text(json.dumps({"epoch": epoch, "best_val_accuracy": 0.5, "best_epoch": 2,
                                              "budget_reached": budget, "train_seconds": 120.0,
                                              "epoch_seconds": [50.0, 50.0, 50.0]}))
    if last:
        (d / "last.keras").write_bytes(b"x")
    return RunDir(d)


@pytest.fixture
def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_status_of_each_kind_of_run(tmp_path, dead_pid):
    here = this_host()
    cases = {
        "done": (_run(tmp_path, "done", "finished"), "finished", False),
        "budget": (_run(tmp_path, "out/budget", "finished", budget=True, last=True), "budget", True),
        "budget_spent": (_run(tmp_path, "out/spent", "finished", epoch=10, budget=True, last=True), "budget", False),
        "budget_old": (_run(tmp_path, "out/old", "finished", budget=True), "budget", False),
        "stopped": (_run(tmp_path, "a/b/stopped", "interrupted"), "interrupted", True),
        "live": (_run(tmp_path, "live", "running", pid=__import__("os").getpid(), host=here), "running", False),
        "killed": (_run(tmp_path, "killed", "running", pid=dead_pid, host=here), "killed", True),
        "far": (_run(tmp_path, "far", "running", pid=dead_pid, host=here + "-other"), "elsewhere", False),
        "old": (_run(tmp_path, "old", "running"), "unknown", False),
    }
    for name, (run, status, resumable) in cases.items():
        p = progress(run)
        assert (p.status, p.resumable) == (status, resumable), name
        assert p.status in RUN_STATUSES
        assert (p.next.startswith("fer-edge train --resume ") if resumable else p.next == ""), name
    p = progress(cases["budget"][0])
    assert p.next.endswith("--max-minutes M") and p.minutes == 2.5  # the per-epoch times: a live run's
    assert (p.epoch, p.epochs, p.best_val_accuracy, p.best_epoch) == (3, 10, 0.5, 2)
    assert len(runs_table([tmp_path])) == len(cases)  # nested --out folders are found
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert len(runs_table([tmp_path])) == len(cases)  # a damaged run is skipped, not a traceback


def test_budget_left_is_the_one_answer_for_runs_and_resume():
    assert budget_left({"epoch": 3}, 10, True) == "train"
    assert budget_left({"epoch": 3}, 10, False) == "no-resume-point"
    assert budget_left({"epoch": 10}, 10, True) == "done"
    assert budget_left({"epoch": 10}, 10, False) == "done"  # all epochs trained: nothing to resume from anyway
    assert budget_left({}, 10, True) == "train"


def test_owner_is_a_live_other_process_of_this_host(dead_pid):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        cfg = {"status": "running", "pid": sleeper.pid, "host": this_host()}
        assert owner(cfg) == sleeper.pid
        assert owner({**cfg, "status": "interrupted"}) is None
        assert owner({**cfg, "host": "elsewhere"}) is None
        assert owner({**cfg, "pid": dead_pid}) is None
        assert owner({**cfg, "pid": __import__("os").getpid()}) is None  # the resuming process itself
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(not process_identity(__import__("os").getpid()), reason="needs Linux /proc")
def test_a_reused_process_id_is_not_the_runs_trainer():
    """Every session of this project lands on a new VM named "vm": a run directory carried over in git says
    "running" with a pid that, there, may belong to anything. The boot and start time tell them apart."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ident = process_identity(sleeper.pid)
        assert set(ident) == {"boot_id", "pid_start"} and ident != process_identity(__import__("os").getpid())
        cfg = {"status": "running", "pid": sleeper.pid, "host": this_host(), **ident}
        assert liveness(cfg) == "running" and owner(cfg) == sleeper.pid
        assert liveness({**cfg, "boot_id": "another-boot"}) == "killed"  # a reboot, or a same-named machine
        assert liveness({**cfg, "pid_start": ident["pid_start"] + 1}) == "killed"  # the id, reused
        assert owner({**cfg, "boot_id": "another-boot"}) is None
        assert liveness({k: v for k, v in cfg.items() if k not in ident}) == "running"  # older config.json
    finally:
        sleeper.kill()
        sleeper.wait()


def test_resume_refuses_a_run_another_process_trains(tmp_path):
    pytest.importorskip("keras")
    from fer_edge.errors import UsageError
    from fer_edge.training.train import TrainConfig, train

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = _run(tmp_path, "busy", "running", pid=sleeper.pid, host=this_host())
        with pytest.raises(UsageError, match=f"process {sleeper.pid} on this machine is training it"):
            train(TrainConfig(data="x"), resume=run.path, log=lambda *_: None)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_runs_command(tmp_path, dead_pid):
    _run(tmp_path, "r1", "interrupted")
    _run(tmp_path, "r2", "finished")
    r = CliRunner().invoke(app, ["runs", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["status"] for row in rows] == ["interrupted", "finished"]
    r = CliRunner().invoke(app, ["runs", str(tmp_path), "--resumable", "--json"])
    assert [row["run"] for row in json.loads(r.output)] == [str(tmp_path / "r1")]
    r = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert r.exit_code == 0 and "interrupted" in r.output and "50.00 %" in r.output, r.output
    assert f"to go on: fer-edge train --resume {tmp_path / 'r1'}\n" in r.output, r.output  # whole, to copy
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "no such folder" in r.output


def test_export_is_current_tells_a_report_of_an_older_model(tmp_path):
    from fer_edge.rundir import export_is_current, file_sha256

    run = _run(tmp_path, "r", "finished", budget=True, last=True)
    assert export_is_current(run) is None  # not exported
    run.model.write_bytes(b"weights of epoch 3")
    run.export_dir.mkdir()
    report = run.export_dir / "export_report.json"
    report.write_text(json.dumps({"rows": []}))
    assert export_is_current(run) is None  # a report from before reports named their model
    report.write_text(json.dumps({"rows": [], "source_sha256": file_sha256(run.model)}))
    assert export_is_current(run) is True
    run.model.write_bytes(b"weights of epoch 9")  # the run trained on and found a better epoch
    assert export_is_current(run) is False
