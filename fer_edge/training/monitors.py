"""Early stopping and the plateau schedule, resumable: `fer-edge train --resume` continues them where the
interrupted session left them, instead of from scratch.

Keras' EarlyStopping and ReduceLROnPlateau keep their counters (best value, epochs without improvement)
in memory and reset them at the start of every `fit`. A run interrupted 8 epochs after its best would
then get `patience` fresh epochs on resume, and one halving of the learning rate could come several
epochs late: a resumed run would not train as the same run uninterrupted. The counters need no file of
their own: both callbacks are deterministic functions of the validation accuracies, which history.csv
already holds, so `replay` recomputes them. The callbacks here start from the replayed values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ReduceLROnPlateau's settings in `fer-edge train` (read by the callback and by the replay alike)
PLATEAU_FACTOR = 0.5
PLATEAU_MIN_LR = 1e-6
PLATEAU_MIN_DELTA = 1e-4  # Keras' default, named: a gain below it is no improvement for the schedule


def plateau_patience(patience: int) -> int:
    """Epochs without improvement before the plateau schedule halves the learning rate: a third of the
    early-stopping patience, at least 2 (so the rate drops about three times before training stops)."""
    return max(2, patience // 3)


@dataclass
class Monitors:
    """The counters of both callbacks after a sequence of epochs of one phase."""

    stop_best: float | None = None  # EarlyStopping.best
    stop_wait: int = 0  # EarlyStopping.wait
    plateau_best: float | None = None  # ReduceLROnPlateau.best
    plateau_wait: int = 0  # ReduceLROnPlateau.wait
    lr: float = 0.0  # the learning rate the plateau schedule has reached


def replay(val_accuracy: list[float], patience: int, lr: float) -> Monitors:
    """The counters Keras' EarlyStopping(patience) and ReduceLROnPlateau(plateau_patience(patience),
    PLATEAU_FACTOR, PLATEAU_MIN_LR, PLATEAU_MIN_DELTA, cooldown 0) hold after seeing these validation
    accuracies, starting at learning rate `lr`. As in keras 3.15: mode max, early stopping's min_delta 0,
    and the comparison `value - min_delta > best` made in float32 (keras.ops on Python floats)."""
    def better(value: float, best: float | None, min_delta: float) -> bool:
        return best is None or bool(np.float32(value - min_delta) > np.float32(best))

    m = Monitors(lr=float(lr))
    p_patience = plateau_patience(patience)
    for acc in val_accuracy:
        m.stop_wait += 1
        if better(acc, m.stop_best, 0.0):
            m.stop_best, m.stop_wait = acc, 0
        if better(acc, m.plateau_best, PLATEAU_MIN_DELTA):
            m.plateau_best, m.plateau_wait = acc, 0
        else:
            m.plateau_wait += 1
            if m.plateau_wait >= p_patience and m.lr > PLATEAU_MIN_LR:
                m.lr = max(m.lr * PLATEAU_FACTOR, PLATEAU_MIN_LR)
                m.plateau_wait = 0
    return m


def early_stopping(patience: int, resumed: Monitors | None):
    """Keras EarlyStopping on val_accuracy, starting from `resumed`'s counters (None: from scratch)."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if resumed is not None:
                self.best, self.wait = resumed.stop_best, resumed.stop_wait

    return ResumableEarlyStopping(monitor="val_accuracy", patience=patience, mode="max")


def plateau(patience: int, resumed: Monitors | None):
    """Keras ReduceLROnPlateau on val_accuracy, starting from `resumed`'s counters (None: from scratch).
    The learning rate itself travels in the optimizer (last.keras, or the compile of a resumed
    distillation)."""
    import keras

    class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if resumed is not None:
                self.best, self.wait = resumed.plateau_best, resumed.plateau_wait

    return ResumablePlateau(monitor="val_accuracy", mode="max", factor=PLATEAU_FACTOR,
                            patience=plateau_patience(patience), min_lr=PLATEAU_MIN_LR,
                            min_delta=PLATEAU_MIN_DELTA)
