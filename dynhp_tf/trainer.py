"""The network that really trains: after each pruning event, a physically narrower copy.

Masks keep dense shapes, so a masked network costs dense memory and time in every step.
`CompactTrainer` instead rebuilds the network from the pruning groups at the kept widths
(`dynhp_tf.compact`), carries the weights and the optimizer's slots of the kept neurons over
exactly, compiles it like the user's model and runs the train steps on it.

The user's model keeps its full width. It holds the trained weights, removed neurons exactly
zero, after every `sync()` (the callback syncs after the last step of each epoch, before
Keras validates or calls `on_epoch_end`). While a narrow network trains, the user's model's
optimizer is an unbuilt clone, so the full-width gradients and optimizer slots are freed; its
learning rate is still the one that callbacks and DynHP's batch scaling set, and the narrow
optimizer reads it in every step (`FollowRate`). `finish()` writes the narrow optimizer's
state back into it, so training can resume.
"""
from __future__ import annotations

import ctypes
import gc

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.compact import (build_optimizer, clone_optimizer, compile_args, expand_optimizer_state,
                              expand_variables, narrow_model, narrow_slots)
from dynhp_tf.groups import PruningGraph, pruning_groups
from dynhp_tf.inplace import free_variables


def current_learning_rate(optimizer) -> float | None:
    try:
        value = optimizer.learning_rate
        return float(value.numpy() if hasattr(value, "numpy") else value)
    except (TypeError, ValueError):  # a schedule object
        return None


def copy_metric_states(source_model, target_model) -> None:
    """Makes the target's compiled metrics (and loss tracker) hold the source's running state."""
    for a, b in zip(source_model.metrics, target_model.metrics):
        for va, vb in zip(a.variables, b.variables):
            if tuple(va.shape) == tuple(vb.shape):
                vb.assign(va)


def release_memory() -> None:
    """Frees the dropped full-width state now and hands the pages back to the OS.

    glibc keeps freed heap pages for reuse; without a trim the process would keep the memory
    that a shrink freed, so a device-like budget would never see it.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


class FollowRate(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate of another optimizer, read inside every step of the one that uses it.

    The user's model's optimizer is where learning-rate callbacks write, once per epoch
    (LearningRateScheduler) or before every batch (`FlopsBudget`'s decay, a warm-up); the
    narrow network's optimizer follows it without a host read per step.
    """

    def __init__(self, rate):
        self.rate = rate  # the optimizer's learning-rate variable

    def __call__(self, step):
        return tf.convert_to_tensor(self.rate)

    def get_config(self):
        return {"learning_rate": float(np.asarray(self.rate))}


def has_schedule(optimizer) -> bool:
    """True when the learning rate is a schedule (of the step count), not a settable value."""
    return isinstance(getattr(optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)


class CompactTrainer:
    """Trains a narrow copy of `model` once neurons are removed; `model` stays full width."""

    def __init__(self, model, graph: PruningGraph):
        self.model, self.graph = model, graph
        # Keras 3 cannot switch a multi-replica fit to another model's train function mid-fit
        # (its traced step fails on the distributed iterator): there the masks alone prune.
        self.physical = model.distribute_strategy.num_replicas_in_sync == 1
        self.keep = [np.ones(g.size, bool) for g in graph.groups]
        self.compact = None  # the narrow network; None while the user's model itself trains
        self.network_graph = graph  # pruning groups of the network that trains now
        self._dirty = False

    @property
    def network(self):
        """The network whose weights train now."""
        return self.model if self.compact is None else self.compact

    def shrink(self, keep: list[np.ndarray]) -> bool:
        """Continues training on a network with only the `keep` neurons (full-width indices).

        Returns whether it rebuilt the network (then the caller drops its references to the
        previous one and calls `release_memory`). The previous narrow network, or at the first
        shrink the user's full-width optimizer, is emptied: the optimizer object that was
        passed to `compile` is replaced by a clone and must not be reused.
        """
        if not self.physical or all(np.array_equal(a, b) for a, b in zip(keep, self.keep)):
            return False
        if self.compact is not None:
            self.sync()
        source, source_graph = self.network, self.network_graph
        relative = [new[old] for new, old in zip(keep, self.keep)]
        with self.model.distribute_strategy.scope():
            # The old slots are read, and freed, before the narrow network exists, and each new
            # slot is built from its value: at no point do two full sets of state coexist.
            previous = source.optimizer
            slots = narrow_slots(previous, source, source_graph, relative, free=True)
            compact = narrow_model(source, source_graph, relative)
            if self.compact is None:  # from now on the full-width optimizer state is not needed
                dropped = list(previous.variables)
                self.model.optimizer = clone_optimizer(previous)
                if hasattr(self.model, "_compile_config"):
                    self.model._compile_config.config["optimizer"] = self.model.optimizer
            else:
                # Not the metrics: compiled from the user's arguments, they may be the same objects.
                dropped = list(self.compact.variables) + list(previous.variables)
            rate = self.model.optimizer.learning_rate  # a variable, unless a schedule gives the rate
            optimizer = clone_optimizer(self.model.optimizer,
                                        learning_rate=FollowRate(rate) if hasattr(rate, "assign") else None)
            build_optimizer(optimizer, compact, source_graph, slots, previous.iterations)
            compact.compile(optimizer=optimizer, **compile_args(self.model))
        free_variables(dropped)
        compact.make_train_function()
        self.compact, self.network_graph = compact, pruning_groups(compact)
        self.keep = [k.copy() for k in keep]
        return True

    def begin_epoch(self) -> None:
        """Resets the narrow network's metrics."""
        if self.compact is not None:
            self.compact.reset_metrics()

    def step(self, iterator):
        self._dirty = True
        return self.compact.train_function(iterator)

    def sync(self) -> None:
        """Writes the narrow network's weights and metric states into the user's model."""
        if self.compact is None or not self._dirty:
            return
        self.write_weights()
        copy_metric_states(self.compact, self.model)
        self._dirty = False

    def write_weights(self) -> None:
        """Writes the narrow network's weights into the user's model (kept entries, in place)."""
        if self.compact is not None:
            expand_variables(self.compact, self.model, self.graph, self.keep)

    def finish(self) -> None:
        """At the end of fit: weights and the optimizer's state back in the user's model."""
        if self.compact is None:
            return
        self.sync()
        expand_optimizer_state(self.compact.optimizer, self.model.optimizer, self.compact, self.model, self.graph,
                               self.keep)
