"""Training FLOPs counted from the rows and networks that really ran, logged per epoch.

A training-time saving (skipped samples, pruned error maps, narrower layers) is only worth
its name if the user sees it. `TrainingFlops` owns the data of each train step (through the
step driver's `feed`, see `dynhp_tf.stepping`), counts the rows that reach the main
network's train step and multiplies them by the per-sample cost of the network that trains
at that moment (the narrow copy after a DynHP event). `InstanceFilter` extends it.

Cost model (per sample, FLOPs = 2 x multiply-accumulates of the kernels; biases, norms and
activations are left out as they are small next to the kernels):
    forward = 2 x MACs; backward = 2 x forward (error to the input + weight gradient), per
    layer, times the fraction of output channels whose error maps the layer keeps
    (`error_map_alpha` of `dynhp_tf.error_maps.ErrorMapConv2D`, 1 elsewhere).
The first layer with a kernel (in the model's layer order) gets no error for its input:
nothing upstream trains, and TensorFlow prunes that unused gradient from the traced step.
"""
from __future__ import annotations

import collections
import math

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.stepping import StepDriver

LOG_KEYS = ("train_flops", "train_flops/main", "train_flops/filter")


def _output_shape(layer) -> tuple:
    output = layer.output
    return tuple(output.shape)


def layer_macs(layer) -> int:
    """Multiply-accumulates per sample of one layer's kernel (0 for layers without one)."""
    if isinstance(layer, keras.Model):
        return sum(layer_macs(inner) for inner in layer.layers)
    kernel = getattr(layer, "kernel", None)
    kernel = getattr(layer, "depthwise_kernel", None) if kernel is None else kernel
    if kernel is None:
        return 0
    positions = math.prod(int(d) for d in _output_shape(layer)[1:-1])
    return int(np.prod(kernel.shape)) * positions


def per_sample_flops(model) -> dict[str, float]:
    """FLOPs per sample of one train step: {"forward": ..., "backward": ...}.

    Example:
        >>> per_sample_flops(model)["forward"]   # 2 x kernel MACs of one inference
    """
    forward = backward = 0.0
    first = True
    for layer in model.layers:
        macs = layer_macs(layer)
        forward += 2 * macs
        # Weight gradient, plus the input's error unless this is the first kernel layer.
        passes = 2 if first and macs and not isinstance(layer, keras.Model) else 4
        backward += passes * macs * float(getattr(layer, "error_map_alpha", 1.0))
        first = first and not macs
    return {"forward": forward, "backward": backward}


def rows(batch) -> int:
    return int(tf.shape(tf.nest.flatten(batch)[0])[0])


def take_rows(batch, index):
    return tf.nest.map_structure(lambda t: tf.gather(t, index), batch)


def concat_rows(parts):
    return parts[0] if len(parts) == 1 else tf.nest.map_structure(lambda *t: tf.concat(t, 0), *parts)


def any_rows_spec(tensor) -> tf.TensorSpec:
    """The spec of `tensor` with its leading (row) axis unknown."""
    return tf.TensorSpec((None,) + tuple(tensor.shape[1:]), tensor.dtype)


class AnyRowsFunction:
    """`tf.function(function)` traced once, at its first call, for any number of rows.

    Sub-batches have many sizes (the kept rows, an epoch's short last batch); a function
    traced per shape costs seconds each time, `reduce_retracing` still traces twice.

    Example:
        >>> forward = AnyRowsFunction(lambda x: model(x))   # one trace for (None, 28, 28, 1)
    """

    def __init__(self, function):
        self.function, self.traced = function, None

    def __call__(self, *args):
        if self.traced is None:
            self.traced = tf.function(self.function, input_signature=[any_rows_spec(a) for a in args])
        return self.traced(*args)


class BatchIterator:
    """One tf.data iterator that yields the batch given to `feed` just before (row axis unknown).

    A Keras train function traces its step per input spec. Keras 3 takes a Python iterator's
    batches as they are: a trace per new number of rows (seconds each); tf_keras needs a
    tf.data iterator, and making one per step cost 14 ms, more than a 20-row CNN step. One
    iterator over a generator, its row axis unknown, is traced once and costs about 0.7 ms a
    step. Nothing may read ahead (the next batch is not there yet): no prefetch, no autotune.

    Example:
        >>> batches = BatchIterator(batch)
        >>> logs = model.train_function(batches.feed(batch))
    """

    def __init__(self, example):
        self._next = collections.deque()
        spec = tf.nest.map_structure(any_rows_spec, example)
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        options.autotune.enabled = False
        data = tf.data.Dataset.from_generator(self._batches, output_signature=spec).with_options(options)
        self.iterator = iter(data)

    def _batches(self):
        while True:
            yield self._next.popleft()

    def feed(self, batch):
        self._next.append(batch)
        return self.iterator


class TrainingFlops(keras.callbacks.Callback):
    """Logs the training FLOPs of each epoch (`train_flops` in `logs` and History).

    It feeds each train step itself: the batches come from fit's input as usual and go to
    the step unchanged; counting rows there (not assuming them) keeps the figure true when
    another method changes what runs (DynHP's no-op steps and narrow network, the instance
    filter's sub-batches). Put it after `DynHPCallback` or anywhere: it joins the step
    driver that owns the fit, or installs one.

    Logged per epoch: `train_flops` (total), `train_flops/main` (forward and backward of
    the main network), `train_flops/filter` (0 without a filter).

    Example:
        >>> model.fit(x, y, epochs=3, callbacks=[TrainingFlops()])
        >>> model.history.history["train_flops"]
    """

    refill = True  # how kept rows are batched: see `_feed`

    def __init__(self):
        super().__init__()
        self.driver: StepDriver | None = None
        self._own_driver = False
        self._costs: dict[int, tuple] = {}

    # --- driver ----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.params.get("steps") is None:
            raise ValueError(f"steps_per_epoch: {type(self).__name__} needs a known number of steps per epoch")
        self.driver, self._own_driver = None, False
        self.main_rows = 0  # rows that reached the main train step in this fit
        self._batches = None  # BatchIterator of this fit, made at its first step
        self.totals = dict.fromkeys(LOG_KEYS, 0.0)

    def _join_driver(self):
        # At the first epoch, not at train begin: every callback's on_train_begin has run by
        # then, so a DynHPCallback listed after this one has installed its driver already.
        driver = StepDriver.installed(self.model)
        if driver is None:
            driver, self._own_driver = StepDriver(self.model, self.params["steps"]), True
            driver.install()
        if driver.feed is not None:
            raise ValueError(f"callbacks: {type(self).__name__} cannot share a fit with another callback that "
                             "feeds the train steps (TrainingFlops and InstanceFilter both count FLOPs: use one)")
        driver.feed = self._feed
        driver.on_release(self.release)
        self.driver = driver

    def release(self) -> None:
        """Undoes this callback's changes to the networks (also after a fit that raised)."""
        self._batches = None  # its generator is finalised now, not at interpreter exit

    def on_epoch_begin(self, epoch, logs=None):
        if self.driver is None:
            self._join_driver()
        if self._own_driver:
            self.driver.begin_epoch()
        self.epoch_flops = dict.fromkeys(LOG_KEYS, 0.0)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_flops["train_flops"] = sum(self.epoch_flops[k] for k in LOG_KEYS[1:])
        for key in LOG_KEYS:
            self.totals[key] += self.epoch_flops[key]
        if logs is not None:
            logs.update(self.epoch_logs())

    def epoch_logs(self) -> dict:
        return dict(self.epoch_flops)

    def on_train_end(self, logs=None):
        self.release()
        if self.driver is not None:
            self.driver.feed = None
            if self._own_driver:
                self.driver.uninstall()
        self.driver = None

    # --- steps -----------------------------------------------------------------------

    def cost(self, network) -> dict[str, float]:
        """Per-sample FLOPs of `network` (cached per network object)."""
        entry = self._costs.get(id(network))
        if entry is None or entry[0] is not network:
            entry = self._costs[id(network)] = (network, per_sample_flops(network))
        return entry[1]

    def _feed(self, step, iterator):
        """Runs the main step on the rows `choose` kept.

        With `refill` (default), kept rows are collected from as many input batches as it
        takes to fill one batch of the input's size (the last step of an epoch takes what is
        left): the main network trains at the batch size its learning rate was set for, an
        epoch is still one pass over the data, and the steps Keras schedules beyond it are
        no-ops, so there are fewer (full) steps. Without it, each input batch's kept rows are
        one step: as many steps as plain training, each on fewer rows. Either way the step sees
        the rows through one `BatchIterator` (traced once, whatever the number of rows).
        """
        driver = self.driver
        if driver.calls == 1:  # a new epoch: its batches are counted afresh
            self._pulled, self._buffer, self._target = 0, [], None
        available = min(driver.real_steps, driver.steps_per_epoch)
        buffered = sum(rows(b) for b in self._buffer)
        fill = self._target if self.refill and self._target else 1
        while buffered < fill and self._pulled < available:
            batch = next(iterator)
            self._pulled += 1
            self._target = self._target or rows(batch)
            fill = self._target if self.refill else 1
            kept = self.choose(batch)
            if kept is not None and rows(kept):
                self._buffer.append(kept)
                buffered += rows(kept)
        if not buffered:
            return None
        pool = concat_rows(self._buffer)
        last = self._pulled >= available and driver.calls >= available
        count = buffered if last or not self.refill else min(self._target, buffered)
        batch = take_rows(pool, tf.range(count)) if count < buffered else pool
        self._buffer = [take_rows(pool, tf.range(count, buffered))] if count < buffered else []
        network = driver.network()
        logs = self.run_step(step, batch, network)
        cost = self.cost(network)
        self.epoch_flops["train_flops/main"] += count * (cost["forward"] + cost["backward"])
        self.main_rows += count
        return logs

    # Hooks for methods that choose rows (the instance filter).
    def choose(self, batch):
        """The rows of an input batch that go to the main network (here: all of them)."""
        return batch

    def run_step(self, step, batch, network):
        """Runs the main train `step` on `batch` (the rows kept) with `network`; returns its logs."""
        if self._batches is None:
            self._batches = BatchIterator(batch)
        return step(self._batches.feed(batch))
