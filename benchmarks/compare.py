"""Benchmark DynHP against what a user would do instead, on Fashion-MNIST.

    .venv/bin/python -m benchmarks.compare               # full mode (docs/benchmarks.md)
    .venv/bin/python -m benchmarks.compare --quick       # smoke run, under 5 minutes
    .venv/bin/python -m benchmarks.compare --report-only # regenerate docs from the JSON

Three networks (LeNet-300-100, a LeNet-5-style CNN, a residual CNN with BatchNorm), six
contenders (dense; DynHP with a growing batch; DynHP with the batch fixed; tfmot
`prune_low_magnitude` at DynHP's number of non-zero weights; DynHP's final architecture trained
from scratch; prune-once: train dense, prune neurons once by the same importance, fine-tune),
compressions 2x-20x. Every run ends in an int8 flatbuffer that is checked under the real TFLM
kernels. `--mode` picks the fairness mode (equal epochs, equal optimizer steps, equal modeled
training memory; see `benchmarks.runner.FAIRNESS`); each mode writes its own results file.

    .venv/bin/python -m benchmarks.compare --mode memory --full-data --networks lenet5

The whole benchmark runs on tf_keras (TF_USE_LEGACY_KERAS=1): tfmot only supports tf_keras,
and one framework for every contender keeps wall times comparable. This module re-executes
itself with that variable set; it imports no TensorFlow itself, so `--report-only` is fast.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"

# Budgets. Full: 3 seeds x 2 networks x 17 trainings = 102 runs, measured at 30 minutes on
# 2 shared cores (the full 60k training set would need about 3x that). Quick: about 1 minute.
MODES = {
    "full": {"epochs": 8, "train_samples": 20000, "test_samples": 10000, "seeds": 3,
             "compressions": [2, 5, 10, 20], "networks": ["lenet300100", "lenet5", "resnet"]},
    "quick": {"epochs": 3, "train_samples": 4000, "test_samples": 2000, "seeds": 1,
              "compressions": [10], "networks": ["lenet300100", "lenet5", "resnet"]},
}
FAIRNESS = ("epochs", "steps", "memory")  # benchmarks.runner.FAIRNESS (not imported: it loads TensorFlow)
RANKING_COSTS = ("params", "macs")
CONTENDERS = ("dense", "dynhp", "dynhp_fixed_batch", "tfmot", "scratch", "prune_once")  # benchmarks.runner's
OUTPUTS = {
    "full": (RESULTS_DIR / "full.json", ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks"),
    "quick": (RESULTS_DIR / "quick.json", RESULTS_DIR / "quick.md", RESULTS_DIR / "quick"),
}


def outputs(mode: str, fairness: str = "epochs", ranking_cost: str | None = None) -> tuple:
    """Results JSON, markdown and image folder; the equal-epochs, default-ranking run keeps the old names."""
    if fairness == "epochs" and not ranking_cost:
        return OUTPUTS[mode]
    stem = RESULTS_DIR / "_".join([mode, fairness] + ([f"cost-{ranking_cost}"] if ranking_cost else []))
    return stem.with_suffix(".json"), stem.with_suffix(".md"), stem


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 epochs, 4k samples, 1 seed, 10x only")
    parser.add_argument("--seeds", type=int, help="number of seeds (default: 3 full, 1 quick)")
    parser.add_argument("--epochs", type=int, help="epochs per training run (default: 8 full, 3 quick)")
    parser.add_argument("--train-samples", type=int, help="training subset size (max 60000)")
    parser.add_argument("--compressions", type=float, nargs="+", help="compression factors (default 2 5 10 20)")
    parser.add_argument("--networks", nargs="+", choices=MODES["full"]["networks"])
    parser.add_argument("--mode", choices=FAIRNESS, default="epochs", dest="fairness",
                        help="fairness: equal epochs (default), equal optimizer steps, equal training memory")
    parser.add_argument("--full-data", action="store_true", help="all 60,000 Fashion-MNIST training samples")
    parser.add_argument("--ranking-cost", choices=RANKING_COSTS,
                        help="DynHP and prune-once rank neurons by score per param/MAC (default: score only)")
    parser.add_argument("--lr-scaling", choices=("none", "linear", "sqrt"),
                        help="DynHP's learning rate as its batch grows (attempt; default the callback's sqrt)")
    parser.add_argument("--max-batch", type=int, dest="max_batch_size",
                        help="DynHP's batch cap (attempt; default the callback's 256 in every mode)")
    parser.add_argument("--batch-growth", choices=("events", "after_schedule"),
                        help="when DynHP's batch grows (attempt; default the callback's: once, after the schedule)")
    parser.add_argument("--min-neurons", type=int,
                        help="DynHP attempt: the fewest neurons any layer keeps (callback's min_neurons; default 1); "
                             "prune-once follows it")
    parser.add_argument("--layer-floor", type=float,
                        help="DynHP and prune-once keep each layer at >= this share of its uniformly pruned width "
                             "(default the callback's 0.7; 0 turns it off)")
    parser.add_argument("--end-epoch", type=int,
                        help="DynHP's last pruning epoch, 0-based (attempt at the fine-tuning share; default the "
                             "callback's ceil(0.6 * epochs) - 1); prune-once and tfmot follow it")
    parser.add_argument("--schedule", choices=("cubic", "linear"),
                        help="the shape of DynHP's pruning schedule (attempt; default the callback's cubic)")
    parser.add_argument("--lr-restarts", type=float, metavar="FLOOR",
                        help="DynHP attempt (benchmarks.restarts): the learning rate restarts after every event and "
                             "cosine-anneals to FLOOR x its rate by the next event and by the end (e.g. 0)")
    parser.add_argument("--lr-anneal-fine-tuning", type=float, metavar="FLOOR",
                        help="DynHP attempt: a constant rate while pruning, then one cosine to FLOOR x the rate "
                             "over the fine-tuning epochs")
    parser.add_argument("--criterion", choices=("l1_incoming", "taylor"),
                        help="DynHP's neuron importance (attempt, DynHP only; default the callback's l2_product)")
    parser.add_argument("--distill", nargs=3, metavar=("WHEN", "ALPHA", "T"),
                        help="DynHP self-distillation attempt (benchmarks.distill): WHEN first|events, weight, "
                             "temperature; e.g. --distill first 0.5 2")
    parser.add_argument("--events-per-epoch", type=int, metavar="K",
                        help="DynHP attempt (benchmarks.substeps): K pruning events per schedule epoch, K - 1 of "
                             "them inside it at equal step intervals")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS,
                        help="run only these (DynHP growing is needed by tfmot, scratch and prune-once)")
    parser.add_argument("--results", type=pathlib.Path, help="results JSON (default benchmarks/results/<mode>.json)")
    parser.add_argument("--resume", action="store_true", help="keep finished runs of a same-config results file")
    parser.add_argument("--report-only", action="store_true", help="regenerate the report from the results JSON")
    return parser.parse_args(argv)


def config_from_args(args) -> dict:
    mode = "quick" if args.quick else "full"
    config = dict(MODES[mode], mode=mode)
    if getattr(args, "full_data", False):
        if args.train_samples not in (None, 60000):
            raise SystemExit("compare: --full-data and --train-samples disagree; give one of them")
        args.train_samples = 60000
    for key in ("seeds", "epochs", "train_samples", "compressions", "networks"):
        value = getattr(args, key)
        if value is not None:
            config[key] = [float(c) if c % 1 else int(c) for c in value] if key == "compressions" else value
    if config["seeds"] < 1 or config["epochs"] < 2 or not 32 <= config["train_samples"] <= 60000:
        raise SystemExit("compare: expected --seeds >= 1, --epochs >= 2, 32 <= --train-samples <= 60000")
    if any(c <= 1 for c in config["compressions"]):
        raise SystemExit("compare: expected --compressions > 1")
    if getattr(args, "end_epoch", None) is not None and not 0 <= args.end_epoch < config["epochs"] - 1:
        raise SystemExit("compare: expected 0 <= --end-epoch < --epochs - 1 (at least one epoch fine-tunes)")
    if config != dict(MODES[mode], mode=mode):
        config["mode"] = f"{mode} (custom)"
    config["fairness"] = getattr(args, "fairness", "epochs")
    if getattr(args, "contenders", None):
        if getattr(args, "criterion", None) == "taylor" and "prune_once" in args.contenders:
            raise SystemExit("compare: --criterion taylor: prune-once scores without data; run DynHP alone")
        if set(args.contenders) & {"tfmot", "scratch", "prune_once"} and "dynhp" not in args.contenders:
            raise SystemExit("compare: --contenders tfmot, scratch and prune_once copy DynHP's result; add dynhp")
        config["contenders"] = [c for c in CONTENDERS if c in args.contenders]
    for key in ("lr_restarts", "lr_anneal_fine_tuning"):
        if getattr(args, key, None) is not None and not 0 <= getattr(args, key) < 1:
            raise SystemExit(f"compare: --{key.replace('_', '-')}: expected 0 <= FLOOR < 1, got {getattr(args, key)}")
    if getattr(args, "distill", None):
        when, alpha, temperature = args.distill
        if when not in ("first", "events"):
            raise SystemExit(f"compare: --distill: expected WHEN first or events, got {when!r}")
        try:
            args.distill = [when, float(alpha), float(temperature)]
        except ValueError:
            raise SystemExit(f"compare: --distill: expected numbers for ALPHA and T, got {alpha!r} {temperature!r}")
        if not (0 < args.distill[1] <= 1 and args.distill[2] > 0):
            raise SystemExit("compare: --distill: expected 0 < ALPHA <= 1 and T > 0")
    if getattr(args, "events_per_epoch", None) is not None and args.events_per_epoch < 2:
        raise SystemExit(f"compare: --events-per-epoch: expected an integer >= 2, got {args.events_per_epoch}")
    if getattr(args, "min_neurons", None) is not None and args.min_neurons < 1:
        raise SystemExit(f"compare: --min-neurons: expected an integer >= 1, got {args.min_neurons}")
    for key in ("ranking_cost", "lr_scaling", "max_batch_size", "batch_growth", "layer_floor", "min_neurons",
                "end_epoch", "distill", "schedule", "lr_restarts", "lr_anneal_fine_tuning", "criterion",
                "events_per_epoch"):
        if getattr(args, key, None) is not None:  # --layer-floor 0 is an attempt too
            config[key] = getattr(args, key)
    return config


def _reexec_on_tf_keras() -> None:
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        return
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.compare", *sys.argv[1:]], env)


def main(argv=None) -> None:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    default_outputs = outputs(mode, args.fairness, args.ranking_cost)
    results_path, markdown_path, image_dir = default_outputs
    results_path = args.results or results_path
    if args.report_only:
        from benchmarks.report import write_report

        if args.results and args.results != default_outputs[0]:  # a custom file: report beside it
            markdown_path, image_dir = results_path.with_suffix(".md"), results_path.with_suffix("")
        write_report(results_path, markdown_path, image_dir)
        print(f"wrote {markdown_path.relative_to(ROOT) if markdown_path.is_relative_to(ROOT) else markdown_path}")
        return
    config = config_from_args(args)
    _reexec_on_tf_keras()
    from benchmarks.runner import run_benchmark
    from benchmarks.report import write_report

    if args.results and args.results != default_outputs[0]:
        markdown_path, image_dir = results_path.with_suffix(".md"), results_path.with_suffix("")
    run_benchmark(config, results_path, resume=args.resume)
    write_report(results_path, markdown_path, image_dir)
    print(f"wrote {results_path} and {markdown_path}")


if __name__ == "__main__":
    main()
