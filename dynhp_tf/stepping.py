"""The step driver: owns `model.train_function` for one fit and decides what each step runs.

Keras fixes the number of steps per epoch when fit starts, and calls `model.train_function`
once per step. Training-time methods need to change what a step does without patching that
function each on their own: DynHP's growing batch needs fewer real steps in later epochs (the
rest become no-ops that neither read data nor update weights), and its physical shrink runs
each step on a narrower network. The driver is the one place that does this: it calls `step`
for the epoch's real steps, returns the last logs for the surplus ones, and calls
`on_epoch_steps_done` after the epoch's last step, before Keras validates and calls the
callbacks' `on_epoch_end`.

A second method that needs the data of each step (the instance filter, the FLOPs count of
`dynhp_tf.flops`) sets `feed`: it is called as `feed(step, iterator)` instead of
`step(iterator)`, may pull several batches and run `step` on what it chose, and returns None
for a step with nothing left to train (a no-op). `network()` is the network that trains now.

A fit that raises (an exception in a callback, KeyboardInterrupt) skips `on_train_end` on
Keras 3 and tf_keras alike, so nothing would remove the driver: the next plain `fit` would run
it, training DynHP's narrow copy or only the filter's rows. Both frameworks' `fit` (and
`train_on_batch`) first call `model.make_train_function()` without `force`, which nothing
inside a fit does; the driver hooks that call: a new fit hands the model back (`uninstall`)
before it starts, however the previous one ended. The methods register what undoes their
changes to the model with `on_release`, so it runs once, at `on_train_end` or then.
"""
from __future__ import annotations

import math
from typing import Callable


def _value(x):
    return int(x.numpy()) if hasattr(x, "numpy") else int(x)


def steps_per_execution(model) -> int:
    value = getattr(model, "steps_per_execution", None)
    if value is None:
        value = getattr(model, "_steps_per_execution", None)
    return 1 if value is None else _value(value)


class StepDriver:
    """Runs `step(iterator)` for the real steps of each epoch of one `model.fit`.

    Args:
        model: the model being fit; its `train_function` is replaced until `uninstall()`.
        steps_per_epoch: the steps Keras runs per epoch (`params["steps"]`).
        step: what a real step runs; `None` runs the model's own train function.
        on_epoch_steps_done: called after the last step of every epoch.
        network: returns the network whose weights train now (default: `model`).
    """

    def __init__(self, model, steps_per_epoch: int, step: Callable | None = None,
                 on_epoch_steps_done: Callable[[], None] = lambda: None, network: Callable | None = None):
        if steps_per_execution(model) != 1:
            raise ValueError("steps_per_execution: DynHPCallback needs steps_per_execution=1 in compile()")
        self.model, self.steps_per_epoch = model, steps_per_epoch
        self.step, self.on_epoch_steps_done = step, on_epoch_steps_done
        self.own_step = None
        self.real_steps, self.calls, self.last_logs = math.inf, 0, None
        self.network = network or (lambda: model)
        self.feed: Callable | None = None
        self._releases: list[Callable[[], None]] = []

    def on_release(self, undo: Callable[[], None]) -> None:
        """Runs `undo` when the driver goes: at the end of its fit, or when the next fit starts."""
        self._releases.append(undo)

    @classmethod
    def installed(cls, model) -> "StepDriver | None":
        """The driver that owns `model.train_function` in this fit, if any."""
        function = getattr(model, "train_function", None)
        return function if isinstance(function, cls) else None

    def install(self) -> None:
        model = self.model
        self.own_step = model.train_function
        model.train_function = self
        make = model.make_train_function

        def make_train_function(force=False):
            if not force:  # a new fit: the one that installed this driver is over
                self.uninstall()
            return make(force=force)

        model.make_train_function = make_train_function  # an instance attribute: `uninstall` deletes it

    def remake_own_step(self) -> None:
        """Makes the model's own train function afresh, e.g. after its `train_step` was wrapped.

        Keras 3 binds `train_step` when the function is made (fit does so before the callbacks
        start); a function made but not yet run costs nothing to replace, one that ran is traced
        again at the next step (e.g. after a constraint was attached to the weights).
        """
        self.model.make_train_function(force=True)
        self.own_step, self.model.train_function = self.model.train_function, self

    def release_own_step(self) -> None:
        """Drops the model's own traced train function (and the optimizer state it holds)."""
        self.own_step = None

    def uninstall(self) -> None:
        """Hands the model back: its own methods, the release hooks run (once, last first)."""
        if "make_train_function" in vars(self.model):
            delattr(self.model, "make_train_function")
        # None makes the next fit trace a fresh train function: the optimizer may have changed.
        self.model.train_function = None
        releases, self._releases = self._releases, []
        for undo in reversed(releases):
            undo()

    def begin_epoch(self, real_steps: int | float = math.inf) -> None:
        self.calls, self.real_steps = 0, real_steps

    def __call__(self, iterator):
        self.calls += 1
        if self.calls <= self.real_steps:
            step = self.step or self.own_step
            logs = step(iterator) if self.feed is None else self.feed(step, iterator)
            self.last_logs = self.last_logs if logs is None else logs
        if self.calls == self.steps_per_epoch:
            self.on_epoch_steps_done()
        return self.last_logs
