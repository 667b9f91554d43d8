"""Cheaper training on Fashion-MNIST: instance filter, error map pruning, both, both + DynHP 10x.

    nice -n 10 python -m benchmarks.cheap_training               # equal epochs (4)
    nice -n 10 python -m benchmarks.cheap_training --flops-budget 0.5 --epochs 10 --networks cnn \
        --results benchmarks/results/cheap_training_budget.json  # half of plain's FLOPs
    python -m benchmarks.cheap_training --report-only            # rewrite the docs section

Two networks (a small CNN and a residual network), each trained by every variant for the
same epochs on the same data: plain fit; `InstanceFilter` at R = 0.2 and 0.4; error map
pruning (`error_map_pruning`, alpha = 0.5 on every Conv2D); filter + error map pruning (also
with `refill=True`, kept samples batched to full batches); R = 0.4 + error maps +
`DynHPCallback(target_compression=10)`. Reported: test accuracy (float), training FLOPs
(`train_flops` summed over epochs: main forward/backward, filter), wall
time of fit. Results go to benchmarks/results/cheap_training.json and a section of
docs/benchmarks.md (between markers, so the rest of that file is left alone).

With `--flops-budget F` (the second protocol: how a user spends the saving) plain training
runs `--epochs` epochs and every other variant trains for as many whole epochs as fit in F
times plain's training FLOPs of the same seed (the epoch count follows from the FLOPs only,
never from test accuracy). Its results file is reported as a second table.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import time

import numpy as np

from benchmarks.sections import replace_section

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cheap_training.json"
BUDGET_RESULTS = ROOT / "benchmarks" / "results" / "cheap_training_budget.json"  # --flops-budget run
DECAY_RESULTS = "cheap_training_budget_decay*.json"  # --flops-budget runs with --decay, one file per setting
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "cheap_training"  # its block of docs/benchmarks.md (benchmarks.sections)
BEGIN = f"<!-- section:{SECTION} -->"

BATCH_SIZE, LEARNING_RATE = 64, 1e-3
# name: (keep ratio or None, error-map alpha or None, DynHP compression or None, InstanceFilter options;
# skip_first_conv: error maps pruned on every Conv2D but the first, whose backward is only its weight gradient)
VARIANTS = {
    "plain": (None, None, None, {}),
    "plain, fewer epochs": (None, None, None, {}),  # with --flops-budget: stopped by the budget like the rest
    "plain, constant LR": (None, None, None, {"constant_lr": True}),  # with --decay: plain without the decay
    "filter R=0.2": (0.2, None, None, {}),
    "filter R=0.4": (0.4, None, None, {}),
    "error maps a=0.5": (None, 0.5, None, {}),
    "filter R=0.2 + error maps": (0.2, 0.5, None, {}),
    "filter R=0.4 + error maps": (0.4, 0.5, None, {}),
    "filter R=0.2 + error maps, refill": (0.2, 0.5, None, {"refill": True}),
    "filter R=0.2 + error maps, warm-up 1": (0.2, 0.5, None, {"warmup_epochs": 1}),
    "filter R=0.2 + error maps, random explore": (0.2, 0.5, None, {"explore": "random"}),
    "filter R=0.4 + error maps, random explore": (0.4, 0.5, None, {"explore": "random"}),
    "filter R=0.2 + error maps, random explore, warm-up 1": (0.2, 0.5, None, {"explore": "random",
                                                                            "warmup_epochs": 1}),
    "filter R=0.2 + error maps after conv 1, random explore": (0.2, 0.5, None, {"explore": "random",
                                                                              "skip_first_conv": True}),
    "filter R=0.2 + error maps, random explore, filter 4/8": (0.2, 0.5, None, {"explore": "random",
                                                                             "filter_channels": (4, 8)}),
    "filter R=0.2 + error maps g1=0, random explore, filter 4/8": (0.2, 0.5, None, {
        "explore": "random", "filter_channels": (4, 8), "g1": 0.0}),
    "filter R=0.2 + error maps g1=0 after conv 1, random explore, filter 4/8": (0.2, 0.5, None, {
        "explore": "random", "filter_channels": (4, 8), "g1": 0.0, "skip_first_conv": True}),
    "filter R=0.2 + error maps g1=0 after conv 1, random explore, filter 4/8, constant LR": (0.2, 0.5, None, {
        "explore": "random", "filter_channels": (4, 8), "g1": 0.0, "skip_first_conv": True, "constant_lr": True}),
    "filter R=0.4 + error maps + DynHP 10x": (0.4, 0.5, 10, {}),
    "random R=0.2 (ablation)": (0.2, None, None, {}),
    "random R=0.2 + error maps (ablation)": (0.2, 0.5, None, {}),
}
FULL_LENGTH = {"plain", "plain, constant LR"}  # with --flops-budget: these run --epochs, the rest the budget
ABLATIONS = {v for v in VARIANTS if v.startswith("random")}  # the filter network replaced by random scores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cheap_training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-samples", type=int, default=10000)
    parser.add_argument("--test-samples", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="with --append: add seeds from this one on")
    parser.add_argument("--networks", nargs="+", default=["cnn", "residual"], choices=["cnn", "residual"])
    parser.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != "plain, fewer epochs"],
                        choices=list(VARIANTS))
    parser.add_argument("--results", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--append", action="store_true", help="add these runs to the results file's runs")
    parser.add_argument("--flops-budget", type=float, default=None,
                        help="plain runs --epochs; the others as many epochs as fit in this share of its FLOPs")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="Adam's (peak) learning rate")
    parser.add_argument("--decay", choices=["cosine", "linear"], default=None,
                        help="every run's learning rate decays to 0 over its FLOPs budget (plain: its --epochs)")
    return parser.parse_args(argv)


# --- networks ---------------------------------------------------------------------------

def build(name: str, seed: int):
    from dynhp_tf._keras import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = keras.Input((28, 28, 1))
    if name == "cnn":  # Conv16-Pool-Conv32-Pool-Dense64-Dense10, about 1.1M MACs
        x = L.Conv2D(16, 3, padding="same", activation="relu")(inputs)
        x = L.MaxPooling2D()(x)
        x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D()(x)
        x = L.Dense(64, activation="relu")(L.Flatten()(x))
    else:  # Conv16-Pool, a two-conv residual block, Pool-Conv32-GAP, about 1.2M MACs
        x = L.MaxPooling2D()(L.Conv2D(16, 3, padding="same", activation="relu")(inputs))
        y = L.Conv2D(16, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(16, 3, padding="same")(y)
        x = L.ReLU()(L.Add()([x, y]))
        x = L.Conv2D(32, 3, padding="same", activation="relu")(L.MaxPooling2D()(x))
        x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10)(x), name=name)


def train(network: str, variant: str, seed: int, data, flops_budget=None, decay=None,
          learning_rate=LEARNING_RATE) -> dict:
    import tensorflow as tf

    from dynhp_tf import DynHPCallback
    from dynhp_tf._keras import keras
    from dynhp_tf.error_maps import error_map_pruning
    from dynhp_tf.flops import TrainingFlops, per_sample_flops
    from dynhp_tf.flops_budget import FlopsBudget
    from dynhp_tf.instance_filter import InstanceFilter, default_filter

    (x, y), (x_test, y_test), epochs = data
    ratio, alpha, compression, options = VARIANTS[variant]
    options = dict(options)
    decay = None if options.pop("constant_lr", False) else decay
    model = build(network, seed)
    if alpha is not None:
        model = error_map_pruning(model, alpha, g1=options.pop("g1", 1.0),
                                  skip_first=options.pop("skip_first_conv", False))
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if ratio is None:
        counter = TrainingFlops()
    else:
        scores = None
        if variant in ABLATIONS:  # same selection, batching and labels; random ranking
            scores = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Lambda(
                lambda t: tf.random.normal([tf.shape(t)[0], 1]), output_shape=(1,))])
        channels = options.pop("filter_channels", None)  # a narrower default filter
        if channels is not None:
            scores = default_filter(x.shape[1:], channels)
        counter = InstanceFilter(keep_ratio=ratio, filter_model=scores, **options)
    callbacks = [counter]
    if flops_budget is not None and compression:
        raise SystemExit("cheap_training: --flops-budget does not run DynHP variants (its schedule needs the epochs)")
    if flops_budget is None and decay is not None:  # plain training's schedule spans its own epochs
        flops_budget = epochs * len(x) * sum(per_sample_flops(model).values()) * (1 + 1e-9)
    if flops_budget is not None:  # train on while the next epoch (costing what the last did) fits
        callbacks.append(FlopsBudget(counter, flops_budget, decay))
        epochs = 1000
    start = time.perf_counter()
    if compression:
        dynhp = DynHPCallback(target_compression=compression, batch_size=BATCH_SIZE, seed=seed, verbose=0)
        history = model.fit(dynhp.batches(x, y, seed=seed), epochs=epochs, callbacks=[dynhp] + callbacks,
                            verbose=0)
    else:
        history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - start
    logs = history.history
    accuracy = float(model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])
    run = {"network": network, "variant": variant, "seed": seed, "test_accuracy": accuracy,
           "fit_seconds": seconds, "epochs": len(logs["train_flops"])}
    for key in ("train_flops", "train_flops/main", "train_flops/filter"):
        run[key] = float(sum(logs[key]))
    run["kept_fraction"] = [float(v) for v in logs.get("filter/kept_fraction", [1.0] * run["epochs"])]
    run["threshold"] = [float(v) for v in logs.get("filter/threshold", [])]
    run["compression"] = float(logs["dynhp/compression"][-1]) if compression else 1.0
    return run


# --- report -----------------------------------------------------------------------------

def _mean_std(values, scale=1.0, digits=2):
    values = np.asarray(values, float) * scale
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def report(results: dict, budget: dict | None = None, decayed: dict | None = None) -> str:
    """The docs section: the equal-epochs `results` and, if given, the `--flops-budget` ones
    and the `--decay` ones ({file name: results})."""
    meta, runs = results["meta"], results["runs"]
    lines = ["## Cheaper training: early instance filter and error map pruning (issue 14)", "",
             "Generated by `python -m benchmarks.cheap_training` from `benchmarks/results/cheap_training.json` "
             "(`--report-only` rewrites this section only).", "",
             f"- Fashion-MNIST, {meta['train_samples']:,} training samples (fixed random subset), "
             f"{meta['test_samples']:,} test samples, {meta['epochs']} epochs, batch {BATCH_SIZE}, "
             f"Adam({LEARNING_RATE}), {meta['seeds']} seed(s) (init, order, filter); mean ± sample std over seeds; "
             f"accuracy deltas are per-seed paired against plain training.",
             f"- Budget: a subset and few epochs, sized for about 15 minutes on 2 idle cores; this run took "
             f"{meta['minutes']:.1f} minutes on {meta['host']}. {meta.get('note', '')} {meta['framework']}.",
             "- Training FLOPs: `train_flops` summed over the epochs, counted from the rows that reached each "
             "step (2 x kernel MACs forward, 2 x forward backward, times alpha for pruned error maps; the "
             "filter network's forward and training included; the filter's labels are the per-sample losses of "
             "the main train step itself, no extra forward, except in runs before commit 015d318: see each "
             "table's note). *kept*: share of samples that reached the main network in the last epoch.",
             "- Filter: `InstanceFilter` defaults (tiny 2-conv filter, T0 = 0.2, factors 1.01/0.99 of the "
             "threshold rule, `explore_ratio=0.1`: each batch keeps its ceil(R n) highest-ranked plus ceil(0.1 n) least certain samples). Error maps: `error_map_pruning(model, 0.5)` on every Conv2D (g1 = g2 = 1). "
             "DynHP: `DynHPCallback(target_compression=10)` defaults with `cb.batches`.", ""]
    lines += tables(meta, runs) + headline(runs) + [""]
    if meta.get("reading"):
        lines += ["Reading:", ""] + [f"- {line}" for line in meta["reading"]] + [""]
    if budget is not None:
        meta, runs = budget["meta"], budget["runs"]
        lines += [f"### Equal FLOPs: every variant gets {meta['flops_budget']:.0%} of plain training's FLOPs", "",
                  f"How a user spends the saving. `--flops-budget {meta['flops_budget']}` "
                  f"(`benchmarks/results/{BUDGET_RESULTS.name}`): plain trains {meta['epochs']} epochs; every other "
                  "variant trains as many whole epochs as fit in that share of plain's FLOPs of the same seed "
                  "(the count follows from the FLOPs only, never from test accuracy). "
                  f"{meta['train_samples']:,} training samples, {meta['test_samples']:,} test samples, "
                  f"{meta['seeds']} seed(s), same settings as above; this run took {meta['minutes']:.1f} minutes "
                  f"on {meta['host']}. {meta.get('note', '')} {meta['framework']}.", ""]
        lines += tables(meta, runs, epochs=True) + headline(runs) + [""]
        if meta.get("reading"):
            lines += ["Reading:", ""] + [f"- {line}" for line in meta["reading"]] + [""]
    for name, decay_results in (decayed or {}).items():
        lines += decay_section(decay_results, name)
    return "\n".join(lines).rstrip() + "\n"


def decay_section(results: dict, name: str = "") -> list[str]:
    """The equal-FLOPs protocol with every run's learning rate decayed over its own budget."""
    meta, runs = results["meta"], results["runs"]
    rate = meta.get("learning_rate", LEARNING_RATE)
    lines = [f"### Equal FLOPs, learning rate {rate} decayed to 0 over each run's budget ({meta['decay']})", "",
             f"`--flops-budget {meta['flops_budget']} --decay {meta['decay']} --learning-rate {rate}` "
             f"(`benchmarks/results/{name}`): as above, and every run's learning rate follows "
             f"`FlopsBudget(counter, budget, decay={meta['decay']!r})`: Adam({rate}) times the "
             f"{meta['decay']} of the share of the run's FLOPs budget spent, set before each step, so it is "
             "about 0 where the run stops (plain: over its own epochs). *plain, constant LR* is plain "
             "training as in the tables above, same seeds, for the record. "
             f"{meta['train_samples']:,} training samples, {meta['test_samples']:,} test samples, "
             f"{meta['seeds']} seed(s); this run took {meta['minutes']:.1f} minutes on {meta['host']}. "
             f"{meta.get('note', '')} {meta['framework']}.", ""]
    lines += tables(meta, runs, epochs=True) + headline(runs)
    lines += [""] + headline(runs, "plain, constant LR") + [""]
    if meta.get("reading"):
        lines += ["Reading:", ""] + [f"- {line}" for line in meta["reading"]] + [""]
    return lines


def tables(meta: dict, runs: list, epochs: bool = False) -> list[str]:
    """One table per network: each variant against plain training, paired per seed."""
    lines = []
    for network in meta["networks"]:
        plain = {r["seed"]: r for r in runs if r["network"] == network and r["variant"] == "plain"}
        lines += [f"#### {network}" if epochs else f"### {network}", "",
                  "| variant |" + " epochs |" * epochs + " test accuracy % | Δ vs plain (points) | training GFLOPs | "
                  "FLOPs vs plain | fit s | time vs plain | kept |", "|---" * (8 + epochs) + "|"]
        for variant in meta["variants"]:
            rs = [r for r in runs if r["network"] == network and r["variant"] == variant]
            if not rs:
                continue
            paired = [r for r in rs if r["seed"] in plain]
            delta = _mean_std([100 * (r["test_accuracy"] - plain[r["seed"]]["test_accuracy"]) for r in paired])
            flops = _mean_std([r["train_flops"] / plain[r["seed"]]["train_flops"] for r in paired])
            secs = _mean_std([r["fit_seconds"] / plain[r["seed"]]["fit_seconds"] for r in paired])
            counts = f" {_mean_std([r['epochs'] for r in rs], digits=1)} |" * epochs
            lines.append(f"| {variant} |{counts} {_mean_std([r['test_accuracy'] for r in rs], 100)} | {delta} | "
                         f"{_mean_std([r['train_flops'] for r in rs], 1e-9, 1)} | {flops} | "
                         f"{_mean_std([r['fit_seconds'] for r in rs], 1, 1)} | {secs} | "
                         f"{_mean_std([r['kept_fraction'][-1] for r in rs])} |")
        lines.append("")
    return lines


def headline(runs, against="plain") -> list[str]:
    """The issue's target on the CNN: >= 50% fewer training FLOPs at <= 0.5 points accuracy loss."""
    plain = {r["seed"]: r for r in runs if r["network"] == "cnn" and r["variant"] == against}
    lines = ["**Target** (CNN, filter + error map pruning): >= 50% fewer training FLOPs at <= 0.5 points "
             f"accuracy loss. Reached (against {against}, paired per seed):", ""]
    for variant in VARIANTS:
        rs = [r for r in runs if r["network"] == "cnn" and r["variant"] == variant and r["seed"] in plain]
        if not rs or "error maps" not in variant or "filter" not in variant:
            continue
        saving = 100 * float(np.mean([1 - r["train_flops"] / plain[r["seed"]]["train_flops"] for r in rs]))
        delta = 100 * float(np.mean([r["test_accuracy"] - plain[r["seed"]]["test_accuracy"] for r in rs]))
        met = saving >= 50 and delta >= -0.5
        miss = [] if met else ([f"accuracy by {-0.5 - delta:.2f} points"] * (delta < -0.5)
                               + [f"FLOPs by {50 - saving:.0f} points of saving"] * (saving < 50))
        lines.append(f"- {variant}: {saving:.0f}% fewer FLOPs, {delta:+.2f} points ({len(rs)} seeds): "
                     + ("met." if met else "misses on " + " and ".join(miss) + "."))
    return lines


def write_doc(text: str) -> None:
    replace_section(DOC, SECTION, text)


def committed_report() -> str:
    """The section from the two committed results files (the budget one if it exists)."""
    budget = json.loads(BUDGET_RESULTS.read_text()) if BUDGET_RESULTS.exists() else None
    decayed = {f.name: json.loads(f.read_text()) for f in sorted(RESULTS.parent.glob(DECAY_RESULTS))}
    return report(json.loads(RESULTS.read_text()), budget, decayed)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.report_only:
        write_doc(committed_report())
        return
    if args.seeds < 1 or args.epochs < 1 or not 64 <= args.train_samples <= 60000:
        raise SystemExit("cheap_training: expected --seeds >= 1, --epochs >= 1, 64 <= --train-samples <= 60000")
    if args.decay and args.flops_budget is None:  # the decay's span is each run's FLOPs budget
        raise SystemExit("cheap_training: --decay needs --flops-budget")
    from dynhp_tf._keras import LEGACY
    from dynhp_tf.datasets import fashion_mnist

    (x, y), (x_test, y_test) = fashion_mnist()
    subset = np.random.default_rng(0).permutation(len(x))[:args.train_samples]
    data = ((x[subset, ..., None], y[subset]), (x_test[:args.test_samples, ..., None], y_test[:args.test_samples]),
            args.epochs)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    meta = {"epochs": args.epochs, "train_samples": args.train_samples, "test_samples": len(data[1][0]),
            "seeds": args.seeds, "networks": args.networks, "variants": args.variants,
            "framework": "tf_keras" if LEGACY else "Keras 3", "commit": commit.strip(),
            "host": f"{platform.machine()}, {os.cpu_count()} cores", "flops_budget": args.flops_budget,
            "decay": args.decay, "learning_rate": args.learning_rate}
    results, start = {"meta": meta, "runs": []}, time.perf_counter()
    if args.append:
        results = json.loads(args.results.read_text())
        old = results["meta"]
        if any(old.get(k) != meta[k] for k in ("epochs", "train_samples", "test_samples", "framework", "flops_budget")) \
                or any(old.get(k, d) != meta[k] for k, d in (("decay", None), ("learning_rate", LEARNING_RATE))):
            raise SystemExit("cheap_training: --append needs the same epochs, samples and framework as the file")
        old["variants"] += [v for v in args.variants if v not in old["variants"]]
        meta, start = old, time.perf_counter() - 60 * old["minutes"]
        meta["seeds"] = max(meta["seeds"], args.first_seed + args.seeds)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for network in args.networks:
            for variant in args.variants:
                budget = None
                if args.flops_budget and variant not in FULL_LENGTH:
                    plain = [r for r in results["runs"] if r["network"] == network and r["variant"] == "plain"
                             and r["seed"] == seed]
                    if not plain:
                        raise SystemExit("cheap_training: --flops-budget needs the plain run of the seed first")
                    budget = args.flops_budget * plain[-1]["train_flops"]
                run = train(network, variant, seed, data, budget, args.decay, args.learning_rate)
                results["runs"].append(run)
                print(f"{network:<9} {variant:<44} seed {seed}: acc {run['test_accuracy']:.4f} "
                      f"GFLOPs {run['train_flops'] / 1e9:.1f} fit {run['fit_seconds']:.1f}s "
                      f"kept {run['kept_fraction']}", flush=True)
                meta["minutes"] = (time.perf_counter() - start) / 60
                args.results.parent.mkdir(parents=True, exist_ok=True)
                tmp = args.results.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(results, indent=1))
                tmp.replace(args.results)
    write_doc(committed_report())


if __name__ == "__main__":
    main()
