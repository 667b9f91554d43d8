"""Copies the runs that train identically in two fairness modes from one results file into another.

    python -m benchmarks.reuse --source benchmarks/results/full_memory_lenet5.json \
        --target benchmarks/results/full_epochs_lenet5.json --contenders dense dynhp_fixed_batch tfmot

Dense training, DynHP with the batch fixed and tfmot train at batch 32 with the same seeds in
the equal-epochs and the equal-memory mode (benchmarks.runner): running them twice only costs
time. The target is run with `--contenders dynhp scratch prune_once`, then this copies the
others in, each marked with `copied_from`. The two configurations must agree but for the
fairness mode and the contender list, and the DynHP settings the copied contenders do not read
(UNREAD: an attempt at other DynHP settings reuses the dense baseline). Scratch and prune-once
also train identically in the equal-epochs and equal-steps modes (batch 32, dense's epochs; only
the memory mode changes their batch), from DynHP's size at each seed: they are copied between
those two modes when the target's DynHP reached the source's widths at every seed. No
TensorFlow needed.
"""
from __future__ import annotations

import argparse
import json
import pathlib

IDENTICAL = ("dense", "dynhp_fixed_batch", "tfmot")  # batch 32 and the same settings in every mode
DIFFERENT_KEYS = ("fairness", "contenders", "mode")
# DynHP's settings (benchmarks.runner.dynhp_settings) a contender does not read, so its runs may
# also be copied into a run that tries other values of them: dense reads none; the fixed-batch
# ablation never grows its batch, so neither the cap, the growth policy nor the learning-rate
# scaling reach it; tfmot copies DynHP's size, so it reads them all.
DYNHP_KEYS = ("ranking_cost", "lr_scaling", "max_batch_size", "batch_growth", "layer_floor", "min_neurons",
              "end_epoch", "distill", "schedule", "lr_restarts", "lr_anneal_fine_tuning", "criterion",
              "layer_floor_neurons")
UNREAD = {"dense": DYNHP_KEYS, "dynhp_fixed_batch": ("lr_scaling", "max_batch_size", "batch_growth"), "tfmot": (),
          "scratch": (), "prune_once": ()}
# Contenders that follow DynHP's result at each seed, and the modes in which they train alike.
FOLLOWERS, FOLLOWER_MODES = ("scratch", "prune_once"), {"epochs", "steps"}


def _settings(meta: dict) -> dict:
    """The run's configuration with DynHP's settings as resolved (defaults included, so an explicit
    default equals an omitted one) and the layer floor's neuron count (the library's, not an option)."""
    return {**meta["config"], **meta.get("dynhp_settings", {}), "layer_floor_neurons": meta.get("layer_floor_neurons")}


def _widths(runs) -> dict:
    return {(r["network"], r["compression"], r["seed"]): r.get("widths") for r in runs if r["contender"] == "dynhp"}


def reuse(source: pathlib.Path, target: pathlib.Path, contenders=IDENTICAL) -> int:
    """Copies `contenders`' runs from `source` into `target` (replacing theirs); returns how many."""
    src, dst = (json.loads(p.read_text()) for p in (source, target))
    followers = set(contenders) & set(FOLLOWERS)
    if set(contenders) - set(IDENTICAL) - followers:
        raise SystemExit(f"reuse: --contenders: only {', '.join(IDENTICAL + FOLLOWERS)} can be copied")
    if followers:
        modes = {src["meta"]["config"].get("fairness", "epochs"), dst["meta"]["config"].get("fairness", "epochs")}
        if not modes <= FOLLOWER_MODES:
            raise SystemExit(f"reuse: {', '.join(sorted(followers))} train alike only in the "
                             f"{' and '.join(sorted(FOLLOWER_MODES))} modes, not {' and '.join(sorted(modes))}")
        have, want = _widths(src["runs"]), _widths(dst["runs"])
        for key in sorted({(r["network"], r["compression"], r["seed"]) for r in src["runs"]
                           if r["contender"] in followers}):
            if key not in want or have.get(key) != want[key]:
                raise SystemExit(f"reuse: {target}'s DynHP run {key} has widths {want.get(key)}, "
                                 f"{source}'s {have.get(key)}: its {', '.join(sorted(followers))} must be rerun")
    ignored = DIFFERENT_KEYS + tuple(k for k in DYNHP_KEYS if all(k in UNREAD[c] for c in contenders))
    a, b = ({k: v for k, v in _settings(r["meta"]).items() if k not in ignored} for r in (src, dst))
    if a != b:
        extra = " and DynHP settings it does not read" if len(ignored) > len(DIFFERENT_KEYS) else ""
        raise SystemExit(f"reuse: {source} and {target} differ beyond the fairness mode{extra}: {a} vs {b}")
    copied = [dict(r, copied_from=source.name) for r in src["runs"] if r["contender"] in contenders]
    for run in copied:  # dense's memory is the budget the target's memory model gives it
        budget = dst["meta"].get("networks", {}).get(run["network"], {}).get("dense_memory", {}).get("total")
        if run["contender"] == "dense" and budget and run.get("memory_peak_bytes") != budget:
            run.update(memory_remodeled_from=run.get("memory_peak_bytes"), memory_peak_bytes=budget,
                       memory_mean_bytes=budget, memory_final_bytes=budget)
    dst["runs"] = [r for r in dst["runs"] if r["contender"] not in contenders] + copied
    meta = dst["meta"]
    meta["planned_runs"] = meta["completed_runs"] = len(dst["runs"])
    meta["elapsed_seconds"] = sum(r.get("wall_seconds", 0.0) for r in dst["runs"])
    entry = {"source": source.name, "contenders": list(contenders)}
    earlier = meta.get("reused") or []  # one entry per copy; a dict before session 12
    meta["reused"] = ([earlier] if isinstance(earlier, dict) else earlier) + [entry]
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dst, indent=1) + "\n")
    tmp.replace(target)
    return len(copied)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=pathlib.Path, required=True)
    parser.add_argument("--target", type=pathlib.Path, required=True)
    parser.add_argument("--contenders", nargs="+", default=list(IDENTICAL))
    args = parser.parse_args(argv)
    print(f"copied {reuse(args.source, args.target, args.contenders)} runs into {args.target}")


if __name__ == "__main__":
    main()
