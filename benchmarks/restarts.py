"""Warm restarts of the learning rate after DynHP's pruning events (issue 16 attempt, benchmark prototype).

The epochs split into segments that end at a pruning event (the last segment is the fine-tuning
after the schedule). Within each segment the learning rate follows a half cosine from the rate
DynHP set for it (its batch scaling included) down to `floor` times that rate; after an event it
restarts at the full rate (SGDR-style, Loshchilov & Hutter 2017): the network that just lost
neurons gets a large step size to move, and every segment ends annealed. With
`during_pruning=False` only the fine-tuning after the last event anneals (one cosine to the end).

The callback must run before DynHPCallback: it gives the user's optimizer its epoch rate back at
the epoch's end, so that DynHP's batch scaling multiplies that rate and not an annealed one.
"""
from __future__ import annotations

import math

from dynhp_tf._keras import keras
from dynhp_tf.trainer import current_learning_rate


def segments(schedule, epochs: int) -> list[list[int]]:
    """Epoch numbers grouped into segments, each ending at an event epoch or at the last epoch."""
    result, current = [], []
    for epoch in range(epochs):
        current.append(epoch)
        if schedule.progress(epoch, epochs) is not None or epoch == epochs - 1:
            result.append(current)
            current = []
    return result


class WarmRestarts(keras.callbacks.Callback):
    """Cosine-anneals the learning rate within each segment between DynHP's events."""

    def __init__(self, dynhp, epochs: int, floor: float = 0.0, during_pruning: bool = True):
        super().__init__()
        self.dynhp, self.floor = dynhp, float(floor)
        parts = segments(dynhp.schedule, epochs)
        self.segment_of = {e: s for s in parts for e in s}
        # during_pruning=False: a constant rate until the last event, annealing only in fine-tuning.
        self.constant = set() if during_pruning else {e for s in parts[:-1] for e in s}
        self.rates = []  # (epoch, first rate, last rate) actually set, for the record

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.base = epoch, current_learning_rate(self.model.optimizer)
        self.steps = self.dynhp.stream.steps
        self.rates.append([epoch, None, None])

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch in self.constant:
            return
        segment = self.segment_of[self.epoch]
        done = segment.index(self.epoch) + min(batch, self.steps - 1) / self.steps
        rate = self.base * (self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * done / len(segment))))
        self.model.optimizer.learning_rate = rate  # the narrow network's optimizer reads it in every step
        self.rates[-1][1] = self.rates[-1][1] or rate
        self.rates[-1][2] = rate

    def on_epoch_end(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.base
