"""CLI surface: light --help, one-line errors with exit code 2, predict/cam/models commands."""
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fer_edge.cli.main import app

from conftest import run_cli

runner = CliRunner()


def test_help_and_import_load_no_tensorflow():
    code = ("import sys, fer_edge.runtime, fer_edge.cli.main, fer_edge;"
            "heavy=[m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras','tf2onnx','onnx')];"
            "print('HEAVY', heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "HEAVY []" in r.stdout, r.stderr
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("train", "evaluate", "export", "predict", "cam", "bench", "models", "runs"):
        assert cmd in r.stdout


def test_errors_are_one_line_exit_2(tmp_path):
    cases = [
        ["predict", str(tmp_path / "missing.jpg")],
        ["evaluate", str(tmp_path / "m.onnx"), "--data", str(tmp_path)],
        ["train", "--data", str(tmp_path / "nowhere"), "--epochs", "1"],
        ["train", "--arch", "mini_xeption", "--data", str(tmp_path)],
        ["export", "x.keras", "--format", "tflit"],
        ["cam", "--source", str(tmp_path / "none.mp4"), "--no-display"],
        ["bench", "--backend", "litrt"],
    ]
    for args in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        err = r.output.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (args, r.output)
        assert "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--arch", "mini_xeption", "--data", str(tmp_path)])
    assert "Did you mean 'mini_xception'" in r.output


def test_predict_cli_on_astronaut(astronaut, tmp_path):
    r = run_cli("predict", str(astronaut), "--output", str(tmp_path / "out"), "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert len(rec) == 1 and len(rec[0]["faces"]) == 1
    out = cv2_read(rec[0]["annotated"])
    assert out.shape == (512, 512, 3)


def test_predict_and_cam_in_fewer_classes(astronaut, tmp_path):
    """--classes 2 on the bundled 7-class model: every face answered in angry/happy, in predict's JSON and in
    cam's JSONL; a class the data has no name for exits 2 in one line."""
    r = run_cli("predict", str(astronaut), "--json", "--classes", "2")
    assert r.returncode == 0, r.stderr
    (face,) = json.loads(r.stdout)[0]["faces"]
    assert set(face["scores"]) == {"angry", "happy"} and face["label"] in ("angry", "happy")
    r = run_cli("cam", "--source", "demo", "--no-display", "--max-frames", "6", "--classes", "4",
                "--jsonl", str(tmp_path / "e.jsonl"))
    assert r.returncode == 0, r.stderr
    labels = {f["label"] for line in (tmp_path / "e.jsonl").read_text().splitlines() for f in json.loads(line)["faces"]}
    assert labels and labels <= {"happy", "sad", "surprise", "neutral"}
    r = run_cli("predict", str(astronaut), "--classes", "happy,smug")
    assert r.returncode == 2 and "unknown class 'smug'" in r.stderr and "Traceback" not in r.stderr


def cv2_read(p):
    import cv2

    img = cv2.imread(p)
    assert img is not None
    return img


def test_predict_bad_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    r = runner.invoke(app, ["predict", str(bad)])
    assert r.exit_code == 2 and "not a readable image" in r.output


def test_cam_without_gui_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    r = runner.invoke(app, ["cam", "--source", "0"])
    assert r.exit_code == 2 and "--no-display" in r.output


@pytest.mark.large  # builds every full-size architecture and its upscaled variant to count its MACs: ~20 s
def test_models_json():
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    names = {x["name"] for x in rows}
    assert {"vgg", "vgg16", "resnet50", "resnet50v2", "efficientnetb0", "mini_xception", "sequential", "edgenet"} <= names
    assert all(x["params"] > 0 and x["macs"] > 0 for x in rows)
    by = {x["name"]: x for x in rows}
    assert by["efficientnetb0_96"]["tier"] == "upscaled" and by["efficientnetb0"]["tier"] == "full"
    assert by["efficientnetb0_96"]["params"] == by["efficientnetb0"]["params"]


def test_train_without_tensorflow_says_pip_command(tmp_path):
    code = (
        "import sys, importlib.abc\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "sys.argv = ['fer-edge', 'train', '--epochs', '1']\n"
        "from fer_edge.cli.main import app\n"
        "app(prog_name='fer-edge')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith('error: the tensorflow backend needs tensorflow and keras, which are not '
                                      'installed: pip install "fer-edge[train]"')
    assert len(r.stderr.strip().splitlines()) == 1


def test_runtime_folder_never_imports_tensorflow_or_keras():
    """Every file under fer_edge/runtime/ (read as source, so lazy imports count too) is free of
    TensorFlow and Keras: the runtime is TensorFlow-free by construction, not only at import time."""
    import ast
    from pathlib import Path

    import fer_edge

    heavy = {"tensorflow", "keras", "tf2onnx", "tf_keras"}
    offenders = []
    for f in (Path(fer_edge.__file__).parent / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require" and node.args:
                arg = node.args[0]
                names = [arg.value] if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else []
            offenders += [f"{f.name}: {n}" for n in names if n.split(".")[0] in heavy]
            # and no arrow back up: the runtime stands on the ground floor (spec, metadata, formats,
            # preprocess, errors, sysinfo) and on itself, never on training, export, the benchmark or the CLI
            offenders += [f"{f.name}: {n}" for n in names
                          if n.startswith(("fer_edge.training", "fer_edge.export", "fer_edge.bench", "fer_edge.cli",
                                           "fer_edge.explain", "fer_edge.detect_bench"))]
    assert not offenders, offenders


def test_resume_refuses_options_it_would_ignore(tmp_path):
    """`train --resume RUN --epochs 50` would silently keep the run's own epochs: refused, one line, exit 2
    (before any run is read). --max-minutes is what a resume accepts."""
    r = runner.invoke(app, ["train", "--resume", str(tmp_path), "--epochs", "50", "--lr", "0.1"])
    assert r.exit_code == 2 and "--epochs, --lr" in r.output and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["train", "--resume", str(tmp_path), "--max-minutes", "5"])
    assert r.exit_code == 2 and "not a run directory" in r.output, r.output
