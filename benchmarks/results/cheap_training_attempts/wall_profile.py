"""Where the filtered fit's wall time goes (a record, not a maintained benchmark).

    nice -n 10 env PYTHONPATH=. python benchmarks/results/cheap_training_attempts/wall_profile.py

The CNN of `benchmarks.cheap_training` on the same Fashion-MNIST subset (first 5,000 of its
10,000 samples), batch 64, 2 epochs, seed 0. Three fits: plain `model.fit`; `TrainingFlops`
(every batch fed through the step driver's Python feed, nothing skipped); the benchmark's best
variant (R = 0.2, explore="random", error maps alpha 0.5). For the filtered fit each part of
a step is timed with perf_counter around it (host-side: every part ends in a .numpy() or a
traced call that returns, so the time is the part's own): filter forward + copy to host, numpy
ranking (choose minus the forward and gather), row gather, main train step, labels (copy of
the loss vector, threshold rule), filter train step. Tracing counts come from the tf.functions;
calls over 10x a part's median are counted as tracing (their time less the median). Epoch times
give each fit's steady state (epochs 2 and 3) and its first-epoch excess (tracing).
"""
import collections
import json
import os
import pathlib
import time

import numpy as np

import benchmarks.cheap_training as ct
from dynhp_tf import flops as flops_module
from dynhp_tf import instance_filter as filter_module
from dynhp_tf._keras import keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.error_maps import error_map_pruning
from dynhp_tf.flops import TrainingFlops
from dynhp_tf.instance_filter import InstanceFilter

SAMPLES, EPOCHS = 5000, 3
TIMES = collections.defaultdict(list)  # name: durations of its calls


def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            TIMES[name].append(time.perf_counter() - start)
    return wrapper


class Profiled(InstanceFilter):
    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        predict, train = self._predict, self._train
        self.traced = (predict, train)
        self._predict = timed("filter forward (+ to host)", lambda x: _Host(predict(x)))
        self._train = timed("filter train step", lambda x, high: train(x, high).numpy())

    def choose(self, batch):
        return timed("choose (all)", super().choose)(batch)

    def run_step(self, step, batch, network):
        return timed("main step + labels (all)", super().run_step)(timed("main train step", step), batch, network)

    def label(self, batch, losses):
        return timed("labels + filter step (all)", super().label)(batch, losses)


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())


class _Host:
    """The filter's output already on the host (so its copy is timed with the forward)."""

    def __init__(self, tensor):
        self.value = tensor.numpy()

    def numpy(self):
        return self.value


def main():
    (x, y), _ = fashion_mnist()
    subset = np.random.default_rng(0).permutation(len(x))[:10000][:SAMPLES]
    x, y = x[subset, ..., None], y[subset]
    flops_module.take_rows = timed("row gather (take_rows)", flops_module.take_rows)
    filter_module.take_rows = flops_module.take_rows
    flops_module.concat_rows = timed("row concat", flops_module.concat_rows)
    warm = ct.build("cnn", 1)  # TensorFlow's one-off start-up costs land here, not in the first timed fit
    warm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    warm.fit(x[:640], y[:640], batch_size=64, epochs=1, verbose=0)
    results = {}
    for name in ("plain fit", "TrainingFlops feed", "filter R=0.2 + error maps, random explore"):
        model = ct.build("cnn", 0)
        callbacks = []
        if name != "plain fit":
            if "filter" in name:
                model = error_map_pruning(model, 0.5)
                callbacks = [Profiled(keep_ratio=0.2, explore="random")]
            else:
                callbacks = [TrainingFlops()]
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        TIMES.clear()
        clock = EpochClock()
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=EPOCHS, callbacks=callbacks + [clock], verbose=0)
        total = time.perf_counter() - start
        # Per part: total s, calls, median ms, slow calls (> 10x median: tracing) and their excess s
        parts = {}
        for key, values in TIMES.items():
            values, median = np.array(values), float(np.median(values))
            slow = values[values > 10 * median]
            parts[key] = [round(values.sum(), 2), len(values), round(1e3 * median, 2), len(slow),
                          round(float((slow - median).sum()), 2)]
        epochs = np.diff(clock.times)
        row = {"fit_s": round(total, 2), "epoch_s": [round(float(e), 2) for e in epochs],
               "steady_epoch_s": round(float(epochs[1:].mean()), 2), "parts": parts}
        if "filter" in name:
            predict, train = callbacks[0].traced
            row["traces"] = {"filter forward": predict.traced.experimental_get_tracing_count(),
                             "filter train": train.traced.experimental_get_tracing_count()}
        results[name] = row
        print(json.dumps({name: row}), flush=True)
    out = pathlib.Path(__file__).with_name("wall_profile.json")
    out.write_text(json.dumps({"samples": SAMPLES, "epochs": EPOCHS, "framework": "Keras 3",
                               "load_average": os.getloadavg(), "fits": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
