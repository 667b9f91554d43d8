"""Wall time of the filtered fit before and after the steps were traced once (a record).

    nice -n 10 env PYTHONPATH=. python benchmarks/results/cheap_training_attempts/trace_once.py
    (TF_USE_LEGACY_KERAS=1 for tf_keras; results appended to trace_once.json)

In one process: the CNN of `benchmarks.cheap_training`, the first 5,000 of its 10,000
Fashion-MNIST samples, batch 64, 2 epochs, seed 0, filter R = 0.2 + error maps alpha 0.5,
explore="random". "before" puts back the previous feeding (Keras 3: the kept rows as a
Python iterator's element, a trace per new size; tf_keras: a tf.data dataset made per step;
the filter's functions with reduce_retracing); "after" is the code as it is. An untimed
warm-up fit first; then before, after, three times over, so drifting load hits both alike.
Each fit's wall time and the process's CPU time (all its threads; less sensitive to other
processes on shared cores).
"""
import json
import os
import pathlib
import time

import numpy as np
import tensorflow as tf

import benchmarks.cheap_training as ct
from dynhp_tf import instance_filter
from dynhp_tf._keras import LEGACY, keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.error_maps import error_map_pruning
from dynhp_tf.flops import AnyRowsFunction, TrainingFlops, rows

SAMPLES, EPOCHS, ROUNDS = 5000, 2, 3


def old_iterator(batch):
    if not LEGACY:
        return iter([batch])
    return iter(tf.data.Dataset.from_tensor_slices(batch).batch(rows(batch)))


def fit(x, y, before: bool) -> dict:
    new_run_step = TrainingFlops.run_step
    if before:
        TrainingFlops.run_step = lambda self, step, batch, network: step(old_iterator(batch))
        instance_filter.AnyRowsFunction = lambda f: tf.function(f, reduce_retracing=True)
    try:
        model = error_map_pruning(ct.build("cnn", 0), 0.5)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        start, cpu = time.perf_counter(), time.process_time()
        history = model.fit(x, y, batch_size=64, epochs=EPOCHS, verbose=0,
                            callbacks=[instance_filter.InstanceFilter(keep_ratio=0.2, explore="random")]).history
        return {"fit_s": round(time.perf_counter() - start, 2), "cpu_s": round(time.process_time() - cpu, 2),
                "accuracy": round(history["accuracy"][-1], 4)}
    finally:
        TrainingFlops.run_step = new_run_step
        instance_filter.AnyRowsFunction = AnyRowsFunction


def main():
    (x, y), _ = fashion_mnist()
    subset = np.random.default_rng(0).permutation(len(x))[:10000][:SAMPLES]
    x, y = x[subset, ..., None], y[subset]
    fit(x[:640], y[:640], before=False)  # TensorFlow's start-up costs
    runs = []
    for before in (True, False) * ROUNDS:
        keras.utils.set_random_seed(0)
        row = {"feed": "before" if before else "after", **fit(x, y, before), "load_average": os.getloadavg()[0]}
        runs.append(row)
        print(json.dumps(row), flush=True)
    out = pathlib.Path(__file__).with_name("trace_once.json")
    previous = json.loads(out.read_text()) if out.exists() else []
    previous.append({"framework": "tf_keras" if LEGACY else "Keras 3", "samples": SAMPLES, "epochs": EPOCHS,
                     "runs": runs})
    out.write_text(json.dumps(previous, indent=1))


if __name__ == "__main__":
    main()
