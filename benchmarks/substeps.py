"""Pruning events inside epochs (issue 16 attempt, benchmark prototype).

DynHP prunes at the end of its schedule's epochs: with the defaults on 8 epochs, five events,
the first of which removes about half of the parameters the schedule removes. Gradual pruning
(Zhu & Gupta 2017) prunes every few hundred steps instead, so that each event takes less at a
time and the network recovers between them. `SubEpochEvents` adds `events_per_epoch - 1` events
inside every epoch of the schedule, at equal step intervals; each reaches the cubic curve's value
at its fraction of the schedule, and the epoch-end events stay where they were (the last still
reaches the target exactly). The batch grows only at epoch ends, as the stream's steps per epoch
are fixed when the epoch begins (with the defaults it grows once, after the last event).
"""
from __future__ import annotations

from dynhp_tf.callback import DynHPCallback
from dynhp_tf.trainer import copy_metric_states


class SubEpochEvents(DynHPCallback):
    """DynHPCallback with `events_per_epoch - 1` more pruning events inside each schedule epoch."""

    def __init__(self, *args, events_per_epoch: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        if int(events_per_epoch) != events_per_epoch or events_per_epoch < 1:
            raise ValueError(f"events_per_epoch: expected an integer >= 1, got {events_per_epoch!r}")
        self.events_per_epoch = int(events_per_epoch)
        self.inner_events = []  # (epoch, step, progress, params after) of every event inside an epoch

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.epoch = epoch
        steps, k, epochs = self.stream.steps, self.events_per_epoch, self.params.get("epochs", 1)
        progress = {round(j * steps / k): self.schedule.progress(epoch, epochs, done=j / k) for j in range(1, k)}
        self.event_steps = {step: p for step, p in progress.items() if p is not None and self.schedule.frequency == 1}

    def _step(self, iterator):
        logs = super()._step(iterator)
        progress = self.event_steps.get(self.driver.calls)
        if progress is not None:
            self._inner_event(progress)
        return logs

    def _inner_event(self, progress: float) -> None:
        self.trainer.sync()  # the user's model holds the weights and the epoch's metric states
        self._prune(progress)
        self._shrink(self.masks.keep)
        if self.trainer.compact is not None:  # the epoch's metrics go on in the network that trains now
            copy_metric_states(self.model, self.trainer.compact)
        self._recalibrate_batchnorm()
        self.inner_events.append([self.epoch, self.driver.calls, progress, self.graph.params(self._kept())])
