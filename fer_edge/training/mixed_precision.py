"""Mixed-precision training: one table of choices, the Keras dtype policy each sets, and the float32
copy of the model that is saved as `model.keras`.

Under a mixed policy the layers compute in float16 or bfloat16 while their weights stay float32
(Micikevicius et al. 2018, arXiv:1710.03740; the Keras mixed-precision guide). It speeds up training on
GPUs with tensor cores, and bfloat16 on x86 CPUs with AMX-BF16 under TensorFlow, whose oneDNN
convolutions use it: how much depends on the architecture (README, "Mixed
precision": measured per step by `scripts/step_time.py --mixed-precision`). On other CPUs it is slower.
Two things keep the run directory the same as a float32 run's:

- every builder's `predictions` layer is float32 (`models.common.OUTPUT_DTYPE`), so the probabilities,
  the loss and the distillation targets are computed in float32;
- `model.keras` (what export, evaluate and `--init`/`--teacher` read) is written from a float32 twin of
  the model, built by the same builder and never compiled, with the trained weights copied in. Export
  then converts a plain float32 graph, whatever the training precision, and the file holds no optimizer
  state (a compiled model saves its Adam moments too: three times the size). `last.keras` (the resume
  point) keeps the training model and its (loss-scaling) optimizer, so `--resume` continues exactly.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from fer_edge.errors import unknown

#: --mixed-precision choice -> (Keras dtype policy, what it is for)
MIXED_PRECISION: dict[str, tuple[str, str]] = {
    "off": ("float32", "float32 everywhere (the default; the right choice on a CPU without AMX-BF16)"),
    "float16": ("mixed_float16", "float16 compute, float32 weights and outputs, dynamic loss scaling "
                                 "(NVIDIA GPUs with tensor cores, Volta and newer)"),
    "bfloat16": ("mixed_bfloat16", "bfloat16 compute, float32 weights and outputs, no loss scaling "
                                   "(Ampere and newer GPUs, TPUs, x86 CPUs with AMX-BF16 under TensorFlow)"),
}


def policy_name(choice: str) -> str:
    """The Keras dtype policy of a --mixed-precision choice (a one-line error for an unknown one)."""
    if choice not in MIXED_PRECISION:
        raise unknown("mixed precision", choice, MIXED_PRECISION)
    return MIXED_PRECISION[choice][0]


def cpu_hint(choice: str, backend: str, gpus: int) -> str | None:
    """One line for the training log when a float32 run on the CPU could use the CPU's AMX-BF16 units
    (TensorFlow backend: its oneDNN kernels use them; XLA's CPU kernels on JAX were not measured). The
    run stays as asked: the speed-up depends on the architecture, and the user chooses."""
    from fer_edge.sysinfo import has_amx_bf16

    if choice != "off" or gpus or backend != "tensorflow" or not has_amx_bf16():
        return None
    return ("note: this CPU has AMX-BF16; --mixed-precision bfloat16 may train "
            "faster here, depending on the architecture (plain convolutions gain, depthwise ones lose: README, "
            "'Mixed precision')")


@contextlib.contextmanager
def policy(choice: str) -> Iterator[str]:
    """Keras' global dtype policy set to `choice` while the block runs (layers built inside use it), then
    restored: a process that trains several models, or a test, never inherits it. Yields the name."""
    import keras

    name = policy_name(choice)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(before)


def float32_twin(build) -> Any:
    """`build()` under the float32 policy, whatever the policy around it: the uncompiled model that
    `model.keras` is written from."""
    with policy("off"):
        return build()


def float32_copy(model, twin) -> Any:
    """The twin holding `model`'s weights (matched by position: the same builder creates the variables in
    the same order, whatever is frozen)."""
    twin.set_weights(model.get_weights())
    return twin
