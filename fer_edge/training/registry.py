"""Model registry (after timm's register_model/create_model): one builder per family.

Builders register themselves on import of `fer_edge.training.models`; the CLI's
--arch choices, `fer-edge models` and `--arch all` all read this one table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from fer_edge.errors import unknown


@dataclass(frozen=True)
class ArchInfo:
    name: str
    builder: Callable[..., Any]
    source: str  # citation / where the design comes from
    family: str
    defaults: dict[str, Any] = field(default_factory=dict)  # training defaults (lr, optimizer, two_phase...)
    pretrained: bool = False  # accepts --weights imagenet|PATH
    cam: bool = False  # head = GAP -> linear classifier: qualifies for edge CAM


_REGISTRY: dict[str, ArchInfo] = {}


def register_model(name: str, *, source: str, family: str, defaults: dict | None = None,
                   pretrained: bool = False, cam: bool = False):
    """Decorator: register `fn(input_shape, num_classes, **kw) -> keras.Model` under `name`."""

    def deco(fn):
        _REGISTRY[name] = ArchInfo(name, fn, source, family, dict(defaults or {}), pretrained, cam)
        return fn

    return deco


def _load() -> None:
    import fer_edge.training.models  # noqa: F401  (registers every family)


def list_models() -> list[str]:
    _load()
    return list(_REGISTRY)


def get_arch(name: str) -> ArchInfo:
    _load()
    if name not in _REGISTRY:
        raise unknown("architecture", name, _REGISTRY)
    return _REGISTRY[name]


def create_model(name: str, input_shape=(48, 48, 1), num_classes: int = 7, **kwargs):
    """Build architecture `name` (a functional keras.Model with normalisation inside)."""
    info = get_arch(name)
    return info.builder(tuple(input_shape), int(num_classes), **kwargs)


def resolve_archs(spec: str) -> list[str]:
    """'all' or 'a,b,c' -> validated list of names."""
    names = list_models() if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        get_arch(n)
    return names
