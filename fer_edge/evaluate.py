"""`fer-edge evaluate`: metrics for any model file (.keras, .tflite, .onnx) through one code path.

.tflite/.onnx go through the runtime backends (no TensorFlow); .keras through the Keras backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.errors import UsageError
from fer_edge.labels import parse_classes
from fer_edge.metrics import classification_report


def predict_all(backend, x: np.ndarray, batch: int = 64) -> np.ndarray:
    out = [backend.predict(x[i:i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, backend.spec.num_classes), np.float32)


def _holdout_unseen(path: Path, spec) -> bool:
    """A .keras model's run is still beside it: trace its warm starts and teachers (runs trained before the
    spec followed them record only their own split); an exported file carries the answer traced at export."""
    if spec.format == "keras":
        from fer_edge.rundir import holdout_unseen

        return holdout_unseen(path)
    return bool(spec.metrics.get("holdout_unseen"))


def selection_note(spec, split_source: str) -> str | None:
    """Whether these images chose the model: a run keeps the epoch with the best accuracy on its val split,
    so that split's accuracy is a maximum over epochs, optimistic by a point or so on FER2013. Read from
    the model's own record (spec.metrics.val_source); None when the model says nothing or other images."""
    chosen_on = spec.metrics.get("val_source")  # metrics is a dict: ModelSpec.validate checks it
    if not isinstance(chosen_on, str) or not chosen_on:
        return None
    same = split_source == chosen_on or (chosen_on == "PublicTest" and split_source.startswith("PublicTest"))
    if not same:
        return None
    return (f"the model's training run selected its epoch on these images ({chosen_on[:80]}): an optimistic "
            "estimate; PrivateTest, or the gate hold-out (--split holdout), judges it without that bias")


def _same_data(spec, fingerprint: str) -> bool | None:
    """The model's training data against these (content fingerprints, data.content_fingerprint); None when
    the model recorded none or an older per-copy cache key, which cannot tell."""
    from fer_edge.data import is_content_fingerprint

    recorded = spec.data_fingerprint
    return recorded == fingerprint if is_content_fingerprint(recorded) else None


def evaluate(model: str | Path, data: str | Path, split: str = "test", classes: str | None = None,
             backend: str | None = None, limit: int | None = None, threads: int | None = None,
             val_split: str = "auto") -> dict:
    from fer_edge.data import load_splits, stratified_sample
    from fer_edge.runtime.backends import load_backend

    path = Path(model)
    b = load_backend(path, backend=backend, threads=threads)
    spec = b.spec
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be a whole number >= 1, got {limit}.")
    projection = None
    if classes:
        cm = parse_classes(classes)
        if cm.num_classes == spec.num_classes and set(cm.labels) == set(spec.labels):
            # pair each output with its own definition: the model's order, whatever the order given
            # (given in another order, the 7 labels used to score 0.45 instead of 0.62, silently)
            from fer_edge.labels import ClassMap

            groups = dict(zip(cm.labels, cm.groups))
            cm = ClassMap(tuple(spec.labels), tuple(groups[lab] for lab in spec.labels))
        else:
            # fewer or merged classes: the model read as a classifier of those (labels.class_projection),
            # on the images of those classes only
            from fer_edge.labels import class_projection

            try:
                projection = class_projection(spec.class_map_obj(), cm)
            except UsageError as exc:
                raise UsageError(f"--classes {classes}: {exc}") from None
    else:
        cm = spec.class_map_obj()
    splits = load_splits(data, cm, val_split)
    x, y = splits.split(split)
    if len(y) == 0:
        raise UsageError(f"{data}: the {split} split is empty; choose --split train, val or test.")
    if limit and limit < len(y):
        idx = stratified_sample(y, limit, 0)
        x, y = x[idx], y[idx]
    probs = predict_all(b, x)
    labels = list(spec.labels)
    if projection is not None:
        from fer_edge.labels import project_probs

        probs, labels = project_probs(probs, projection), list(cm.labels)
    rep = classification_report(y, probs, labels)
    source = {"val": splits.val_source, "test": splits.test_source, "train": "Training",
              "holdout": splits.holdout_source}[split]
    if split == "holdout" and not _holdout_unseen(path, spec):
        source += ("; NOTE: this model does not say that it, and every model it was warm-started or distilled "
                   "from, trained without it")
    return {"model": str(path), "backend": b.name, "format": spec.format, "quantization": spec.quantization,
            "split": split, "split_source": source, "selection_note": selection_note(spec, source),
            "data": str(data), "data_fingerprint": splits.fingerprint,
            "same_data_as_model": _same_data(spec, splits.fingerprint), "labels": labels,
            "classes_from_model": (None if projection is None else
                                   f"the model's {spec.num_classes} classes read as {cm.num_classes}: its "
                                   "probabilities of the kept classes, renormalised"), **rep}
