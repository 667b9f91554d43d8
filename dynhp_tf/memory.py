"""Training memory of the compact network that the masks describe, term by term.

bytes = params * b * (1 weight) + trainable * b * (1 gradient + optimizer slots)
        + batch * (activations kept for the backward pass + input) * b
        + the largest trainable weight * b (the optimizer's update of it: one temporary of its size)
        + the full-width weights that stay in the user's model while a narrow copy trains

DynHPCallback trains a physically narrow copy after its first pruning event
(`dynhp_tf.trainer`): the full-width gradients and optimizer slots are freed, the full-width
weights stay (the user's model holds them), and that copy is the last term. TensorFlow's own
runtime, traced functions and the other transient buffers are not modeled:
`benchmarks/physical.py` measures them against this model. The update temporary is there
because an update such as Adam's computes each weight's new value and slots from temporaries of
that weight's size, one weight at a time, so the largest weight sets it (about one buffer of its
size, measured on the benchmark's 784-4096-4096-10 MLP: 64 MiB of a 369 MiB peak).

Activations are the outputs of every layer except reshaping views (Input, Flatten), at the
widths the kept neurons give them. b is the byte size of the model's float type.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.compact import kept_neurons
from dynhp_tf.groups import PruningGraph, pruning_groups

_PROBE_SHAPE = (3, 7)


@dataclasses.dataclass(frozen=True)
class TrainingMemory:
    """A breakdown of training memory in bytes."""

    batch_size: int
    params: int
    trainable_params: int
    weights: int
    gradients: int
    optimizer_slots: int
    activations: int
    inputs: int
    update_temporaries: int = 0
    full_width_weights: int = 0

    @property
    def total(self) -> int:
        return (self.weights + self.gradients + self.optimizer_slots + self.activations + self.inputs
                + self.update_temporaries + self.full_width_weights)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "total": self.total}


def slots_per_weight(optimizer) -> int:
    """How many slot variables the optimizer keeps per trainable weight (Adam: 2, SGD: 0)."""
    if optimizer is None:
        return 0
    optimizer = keras.optimizers.get(optimizer)
    probe = type(optimizer).from_config(optimizer.get_config())
    variable = getattr(keras, "Variable", tf.Variable)(np.zeros(_PROBE_SHAPE, "float32"))
    probe.build([variable])
    return sum(tuple(v.shape) == _PROBE_SHAPE for v in probe.variables)


def memory_for(graph: PruningGraph, kept, batch_size: int, slots: int, dtype_bytes: int = 4,
               narrow_copy: bool = False) -> TrainingMemory:
    """The memory of training `graph` at widths `kept`; `narrow_copy`: beside the full-width weights."""
    params, trainable = graph.params(kept), graph.params(kept, trainable_only=True)
    return TrainingMemory(
        batch_size=batch_size,
        params=params,
        trainable_params=trainable,
        weights=params * dtype_bytes,
        gradients=trainable * dtype_bytes,
        optimizer_slots=trainable * slots * dtype_bytes,
        activations=batch_size * (graph.activation_elements(kept) - graph.input_elements) * dtype_bytes,
        inputs=batch_size * graph.input_elements * dtype_bytes,
        update_temporaries=max((w.kept_size(kept) for w in graph.weights if w.trainable), default=0) * dtype_bytes,
        full_width_weights=graph.params() * dtype_bytes if narrow_copy else 0,
    )


def reuse_slack(graph: PruningGraph, kept, slots: int, dtype_bytes: int = 4) -> int:
    """Bytes a best-fit allocator loses when a first narrow copy reuses the full-width buffers.

    TensorFlow's BFC allocator (on GPUs, and on the CPU with TF_CPU_ALLOCATOR_USE_BFC=true) gives
    a request the smallest free chunk that holds it and splits that chunk only when it is at least
    twice the request. Once the full-width gradients, slots and update temporary are freed, a
    narrow buffer more than half its full-width counterpart takes that counterpart's whole chunk:
    measured on the benchmark's 784-4096-4096-10 MLP, a 35 MiB narrow kernel's value, slots and
    gradient each held a 64 MiB chunk, 1.18x dense in all. Counted per trainable weight for its
    gradient and slots (the freed chunks), plus the update temporary of the largest weight.
    """
    trainable = [w for w in graph.weights if w.trainable]
    pairs = [(math.prod(w.shape), w.kept_size(kept)) for w in trainable]
    slack = sum((full - narrow) * (1 + slots) for full, narrow in pairs if 2 * narrow > full)
    full_temporary, narrow_temporary = (max((p[i] for p in pairs), default=0) for i in (0, 1))
    if 2 * narrow_temporary > full_temporary:
        slack += full_temporary - narrow_temporary
    return slack * dtype_bytes


def training_memory(model, batch_size: int, optimizer=None) -> TrainingMemory:
    """Training memory of `model` at `batch_size`, without the neurons pruned in its weights.

    Args:
        model: a built Keras model; its removable neurons (`dynhp_tf.compact.removable_neurons`)
            count as pruned.
        batch_size: samples per training step.
        optimizer: an optimizer instance or name; default the model's own.

    Example:
        >>> mem = training_memory(model, batch_size=64, optimizer="adam")
        >>> mem.total, mem.activations
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    graph = pruning_groups(model)
    kept = [int(k.sum()) for k in kept_neurons(model, graph)]
    optimizer = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    dtype_bytes = np.dtype(keras.backend.floatx()).itemsize
    return memory_for(graph, kept, batch_size, slots_per_weight(optimizer), dtype_bytes)
