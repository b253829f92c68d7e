"""ModelSpec: what a model file says about itself (labels, input, quantization, provenance).

Every exported artifact embeds one as JSON; the runtime reads it and never guesses
from a file name. A file without a valid spec is refused.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from fer_edge.errors import ModelError

SPEC_SCHEMA = "fer-edge/model-spec/1"
METADATA_KEY = "fer_edge_spec"  # ONNX metadata_props key / TFLite appended-zip member stem

#: Bounds on what a model file may claim about itself. Model files are untrusted input: metadata is
#: read before the graph and every value is checked here, so a hostile file is an error, not a
#: 1 GiB allocation, a label that sends terminal escape codes, or a crop margin of NaN.
SPEC_LIMITS = {
    "max_json_bytes": 1 << 20,  # the largest real spec (CAM weights of a 2048-feature backbone) is ~0.2 MB
    "max_depth": 8,  # nesting of the JSON (ours is 4 deep)
    "max_labels": 1000,
    "max_label_chars": 64,
    "side": (8, 1024),  # input height/width
}
INPUT_DTYPES = ("float32", "uint8", "int8")
COLORS = ("gray", "rgb")
TTA_MODES = ("none", "flip")


@dataclass
class ModelSpec:
    labels: list[str]
    input_shape: list[int] = field(default_factory=lambda: [48, 48, 1])  # H, W, C (batch excluded)
    layout: str = "NHWC"
    input_dtype: str = "float32"  # dtype the file's input tensor takes
    input_range: list[float] = field(default_factory=lambda: [0.0, 255.0])  # pixel range fed (Rescaling inside)
    color: str = "gray"
    crop_margin: float = 0.1  # fraction of the detected face box added on each side before resizing
    class_map: dict[str, list[str]] = field(default_factory=dict)
    arch: str = "unknown"
    format: str = "keras"
    quantization: str = "none"
    quant_params: dict[str, Any] = field(default_factory=dict)  # per-tensor scale/zero point of IO
    source_run: str | None = None
    data_fingerprint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    cam: dict[str, Any] | None = None  # present when the file has a CAM output (see export --explain)
    tta: str = "none"  # "flip": the graph averages the face and its mirror image (export --tta flip)
    fer_edge_version: str = ""
    graph_sha256: str | None = None  # SHA-256 of the graph bytes (TFLite flatbuffer / ONNX GraphProto)
    schema: str = SPEC_SCHEMA

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.input_shape[0]), int(self.input_shape[1])

    @property
    def channels(self) -> int:
        return int(self.input_shape[2])

    def class_map_obj(self):
        """The ClassMap in OUTPUT order (labels' order; a JSON object's key order is not to be trusted)."""
        from fer_edge.labels import ClassMap

        if not self.class_map:
            return ClassMap(tuple(self.labels), tuple((lab,) for lab in self.labels))
        missing = [lab for lab in self.labels if lab not in self.class_map]
        if missing:
            raise ModelError(f"metadata class_map lacks output class(es) {', '.join(missing)}.")
        return ClassMap.from_dict({lab: list(self.class_map[lab]) for lab in self.labels})

    def to_json(self) -> str:
        return json.dumps(asdict(self))  # insertion order kept: class_map follows the labels' order

    def replace(self, **changes: Any) -> "ModelSpec":
        d = asdict(self)
        d.update(changes)
        return ModelSpec(**d)

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "model") -> "ModelSpec":
        """Parse and validate untrusted metadata: bounded size and depth, every field's type and range."""
        if len(text) > SPEC_LIMITS["max_json_bytes"]:
            raise ModelError(f"{where}: fer-edge metadata is {len(text):,} bytes (limit "
                             f"{SPEC_LIMITS['max_json_bytes']:,}); the file is corrupt or not a fer-edge export.")
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ModelError(f"{where}: fer-edge metadata is not valid JSON ({str(exc)[:120]}).") from None
        if not isinstance(d, dict) or d.get("schema") != SPEC_SCHEMA:
            raise ModelError(f"{where}: metadata schema is not {SPEC_SCHEMA}; re-export it with `fer-edge export`.")
        if _depth(d) > SPEC_LIMITS["max_depth"]:
            raise ModelError(f"{where}: fer-edge metadata is nested deeper than {SPEC_LIMITS['max_depth']} levels.")
        known = set(cls.__dataclass_fields__)
        try:
            spec = cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"{where}: fer-edge metadata is incomplete ({exc}).") from None
        problem = spec.problem()
        if problem:
            raise ModelError(f"{where}: invalid fer-edge metadata: {problem}; re-export it with `fer-edge export`.")
        return spec

    def problem(self) -> str | None:
        """The first thing wrong with this spec's fields (types, ranges, consistency), or None."""
        lim = SPEC_LIMITS
        labels = self.labels
        if not isinstance(labels, list) or not labels or len(labels) > lim["max_labels"]:
            return f"labels must be a list of 1..{lim['max_labels']} names"
        for lab in labels:
            if not isinstance(lab, str) or not lab.strip() or len(lab) > lim["max_label_chars"] or not lab.isprintable():
                return (f"label {str(lab)[:40]!r} must be a printable name of 1..{lim['max_label_chars']} characters")
        if len(set(labels)) != len(labels):
            return "labels repeat a name"
        shape = self.input_shape
        if not isinstance(shape, list) or len(shape) != 3 or not all(_is_int(v) for v in shape):
            return f"input_shape must be [height, width, channels], got {str(shape)[:60]}"
        lo, hi = lim["side"]
        if not (lo <= shape[0] <= hi and lo <= shape[1] <= hi) or shape[2] not in (1, 3):
            return f"input_shape {shape} is out of range (sides {lo}..{hi}, 1 or 3 channels)"
        if self.layout != "NHWC":
            return f"layout must be NHWC, got {str(self.layout)[:20]!r}"
        if self.input_dtype not in INPUT_DTYPES:
            return f"input_dtype must be one of {', '.join(INPUT_DTYPES)}"
        rng = self.input_range
        if (not isinstance(rng, list) or len(rng) != 2 or not all(_is_num(v) for v in rng) or not rng[0] < rng[1]):
            return "input_range must be [low, high] with finite low < high"
        if self.color not in COLORS:
            return f"color must be one of {', '.join(COLORS)}"
        if not _is_num(self.crop_margin) or not 0.0 <= self.crop_margin <= 1.0:
            return f"crop_margin must be a number in [0, 1], got {str(self.crop_margin)[:20]}"
        if not isinstance(self.class_map, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
                for k, v in self.class_map.items()):
            return "class_map must map output names to lists of FER2013 label names"
        if self.class_map and set(self.class_map) != set(labels):
            return "class_map names other classes than labels"
        for name in ("arch", "format", "quantization", "fer_edge_version"):
            if not isinstance(getattr(self, name), str) or len(getattr(self, name)) > 200:
                return f"{name} must be a short string"
        for name in ("source_run", "data_fingerprint", "graph_sha256"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or len(v) > 200):
                return f"{name} must be a short string or null"
        for name in ("quant_params", "metrics"):
            if not isinstance(getattr(self, name), dict):
                return f"{name} must be an object"
        if self.tta not in TTA_MODES:
            return f"tta must be one of {', '.join(TTA_MODES)}"
        if self.cam is not None:
            w = self.cam.get("weights") if isinstance(self.cam, dict) else None
            if (not isinstance(w, list) or not w or len(w) > 4096 or not all(
                    isinstance(r, list) and len(r) == len(labels) and all(_is_num(v) for v in r) for r in w)):
                return f"cam.weights must be a features x {len(labels)} matrix of finite numbers"
        return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _depth(obj: Any, level: int = 1) -> int:
    """Nesting depth of parsed JSON, stopping early once past the limit."""
    if level > SPEC_LIMITS["max_depth"] or not isinstance(obj, (dict, list)):
        return level
    items = obj.values() if isinstance(obj, dict) else obj
    return max((_depth(v, level + 1) for v in items if isinstance(v, (dict, list))), default=level)
