"""HALO on LeNet-300-100, Fashion-MNIST: against tfmot magnitude pruning, and as a DynHP criterion.

    .venv/bin/python -m benchmarks.halo [--seeds 3] [--epochs 10] [--train-samples 10000] [--part unstructured|dynhp]
    .venv/bin/python -m benchmarks.halo --report-only   # the tables again from the JSON

Part 1, unstructured, at 10%, 5% and 2% of the kernel weights kept, same epochs and optimizer
(SGD, momentum 0.9, batch 100, as the paper's LeNet-300-100 runs):
  halo       weight-level HALO during training, then one global magnitude threshold, no
             fine-tuning (the paper's protocol); xi = psi and the scales' step rule are chosen
             on a validation split (seed 0) from a small grid, one setting per target fraction;
  tfmot      `prune_low_magnitude`, polynomial schedule (cubic) to the target sparsity at 70%
             of training, each kernel to that sparsity, then fine-tuning under the mask;
  dense+thr  plain training, then the same global threshold (what HALO's penalty adds).
Part 2, structured: DynHPCallback with criterion "halo" vs "l2_product" at 5x, 10x, 20x, with
the project's benchmark settings (Adam 1e-3, batch 32 growing to 256, sqrt lr scaling, cubic
schedule ending at 60% of the epochs); the penalty's xi = psi chosen on validation at 10x, seed 0.

The whole benchmark runs on tf_keras (TF_USE_LEGACY_KERAS=1; tfmot supports only tf_keras): the
module re-executes itself with that variable set.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = {part: ROOT / "benchmarks" / "results" / f"halo_{part}.json" for part in ("unstructured", "dynhp")}
KEEP = (0.10, 0.05, 0.02)
COMPRESSIONS = (5, 10, 20)
# The "sgd" rule (the authors') is in the grid to measure it against "adam" (on log s).
HALO_GRID = [(3e-5, "adam"), (1e-4, "adam"), (3e-4, "adam"), (1e-4, "sgd"), (1e-3, "sgd")]
DYNHP_GRID = (1e-5, 1e-4, 1e-3)
SGD = {"learning_rate": 0.05, "momentum": 0.9}
BATCH = 100
TFMOT_END = 0.7  # fraction of training at which tfmot reaches its final sparsity


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.halo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["unstructured", "dynhp"], nargs="+", default=["unstructured", "dynhp"],
                        help="which part(s) to run (two processes can run one each)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-samples", type=int, default=10000)
    parser.add_argument("--validation-samples", type=int, default=5000)
    parser.add_argument("--results-dir", type=pathlib.Path, default=RESULTS["dynhp"].parent)
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args(argv)


# --- training runs (tf_keras) --------------------------------------------------------------

def _setup():
    global np, tf, tfmot, keras, runner, DynHPCallback, Halo, magnitude_threshold
    import numpy as np
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from benchmarks import runner
    from dynhp_tf import DynHPCallback
    from dynhp_tf._keras import keras
    from dynhp_tf.halo import Halo, magnitude_threshold


def load(args):
    from dynhp_tf.datasets import fashion_mnist

    (x, y), test = fashion_mnist()
    index = np.random.default_rng(runner.DATA_SEED).permutation(len(x))  # compare.py's training subset
    train = index[:args.train_samples]
    validation = index[args.train_samples:args.train_samples + args.validation_samples]
    return (x[train], y[train]), (x[validation], y[validation]), test


def accuracy(model, data) -> float:
    x, y = data
    return float(np.mean(np.argmax(model.predict(x, batch_size=1000, verbose=0), axis=1) == y))


def sgd_model(seed):
    keras.utils.set_random_seed(seed)
    model = runner.lenet300100()
    model.compile(keras.optimizers.SGD(**SGD), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def kernel_fraction(model) -> float:
    kernels = [np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]
    return sum(np.count_nonzero(k) for k in kernels) / sum(k.size for k in kernels)


def thresholded(model, splits, seed):
    """Accuracy after keeping each fraction of the weights (one global threshold, no fine-tuning)."""
    weights, result = model.get_weights(), {}
    for keep in KEEP:
        model.set_weights(weights)
        magnitude_threshold(model, keep)
        result[str(keep)] = {"kept": kernel_fraction(model), **{k: accuracy(model, d) for k, d in splits.items()}}
    model.set_weights(weights)
    result["1.0"] = {k: accuracy(model, d) for k, d in splits.items()}
    return result


def run_halo(data, args, seed, xi, rule):
    (x, y), validation, test = data
    model = sgd_model(seed)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0, callbacks=[Halo(xi, xi, scale_rule=rule)])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, **thresholded(model, {"validation": validation, "test": test}, seed)}


def run_dense(data, args, seed):
    (x, y), validation, test = data
    model = sgd_model(seed)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0)
    return {"seconds": time.perf_counter() - start, **thresholded(model, {"test": test}, seed)}


def run_tfmot(data, args, seed, keep):
    (x, y), _, test = data
    base = sgd_model(seed)
    steps = math.ceil(len(x) / BATCH) * args.epochs
    frequency = max(1, min(50, int(steps * TFMOT_END)))
    end = int(steps * TFMOT_END) // frequency * frequency  # the final sparsity falls on a pruning step
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.0, 1 - keep, begin_step=0, end_step=end, power=3,
                                                    frequency=frequency)
    model = tfmot.sparsity.keras.prune_low_magnitude(base, pruning_schedule=schedule)
    model.compile(keras.optimizers.SGD(**SGD), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    seconds = time.perf_counter() - start
    model = tfmot.sparsity.keras.strip_pruning(model)
    return {"seconds": seconds, "kept": kernel_fraction(model), "test": accuracy(model, test)}


def run_dynhp(data, args, seed, compression, criterion, xi=None):
    (x, y), validation, test = data
    keras.utils.set_random_seed(seed)
    model = runner._compile(runner.lenet300100())
    settings = dict(runner.DYNHP_SETTINGS, criterion=criterion)
    if xi is not None:
        settings["halo"] = {"xi": xi, "psi": xi}
    cb = DynHPCallback(target_compression=compression, seed=seed, verbose=0, **settings)
    start = time.perf_counter()
    model.fit(cb.batches(x, y, batch_size=runner.BATCH_SIZE, seed=seed), epochs=args.epochs, callbacks=[cb],
              verbose=0)
    return {"seconds": time.perf_counter() - start, "achieved_compression": cb.history[-1]["dynhp/compression"],
            "widths": {k: v[1] for k, v in cb.widths().items()}, "validation": accuracy(model, validation),
            "test": accuracy(model, test)}


def run_part(args, part) -> dict:
    _setup()
    data = load(args)
    results = {"part": part, "config": {"seeds": args.seeds, "epochs": args.epochs, "train_samples": args.train_samples,
                          "validation_samples": args.validation_samples, "test_samples": len(data[2][1]),
                          "sgd": SGD, "batch": BATCH, "tfmot_end": TFMOT_END, "tf_keras": True,
                          "tfmot": tfmot.__version__},
               "halo_grid": {}, "dynhp_grid": {}, "runs": []}
    start = time.perf_counter()

    def log(entry):
        results["runs"].append(entry)
        print(json.dumps(entry), flush=True)

    (unstructured if part == "unstructured" else dynhp)(args, data, results, log)
    results["wall_seconds"] = time.perf_counter() - start
    results["cpu_seconds"] = time.process_time()
    return results


def unstructured(args, data, results, log):
    """Part 1: HALO's strength and scale rule chosen on validation (seed 0, 5% kept), then seeds."""
    for xi, rule in HALO_GRID:
        run = run_halo(data, args, 0, xi, rule)
        results["halo_grid"][f"{xi:g}/{rule}"] = run
        print(f"grid halo xi={xi:g} {rule}: validation at 5% {run['0.05']['validation']:.4f}", flush=True)
    # One setting per target: tfmot is told its target during training, HALO's penalty strength
    # is how it aims at one.
    grid = results["halo_grid"]
    results["halo_choice"] = {str(keep): max(grid, key=lambda k: grid[k][str(keep)]["validation"]) for keep in KEEP}
    for seed in range(args.seeds):
        for config in sorted(set(results["halo_choice"].values())):
            xi, rule = float(config.split("/")[0]), config.split("/")[1]
            halo = grid[config] if seed == 0 else run_halo(data, args, seed, xi, rule)
            log({"part": "unstructured", "method": "halo", "config": config, "seed": seed, **halo})
        log({"part": "unstructured", "method": "dense+thr", "seed": seed, **run_dense(data, args, seed)})
        for keep in KEEP:
            log({"part": "unstructured", "method": "tfmot", "seed": seed, "keep": keep,
                 **run_tfmot(data, args, seed, keep)})



def dynhp(args, data, results, log):
    """Part 2: DynHP-halo vs DynHP-l2_product; the penalty's strength chosen at 10x, seed 0."""
    for xi in DYNHP_GRID:
        results["dynhp_grid"][f"{xi:g}"] = run_dynhp(data, args, 0, 10, "halo", xi)
        print(f"grid dynhp-halo xi={xi:g}: validation {results['dynhp_grid'][f'{xi:g}']['validation']:.4f}",
              flush=True)
    best = max(results["dynhp_grid"], key=lambda k: results["dynhp_grid"][k]["validation"])
    results["dynhp_halo_choice"] = {"xi": float(best), "psi": float(best)}
    for seed in range(args.seeds):
        for compression in COMPRESSIONS:
            for criterion in ("l2_product", "halo"):
                if criterion == "halo" and seed == 0 and compression == 10:
                    run = results["dynhp_grid"][best]
                else:
                    run = run_dynhp(data, args, seed, compression, criterion,
                                    float(best) if criterion == "halo" else None)
                log({"part": "dynhp", "method": criterion, "seed": seed, "compression": compression, **run})


# --- report ------------------------------------------------------------------------------

def _stat(values):
    import statistics

    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, spread


def _pm(values):
    mean, spread = _stat([100 * v for v in values])
    return f"{mean:.2f} ± {spread:.2f}"


def report(parts: dict) -> str:
    results = parts["unstructured"]
    runs, cfg = results["runs"] + parts["dynhp"]["runs"], results["config"]
    seeds = cfg["seeds"]
    lines = [f"Test accuracy (%), mean ± standard deviation over {seeds} seeds; {cfg['train_samples']} training "
             f"samples, {cfg['epochs']} epochs, full 10k test set.", "",
             "| weights kept | HALO + threshold | tfmot (gradual, fine-tuned) | dense + threshold | HALO − tfmot |",
             "|---|---|---|---|---|"]
    unstructured = [r for r in runs if r["part"] == "unstructured"]
    choice = results["halo_choice"]
    for keep in KEEP:
        halo = [r[str(keep)]["test"] for r in unstructured if r["method"] == "halo" and r["config"] == choice[str(keep)]]
        dense = [r[str(keep)]["test"] for r in unstructured if r["method"] == "dense+thr"]
        tfm = [r["test"] for r in unstructured if r["method"] == "tfmot" and r["keep"] == keep]
        diff = [h - t for h, t in zip(halo, tfm)]
        lines.append(f"| {100 * keep:g}% | {_pm(halo)} | {_pm(tfm)} | {_pm(dense)} | {_pm(diff)} |")
    for config in sorted(set(choice.values())):
        halo_full = [r["1.0"]["test"] for r in unstructured if r["method"] == "halo" and r["config"] == config]
        lines.append(f"| 100%, HALO {config} | {_pm(halo_full)} | | |  |")
    dense_full = [r["1.0"]["test"] for r in unstructured if r["method"] == "dense+thr"]
    lines.append(f"| 100% (no threshold) | | | {_pm(dense_full)} | |")
    lines += ["", "HALO setting (xi = psi / scale rule) chosen per target on validation (seed 0): "
              + ", ".join(f"{100 * float(k):g}% kept: {v}" for k, v in choice.items())
              + ". Grid (validation accuracy % at 10 / 5 / 2% kept, seed 0):", "",
              "| xi = psi | scale rule | 10% | 5% | 2% |", "|---|---|---|---|---|"]
    for key, run in results["halo_grid"].items():
        xi, rule = key.split("/")
        lines.append(f"| {xi} | {rule} | " + " | ".join(f"{100 * run[str(k)]['validation']:.2f}" for k in KEEP) + " |")
    results = parts["dynhp"]
    lines += ["", "| compression | DynHP l2_product | DynHP halo | halo − l2_product |", "|---|---|---|---|"]
    dynhp = [r for r in runs if r["part"] == "dynhp"]
    for c in COMPRESSIONS:
        l2 = [r["test"] for r in dynhp if r["compression"] == c and r["method"] == "l2_product"]
        halo = [r["test"] for r in dynhp if r["compression"] == c and r["method"] == "halo"]
        lines.append(f"| {c}x | {_pm(l2)} | {_pm(halo)} | {_pm([h - l for h, l in zip(halo, l2)])} |")
    lines += ["", f"DynHP-halo xi = psi = {results['dynhp_halo_choice']['xi']:g}, chosen on validation at 10x "
              "(seed 0) from " + ", ".join(f"{k}: {100 * v['validation']:.2f}%" for k, v in results["dynhp_grid"].items())
              + "."]
    lines += ["", "Time per part (wall on shared cores; CPU time of the process, which on an idle 2-core machine "
              "bounds the wall time from above when TF uses both cores):"]
    lines += [f"- {name}: wall {p['wall_seconds'] / 60:.1f} min, CPU {p['cpu_seconds'] / 60:.1f} min"
              for name, p in parts.items()]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    paths = {part: args.results_dir / RESULTS[part].name for part in RESULTS}
    if args.report_only:
        print(report({part: json.loads(path.read_text()) for part, path in paths.items()}))
        return
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.halo", *sys.argv[1:]], env)
    for part in args.part:
        results = run_part(args, part)
        tmp = paths[part].with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.rename(paths[part])
    if all(path.exists() for path in paths.values()):
        print(report({part: json.loads(path.read_text()) for part, path in paths.items()}))


if __name__ == "__main__":
    main()
