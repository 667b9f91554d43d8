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
from benchmarks.distill import Distillation, encode_labels  # noqa: E402
from benchmarks.restarts import WarmRestarts  # noqa: E402
from benchmarks.substeps import SubEpochEvents  # noqa: E402
from dynhp_tf import DynHPCallback, training_memory  # noqa: E402
from dynhp_tf._keras import keras  # noqa: E402
from dynhp_tf.datasets import fashion_mnist  # noqa: E402
from dynhp_tf.compact import narrow_model  # noqa: E402
from dynhp_tf.groups import pruning_groups  # noqa: E402
from dynhp_tf.importance import CRITERIA  # noqa: E402
from dynhp_tf.schedule import PruningSchedule  # noqa: E402
from dynhp_tf.selection import FLOOR_NEURONS, select  # noqa: E402
from dynhp_tf.converters.rebuild import compact_model  # noqa: E402

BATCH_SIZE = 32
LEARNING_RATE = 1e-3
TFMOT_FREQUENCY = 100  # tfmot's documented default pruning frequency, in steps
# DynHPCallback's defaults, pinned here so results do not drift with them: since commit 3a5cd9c,
# plus layer_floor=0.7 since session 6 (results files before it record layer_floor 0.0), and
# batch_growth="after_schedule" since session 6 (files before it grew the batch at every event);
# since session 11 the layer floor also keeps 8 neurons (meta "layer_floor_neurons"; absent before).
DYNHP_SETTINGS = {"max_batch_size": 256, "lr_scaling": "sqrt", "criterion": "l2_product", "schedule": "cubic",
                  "layer_floor": 0.7, "batch_growth": "after_schedule"}
CONTENDERS = ("dense", "dynhp", "dynhp_fixed_batch", "tfmot", "scratch", "prune_once")
# Fairness modes (issue 16). epochs: every contender trains the same epochs. steps: the same
# optimizer steps as dense training at batch 32 (DynHP's growing batch takes fewer steps per
# epoch, so it trains more epochs after its schedule ends). memory: the same epochs, and no
# contender's modeled training memory exceeds dense training's at batch 32; every network
# narrower than dense trains at the largest batch that budget allows (capped at MEMORY_MAX_BATCH),
# with the learning rate scaled by sqrt(batch / 32) as DynHP does. DynHP itself keeps the
# callback's own cap (max_batch_size=256, the default the targets name) in every mode,
# unless --max-batch sets one: its budget is the same, only the cap would differ. Until
# session 6 the memory mode let DynHP grow to MEMORY_MAX_BATCH, which cost 0.54 points on
# LeNet-300-100 (docs/benchmarks.md, payoff_findings).
FAIRNESS = ("epochs", "steps", "memory")
MEMORY_MAX_BATCH = 2048
RANKING_COSTS = (None, "params", "macs")  # dynhp_tf.selection.select's cost option
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


def resnet(widths: dict | None = None):
    """A small residual CNN with BatchNorm: the Add ties stem and block2 into one pruning group."""
    w = {"stem": 16, "block1": 16, "block2": 16, "head": 32, **(widths or {})}
    L = keras.layers
    # Momentum 0.9 (PyTorch's default): with Keras's 0.99 the moving statistics average ~100
    # steps and lag the weights in these short runs; dense reached 41% in inference against 73%
    # with batch statistics (quick mode), so the dense reference itself was badly trained.
    bn = lambda name: L.BatchNormalization(momentum=0.9, name=name)  # noqa: E731
    inputs = keras.Input((28, 28, 1))
    x = L.Conv2D(w["stem"], 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = L.ReLU(name="stem_relu")(bn("stem_bn")(x))
    y = L.Conv2D(w["block1"], 3, padding="same", use_bias=False, name="block1")(x)
    y = L.ReLU(name="block1_relu")(bn("block1_bn")(y))
    y = L.Conv2D(w["block2"], 3, padding="same", use_bias=False, name="block2")(y)
    y = bn("block2_bn")(y)
    x = L.ReLU(name="add_relu")(L.Add(name="add")([x, y]))
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(w["head"], 3, activation="relu", name="head")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(10, activation="softmax", name="out")(x), name="resnet")


NETWORKS = {"lenet300100": lenet300100, "lenet5": lenet5, "resnet": resnet}
NETWORK_TITLES = {"lenet300100": "LeNet-300-100 (784-300-100-10)",
                  "lenet5": "LeNet-5-style CNN (Conv6-Pool-Conv16-Pool-Dense120-Dense10)",
                  "resnet": "Residual CNN with BatchNorm (Conv16/2-[Conv16-Conv16]+Add-Pool-Conv32-GAP-Dense10)"}


def dynhp_settings(cfg, grow_batch: bool = True) -> dict:
    """DYNHP_SETTINGS plus the run's attempts (ranking cost, learning-rate scaling, batch cap, growth).

    The same in every fairness mode; the fixed-batch ablation caps the batch at BATCH_SIZE.
    """
    settings = dict(DYNHP_SETTINGS, **{k: cfg[k] for k in ("ranking_cost", "lr_scaling", "max_batch_size",
                                                           "batch_growth", "layer_floor", "min_neurons", "schedule",
                                                           "criterion")
                                               if cfg.get(k) is not None})
    return settings if grow_batch else dict(settings, max_batch_size=BATCH_SIZE)


def schedule_end(cfg) -> int:
    """DynHP's last pruning epoch: the callback's default (60% of the epochs) unless the run tries another.

    Prune-once trains dense up to it and tfmot reaches its final sparsity at it, so an attempt at
    another fine-tuning share moves all three together.
    """
    return cfg["end_epoch"] if cfg.get("end_epoch") is not None else PruningSchedule().end(cfg["epochs"])


def _compile(model, learning_rate=LEARNING_RATE):
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def largest_batch(model, budget: float, samples: int) -> int:
    """The largest batch (>= BATCH_SIZE, <= MEMORY_MAX_BATCH and the data) whose modeled memory fits `budget`.

    Training memory is affine in the batch size, so two evaluations give it exactly.
    """
    one, two = (training_memory(model, b, "adam").total for b in (1, 2))
    per_sample = two - one
    batch = int((budget - (one - per_sample)) // per_sample) if per_sample > 0 else MEMORY_MAX_BATCH
    return max(BATCH_SIZE, min(batch, MEMORY_MAX_BATCH, samples))


def _scaled_rate(batch: int) -> float:
    return LEARNING_RATE * math.sqrt(batch / BATCH_SIZE)  # DynHPCallback's lr_scaling="sqrt"


def step_budget(cfg, samples: int) -> int:
    """Optimizer steps of dense training at batch 32 for cfg["epochs"] epochs."""
    return cfg["epochs"] * math.ceil(samples / BATCH_SIZE)


class _StopAfterSteps(keras.callbacks.Callback):
    """Ends fit after `steps` real optimizer steps of DynHP's stream (equal-steps fairness).

    Keras schedules the initial batch size's step count every epoch; with a grown batch only
    `stream.steps` of them are real, the rest are no-ops (dynhp_tf.batching), so those count.
    """

    def __init__(self, steps, stream):
        super().__init__()
        self.steps, self.stream, self.before, self.epoch_steps = steps, stream, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_steps = self.stream.steps  # the batch only grows between epochs

    def on_train_batch_end(self, batch, logs=None):
        if self.before + min(batch + 1, self.epoch_steps) >= self.steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.before += self.epoch_steps


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

def _batch_for(model, cfg, samples: int, budget: float) -> int:
    return largest_batch(model, budget, samples) if cfg.get("fairness") == "memory" else BATCH_SIZE


def train_dense(build, data, cfg, seed, widths=None):
    """Dense training, or (with `widths`) the same architecture as a DynHP result from scratch."""
    (x, y), _ = data
    keras.utils.set_random_seed(seed)
    budget = _dense_memory(_compile(build()))["total"]
    model = build(widths)
    batch = _batch_for(model, cfg, len(x), budget)
    _compile(model, _scaled_rate(batch))
    memory = training_memory(model, batch, "adam").total
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=cfg["epochs"], shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    return model, {"train_seconds": seconds, "memory_peak_bytes": memory, "memory_mean_bytes": memory,
                   "memory_final_bytes": memory, "batch_size_final": batch,
                   "optimizer_steps": int(model.optimizer.iterations.numpy())}


def train_prune_once(build, data, cfg, seed, target_params):
    """The classic structured pipeline: train dense, prune neurons once, fine-tune.

    Dense training lasts as long as DynHP's pruning schedule (epochs 0..end); then the same
    importance and ranking as DynHP (DYNHP_SETTINGS) remove neurons down to `target_params`
    in one step, `narrow_model` rebuilds the narrow network with its weights, and it is
    fine-tuned with a fresh optimizer for the remaining epochs.
    """
    (x, y), _ = data
    keras.utils.set_random_seed(seed)
    model = _compile(build())
    budget = _dense_memory(model)["total"]
    dense_epochs = schedule_end(cfg) + 1
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=dense_epochs, shuffle=True, verbose=0)
    graph = pruning_groups(model)
    settings = dynhp_settings(cfg)
    scores = CRITERIA[settings["criterion"]](model, graph, None)
    keep = select(graph, [np.ones(g.size, bool) for g in graph.groups], scores, target_params,
                  settings.get("min_neurons", 1), cost=settings.get("ranking_cost"),
                  layer_floor=settings.get("layer_floor", 0.0))
    narrow = narrow_model(model, graph, keep)
    batch = _batch_for(narrow, cfg, len(x), budget)
    _compile(narrow, _scaled_rate(batch))
    narrow.fit(x, y, batch_size=batch, epochs=cfg["epochs"] - dense_epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    narrow_memory = training_memory(narrow, batch, "adam").total
    epochs = [budget] * dense_epochs + [narrow_memory] * (cfg["epochs"] - dense_epochs)
    return narrow, {"train_seconds": seconds, "memory_peak_bytes": max(epochs),
                    "memory_mean_bytes": float(np.mean(epochs)), "memory_final_bytes": narrow_memory,
                    "batch_size_final": batch, "prune_once_epoch": dense_epochs,
                    "optimizer_steps": dense_epochs * math.ceil(len(x) / BATCH_SIZE)
                    + int(narrow.optimizer.iterations.numpy())}


def train_dynhp(build, data, cfg, seed, compression, grow_batch):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = _compile(build())
    dense_memory = _dense_memory(model)["total"]
    distill = _distillation(cfg, model, len(x))
    if distill:  # the stream's labels carry each sample's index; evaluate's plain labels still work
        model.compile(keras.optimizers.Adam(LEARNING_RATE), distill.loss, metrics=[distill.accuracy])
        y = encode_labels(y, distill.classes)
    settings = dynhp_settings(cfg, grow_batch)
    fairness = cfg.get("fairness", "epochs")
    end_epoch = schedule_end(cfg)  # the schedule of an epochs-mode run, in every mode
    inner = {"events_per_epoch": cfg["events_per_epoch"]} if cfg.get("events_per_epoch") else {}
    cb = (SubEpochEvents if inner else DynHPCallback)(target_compression=compression, seed=seed, verbose=0,
                                                      end_epoch=end_epoch, **settings, **inner)
    accuracy = _TestAccuracy(x_test, y_test)
    # Accuracy first: it sees each epoch's network before DynHP prunes it at that epoch's end.
    callbacks, epochs = [accuracy, cb], cfg["epochs"]
    if distill:  # before cb: the teacher is the network before the event's pruning
        callbacks.insert(1, distill.callback(x, cb.schedule, epochs))
    restarts = _warm_restarts(cfg, cb, epochs)
    if restarts:  # before cb: its batch scaling must multiply the epoch's rate, not an annealed one
        callbacks.insert(-1, restarts)
    stream = cb.batches(x, y, batch_size=BATCH_SIZE, seed=seed)
    if fairness == "steps" and grow_batch:  # more epochs at the grown batch, until dense's steps are spent
        callbacks.append(_StopAfterSteps(step_budget(cfg, len(x)), cb.stream))
        epochs = cfg["epochs"] * MEMORY_MAX_BATCH // BATCH_SIZE
    start = time.perf_counter()
    model.fit(stream, epochs=epochs, callbacks=callbacks, verbose=0)
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
                   "optimizer_steps": int(model.optimizer.iterations.numpy()), "epochs_trained": len(cb.history),
                   "dynhp_widths": {k: list(v) for k, v in cb.widths().items()},
                   **({"distill_teacher_epochs": distill.taken} if distill else {}),
                   **({"lr_restart_rates": restarts.rates} if restarts else {}),
                   **({"inner_events": cb.inner_events} if inner else {})}


def _distillation(cfg, model, samples):
    """The run's self-distillation attempt (benchmarks.distill), or None."""
    if not cfg.get("distill"):
        return None
    when, alpha, temperature = cfg["distill"]
    return Distillation(samples, int(model.outputs[0].shape[-1]), float(alpha), float(temperature), when)


def _warm_restarts(cfg, cb, epochs):
    """The run's learning-rate attempt (benchmarks.restarts): restarts after every event, or annealing
    over the fine-tuning only; None without one."""
    if cfg.get("lr_restarts") is not None:
        return WarmRestarts(cb, epochs, cfg["lr_restarts"])
    if cfg.get("lr_anneal_fine_tuning") is not None:
        return WarmRestarts(cb, epochs, cfg["lr_anneal_fine_tuning"], during_pruning=False)
    return None


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
    steps_to_end = steps_per_epoch * (schedule_end(cfg) + 1)  # DynHP's end epoch
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
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "tfmot_end_step": end_step}


# --- the benchmark -----------------------------------------------------------------------

def load_data(cfg, network):
    (x, y), (x_test, y_test) = fashion_mnist()
    index = np.random.default_rng(DATA_SEED).permutation(len(x))[:cfg["train_samples"]]
    x, y = x[index], y[index]
    x_test, y_test = x_test[:cfg["test_samples"]], y_test[:cfg["test_samples"]]
    if NETWORKS[network]().inputs[0].shape.rank == 4:  # the convolutional networks take a channel axis
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
    plan, chosen = [], cfg.get("contenders", CONTENDERS)
    for seed in range(cfg["seeds"]):  # seeds outermost: a cut-short run still covers everything
        for network in cfg["networks"]:
            plan += [(network, "dense", None, seed)] if "dense" in chosen else []
            for c in cfg["compressions"]:  # in CONTENDERS order: the copies of DynHP come after it
                plan += [(network, name, c, seed) for name in CONTENDERS[1:] if name in chosen]
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
        "dynhp_settings": dynhp_settings(cfg), "layer_floor_neurons": FLOOR_NEURONS,
        "fairness": cfg.get("fairness", "epochs"),
        "memory_max_batch": MEMORY_MAX_BATCH,
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
        else:  # the others copy DynHP's (growing batch) result at this seed and compression
            reference = next(r for r in runs if _key(r) == (network, "dynhp", compression, seed))
            if contender == "tfmot":
                model, facts = train_tfmot(build, data, cfg, seed, reference["nonzero_params"])
            elif contender == "prune_once":
                model, facts = train_prune_once(build, data, cfg, seed, reference["params"])
            else:
                model, facts = train_dense(build, data, cfg, seed, widths=reference["widths"])
        compact = compact_model(model) if contender.startswith("dynhp") else None
        record.update(facts)
        budget = results["meta"]["networks"][network]["dense_memory"]["total"]
        record["fits_memory_budget"] = bool(record["memory_peak_bytes"] <= budget)
        dense_macs = pruning_groups(build()).macs() if contender == "tfmot" else None
        record.update(deploy(compact.model if compact else model, data, compact, macs=dense_macs))
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
