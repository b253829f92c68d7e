"""Knowledge distillation (Hinton, Vinyals & Dean 2015, arXiv:1503.02531): the student learns from the
teacher's softened predictions on the same augmented batch, as well as from the labels.

loss = (1 - alpha) * CE(labels, student) + alpha * T^2 * KL(softmax(log p_teacher / T) || softmax(log p_student / T))

Models here end in a softmax, so log-probabilities stand in for logits (softmax(log p / T) is p^(1/T)
renormalised, the usual temperature-softened distribution). Backend-neutral (`keras.ops`). The wrapper
is never saved: checkpoints and `model.keras` hold the student alone.

Several teachers (`--teacher A --teacher B`) teach as one: the mean of their probabilities (each read as
the student's classes first), the equal-weight ensemble that `scripts/ensemble.py` scores. Two
independently trained networks of similar accuracy disagree on about a fifth of the faces (the bundle and
its from-scratch successor: 80 % top-1 agreement on PublicTest), so their mean is a stronger teacher than
either (docs/results.md, "The bundle's successor").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.errors import UsageError
from fer_edge.labels import ClassMap, class_projection


def load_teacher(source: str | Path, input_shape: tuple, class_map: ClassMap):
    """A run directory or a .keras file -> (the frozen teacher model, its projection onto the student's
    classes or None: `labels.class_projection`), checked against the student's input and classes.

    A teacher trained on more classes can teach a student that keeps fewer (a 7-class model teaching the
    study's 4- or 2-class tasks): the student learns the teacher's answer given that the face is one of
    its classes.

    The teacher's classes come from its spec (its run's spec.json, or <stem>.spec.json beside the file),
    bounded and checked against its output layer; a teacher without a spec must predict exactly the
    student's classes, in the student's order, as nothing says otherwise."""
    from fer_edge.errors import ModelError
    from fer_edge.rundir import read_spec_beside, spec_file_beside
    from fer_edge.training.load import load_model_option

    teacher, path = load_model_option(source, "--teacher")
    want_in, got_in = tuple(input_shape), tuple(teacher.inputs[0].shape[1:])
    got_out = int(teacher.outputs[0].shape[-1])
    if got_in != want_in:
        raise UsageError(f"--teacher {path}: takes {got_in}; the student takes {want_in}. Use a teacher trained on "
                         "the same input size.")
    try:
        spec = read_spec_beside(path)
        teacher_map = spec.class_map_obj() if spec is not None else None
    except (ModelError, UsageError) as exc:
        raise UsageError(f"--teacher {path}: {exc}") from None
    projection = None
    if teacher_map is not None:
        if teacher_map.num_classes != got_out:
            raise UsageError(f"--teacher {path}: its spec ({spec_file_beside(path).name}) names "
                             f"{teacher_map.num_classes} classes but the model predicts {got_out}; the spec does not "
                             "belong to this model.")
        try:
            projection = class_projection(teacher_map, class_map)
        except UsageError as exc:
            raise UsageError(f"--teacher {path}: {exc}") from None
    elif got_out != class_map.num_classes:
        raise UsageError(f"--teacher {path}: predicts {got_out} classes and has no spec.json saying which; the "
                         f"student predicts {class_map.num_classes}. Use a run directory or a model with its spec.")
    teacher.trainable = False
    return teacher, projection


def load_teachers(sources, input_shape: tuple, class_map: ClassMap) -> tuple[list, list]:
    """`load_teacher` for each of `sources` -> (models, projections), in order (`train.validate_config`
    has refused a teacher named twice)."""
    from fer_edge.rundir import teacher_sources

    loaded = [load_teacher(src, input_shape, class_map) for src in teacher_sources(sources)]
    return [m for m, _ in loaded], [p for _, p in loaded]


def make_distiller(student, teacher, temperature: float, alpha: float, projection=None, tta: str = "none"):
    """A keras.Model that trains `student` (its only trainable weights) with the loss above; `projection`
    (from `labels.class_projection`) maps a teacher trained on more classes onto the student's.

    `teacher` may be a list of models (an ensemble, `projection` then a list of the same length, None for
    a teacher of the student's own classes): the soft targets are the mean of their probabilities, each
    projected and renormalised first, each with the same `tta`.

    `tta="flip"` (`--kd-tta flip`): the teacher's probabilities are averaged over the batch and its mirror
    image, the same averaging `export --tta flip` bakes into a file (the bundled flip variant is 1.4 points
    above its single-crop twin), so the student learns from a stronger teacher for one more teacher pass
    per batch and nothing at inference."""
    import keras
    from keras import ops

    from fer_edge.spec import TTA_MODES

    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    teachers = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
    projections = list(projection) if isinstance(projection, (list, tuple)) else [projection]
    if not teachers or len(projections) != len(teachers):
        raise ValueError(f"{len(teachers)} teacher(s) but {len(projections)} projection(s)")

    def soft_targets(model, proj, x):
        t = ops.cast(ops.stop_gradient(model(x, training=False)), "float32")
        if tta == "flip":  # NHWC: axis 2 is the width
            mirrored = ops.cast(ops.stop_gradient(model(ops.flip(x, axis=2), training=False)), "float32")
            t = 0.5 * (t + mirrored)
        if proj is not None:
            t = ops.matmul(t, ops.convert_to_tensor(proj))
            t = t / ops.maximum(ops.sum(t, axis=-1, keepdims=True), 1e-7)
        return t

    class Distiller(keras.Model):
        def __init__(self):
            super().__init__(name="distiller")
            self.student = student
            # a list attribute is tracked by Keras; the teachers are frozen (load_teacher), so it adds no
            # trainable weight
            self.teachers = teachers

        def call(self, x, training=False):
            return self.student(x, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            hard = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
            t = soft_targets(self.teachers[0], projections[0], x)
            for model, proj in zip(self.teachers[1:], projections[1:]):
                t = t + soft_targets(model, proj, x)
            t = t / float(len(self.teachers))
            y_pred = ops.cast(y_pred, "float32")
            p_t = ops.softmax(ops.log(ops.clip(t, 1e-7, 1.0)) / temperature, axis=-1)
            log_p_s = ops.log_softmax(ops.log(ops.clip(y_pred, 1e-7, 1.0)) / temperature, axis=-1)
            kl = ops.sum(p_t * (ops.log(ops.clip(p_t, 1e-7, 1.0)) - log_p_s), axis=-1)
            return (1.0 - alpha) * hard + alpha * (temperature ** 2) * ops.mean(kl)

    return Distiller()


def _slot_name(variable) -> str:
    """An optimizer variable's path without the optimizer's own name, which Keras numbers per process
    (`adam_w/stem1_conv_kernel_momentum` and `adam_w_1/...` are the same slot)."""
    return variable.path.split("/", 1)[-1]


def save_optimizer_state(optimizer, path: Path, epoch: int) -> None:
    """Write the optimizer's variables (step count, learning rate, Adam moments) to `path` (.npz,
    atomically), tagged with the epoch they belong to. The distiller is never saved, so without this a
    resumed distillation would restart Adam from zero moments and step 0."""
    import keras

    from fer_edge.outputs import atomic_path

    arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    names = np.array([_slot_name(v) for v in optimizer.variables])
    with atomic_path(path) as tmp:
        np.savez(tmp, epoch=np.int64(epoch), names=names, **arrays)


def restore_optimizer_state(optimizer, trainable_variables, path: Path, epoch: int) -> str | None:
    """Build `optimizer` for `trainable_variables` and load the state saved after `epoch`; -> None when
    restored, else why not (no file, another epoch's file, or variables that do not match: then the
    optimizer starts fresh, as it would have before this file existed)."""
    if not path.is_file():
        return f"no {path.name}"
    try:
        with np.load(path, allow_pickle=False) as z:
            saved_epoch = int(z["epoch"])
            names = [str(n) for n in z["names"]]
            values = [z[f"v{i}"] for i in range(len(names))]
    except (OSError, ValueError, KeyError) as exc:
        return f"{path.name} is unreadable ({exc.__class__.__name__})"
    if saved_epoch != epoch:
        return f"{path.name} is from epoch {saved_epoch}, the checkpoint from epoch {epoch}"
    optimizer.build(trainable_variables)
    variables = optimizer.variables
    if [_slot_name(v) for v in variables] != names or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
        return f"{path.name} does not match this model's optimizer"
    for v, a in zip(variables, values):
        v.assign(a)
    return None
