"""Classification metrics in numpy (no scikit-learn, no TensorFlow): shared by training,
`fer-edge evaluate`, the export parity gate and the benchmark."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_report(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
    """accuracy, loss (cross-entropy, no smoothing), macro_f1, per_class P/R/F1/support, confusion, n."""
    y_true = np.asarray(y_true, np.int64)
    probs = np.asarray(probs, np.float64)
    k = len(labels)
    n = int(len(y_true))
    if n == 0:
        return {"n": 0, "accuracy": None, "loss": None, "macro_f1": None, "per_class": {}, "confusion": []}
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    p_true = np.clip(probs[np.arange(n), y_true], 1e-7, 1.0)
    present = cm.sum(1) > 0
    return {
        "n": n,
        "accuracy": float(tp.sum() / n),
        "loss": float(-np.log(p_true).mean()),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                  "support": int(cm[i].sum())}
            for i, lab in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }


def percentiles(samples_ms: Sequence[float]) -> dict:
    """median, p90, p99, mean, min of latency samples (linear interpolation, numpy default)."""
    a = np.asarray(samples_ms, np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "n": int(a.size),
    }
