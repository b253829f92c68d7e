"""Shared fixtures: a small real FER2013 sample (tests/data/fer_sample), a tiny trained run and
its exports (built once per session), the astronaut photo from scikit-image."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("FER_EDGE_CACHE", str(Path(__file__).parent / ".cache-tests"))

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


@pytest.fixture(scope="session")
def tiny_exports(tiny_run, tmp_path_factory) -> dict:
    """Every format x quantization of the tiny run, with a CAM output (gate loosened: the model is untrained)."""
    from fer_edge.export.api import export_model

    out = tmp_path_factory.mktemp("export")
    rep = export_model(tiny_run, "all", "all", data=str(SAMPLE), out=out, max_drop=100.0, min_agreement=0.0,
                       calib_size=300, explain=True, emulate="none", log=lambda *_: None)
    return {"report": rep, "dir": out, "files": {(r.format, r.quantization): out / r.file for r in rep.rows if r.file}}


def run_cli(*args: str, env: dict | None = None, timeout: int = 300):
    """Run `python -m fer_edge ARGS` in a subprocess; returns CompletedProcess."""
    import subprocess

    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "fer_edge", *args], capture_output=True, text=True,
                          timeout=timeout, env=e)
