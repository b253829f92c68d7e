"""FER2013 labels and class reduction: the one table every other module reads.

Canonical order is the Kaggle folder order (alphabetical). The original CSV codes
emotions differently (0=angry 1=disgust 2=fear 3=happy 4=sad 5=surprise 6=neutral),
so `CSV_CODES` maps them onto the canonical names once, here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_edge.errors import UsageError, did_you_mean

FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: emotion code in fer2013.csv -> canonical label
CSV_CODES: dict[int, str] = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}

#: named presets for --classes. "2" is the study's binary run (angry vs happy);
#: "4" keeps the four most distinct expressions (happy, sad, surprise, neutral).
PRESETS: dict[str, str] = {
    "7": ",".join(FER2013_LABELS),
    "4": "happy,sad,surprise,neutral",
    "2": "angry,happy",
}


@dataclass(frozen=True)
class ClassMap:
    """Output classes of a model and which FER2013 labels feed each one.

    `groups[i]` lists the source labels merged into output class `labels[i]`;
    source labels that appear in no group are dropped from the data.
    """

    labels: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def source_to_output(self) -> dict[str, int]:
        """Map each kept source label to its output index."""
        return {src: i for i, group in enumerate(self.groups) for src in group}

    def lookup_table(self) -> list[int]:
        """For each canonical FER2013 label index, the output index or -1 (dropped)."""
        mapping = self.source_to_output()
        return [mapping.get(lab, -1) for lab in FER2013_LABELS]

    def to_dict(self) -> dict[str, list[str]]:
        return {lab: list(g) for lab, g in zip(self.labels, self.groups)}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> "ClassMap":
        labels = tuple(d.keys())
        groups = tuple(tuple(v) for v in d.values())
        cm = cls(labels, groups)
        _validate(cm)
        return cm

    def describe(self) -> str:
        return ", ".join(lab if g == (lab,) else f"{lab}={'+'.join(g)}" for lab, g in zip(self.labels, self.groups))


def _check_label(name: str) -> str:
    name = name.strip().lower()
    if name not in FER2013_LABELS:
        raise UsageError(
            f"unknown class '{name}'.{did_you_mean(name, FER2013_LABELS)} "
            f"FER2013 classes are: {', '.join(FER2013_LABELS)}."
        )
    return name


def _validate(cm: ClassMap) -> None:
    seen: set[str] = set()
    for lab, group in zip(cm.labels, cm.groups):
        for src in group:
            _check_label(src)
            if src in seen:
                raise UsageError(f"class '{src}' is used twice in --classes; each FER2013 class may feed one output.")
            seen.add(src)
    if len(cm.labels) != len(set(cm.labels)):
        raise UsageError("output class names in --classes must be unique.")
    if len(cm.labels) < 2:
        raise UsageError("--classes must keep at least two classes.")


def parse_classes(spec: str | None) -> ClassMap:
    """Parse --classes: a preset ('7', '4', '2'), a list ('happy,angry') or merges
    ('negative=angry+disgust+fear+sad,positive=happy+surprise,neutral')."""
    spec = (spec or "7").strip()
    if spec in PRESETS:
        spec = PRESETS[spec]
    elif spec.isdigit():
        raise UsageError(f"unknown class preset '{spec}'. Presets are: {', '.join(PRESETS)} (or list class names).")
    labels: list[str] = []
    groups: list[tuple[str, ...]] = []
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        if "=" in item:
            name, _, members = item.partition("=")
            name = name.strip().lower()
            group = tuple(_check_label(m) for m in members.split("+") if m.strip())
            if not name or not group:
                raise UsageError(f"bad class merge '{item}': write NAME=label+label.")
        else:
            name = _check_label(item)
            group = (name,)
        labels.append(name)
        groups.append(group)
    cm = ClassMap(tuple(labels), tuple(groups))
    _validate(cm)
    return cm


def class_projection(source: ClassMap, target: ClassMap) -> np.ndarray | None:
    """How a model's classes (`source`) give another class map's (`target`): a (source x target) 0/1 matrix,
    or None when the two are the same. Probabilities p over `source` become p @ M, renormalised: each
    target class gets the probability of the source classes whose FER2013 labels feed it, source classes
    the target drops get nothing, and the rest is the model's answer given that the face is one of the
    target's classes (a 7-class model read as a 4- or 2-class one, or teaching one: training.distill).

    Only where the target's classes can be assembled from the source's: a UsageError says which cannot.
    """
    if source.to_dict() == target.to_dict():
        return None
    to_target = target.source_to_output()
    proj = np.zeros((source.num_classes, target.num_classes), np.float32)
    covered: set[str] = set()
    for i, (name, group) in enumerate(zip(source.labels, source.groups)):
        targets = {to_target.get(src, -1) for src in group}
        if targets == {-1}:
            continue  # a class the target drops
        if len(targets) > 1:
            raise UsageError(f"the model's class '{name}' ({'+'.join(group)}) cannot be split: its labels go to "
                             f"more than one of {target.describe()}, or some of them nowhere; use a model that "
                             "keeps them apart.")
        proj[i, targets.pop()] = 1.0
        covered.update(group)
    lacking = [src for group in target.groups for src in group if src not in covered]
    if lacking:
        raise UsageError(f"the model has no class for {', '.join(lacking)}; it predicts {source.describe()}. "
                         "Use a model trained on those classes too.")
    return proj


def project_probs(probs: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """(N, source classes) probabilities -> (N, target classes) through `class_projection`'s matrix,
    renormalised (in float64; an int8 file's probabilities sum to 1 only within its 1/256 steps)."""
    out = probs.astype(np.float64) @ projection
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
