"""Issue 16's summary: does DynHP pay off in each fairness mode? A marked section of docs/benchmarks.md.

    python -m benchmarks.payoff --quick   # from benchmarks/results/quick*.json
    python -m benchmarks.payoff           # from the full-mode results

Reads the results of `benchmarks.compare --mode epochs|steps|memory` (and, when present, the
attempts in ATTEMPTS) and writes one table per fairness mode: every contender's int8 TFLM
accuracy next to its device size and training memory, and DynHP's paired differences.
No TensorFlow needed.
"""
from __future__ import annotations

import argparse
import json
import pathlib

from benchmarks import compare
from benchmarks.report import (CONTENDERS, LABELS, _cx, _fits, _int, _paired, _pct, _ratio, _runs, _stat, _table,
                               mean_std)
from benchmarks.sections import replace_section

DOCS = compare.ROOT / "docs" / "benchmarks.md"
# Issue 16's attempts, each one change against the base run on the equal-epochs protocol (same
# seeds; DynHP only unless stated): results-file suffix -> what changed.
ATTEMPTS = {
    "cost-params": "rank neurons by score per parameter saved (`ranking_cost='params'`)",
    "cost-macs": "rank neurons by score per MAC saved (`ranking_cost='macs'`)",
    "floor-0.7": "no layer below 0.7 of its uniformly pruned width (`layer_floor=0.7`)",
    "growth-after-schedule": "the batch grows once, after the schedule's last event "
                             "(`batch_growth='after_schedule'`)",
    "floor-0.7-growth-after-schedule": "both: `layer_floor=0.7` and `batch_growth='after_schedule'`, with "
                                       "every contender that copies DynHP (the callback's defaults since the end "
                                       "of session 6, which the targets name)",
    "defaults-s6": "`layer_floor=0.7` alone (the defaults in mid-session 6, growth still at every event), with "
                   "every contender that copies DynHP",
    "end-epoch-3": "a longer fine-tuning share: the schedule ends at epoch 3 of 8 instead of 4 (`end_epoch=3`, "
                   "fine-tuning 4 epochs instead of 3), against the session-6 defaults",
    "distill-first-0.5-2": "self-distillation: the dense network's soft outputs on the training samples, taken "
                           "once before the first event, an extra target for the rest of training (weight 0.5, "
                           "temperature 2; `--distill first 0.5 2`, benchmarks/distill.py), against the session-6 "
                           "defaults",
    "distill-events-0.5-2": "self-distillation with the teacher retaken before every event (the network just "
                            "before it loses neurons; `--distill events 0.5 2`), against the session-6 defaults",
    "schedule-linear": "a linear pruning schedule instead of the cubic one (`schedule='linear'`: the first event "
                       "removes 18 to 19% of the parameters instead of 47%, the last 62 to 65% instead of 0 to 9%), "
                       "against the session-6 defaults",
    "lr-restarts-0": "warm restarts: the learning rate restarts at its rate after every event and cosine-anneals to 0 "
                     "by the next event and, after the last, by the end of training (`--lr-restarts 0`, "
                     "benchmarks/restarts.py), against the session-6 defaults",
    "lr-anneal-fine-tuning-0": "the learning rate constant while pruning, then one cosine to 0 over the fine-tuning "
                               "epochs (`--lr-anneal-fine-tuning 0`), against the session-6 defaults",
    "criterion-taylor": "the first-order Taylor importance instead of the weight-norm product (`criterion='taylor'`), "
                        "against the session-6 defaults",
    "cost-params-floor-0.7": "rank by score per parameter saved with the layer floor (`ranking_cost='params'`), "
                             "against the session-6 defaults",
    "cost-params-floor-1.0": "rank by score per parameter saved, every layer at least its uniformly pruned width "
                             "(`ranking_cost='params', layer_floor=1`), against the session-6 defaults",
    "min-neurons-3": "no layer below 3 neurons (`min_neurons=3`), against the session-6 defaults",
    "min-neurons-4": "no layer below 4 neurons (`min_neurons=4`), against the session-6 defaults",
    "min-neurons-6": "no layer below 6 neurons (`min_neurons=6`), against the session-6 defaults",
    "min-neurons-8": "no layer below 8 neurons (`min_neurons=8`; the layer floor gave way to the target since "
                     "`ebbc7d9`, before which this setting ended at 7.8x), against the session-6 defaults",
    "floor-8": "the layer floor also keeps 8 neurons per layer, or its width, as far as the target allows "
               "(`dynhp_tf.selection.FLOOR_NEURONS`, the default since session 11), with every contender that "
               "copies DynHP, against the session-6 defaults",
    "full-data-floor-8": "the layer floor's 8 neurons on all 60,000 training samples, against the session-6 "
                         "defaults on the same data (`full_epochs_lenet5_full-data.json`)",
    "lr-scaling-none": "the learning rate stays put when the batch grows (`lr_scaling='none'`), against the "
                       "session-11 defaults",
    "lr-scaling-linear": "the learning rate grows with the batch (`lr_scaling='linear'`), against the "
                         "session-11 defaults",
    "floor-8-room-0.7": "the layer floors take at most 0.7 of each event's target, the rest left to the ranking "
                        "(a probe wrapper, see the files' meta.note), against the session-11 defaults",
    "events-per-epoch-4": "pruning events inside epochs: three more at equal step intervals in every schedule "
                          "epoch, each at the cubic curve's value for its step (`--events-per-epoch 4`, "
                          "benchmarks/substeps.py), against the session-11 defaults",
}
# Attempts made after the defaults changed are measured against the defaults' run (its suffix), not
# against the session-4 base, so that their difference is the one change.
ATTEMPT_BASES = {suffix: "floor-0.7-growth-after-schedule"
                 for suffix in ("end-epoch-3", "distill-first-0.5-2", "distill-events-0.5-2", "schedule-linear",
                                "lr-restarts-0", "lr-anneal-fine-tuning-0", "criterion-taylor",
                                "cost-params-floor-0.7", "cost-params-floor-1.0", "min-neurons-3", "min-neurons-4",
                                "min-neurons-6", "min-neurons-8", "floor-8")}
ATTEMPT_BASES["full-data-floor-8"] = "full-data"
ATTEMPT_BASES.update({suffix: "floor-8" for suffix in ("lr-scaling-none", "lr-scaling-linear", "floor-8-room-0.7",
                                                             "events-per-epoch-4")})


def _load(path: pathlib.Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_mode(mode: str, fairness: str) -> list[dict]:
    """One fairness mode's results: the per-network files of invocations run apart, else its one file.

    A network per invocation keeps each under the time limit: `--results
    benchmarks/results/<mode>_<fairness>_<network>.json` (see docs/benchmarks.md, payoff section).
    """
    stem = compare.outputs(mode, "memory")[0].parent / f"{mode}_{fairness}"
    parts = [_load(stem.parent / f"{stem.name}_{network}.json") for network in compare.MODES["full"]["networks"]]
    parts = [p for p in parts if p and p["runs"]]
    if parts:
        return parts
    whole = _load(compare.outputs(mode, fairness)[0])
    return [whole] if whole and whole["runs"] else []


def contender_table(results, network) -> list[str]:
    """Every contender at every compression: accuracy, device size, training memory, steps."""
    dense_memory = _stat(results, network, "dense", None, "memory_peak_bytes")[0]
    header = ["compression", "contender", "int8 TFLM acc %", "DynHP (growing) − this", "params",
              "flatbuffer bytes", "arena bytes", "peak train memory / dense", "fits budget", "optimizer steps",
              "final batch"]
    rows = []
    for c in sorted({r["compression"] for r in results["runs"] if r["compression"]}):
        for contender in CONTENDERS:  # dense is repeated at each compression, as the reference
            if not _runs(results, network, contender, c):
                continue
            s = lambda key: _stat(results, network, contender, c, key)  # noqa: E731
            delta = "" if contender == "dynhp" else _pct(_paired_to_dense(results, network, c, contender), True)
            rows.append([_cx(c), LABELS[contender], _pct(s("int8_tflm_accuracy")), delta, _int(s("params")),
                         _int(s("flatbuffer_bytes")), _int(s("arena_bytes")),
                         _ratio(s("memory_peak_bytes")[0], dense_memory), _fits(results, network, contender, c),
                         _int(s("optimizer_steps")), _int(s("batch_size_final"))])
    return _table(header, rows)


def _paired_to_dense(results, network, compression, contender):
    """DynHP (growing) minus `contender` per seed; dense runs carry no compression, so pair by seed."""
    if contender != "dense":
        return _paired(results, network, compression, "dynhp", contender)
    growing = {r["seed"]: r["int8_tflm_accuracy"] for r in _runs(results, network, "dynhp", compression)}
    dense = {r["seed"]: r["int8_tflm_accuracy"] for r in _runs(results, network, "dense", None)}
    return mean_std([growing[s] - dense[s] for s in sorted(growing.keys() & dense.keys())])


def _between(a, b, network, compression, contender_a, contender_b):
    """Per-seed paired int8 TFLM differences between runs of two results files (dense pairs by seed)."""
    first = {r["seed"]: r["int8_tflm_accuracy"] for r in _runs(a, network, contender_a, compression)}
    second = {r["seed"]: r["int8_tflm_accuracy"] for r in _runs(b, network, contender_b, compression)}
    return mean_std([first[s] - second[s] for s in sorted(first.keys() & second.keys())])


def attempt_table(base, attempt, network) -> list[str]:
    """One attempt against the base run (same protocol, same seeds), contender by contender."""
    header = ["compression", "contender", "int8 TFLM acc % (base)", "int8 TFLM acc % (attempt)",
              "attempt − base", "attempt − dense", "attempt − fixed batch", "widths (base)",
              "widths (attempt)"]
    # The fixed-batch ablation under the attempt's own settings when it was run, else the base's.
    fixed = attempt if any(r["contender"] == "dynhp_fixed_batch" for r in attempt["runs"]) else base
    rows = []
    for c in sorted({r["compression"] for r in attempt["runs"] if r["compression"]}):
        for contender in ("dynhp", "dynhp_fixed_batch", "scratch", "prune_once"):
            a, b = _runs(base, network, contender, c), _runs(attempt, network, contender, c)
            if not a or not b:
                continue
            rows.append([_cx(c), LABELS[contender], _pct(_stat(base, network, contender, c, "int8_tflm_accuracy")),
                         _pct(_stat(attempt, network, contender, c, "int8_tflm_accuracy")),
                         _pct(_between(attempt, base, network, c, contender, contender), True),
                         _pct(_between(attempt, base, network, c, contender, "dense"), True),
                         _pct(_between(attempt, fixed, network, c, contender, "dynhp_fixed_batch"), True)
                         if contender != "dynhp_fixed_batch" else "",
                         " / ".join(_widths(r) for r in a), " / ".join(_widths(r) for r in b)])
    return _table(header, rows)


def _own_minutes(results) -> float:
    return sum(r.get("wall_seconds", 0.0) for r in results["runs"] if not r.get("copied_from")) / 60


def load_attempt(mode: str, network: str, suffix: str) -> dict | None:
    """An attempt's equal-epochs results: `<mode>_epochs_<network>_<suffix>.json`, else without the network."""
    folder = compare.outputs(mode, "memory")[0].parent
    for path in (folder / f"{mode}_epochs_{network}_{suffix}.json", folder / f"{mode}_epochs_{suffix}.json"):
        found = _load(path)
        if found and any(r["network"] == network for r in found["runs"]):
            return found
    return None


PROTOCOL = ("epochs", "train_samples", "test_samples", "seeds")


def _same_protocol(base: dict, attempt: dict, name: str) -> None:
    """Refuses to pair an attempt with a base trained on another protocol (its differences would be
    the protocol's, not the one change's)."""
    differ = [f"{k} {attempt['meta']['config'].get(k)} vs {base['meta']['config'].get(k)}" for k in PROTOCOL
              if attempt["meta"]["config"].get(k) != base["meta"]["config"].get(k)]
    if differ:
        raise SystemExit(f"payoff: attempt {name}: expected the base's protocol, got {', '.join(differ)}")


def _widths(run) -> str:
    return "-".join(str(v) for v in (run.get("widths") or {}).values())


def section(mode: str) -> str:
    quick = mode == "quick"
    lines = ["## Does DynHP pay off? Fairness modes (issue 16)", ""]
    if quick:
        lines += ["**Quick mode only, not the full protocol:** 1 seed, 3 epochs, 4,000 training samples, 10x; "
                  "the numbers show that the protocol runs end to end and which way things lean, nothing more. "
                  "The full protocol is `python -m benchmarks.compare --mode M --full-data` for M in epochs, "
                  "steps, memory (see benchmarks/compare.py).", ""]
    lines += ["Modes: *equal epochs* (every contender the same epochs); *equal optimizer steps* (dense "
              "training's steps at batch 32; DynHP with a growing batch keeps its pruning schedule in epochs "
              "and fine-tunes until the steps are spent); *equal training memory* (the paper's setting: no "
              "contender's modeled training memory may exceed dense training's at batch 32; DynHP grows its "
              "batch into that budget up to the callback's default cap of 256; from-scratch and prune-once "
              "(after its pruning step) train at the largest batch that fits, capped at 2048, with the "
              "learning rate scaled by sqrt(batch/32); tfmot keeps a mask per weight and does not fit). "
              "*Prune once* trains dense for DynHP's pruning epochs, removes neurons once by the same "
              "importance to DynHP's size and fine-tunes for the rest. Accuracy is int8 on the real TFLM kernels; *DynHP (growing) − this* "
              "is the per-seed paired difference in points (positive: DynHP better).", ""]
    for fairness in compare.FAIRNESS:
        lines.append(f"### Equal {fairness}")
        lines.append("")
        found = load_mode(mode, fairness)
        if not found:
            command = f"python -m benchmarks.compare {'--quick ' if quick else ''}--mode {fairness}"
            lines += [f"Not run yet: `{command}`.", ""]
        for results in found:
            cfg, meta = results["meta"]["config"], results["meta"]
            for network in meta.get("networks", {}):
                lines += [f"**{meta['networks'][network]['title']}**: {cfg['seeds']} seed(s), {cfg['epochs']} "
                          f"epochs, {cfg['train_samples']:,} training samples, {cfg['test_samples']:,} test "
                          f"samples; {meta.get('status')} ({meta.get('completed_runs')} of "
                          f"{meta.get('planned_runs')} runs) in {meta.get('elapsed_seconds', 0) / 60:.1f} minutes "
                          f"on {meta.get('host')}, commit `{meta.get('git_commit')}`.", ""]
                lines += contender_table(results, network) + [""]
    bases = {n: part for part in load_mode(mode, "epochs") for n in part["meta"].get("networks", {})}
    for suffix, title in ATTEMPTS.items():
        found = [(n, load_attempt(mode, n, ATTEMPT_BASES[suffix]) if suffix in ATTEMPT_BASES else base,
                  load_attempt(mode, n, suffix)) for n, base in bases.items()]
        found = [(n, base, attempt) for n, base, attempt in found if attempt and base]
        for network, base, attempt in found:
            _same_protocol(base, attempt, f"{network}_{suffix}")
        if not found:
            continue
        if not any(line.startswith("*Base* is") for line in lines):  # explained once, before the first
            lines += ["*Base* is the equal-epochs run above (the callback's defaults when it ran: no layer floor, "
                      "growth after every event), unless the attempt's title says it is measured against the "
                      "session-6 defaults (`full_epochs_<network>_floor-0.7-growth-after-schedule.json`). In each "
                      "attempt's table differences are per seed, in points; "
                      "*fixed batch* is the attempt's own fixed-batch run when it has one (or copied in), else "
                      "the base's. Widths are per layer in model order, one entry per seed.", ""]
        lines += [f"### Attempt: {title}, equal epochs" + (", quick mode only" if quick else ""), ""]
        for network, base, attempt in found:
            cfg = attempt["meta"]["config"]
            lines += [f"**{attempt['meta']['networks'][network]['title']}**: {cfg['seeds']} seed(s), "
                      f"{cfg['epochs']} epochs, {cfg['train_samples']:,} training samples; "
                      f"{_own_minutes(attempt):.1f} minutes (runs copied in not counted), commit "
                      f"`{attempt['meta'].get('git_commit')}`.", ""]
            lines += attempt_table(base, attempt, network) + [""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.payoff", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="summarise the quick-mode results")
    parser.add_argument("--output", type=pathlib.Path, default=DOCS, help="markdown file (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    replace_section(args.output, "payoff", section("quick" if args.quick else "full"))
    print(f"wrote section 'payoff' of {args.output}")


if __name__ == "__main__":
    main()
