"""Is the shrink physical? Step time and measured training memory, dense vs DynHP, per epoch.

Each contender trains in its own process (so peak memory is its own) on the same data:
  dense        plain model.fit at the batch size;
  dynhp-fixed  DynHPCallback with batch growth off (max_batch_size = batch size);
  dynhp        DynHPCallback with a growing batch (the default use).
Per epoch it prints params, batch, seconds per real step, and the measured training memory:
the peak resident set of the epoch (Linux VmHWM, reset at each epoch start through
/proc/self/clear_refs) minus the process's resident set after TensorFlow started, the data was
loaded and one tiny op ran (the runtime's own baseline). Beside it, the memory model's figure
(`dynhp/train_memory_bytes`, which counts the full-width weights that stay in the user's model).

    python -m benchmarks.physical [--hidden 4096] [--epochs 10] [--samples 6400] [--batch-size 64]
        [--target 10] [--out benchmarks/results/physical.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set


def train(name: str, args) -> dict:
    """One contender, in this process; returns per-epoch records."""
    import tensorflow as tf

    from dynhp_tf import DynHPCallback
    from dynhp_tf._keras import keras
    from dynhp_tf.datasets import fashion_mnist

    (x, y), _ = fashion_mnist()
    x, y = x[:args.samples].reshape(args.samples, -1).astype("float32"), y[:args.samples]
    tf.constant(1.0) + 1.0
    baseline = _rss_kib("VmRSS")
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(args.hidden, activation="relu"),
                              keras.layers.Dense(args.hidden, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    records = []

    class Meter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            # What trains this epoch: the batch and widths set at the end of the previous one.
            self.batch = cb.stream.batch_size if cb else args.batch_size
            self.params = cb.graph.params(cb._kept()) if cb else model.count_params()
            _reset_peak()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            records.append({"epoch": epoch, "seconds": seconds, "params": self.params, "batch": self.batch,
                            "real_steps": -(-args.samples // self.batch),
                            "peak_bytes": (_rss_kib("VmHWM") - baseline) * 1024})

    cb = None
    if name == "dense":
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[Meter()], verbose=0)
    else:
        cb = DynHPCallback(target_compression=args.target, end_epoch=max(1, int(args.epochs * 0.6)) - 1,
                           batch_size=args.batch_size,
                           max_batch_size=args.batch_size if name == "dynhp-fixed" else 256, verbose=0)
        model.fit(cb.batches(x, y, seed=args.seed), epochs=args.epochs, callbacks=[cb, Meter()], verbose=0)
        previous = [None] + cb.history[:-1]  # epoch e trains what the end of epoch e-1 set
        for record, entry in zip(records, previous):
            record["modeled_bytes"] = cb.budget if entry is None else entry["dynhp/train_memory_bytes"]
    return {"name": name, "epochs": records}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=6400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/physical.json")
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(train(args.only, args)))
        return
    results = []
    for name in ("dense", "dynhp-fixed", "dynhp"):
        command = [sys.executable, "-m", "benchmarks.physical", "--only", name] + (argv or sys.argv[1:])
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    dense = results[0]["epochs"]
    print(f"{'run':<12}{'epoch':>6}{'params':>12}{'batch':>7}{'ms/step':>9}{'x dense':>8}"
          f"{'peak MiB':>10}{'x dense':>8}{'model MiB':>11}")
    for run in results:
        for r, d in zip(run["epochs"], dense):
            step, dense_step = r["seconds"] / r["real_steps"], d["seconds"] / d["real_steps"]
            model = f"{r['modeled_bytes'] / 2**20:>11.1f}" if "modeled_bytes" in r else ""
            print(f"{run['name']:<12}{r['epoch']:>6}{r['params']:>12,}{r['batch']:>7}{1000 * step:>9.1f}"
                  f"{step / dense_step:>8.2f}{r['peak_bytes'] / 2**20:>10.1f}{r['peak_bytes'] / d['peak_bytes']:>8.2f}"
                  + model)
    summary = {}
    for run in results[1:]:
        total = sum(r["seconds"] for r in run["epochs"]) / sum(d["seconds"] for d in dense)
        last, last_dense = run["epochs"][-1], dense[-1]
        summary[run["name"]] = {
            "epoch_time_ratio_whole_run": total,
            "last_epoch_step_time_ratio": (last["seconds"] / last["real_steps"]) /
                                          (last_dense["seconds"] / last_dense["real_steps"]),
            "last_epoch_memory_ratio": last["peak_bytes"] / last_dense["peak_bytes"],
            "max_peak_over_dense_peak": max(r["peak_bytes"] for r in run["epochs"]) /
                                        max(d["peak_bytes"] for d in dense),
        }
    print(json.dumps(summary, indent=1))
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "runs": results, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
