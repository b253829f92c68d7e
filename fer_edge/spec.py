"""ModelSpec: what a model file says about itself (labels, input, quantization, provenance).

Every exported artifact embeds one as JSON; the runtime reads it and never guesses
from a file name. A file without a valid spec is refused.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from fer_edge.errors import ModelError

SPEC_SCHEMA = "fer-edge/model-spec/1"
METADATA_KEY = "fer_edge_spec"  # ONNX metadata_props key / TFLite appended-zip member stem


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
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{where}: fer-edge metadata is not valid JSON ({exc}).") from None
        if not isinstance(d, dict) or d.get("schema") != SPEC_SCHEMA:
            raise ModelError(f"{where}: metadata schema is not {SPEC_SCHEMA}; re-export it with `fer-edge export`.")
        known = set(cls.__dataclass_fields__)
        try:
            spec = cls(**{k: v for k, v in d.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"{where}: fer-edge metadata is incomplete ({exc}).") from None
        if not spec.labels or len(spec.input_shape) != 3 or spec.channels not in (1, 3):
            raise ModelError(f"{where}: fer-edge metadata has no labels or a bad input shape {spec.input_shape}.")
        return spec
