"""Is the shrink physical? Step time and measured training memory, dense vs DynHP, per epoch.

Each contender trains in its own process (so peak memory is its own) on the same data:
  dense        plain model.fit at the batch size;
  dynhp-fixed  DynHPCallback with batch growth off (max_batch_size = batch size);
  dynhp        DynHPCallback with a growing batch (the default use).
Per epoch it prints params, batch, seconds per real step and two measurements of training memory:
  tensors  the peak bytes of live TensorFlow tensors in the epoch (weights, gradients, optimizer
           slots, activations, temporaries), counted by TensorFlow's own CPU allocator: each
           contender runs a second time with TF_CPU_ALLOCATOR_USE_BFC=true, whose statistics are
           reset at each epoch start, minus the bytes live before the model was built; that run
           executes one op at a time, so that identical steps reach identical peaks; that
           allocator counts a whole freed chunk given to a smaller tensor (a 35 MiB tensor in a
           64 MiB chunk counts 64), which the callback's first narrow copy avoids
           (`dynhp_tf.memory.reuse_slack`), as it must on a GPU, where that allocator is the one;
  RSS      the peak resident set of the epoch (Linux VmHWM, reset at each epoch start through
           /proc/self/clear_refs) minus the resident set after TensorFlow started, the data was
           loaded and one tiny op ran. It also holds what is not a tensor: the traced functions,
           the runtime's thread pools and caches, and heap pages malloc has not returned.
Step times come from the first run (the default allocator). Beside them, the memory model's
figure (`dynhp/train_memory_bytes`, which counts the full-width weights that stay in the user's
model), and how well the model predicts the measured saving against dense.

The contenders run with TF_ENABLE_ONEDNN_OPTS=0 unless `--onednn` is given: TensorFlow's oneDNN
CPU allocator keeps a pool as large as the largest memory the process ever used, so with it a
process never shows memory that was freed (dense and DynHP alike keep their first-epoch peak).
They also run with glibc's mmap threshold fixed at its initial 128 KiB (MALLOC_MMAP_THRESHOLD_)
unless `--malloc-default` is given: by default glibc raises that threshold to the largest block
freed so far (up to 32 MiB), after which tensors of up to 32 MiB come from the heap, whose freed
pages stay resident. Measured on dense alone over 8 epochs of the default run, that read as
544-600 MiB from epoch to epoch; with the threshold fixed, 415-456 MiB.

`--overhead` measures instead what the callback costs when it has nothing to prune (the schedule
not started): plain `model.fit(x, y)` vs `DynHPCallback` fed by `cb.batches`, LeNet-300-100,
same batch, alternating runs; the ratio of the best epoch times.

    python -m benchmarks.physical [--hidden 4096] [--epochs 10] [--samples 6400] [--batch-size 64]
        [--target 10] [--onednn] [--malloc-default] [--out benchmarks/results/physical.json]
    python -m benchmarks.physical --overhead [--out benchmarks/results/overhead.json]
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


def _data(args):
    """The first `args.samples` Fashion-MNIST training images, flattened, and their labels."""
    from dynhp_tf.datasets import fashion_mnist

    (x, y), _ = fashion_mnist()
    return x[:args.samples].reshape(args.samples, -1).astype("float32"), y[:args.samples]


def _mlp(hidden: tuple[int, ...], seed: int, metrics=()):
    """784-hidden...-10 with ReLU, compiled with Adam(1e-3) on logits."""
    from dynhp_tf._keras import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,))] + [keras.layers.Dense(h, activation="relu") for h in hidden]
                             + [keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=list(metrics))
    return model


def train(name: str, args) -> dict:
    """One contender, in this process; returns per-epoch records."""
    import tensorflow as tf

    from dynhp_tf import DynHPCallback
    from dynhp_tf._keras import keras

    tensors = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") == "true"  # the allocator counts tensor bytes
    if tensors:
        # One op at a time: identical steps then reach identical peaks (with two inter-op threads
        # the order of independent ops, hence the transient peak, varies from step to step).
        tf.config.threading.set_inter_op_parallelism_threads(1)
    x, y = _data(args)
    tf.constant(1.0) + 1.0
    baseline = _rss_kib("VmRSS")
    tensor_baseline = tf.config.experimental.get_memory_info("CPU:0")["current"] if tensors else 0
    model = _mlp((args.hidden, args.hidden), args.seed)
    records = []

    class Meter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            # What trains this epoch: the batch and widths set at the end of the previous one.
            self.batch = cb.stream.batch_size if cb else args.batch_size
            self.params = cb.graph.params([int(k.sum()) for k in cb.masks.keep]) if cb else model.count_params()
            _reset_peak()
            if tensors:
                tf.config.experimental.reset_memory_stats("CPU:0")
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            records.append({"epoch": epoch, "seconds": seconds, "params": self.params, "batch": self.batch,
                            "real_steps": -(-args.samples // self.batch),
                            "peak_bytes": (_rss_kib("VmHWM") - baseline) * 1024})
            if tensors:
                peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
                records[-1]["tensor_peak_bytes"] = peak - tensor_baseline

    cb = None
    if name == "dense":
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[Meter()], verbose=0)
    else:
        cb = DynHPCallback(target_compression=args.target, end_epoch=max(1, int(args.epochs * 0.6)) - 1,
                           batch_size=args.batch_size,
                           max_batch_size=args.batch_size if name == "dynhp-fixed" else 256,
                           batch_growth="events", verbose=0)  # growth at every event: the harder memory case
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
    parser.add_argument("--onednn", action="store_true", help="keep TensorFlow's oneDNN ops and allocator")
    parser.add_argument("--malloc-default", action="store_true", help="keep glibc's adaptive mmap threshold")
    parser.add_argument("--overhead", action="store_true", help="callback overhead with nothing to prune")
    parser.add_argument("--repeats", type=int, default=3, help="--overhead: alternating runs per contender")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/physical.json")
    args = parser.parse_args(argv)
    if args.only:
        print(json.dumps(overhead_run(args.only, args) if args.overhead else train(args.only, args)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if not args.onednn:
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    if not args.malloc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 << 10)

    def run(name, extra_env=None):
        command = [sys.executable, "-m", "benchmarks.physical", "--only", name] + (argv or sys.argv[1:])
        done = subprocess.run(command, capture_output=True, text=True, env={**env, **(extra_env or {})})
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def measured(name):
        """Times and RSS from a run with the default allocator, tensor bytes from a run with BFC."""
        result = run(name)
        counted = run(name, {"TF_CPU_ALLOCATOR_USE_BFC": "true"})
        for record, other in zip(result["epochs"], counted["epochs"]):
            record["tensor_peak_bytes"] = other["tensor_peak_bytes"]
        return result

    if args.overhead:
        return report_overhead(args, [run(name) for _ in range(args.repeats) for name in ("plain", "idle-dynhp")])
    results = [measured(name) for name in ("dense", "dynhp-fixed", "dynhp")]
    dense = results[0]["epochs"]
    print(f"{'run':<12}{'epoch':>6}{'params':>12}{'batch':>7}{'ms/step':>9}{'x dense':>8}"
          f"{'tensor MiB':>11}{'x dense':>8}{'RSS MiB':>9}{'x dense':>8}{'model MiB':>11}")
    for run in results:
        for r, d in zip(run["epochs"], dense):
            step, dense_step = r["seconds"] / r["real_steps"], d["seconds"] / d["real_steps"]
            model = f"{r['modeled_bytes'] / 2**20:>11.1f}" if "modeled_bytes" in r else ""
            print(f"{run['name']:<12}{r['epoch']:>6}{r['params']:>12,}{r['batch']:>7}{1000 * step:>9.1f}"
                  f"{step / dense_step:>8.2f}{r['tensor_peak_bytes'] / 2**20:>11.1f}"
                  f"{r['tensor_peak_bytes'] / d['tensor_peak_bytes']:>8.2f}"
                  f"{r['peak_bytes'] / 2**20:>9.1f}{r['peak_bytes'] / d['peak_bytes']:>8.2f}" + model)
    summary = {}
    for run in results[1:]:
        total = sum(r["seconds"] for r in run["epochs"]) / sum(d["seconds"] for d in dense)
        last, last_dense = run["epochs"][-1], dense[-1]
        summary[run["name"]] = {
            "epoch_time_ratio_whole_run": total,
            "last_epoch_step_time_ratio": (last["seconds"] / last["real_steps"]) /
                                          (last_dense["seconds"] / last_dense["real_steps"]),
            "last_epoch_tensor_ratio": last["tensor_peak_bytes"] / last_dense["tensor_peak_bytes"],
            "max_tensor_peak_over_dense_peak": max(r["tensor_peak_bytes"] for r in run["epochs"]) /
                                               max(d["tensor_peak_bytes"] for d in dense),
            "last_epoch_rss_ratio": last["peak_bytes"] / last_dense["peak_bytes"],
            "max_rss_peak_over_dense_peak": max(r["peak_bytes"] for r in run["epochs"]) /
                                            max(d["peak_bytes"] for d in dense),
            # The memory model against the measurement: the saving over dense, in tensor bytes.
            "last_epoch_saving_measured_bytes": last_dense["tensor_peak_bytes"] - last["tensor_peak_bytes"],
            "last_epoch_saving_modeled_bytes": run["epochs"][0]["modeled_bytes"] - last["modeled_bytes"],
        }
        entry = summary[run["name"]]
        entry["saving_modeled_over_measured"] = (entry["last_epoch_saving_modeled_bytes"] /
                                                 entry["last_epoch_saving_measured_bytes"])
    print(json.dumps(summary, indent=1))
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "runs": results, "summary": summary}, f, indent=1)


def overhead_run(name: str, args) -> dict:
    """Epoch times of LeNet-300-100 trained plainly or with an idle DynHPCallback."""
    from dynhp_tf import DynHPCallback
    from dynhp_tf._keras import keras

    x, y = _data(args)
    model = _mlp((300, 100), args.seed, metrics=["accuracy"])
    seconds = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.__setitem__(-1, seconds[-1] + time.perf_counter()))
    if name == "plain":
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer], verbose=0)
    else:  # the only event is at the end of the last epoch: every epoch before it has nothing to prune
        last = args.epochs - 1
        cb = DynHPCallback(target_compression=args.target, start_epoch=last, end_epoch=last,
                           batch_size=args.batch_size, verbose=0)
        model.fit(cb.batches(x, y, seed=args.seed), epochs=args.epochs, callbacks=[cb, timer], verbose=0)
    return {"name": name, "seconds": seconds}


def report_overhead(args, runs: list[dict]) -> None:
    """Best and median epoch time (first, tracing epoch and the last, pruning one left out) per contender."""
    best, epochs = {}, {}
    for run in runs:
        best[run["name"]] = min(best.get(run["name"], float("inf")), min(run["seconds"][1:-1]))
        epochs.setdefault(run["name"], []).extend(run["seconds"][1:-1])
    median = {name: float(np.median(seconds)) for name, seconds in epochs.items()}
    ratio = best["idle-dynhp"] / best["plain"]
    print(f"LeNet-300-100, {args.samples} samples, batch {args.batch_size}, {args.repeats} alternating runs each")
    for name, value in best.items():
        print(f"{name:<12} best epoch {value:.3f} s, median epoch {median[name]:.3f} s")
    print(f"overhead (idle DynHPCallback / plain fit): {ratio:.3f}x best epochs (target <= 1.05x), "
          f"{median['idle-dynhp'] / median['plain']:.3f}x median epochs (more exposed to the machine's noise)")
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "runs": runs, "best_epoch_seconds": best, "median_epoch_seconds": median,
                   "ratio": ratio, "median_ratio": median["idle-dynhp"] / median["plain"]}, f, indent=1)


if __name__ == "__main__":
    main()
