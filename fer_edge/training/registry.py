"""Model registry (after timm's register_model/create_model): one builder per family.

Builders register themselves on import of `fer_edge.training.models`; the CLI's
--arch choices, `fer-edge models` and `--arch all` all read this one table.

Size tiers: a family that has a width knob also registers `NAME_tiny`, the same builder with a few
filters (`tiny=` below). Tests train and export those in seconds through the very code paths users
run; the full-size models are tested under the `large` marker. Tiny variants are real architectures
(`--arch edgenet_tiny` trains) but are left out of `--arch all` and `fer-edge models`.

Upscaled variants: an ImageNet backbone built for 224x224 reaches a 2x2 (ResNet, EfficientNet) or 1x1
(VGG16) feature map on a 48x48 face, so a family may also register `NAME_96` (`upscaled=`), the same
builder with the face resized inside the model (bilinear, before the backbone). The input stays 48x48
gray, so every exported file, the runtime and the preprocessing are unchanged; the MACs grow with the
area (3-4x at 96: at 48x48 "same" padding rounds the deeper maps up). Left out of `--arch all` (on a
2-core CPU a zoo run of them would take days), listed by `fer-edge models`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from fer_edge.errors import unknown


def from_scratch(weights: Any) -> bool:
    """`--weights none` (or None, or empty): random initial weights. The one reading of it for the default
    rate, two-phase fine-tuning and the backbones' weight loading."""
    return weights is None or str(weights).lower() in ("none", "")


@dataclass(frozen=True)
class ArchInfo:
    name: str
    builder: Callable[..., Any]
    source: str  # citation / where the design comes from
    family: str
    defaults: dict[str, Any] = field(default_factory=dict)  # training defaults (lr, optimizer, two_phase...)
    pretrained: bool = False  # accepts --weights imagenet|PATH
    cam: bool = False  # head = GAP -> linear classifier: qualifies for edge CAM
    input_shape: tuple[int, int, int] = (48, 48, 1)  # H, W, C the model is built for (FER2013: 48x48 gray)
    tier: str = "full"  # full | tiny (a test-size variant of a full family) | upscaled (NAME_96)

    def default_lr(self, weights: Any = "none") -> float:
        """The learning rate `fer-edge train` uses when none is given: `scratch_lr` from random weights
        (weights none) where the family sets one, else `lr`. Why two: a backbone without normalisation
        layers that trains well from ImageNet weights at 1e-3 can blow up from scratch at that rate
        (vgg16: docs/results.md, "The whole zoo")."""
        if from_scratch(weights) and "scratch_lr" in self.defaults:
            return float(self.defaults["scratch_lr"])
        return float(self.defaults.get("lr", 1e-3))


_REGISTRY: dict[str, ArchInfo] = {}


def register_model(name: str, *, source: str, family: str, defaults: dict | None = None,
                   pretrained: bool = False, cam: bool = False, input_shape: tuple = (48, 48, 1),
                   tiny: dict | None = None, upscaled: tuple[int, ...] = ()):
    """Decorator: register `fn(input_shape, num_classes, **kw) -> keras.Model` under `name`; with `tiny`
    (builder keyword arguments, e.g. narrow widths) its test-size variant `NAME_tiny`; with `upscaled`
    (sizes) `NAME_<size>`, built with `upscale=<size>` (the builder resizes the input to size x size)."""

    def deco(fn):
        shape = tuple(int(v) for v in input_shape)
        _REGISTRY[name] = ArchInfo(name, fn, source, family, dict(defaults or {}), pretrained, cam, shape)
        if tiny:
            _REGISTRY[f"{name}_tiny"] = ArchInfo(
                f"{name}_tiny", functools.partial(fn, **tiny), f"{source}; test-size variant {tiny}", family,
                dict(defaults or {}), pretrained, cam, shape, tier="tiny")
        for size in upscaled:
            _REGISTRY[f"{name}_{int(size)}"] = ArchInfo(
                f"{name}_{int(size)}", functools.partial(fn, upscale=int(size)),
                f"{source}; the 48x48 face upscaled to {int(size)}x{int(size)} inside the model", family,
                dict(defaults or {}), pretrained, cam, shape, tier="upscaled")
        return fn

    return deco


def _load() -> None:
    import fer_edge.training.models  # noqa: F401  (registers every family)


def list_models(tiers: tuple[str, ...] = ("full",)) -> list[str]:
    """Registered names of these tiers (default: the full-size zoo that `--arch all` trains)."""
    _load()
    return [n for n, a in _REGISTRY.items() if a.tier in tiers]


def get_arch(name: str) -> ArchInfo:
    _load()
    if name not in _REGISTRY:
        raise unknown("architecture", name, _REGISTRY)
    return _REGISTRY[name]


def create_model(name: str, input_shape=None, num_classes: int = 7, **kwargs):
    """Build architecture `name` (a functional keras.Model with normalisation inside); `input_shape`
    None: the architecture's own (`ArchInfo.input_shape`)."""
    info = get_arch(name)
    return info.builder(tuple(info.input_shape if input_shape is None else input_shape), int(num_classes), **kwargs)


def resolve_archs(spec: str) -> list[str]:
    """'all' or 'a,b,c' -> validated list of names."""
    names = list_models() if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        get_arch(n)
    return names
