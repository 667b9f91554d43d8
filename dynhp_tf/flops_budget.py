"""Train for a budget of training FLOPs instead of a number of epochs, the learning rate following it.

A method that makes steps cheaper (`InstanceFilter`, error map pruning) saves computation only
if the user stops earlier, or spends the saving on more epochs. `FlopsBudget` stops fit before
the epoch that would take the FLOPs counted by a `TrainingFlops` (or `InstanceFilter`) past the
budget. How many epochs that is depends on what the steps keep, so a schedule over epochs cannot
end where training ends; `decay` makes the learning rate a function of the share of the budget
spent instead, updated before every step: it reaches about 0 where training stops, whatever the
method, which makes a filtered run and plain training comparable under the same kind of schedule.
Without decay, the last epochs of a short run at a constant rate move test accuracy by 0.5 to 1
point from one epoch to the next on Fashion-MNIST, more than the differences being measured.
"""
from __future__ import annotations

import math

from dynhp_tf._keras import keras
from dynhp_tf.flops import TrainingFlops
from dynhp_tf.trainer import current_learning_rate, has_schedule

# Factor of the initial learning rate once the share p in [0, 1] of the budget is spent.
DECAYS = {
    None: lambda p: 1.0,
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "linear": lambda p: 1.0 - p,
}


class FlopsBudget(keras.callbacks.Callback):
    """Stops fit before an epoch that would pass `budget` training FLOPs; optionally decays the LR.

    The run ends after the last whole epoch that fits, assuming the next epoch costs what the
    last one did. With `decay`, the main optimizer's learning rate is set before each step to
    its value at train begin times `decay(spent / budget)`; the instance filter's own
    optimizer is left alone. Off by default: on the benchmark CNN the cosine decay was worth 1.3
    points to a filtered run at Adam(2e-3) but cost plain training 0.3 at Adam(1e-3), where 8
    epochs are too few to spare any learning (docs/benchmarks.md, cheap_training).

    Args:
        counter: the `TrainingFlops` or `InstanceFilter` of the same fit (its FLOPs are read).
        budget: training FLOPs allowed, > 0.
        decay: None (constant learning rate), "cosine" or "linear" (to 0 at the budget).

    Example:
        >>> counter = InstanceFilter(keep_ratio=0.2)
        >>> model.fit(x, y, epochs=1000, callbacks=[counter, FlopsBudget(counter, 2.6e11, decay="cosine")])
    """

    def __init__(self, counter, budget, decay=None):
        super().__init__()
        if not isinstance(counter, TrainingFlops):
            raise ValueError(f"counter: expected a TrainingFlops or InstanceFilter callback, got {counter!r}")
        if not (isinstance(budget, (int, float)) and budget > 0 and math.isfinite(budget)):
            raise ValueError(f"budget: expected a number of FLOPs > 0, got {budget!r}")
        if decay not in DECAYS:
            raise ValueError(f"decay: expected one of {sorted(k for k in DECAYS if k)} or None, got {decay!r}")
        self.counter, self.budget, self.decay = counter, float(budget), decay

    def spent(self) -> float:
        """Training FLOPs counted so far in this fit (finished epochs and the current one's steps)."""
        epoch = getattr(self.counter, "epoch_flops", {})  # made at the first epoch's begin
        return self.counter.totals["train_flops"] + sum(v for k, v in epoch.items() if k != "train_flops")

    def on_train_begin(self, logs=None):
        self.initial_rate = current_learning_rate(self.model.optimizer)
        if self.decay is not None and has_schedule(self.model.optimizer):
            raise ValueError("decay: FlopsBudget cannot decay a learning rate that is already a schedule; "
                             "compile with a number or pass decay=None")

    def on_train_batch_begin(self, batch, logs=None):
        if self.decay is not None:
            share = min(1.0, self.spent() / self.budget)
            self.model.optimizer.learning_rate = self.initial_rate * DECAYS[self.decay](share)

    def on_epoch_end(self, epoch, logs=None):
        epoch_cost = self.counter.epoch_flops["train_flops"]
        if self.counter.totals["train_flops"] + epoch_cost > self.budget:
            self.model.stop_training = True
