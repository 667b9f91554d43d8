"""Hard masks: pruned weights are zero and stay exactly zero inside the compiled train step.

Each masked weight gets a mask variable and a variable constraint `w * mask`. Keras 3 and
tf_keras optimizers apply variable constraints right after every update, inside the same
compiled step, so no Python loop over weights runs per batch. The constraint sits on the
variable, not in the layer config, so saved models stay plain Keras models.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf.groups import PruningGraph, layer_weight, weight_mask


def _set_constraint(variable, constraint) -> None:
    try:
        variable.constraint = constraint  # Keras 3 variables
    except AttributeError:  # tf.Variable (tf_keras), possibly mirrored across replicas
        for v in getattr(variable, "values", (variable,)):
            v._constraint = constraint
        if hasattr(variable, "_constraint"):
            variable._constraint = constraint


def _base_name(variable) -> str:
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0]


def optimizer_slots(optimizer, variable) -> list:
    """The optimizer variables (momenta, velocities, ...) that shadow `variable`."""
    if optimizer is None:
        return []
    base = _base_name(variable)
    keras3_prefix = base.replace("/", "_") + "_"  # e.g. dense_kernel_momentum
    slots = []
    for slot in optimizer.variables:
        if tuple(slot.shape) != tuple(variable.shape) or slot is variable:
            continue
        name = _base_name(slot)
        leaf = name.split("/")[-1]
        tf_keras_match = name.endswith("/" + base)  # e.g. Adam/m/dense/kernel
        if leaf.startswith(keras3_prefix) or tf_keras_match:
            slots.append(slot)
    return slots


class NeuronMasks:
    """Mask variables for every weight a pruning group touches, kept in sync with `keep`."""

    def __init__(self, model, graph: PruningGraph, keep: list[np.ndarray]):
        self.model, self.graph = model, graph
        self.keep = [k.copy() for k in keep]
        self._axes = graph.weight_axes()
        self._masks = {}
        with model.distribute_strategy.scope():
            for key, axes in self._axes.items():
                weight = layer_weight(model, *key)
                self._masks[key] = tf.Variable(weight_mask(weight.shape, axes, self.keep), trainable=False,
                                               name="dynhp_mask", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def attach(self) -> None:
        """Adds `w * mask` to each masked weight's constraint (after any user constraint).

        The constraint stays after training, so a later fit cannot revive pruned weights.
        """
        for key, mask in self._masks.items():
            weight = layer_weight(self.model, *key)
            original = getattr(weight, "constraint", None)

            def constraint(w, mask=mask, original=original):
                return (original(w) if original is not None else w) * tf.cast(mask, w.dtype)

            _set_constraint(weight, constraint)

    def update(self, keep: list[np.ndarray]) -> None:
        """Applies `keep` now: mask variables, weights and their optimizer slots."""
        self.keep = [k.copy() for k in keep]
        optimizer = getattr(self.model, "optimizer", None)
        for key, axes in self._axes.items():
            weight = layer_weight(self.model, *key)
            mask = weight_mask(weight.shape, axes, self.keep)
            self._masks[key].assign(mask)
            weight.assign(np.asarray(weight) * mask)
            for slot in optimizer_slots(optimizer, weight):
                slot.assign(np.asarray(slot) * mask)
