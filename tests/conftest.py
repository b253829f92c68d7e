"""Shared fixtures: a small real FER2013 sample (tests/data/fer_sample), a tiny trained run and
its exports (built once per session), the astronaut photo from scikit-image."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("FER_EDGE_CACHE", str(Path(__file__).parent / ".cache-tests"))
if os.environ.get("PYTEST_XDIST_WORKER"):  # one TensorFlow thread per worker: the workers fill the cores
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "fer_sample"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cache")
    os.environ["FER_EDGE_CACHE"] = str(d)
    return d


@pytest.fixture(scope="session")
def astronaut() -> Path:
    skimage = pytest.importorskip("skimage")
    p = Path(skimage.__file__).parent / "data" / "astronaut.png"
    if not p.is_file():
        pytest.skip("scikit-image ships no astronaut.png")
    return p


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, cache_dir) -> Path:
    """A 1-epoch mini_xception run on the bundled sample (real training code path)."""
    from fer_edge.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(data=str(SAMPLE), arch="mini_xception", epochs=1, batch_size=32, out=str(out), augment=False,
                      cache_dir=str(cache_dir))
    return train(cfg, log=lambda *_: None)


#: the quantizations every default-tier test needs; fp16 and dynamic files are built for `-m large` only
CORE_QUANTIZATIONS = ("none", "int8")


def _export_tiny(tiny_run, tmp_path_factory, formats: str, quantize: str) -> dict:
    """These formats x quantizations of the tiny run, with a CAM output (gate loosened: the model is
    untrained)."""
    from fer_edge.export.api import export_model

    out = tmp_path_factory.mktemp("export")
    rep = export_model(tiny_run, formats, quantize, data=str(SAMPLE), out=out, max_drop=100.0, min_agreement=0.0,
                       calib_size=300, explain=True, emulate="none", log=lambda *_: None)
    return {"report": rep, "dir": out, "files": {(r.format, r.quantization): out / r.file for r in rep.rows if r.file}}


@pytest.fixture(scope="session")
def tiny_exports(tiny_run, tmp_path_factory) -> dict:
    """TFLite and ONNX, float and int8, of the tiny run (four files, ~15 s)."""
    return _export_tiny(tiny_run, tmp_path_factory, "all", ",".join(CORE_QUANTIZATIONS))


@pytest.fixture(scope="session")
def tiny_exports_more(tiny_run, tmp_path_factory) -> dict:
    """The other quantizations (TFLite fp16 and dynamic, ONNX dynamic) of the tiny run: -m large."""
    tflite = _export_tiny(tiny_run, tmp_path_factory, "tflite", "fp16,dynamic")
    onnx = _export_tiny(tiny_run, tmp_path_factory, "onnx", "dynamic")
    return {"files": {**tflite["files"], **onnx["files"]}}


def run_cli(*args: str, env: dict | None = None, timeout: int = 300):
    """Run `python -m fer_edge ARGS` in a subprocess; returns CompletedProcess."""
    import subprocess

    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True,
                          timeout=timeout, env=e)


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 4 (each worker imports TensorFlow: ~1 GB)."""
    return max(1, min(4, os.cpu_count() or 1))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n`, `--dist loadgroup`), every test that needs the tiny trained run or its
    exports goes to one worker: the run and its seven exports (about 40 s) are built once, while the other
    workers take the rest of the suite."""
    for item in items:
        if {"tiny_run", "tiny_exports", "tiny_exports_more"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("tiny"))
