"""Hard masks: removed neurons' weights are zero and stay exactly zero in the full-width model.

During a DynHP fit the narrow network trains (`dynhp_tf.trainer`); the masks are what keeps
the user's full-width model honest afterwards: each weight a pruning group touches gets a
variable constraint `w * keep` that Keras 3 and tf_keras optimizers apply right after every
update, inside the compiled step, so a later plain fit cannot revive a removed neuron. The
mask of a weight is the outer product of its groups' keep vectors (tiled through Flatten), so
it costs one small variable per group, not a second copy of the weights. The constraint sits
on the variable, not in the layer config, so saved models stay plain Keras models.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf.groups import PruningGraph, layer_weight
from dynhp_tf.inplace import BLOCK_BYTES, scale_rows, zero_removed


def _set_constraint(variable, constraint) -> None:
    try:
        variable.constraint = constraint  # Keras 3 variables
    except AttributeError:  # tf.Variable (tf_keras), possibly mirrored across replicas
        for v in getattr(variable, "values", (variable,)):
            v._constraint = constraint
        if hasattr(variable, "_constraint"):
            variable._constraint = constraint


class NeuronMasks:
    """One keep-vector variable per pruning group, and the constraints that apply them."""

    def __init__(self, model, graph: PruningGraph):
        """All neurons kept; `update` removes some."""
        self.model, self.graph = model, graph
        self.keep = [np.ones(g.size, bool) for g in graph.groups]
        self._axes = graph.weight_axes()
        self.attached = False  # whether the constraint is on the weights (a step traced before lacks it)
        self._zeroing = None  # `zero_in_place`'s traced function
        with model.distribute_strategy.scope():
            self._vectors = [tf.Variable(k.astype("float32"), trainable=False, name="dynhp_keep",
                                         aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA) for k in self.keep]

    def _factors(self, axes) -> list:
        """(axis, keep vector along it) for each of a weight's pruned axes, read from the variables."""
        return [(axis, tf.tile(self._vectors[g], [tile])) for g, axis, tile in axes]

    def _apply(self, w, axes):
        """`w` times each of its groups' keep vectors, broadcast along its axis.

        One vector at a time: the mask as a whole (the outer product) would be a second
        full-size tensor in every step.
        """
        rank = len(w.shape)
        for axis, vector in self._factors(axes):
            w = w * tf.reshape(tf.cast(vector, w.dtype), [-1 if i == axis else 1 for i in range(rank)])
        return w

    def attach(self) -> None:
        """Adds `w * mask` to each masked weight's constraint (after any user constraint).

        The constraint stays after training, so a later fit cannot revive pruned weights. It
        costs an elementwise product per weight and step, so `update` attaches it only once a
        neuron is removed; a fit whose own train step trains the masked model (several replicas)
        attaches it before the step is traced. Attaching twice does nothing.
        """
        if self.attached:
            return
        self.attached = True
        for key, axes in self._axes.items():
            weight = layer_weight(self.model, *key)
            original = getattr(weight, "constraint", None)

            def constraint(w, axes=axes, original=original):
                w = original(w) if original is not None else w
                return self._apply(w, axes)

            _set_constraint(weight, constraint)

    def constraint_is_cheap(self) -> bool:
        """Whether the constraint's product (a temporary the size of the largest masked weight,
        in every step) is no larger than a block of `zero_in_place`'s writes. Then a step traced
        again with the constraint is the cheaper way to hold removed neurons at zero; for
        larger weights `zero_in_place` after each step saves that memory for a fraction of a
        millisecond (0.4-0.8 ms on LeNet-size networks, where a step takes about 1 ms)."""
        weights = [layer_weight(self.model, *key) for key in self._axes]
        return max(np.prod(w.shape) * tf.as_dtype(w.dtype).size for w in weights) <= BLOCK_BYTES

    def zero_in_place(self) -> None:
        """Sets the removed neurons' weights back to zero, in place: what the constraint does
        inside a step traced with it, for a step traced before it was attached.

        Traced once (a few ms of eager ops per call would double the step of a small network);
        it reads the keep vectors, so it holds for every later `update`.
        """
        if self._zeroing is None:
            def zero():
                for key, axes in self._axes.items():
                    scale_rows(layer_weight(self.model, *key), self._factors(axes))

            self._zeroing = tf.function(zero, autograph=False)
        self._zeroing()

    def update(self, keep: list[np.ndarray]) -> None:
        """Applies `keep` now: keep vectors, and removed neurons' weights set to zero in place."""
        old, self.keep = self.keep, [k.copy() for k in keep]
        if not all(k.all() for k in self.keep):
            self.attach()
        for vector, k in zip(self._vectors, self.keep):
            vector.assign(k.astype("float32"))
        for key, axes in self._axes.items():
            zero_removed(layer_weight(self.model, *key), axes, old, self.keep)
