"""Knowledge distillation (Hinton, Vinyals & Dean 2015, arXiv:1503.02531): the student learns from the
teacher's softened predictions on the same augmented batch, as well as from the labels.

loss = (1 - alpha) * CE(labels, student) + alpha * T^2 * KL(softmax(log p_teacher / T) || softmax(log p_student / T))

Models here end in a softmax, so log-probabilities stand in for logits (softmax(log p / T) is p^(1/T)
renormalised, the usual temperature-softened distribution). Backend-neutral (`keras.ops`). The wrapper
is never saved: checkpoints and `model.keras` hold the student alone.
"""
from __future__ import annotations

from pathlib import Path

from fer_edge.errors import UsageError


def load_teacher(source: str | Path, input_shape: tuple, num_classes: int):
    """A run directory or a .keras file -> the frozen teacher model, checked against the student's shapes."""
    from fer_edge.training.load import load_model_option

    teacher, path = load_model_option(source, "--teacher")
    want_in, got_in = tuple(input_shape), tuple(teacher.inputs[0].shape[1:])
    got_out = int(teacher.outputs[0].shape[-1])
    if got_in != want_in or got_out != num_classes:
        raise UsageError(f"--teacher {path}: takes {got_in} and predicts {got_out} classes; the student takes "
                         f"{want_in} and predicts {num_classes}. Use a teacher trained with the same --classes.")
    teacher.trainable = False
    return teacher


def make_distiller(student, teacher, temperature: float, alpha: float):
    """A keras.Model that trains `student` (its only trainable weights) with the loss above."""
    import keras
    from keras import ops

    class Distiller(keras.Model):
        def __init__(self):
            super().__init__(name="distiller")
            self.student = student
            self.teacher = teacher

        def call(self, x, training=False):
            return self.student(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            hard = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
            t = ops.stop_gradient(self.teacher(x, training=False))
            p_t = ops.softmax(ops.log(ops.clip(t, 1e-7, 1.0)) / temperature, axis=-1)
            log_p_s = ops.log_softmax(ops.log(ops.clip(y_pred, 1e-7, 1.0)) / temperature, axis=-1)
            kl = ops.sum(p_t * (ops.log(ops.clip(p_t, 1e-7, 1.0)) - log_p_s), axis=-1)
            return (1.0 - alpha) * hard + alpha * (temperature ** 2) * ops.mean(kl)

    return Distiller()
