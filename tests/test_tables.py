"""One table per concept: what the CLI, the pip hints, the bundled-model choice and the reports print is
computed from the tables in fer_edge/formats.py, fer_edge/status.py and the registry."""
from __future__ import annotations

import pytest

from fer_edge.formats import BACKENDS, EXPORT_FORMATS, FORMATS


def test_pip_hints_of_backends_come_from_the_backends_table():
    from fer_edge._optional import pip_hint

    for name, (_impl, hint, module) in BACKENDS.items():
        assert pip_hint(module) == hint, name
    assert pip_hint("tf2onnx") == 'pip install "fer-edge[train]"'


def test_bundled_model_format_follows_the_installed_runtime_backends(monkeypatch):
    import fer_edge.runtime.backends as backends
    from fer_edge.runtime.recognizer import bundled_files

    monkeypatch.setattr(backends, "installed", lambda name: name == "onnxruntime")
    assert {f.suffix for f in bundled_files().values()} == {".onnx"}
    monkeypatch.setattr(backends, "installed", lambda name: name in ("litert", "onnxruntime"))
    assert {f.suffix for f in bundled_files().values()} == {".tflite"}
    # a name asked for wins, whether a backend or a format
    assert {f.suffix for f in bundled_files("onnxruntime").values()} == {".onnx"}
    assert {f.suffix for f in bundled_files("tflite").values()} == {".tflite"}


def test_cli_choices_are_the_tables():
    from typer.testing import CliRunner

    from fer_edge.cli.main import app

    r = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "300"})
    assert all(f in r.output for f in EXPORT_FORMATS)
    r = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "300"})
    assert all(b in r.output for b in BACKENDS)
    from fer_edge.bench.rows import BACKEND_CHOICES

    assert BACKEND_CHOICES == ("all", *BACKENDS)
    assert {b for f in FORMATS for b in f.backends} <= set(BACKENDS)


def test_every_row_status_has_an_icon_and_typos_do_not_pass():
    from fer_edge.bench.rows import BenchRow
    from fer_edge.export.api import GateRow
    from fer_edge.status import STATUSES, icon

    for status in ("ok", "accuracy-failed", "failed"):
        assert BenchRow("f", "onnx", "none", "onnxruntime", status=status).icon == STATUSES[status][0]
    for status in ("ok", "gate-failed", "error"):
        assert GateRow("onnx", "none", status).icon == STATUSES[status][0]
    with pytest.raises(KeyError):
        icon("okay")
