"""`keras` and `keras.layers` imported on first use, so registering the builders (what `fer-edge train`
needs to validate `--arch` and print a did-you-mean) does not load TensorFlow."""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


keras = LazyModule("keras")
layers = LazyModule("keras.layers")
