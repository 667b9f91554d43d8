"""Trains and measures every contender; writes the results JSON after each run.

Imported by `benchmarks.compare` after it made sure the process runs on tf_keras.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import subprocess
import time

if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise RuntimeError("benchmarks.runner: run through `python -m benchmarks.compare` (it sets TF_USE_LEGACY_KERAS=1)")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

from benchmarks.deploy import deploy  # noqa: E402
from dynhp_tf import DynHPCallback, training_memory  # noqa: E402
from dynhp_tf._keras import keras  # noqa: E402
from dynhp_tf.datasets import fashion_mnist  # noqa: E402
from dynhp_tf.schedule import PruningSchedule  # noqa: E402
from dynhp_tf.converters.rebuild import compact_model  # noqa: E402

BATCH_SIZE = 32
LEARNING_RATE = 1e-3
TFMOT_FREQUENCY = 100  # tfmot's documented default pruning frequency, in steps
# DynHPCallback's defaults since commit 3a5cd9c, pinned here so results do not drift with them.
DYNHP_SETTINGS = {"max_batch_size": 256, "lr_scaling": "sqrt", "criterion": "l2_product", "schedule": "cubic"}
CONTENDERS = ("dense", "dynhp", "dynhp_fixed_batch", "tfmot", "scratch")
DATA_SEED = 0  # the training subset is the same for every seed; seeds change init and order


# --- networks ---------------------------------------------------------------------------
# Layers are named so that a width table from one model builds another (from scratch).

def lenet300100(widths: dict | None = None):
    w = {"fc1": 300, "fc2": 100, **(widths or {})}
    return keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(w["fc1"], activation="relu", name="fc1"),
        keras.layers.Dense(w["fc2"], activation="relu", name="fc2"),
        keras.layers.Dense(10, activation="softmax", name="out"),
    ], name="lenet300100")


def lenet5(widths: dict | None = None):
    w = {"conv1": 6, "conv2": 16, "fc1": 120, **(widths or {})}
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(w["conv1"], 5, padding="same", activation="relu", name="conv1"),
        keras.layers.MaxPooling2D(name="pool1"),
        keras.layers.Conv2D(w["conv2"], 5, activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(name="pool2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(w["fc1"], activation="relu", name="fc1"),
        keras.layers.Dense(10, activation="softmax", name="out"),
    ], name="lenet5")


NETWORKS = {"lenet300100": lenet300100, "lenet5": lenet5}
NETWORK_TITLES = {"lenet300100": "LeNet-300-100 (784-300-100-10)",
                  "lenet5": "LeNet-5-style CNN (Conv6-Pool-Conv16-Pool-Dense120-Dense10)"}


def _compile(model):
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _dense_memory(model) -> dict:
    """Training memory of `model` with every neuron alive (a fresh, untrained model)."""
    return training_memory(model, BATCH_SIZE, "adam").as_dict()


class _TestAccuracy(keras.callbacks.Callback):
    """Test accuracy at each epoch's end (before that epoch's pruning event); its time is kept apart."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.accuracy, self.seconds = x, y, [], 0.0

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        self.accuracy.append(float(self.model.evaluate(self.x, self.y, batch_size=1000, verbose=0)[1]))
        self.seconds += time.perf_counter() - start


# --- contenders --------------------------------------------------------------------------

def train_dense(build, data, cfg, seed, widths=None):
    (x, y), _ = data
    keras.utils.set_random_seed(seed)
    model = _compile(build(widths))
    memory = _dense_memory(model)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=cfg["epochs"], shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    return model, {"train_seconds": seconds, "memory_peak_bytes": memory["total"],
                   "memory_mean_bytes": memory["total"], "memory_final_bytes": memory["total"],
                   "batch_size_final": BATCH_SIZE}


def train_dynhp(build, data, cfg, seed, compression, grow_batch):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = _compile(build())
    dense_memory = _dense_memory(model)["total"]
    settings = dict(DYNHP_SETTINGS, **({} if grow_batch else {"max_batch_size": BATCH_SIZE}))
    cb = DynHPCallback(target_compression=compression, seed=seed, verbose=0, **settings)
    accuracy = _TestAccuracy(x_test, y_test)
    start = time.perf_counter()
    # Accuracy first: it sees each epoch's network before DynHP prunes it at that epoch's end.
    model.fit(cb.batches(x, y, batch_size=BATCH_SIZE, seed=seed), epochs=cfg["epochs"],
              callbacks=[accuracy, cb], verbose=0)
    seconds = time.perf_counter() - start - accuracy.seconds
    # cb.history[e] describes the network after epoch e's pruning, i.e. the one epoch e+1 trains.
    in_use = [{"params": cb.dense_params, "batch_size": BATCH_SIZE, "memory_bytes": dense_memory,
               "learning_rate": LEARNING_RATE}]
    in_use += [{"params": h["dynhp/params"], "batch_size": h["dynhp/batch_size"],
                "memory_bytes": h["dynhp/train_memory_bytes"], "learning_rate": h["learning_rate"]}
               for h in cb.history[:-1]]
    trajectory = [dict(epoch=e, test_accuracy=a, **u) for e, (u, a) in enumerate(zip(in_use, accuracy.accuracy))]
    memory = [t["memory_bytes"] for t in trajectory]
    final = cb.history[-1]
    return model, {"train_seconds": seconds, "memory_peak_bytes": max(memory),
                   "memory_mean_bytes": float(np.mean(memory)), "memory_final_bytes": final["dynhp/train_memory_bytes"],
                   "batch_size_final": final["dynhp/batch_size"], "trajectory": trajectory,
                   "dynhp_widths": {k: list(v) for k, v in cb.widths().items()}}


def _kernel_and_bias_counts(model):
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if hasattr(layer, "kernel"))
    return kernels, model.count_params() - kernels


def train_tfmot(build, data, cfg, seed, nonzero_target):
    """Unstructured magnitude pruning of every kernel to DynHP's non-zero count, same schedule end."""
    (x, y), _ = data
    keras.utils.set_random_seed(seed)
    base = build()
    memory = _dense_memory(_compile(build()))
    kernels, biases = _kernel_and_bias_counts(base)
    sparsity = float(np.clip(1 - (nonzero_target - biases) / kernels, 0.0, 0.999))
    steps_per_epoch = math.ceil(len(x) / BATCH_SIZE)
    schedule_end = PruningSchedule().end(cfg["epochs"])  # DynHP's default end epoch
    steps_to_end = steps_per_epoch * (schedule_end + 1)
    frequency = min(TFMOT_FREQUENCY, steps_to_end)
    end_step = steps_to_end // frequency * frequency  # the final sparsity is applied at a pruning step
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, sparsity, begin_step=0, end_step=end_step,
                                                    power=3, frequency=frequency)
    model = _compile(tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule))
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=cfg["epochs"], shuffle=True, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    seconds = time.perf_counter() - start
    # tfmot keeps one float mask per kernel weight next to the dense weights while training.
    total = memory["total"] + 4 * kernels
    return tfmot.sparsity.keras.strip_pruning(model), {
        "train_seconds": seconds, "memory_peak_bytes": total, "memory_mean_bytes": total,
        "memory_final_bytes": total, "batch_size_final": BATCH_SIZE, "tfmot_sparsity": sparsity,
        "tfmot_end_step": end_step}


# --- the benchmark -----------------------------------------------------------------------

def load_data(cfg, network):
    (x, y), (x_test, y_test) = fashion_mnist()
    index = np.random.default_rng(DATA_SEED).permutation(len(x))[:cfg["train_samples"]]
    x, y = x[index], y[index]
    x_test, y_test = x_test[:cfg["test_samples"]], y_test[:cfg["test_samples"]]
    if network == "lenet5":
        x, x_test = x[..., None], x_test[..., None]
    return (x, y), (x_test, y_test)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=pathlib.Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _key(run) -> tuple:
    return run["network"], run["contender"], run["compression"], run["seed"]


def planned_runs(cfg) -> list[tuple]:
    plan = []
    for seed in range(cfg["seeds"]):  # seeds outermost: a cut-short run still covers everything
        for network in cfg["networks"]:
            plan.append((network, "dense", None, seed))
            for c in cfg["compressions"]:
                plan += [(network, name, c, seed) for name in CONTENDERS[1:]]
    return plan


def _write(path: pathlib.Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def run_benchmark(cfg: dict, results_path: pathlib.Path, resume: bool = False) -> dict:
    cfg = {k: v for k, v in cfg.items()}
    plan = planned_runs(cfg)
    runs = []
    if resume and results_path.exists():
        old = json.loads(results_path.read_text())
        if old["meta"]["config"] == cfg:
            runs = old["runs"]
    done = {_key(r) for r in runs}
    started = time.time()
    results = {"meta": {
        "config": cfg, "batch_size": BATCH_SIZE, "optimizer": f"Adam(learning_rate={LEARNING_RATE})",
        "dynhp_settings": DYNHP_SETTINGS,
        "framework": f"tf_keras {keras.__version__} (TF_USE_LEGACY_KERAS=1), TensorFlow {tf.__version__}, "
                     f"tfmot {tfmot.__version__}",
        "host": f"{platform.machine()}, {os.cpu_count()} cores (shared)", "git_commit": _git_commit(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "planned_runs": len(plan), "networks": {}, "status": "running"}, "runs": runs}
    elapsed_before = sum(r.get("wall_seconds", 0.0) for r in runs)
    data_cache = {}
    for network, contender, compression, seed in plan:
        if network not in data_cache:
            data_cache = {network: load_data(cfg, network)}  # one network's arrays at a time
            fresh = NETWORKS[network]()
            results["meta"]["networks"][network] = {
                "title": NETWORK_TITLES[network], "params": fresh.count_params(),
                "dense_memory": _dense_memory(_compile(fresh))}
        if (network, contender, compression, seed) in done:
            continue
        data = data_cache[network]
        build = NETWORKS[network]
        begin = time.perf_counter()
        record = {"network": network, "contender": contender, "compression": compression, "seed": seed}
        if contender == "dense":
            model, facts = train_dense(build, data, cfg, seed)
        elif contender in ("dynhp", "dynhp_fixed_batch"):
            model, facts = train_dynhp(build, data, cfg, seed, compression, grow_batch=contender == "dynhp")
        else:  # tfmot and scratch copy DynHP's (growing batch) result at this seed and compression
            reference = next(r for r in runs if _key(r) == (network, "dynhp", compression, seed))
            if contender == "tfmot":
                model, facts = train_tfmot(build, data, cfg, seed, reference["nonzero_params"])
            else:
                model, facts = train_dense(build, data, cfg, seed, widths=reference["widths"])
        compact = compact_model(model) if contender.startswith("dynhp") else None
        record.update(facts)
        record.update(deploy(compact.model if compact else model, data, compact))
        record["wall_seconds"] = time.perf_counter() - begin
        runs.append(record)
        results["meta"]["elapsed_seconds"] = elapsed_before + time.time() - started
        results["meta"]["completed_runs"] = len(runs)
        _write(results_path, results)
        print(f"[{len(runs)}/{len(plan)}] {network} {contender} {compression or ''}x seed {seed}: "
              f"acc {record['float_accuracy']:.4f} int8 {record['int8_tflm_accuracy']:.4f} "
              f"params {record['params']} nz {record['nonzero_params']} fb {record['flatbuffer_bytes']} "
              f"train {record['train_seconds']:.1f}s wall {record['wall_seconds']:.1f}s", flush=True)
        keras.backend.clear_session()
    results["meta"]["status"] = "complete" if len(runs) == len(plan) else "partial"
    results["meta"]["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["meta"]["elapsed_seconds"] = elapsed_before + time.time() - started
    _write(results_path, results)
    return results
