"""Markdown tables and PNG plots from a benchmark results JSON (no TensorFlow needed).

    write_report("benchmarks/results/full.json", "docs/benchmarks.md", "docs/benchmarks")

The JSON is the source of truth; the markdown is regenerated from it and never edited.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import statistics

from benchmarks.sections import kept_sections

CONTENDERS = ("dense", "dynhp", "dynhp_fixed_batch", "tfmot", "scratch", "prune_once")
LABELS = {
    "dense": "dense baseline",
    "dynhp": "DynHP (growing batch)",
    "dynhp_fixed_batch": "DynHP (fixed batch)",
    "tfmot": "tfmot prune_low_magnitude",
    "scratch": "DynHP architecture from scratch",
    "prune_once": "prune once + fine-tune",
}
MARKERS = {"dense": "*", "dynhp": "o", "dynhp_fixed_batch": "s", "tfmot": "^", "scratch": "D", "prune_once": "v"}
KIB = 1024


# --- statistics --------------------------------------------------------------------------

def mean_std(values) -> tuple[float, float, int]:
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, math.nan, 0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def _runs(results, network, contender, compression):
    return [r for r in results["runs"] if r["network"] == network and r["contender"] == contender
            and (contender == "dense" or r["compression"] == compression)]


def _stat(results, network, contender, compression, key):
    return mean_std([r.get(key) for r in _runs(results, network, contender, compression)])


def _paired(results, network, compression, a, b, key="int8_tflm_accuracy"):
    """Per-seed differences a - b (same seed), as mean, std, n."""
    first = {r["seed"]: r[key] for r in _runs(results, network, a, compression)}
    second = {r["seed"]: r[key] for r in _runs(results, network, b, compression)}
    return mean_std([first[s] - second[s] for s in sorted(first.keys() & second.keys())])


# --- formatting --------------------------------------------------------------------------

def _pct(stat, signed=False) -> str:
    m, s, n = stat
    if n == 0:
        return "n/a"
    text = f"{100 * m:+.2f}" if signed else f"{100 * m:.2f}"
    return f"{text} ± {100 * s:.2f}" if n > 1 else text


def _int(stat, scale=1, spread=True) -> str:
    m, s, n = stat
    if n == 0:
        return "n/a"
    text = f"{m / scale:,.0f}"
    return f"{text} ± {s / scale:,.0f}" if spread and n > 1 and s / scale >= 0.5 else text


def _seconds(stat) -> str:
    m, s, n = stat
    return "n/a" if n == 0 else (f"{m:.1f} ± {s:.1f}" if n > 1 else f"{m:.1f}")


def _ratio(a, b) -> str:
    return "n/a" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def _compressions(results) -> list:
    return sorted({r["compression"] for r in results["runs"] if r["compression"] is not None})


def _networks(results) -> list:
    seen = list(results["meta"].get("networks", {}))
    return seen + [n for n in dict.fromkeys(r["network"] for r in results["runs"]) if n not in seen]


def _rows(results):
    yield "dense", None
    for c in _compressions(results):
        for contender in CONTENDERS[1:]:
            yield contender, c


def _cx(c) -> str:
    return "1x" if c is None else f"{c:g}x"


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def accuracy_table(results, network) -> list[str]:
    header = ["compression", "contender", "float acc %", "int8 TFLite acc %", "int8 TFLM acc %", "params",
              "non-zero params", "MACs", "int8 flatbuffer bytes", "TFLM arena bytes"]
    rows = []
    for contender, c in _rows(results):
        if not _runs(results, network, contender, c):
            continue
        s = lambda key: _stat(results, network, contender, c, key)  # noqa: E731
        rows.append([_cx(c), LABELS[contender], _pct(s("float_accuracy")), _pct(s("int8_tflite_accuracy")),
                     _pct(s("int8_tflm_accuracy")), _int(s("params")), _int(s("nonzero_params")), _int(s("macs")),
                     _int(s("flatbuffer_bytes")), _int(s("arena_bytes"))])
    return _table(header, rows)


def _fits(results, network, contender, compression) -> str:
    """Whether every seed's peak training memory stayed within dense training's at batch 32."""
    flags = [r.get("fits_memory_budget") for r in _runs(results, network, contender, compression)]
    return "n/a" if None in flags or not flags else ("yes" if all(flags) else "no")


def training_table(results, network) -> list[str]:
    dense = _stat(results, network, "dense", None, "memory_mean_bytes")[0]
    header = ["compression", "contender", "memory peak KiB", "memory mean KiB", "mean / dense",
              "memory last epoch KiB", "final batch", "optimizer steps", "fits budget", "train s"]
    rows = []
    for contender, c in _rows(results):
        if not _runs(results, network, contender, c):
            continue
        s = lambda key: _stat(results, network, contender, c, key)  # noqa: E731
        rows.append([_cx(c), LABELS[contender], _int(s("memory_peak_bytes"), KIB), _int(s("memory_mean_bytes"), KIB),
                     _ratio(s("memory_mean_bytes")[0], dense), _int(s("memory_final_bytes"), KIB),
                     _int(s("batch_size_final")), _int(s("optimizer_steps")), _fits(results, network, contender, c),
                     _seconds(s("train_seconds"))])
    return _table(header, rows)


def headline_table(results, network) -> list[str]:
    header = ["compression", "growing − dense", "growing − from scratch", "growing − tfmot",
              "growing − prune-once", "fixed − dense",
              "fixed − from scratch", "fixed − tfmot", "growing − fixed", "flatbuffer tfmot / DynHP",
              "arena tfmot / DynHP"]
    rows = []
    for c in _compressions(results):
        if not _runs(results, network, "dynhp", c):
            continue
        ratio = lambda key: _ratio(_stat(results, network, "tfmot", c, key)[0],  # noqa: E731
                                   _stat(results, network, "dynhp", c, key)[0])
        delta = lambda a, b: _pct(_paired(results, network, c, a, b), True)  # noqa: E731
        rows.append([_cx(c), delta("dynhp", "dense"), delta("dynhp", "scratch"), delta("dynhp", "tfmot"),
                     delta("dynhp", "prune_once"), delta("dynhp_fixed_batch", "dense"), delta("dynhp_fixed_batch", "scratch"),
                     delta("dynhp_fixed_batch", "tfmot"), delta("dynhp", "dynhp_fixed_batch"),
                     ratio("flatbuffer_bytes"), ratio("arena_bytes")])
    return _table(header, rows)


def memory_table(results, network) -> list[str]:
    """Modeled training memory of both DynHP variants relative to dense training (batch 32)."""
    dense = _stat(results, network, "dense", None, "memory_mean_bytes")[0]
    header = ["compression", "growing batch: peak / dense", "growing: mean / dense", "fixed batch: peak / dense",
              "fixed: mean / dense", "fixed: last epoch / dense"]
    rows = []
    for c in _compressions(results):
        s = lambda contender, key: _ratio(_stat(results, network, contender, c, key)[0], dense)  # noqa: E731
        rows.append([_cx(c), s("dynhp", "memory_peak_bytes"), s("dynhp", "memory_mean_bytes"),
                     s("dynhp_fixed_batch", "memory_peak_bytes"), s("dynhp_fixed_batch", "memory_mean_bytes"),
                     s("dynhp_fixed_batch", "memory_final_bytes")])
    return _table(header, rows)


def breakdown_table(results) -> list[str]:
    header = ["network", "params", "weights", "gradients", "Adam slots", "activations", "inputs", "total"]
    rows = []
    for network, info in results["meta"].get("networks", {}).items():
        m = info["dense_memory"]
        rows.append([network, f"{info['params']:,}"] + [f"{m[k] / KIB:,.1f} KiB" for k in
                    ("weights", "gradients", "optimizer_slots", "activations", "inputs", "total")])
    return _table(header, rows)


# --- plots -------------------------------------------------------------------------------

def _trajectory_mean(results, network, contender, compression, key):
    runs = [r for r in _runs(results, network, contender, compression) if r.get("trajectory")]
    if not runs:
        return [], []
    epochs = min(len(r["trajectory"]) for r in runs)
    return list(range(epochs)), [statistics.fmean(r["trajectory"][e][key] for r in runs) for e in range(epochs)]


def plot_accuracy_vs_bytes(results, network, path: pathlib.Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for contender in CONTENDERS:
        points = []
        for c in ([None] if contender == "dense" else _compressions(results)):
            size = _stat(results, network, contender, c, "flatbuffer_bytes")
            acc = _stat(results, network, contender, c, "int8_tflm_accuracy")
            if size[2]:
                points.append((size[0], 100 * acc[0], 100 * acc[1], c))
        if not points:
            continue
        points.sort()
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                    marker=MARKERS[contender], markersize=9 if contender == "dense" else 6, capsize=3,
                    linestyle="-" if contender != "tfmot" else "none", label=LABELS[contender], alpha=0.85)
        if contender == "dynhp":
            for x, y, _, c in points:
                ax.annotate(_cx(c), (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("int8 flatbuffer bytes (log)")
    ax.set_ylabel("int8 test accuracy on TFLM (%)")
    ax.set_title(f"{network}: accuracy vs flatbuffer size (tfmot stays at the dense size)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trajectory(results, network, path: pathlib.Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [("params", "params in use"), ("batch_size", "batch size"),
              ("test_accuracy", "test accuracy at epoch end"), ("memory_bytes", "modeled training memory (KiB)")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title) in zip(axes.flat, panels):
        for i, c in enumerate(_compressions(results)):
            for contender, style in (("dynhp", "-"), ("dynhp_fixed_batch", "--")):
                epochs, values = _trajectory_mean(results, network, contender, c, key)
                if key == "memory_bytes":
                    values = [v / KIB for v in values]
                label = f"{_cx(c)} {'growing' if contender == 'dynhp' else 'fixed'} batch"
                ax.plot(epochs, values, style, marker=".", color=colors[i % len(colors)], label=label)
        if key == "memory_bytes":
            dense = _stat(results, network, "dense", None, "memory_mean_bytes")[0]
            ax.axhline(dense / KIB, color="gray", linestyle=":", label="dense, batch 32")
        if key == "test_accuracy":
            dense = _stat(results, network, "dense", None, "float_accuracy")[0]
            ax.axhline(dense, color="gray", linestyle=":", label="dense (final)")
        if key in ("params", "batch_size"):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=7, ncol=2)
    axes.flat[3].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{network}: DynHP trajectory (mean over seeds; values in use during each epoch)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the document ------------------------------------------------------------------------

def _dynhp_settings(meta) -> str:
    settings = meta.get("dynhp_settings") or {"max_batch_size": 1024, "lr_scaling": "(not recorded)"}
    return ", ".join(f"`{k}={v!r}`" for k, v in settings.items())


def _method(results) -> list[str]:
    meta, cfg = results["meta"], results["meta"]["config"]
    done, planned = meta.get("completed_runs", len(results["runs"])), meta.get("planned_runs", len(results["runs"]))
    minutes = meta.get("elapsed_seconds", 0) / 60
    return [
        f"- **Mode: {cfg['mode']}**, fairness **equal {cfg.get('fairness', 'epochs')}**"
        f"{', ranking cost ' + repr(cfg['ranking_cost']) if cfg.get('ranking_cost') else ''}, status **{meta.get('status', '?')}** ({done} of {planned} planned runs), "
        f"{minutes:.1f} minutes on {meta.get('host', '?')}; commit `{meta.get('git_commit', '?')}`, "
        f"started {meta.get('started', '?')}.",
        f"- Fashion-MNIST, {cfg['train_samples']:,} training samples (a fixed random subset, the same for every "
        f"seed), {cfg['test_samples']:,} test samples; {cfg['epochs']} epochs; seeds {cfg['seeds']} "
        f"(seed changes initialisation, shuffling and DynHP's sampling); values are mean ± sample standard "
        f"deviation over seeds (no ± when one seed).",
        f"- Budget: {cfg['seeds']} seed(s) x {cfg['epochs']} epochs x {cfg['train_samples']:,} samples, chosen so "
        f"that the full mode (2 networks x 17 trainings per seed, each exported and run on TFLM) finishes "
        f"well under 60 minutes on 2 cores{_full_data_note(cfg['train_samples'])}. Wall times "
        f"are measured on cores shared with other jobs and are noisy.",
        f"- Every contender: {meta.get('optimizer')}, sparse categorical cross-entropy, batch "
        f"{meta.get('batch_size')} at the start, the same number of epochs. {meta.get('framework')}: tfmot "
        f"needs tf_keras, so every contender runs on it (one training loop, comparable wall times).",
        f"- **DynHP**: `DynHPCallback` with {_dynhp_settings(meta)}, cubic schedule from epoch 0 to "
        "ceil(0.6·epochs)−1, then fine-tuning; memory budget = dense training memory at batch 32. The "
        "fixed-batch ablation sets `max_batch_size=32` (so the learning rate never changes).",
        "- **tfmot**: `prune_low_magnitude` on every layer with `PolynomialDecay` (power 3, from 0 to the "
        "sparsity that leaves as many non-zero weights as DynHP's compact network at the same seed; ends "
        "with DynHP's schedule, pruning every 100 steps), `strip_pruning` before export. Biases are not "
        "pruned; the sparsity on kernels accounts for them.",
        "- **From scratch**: the layer widths of DynHP's compact network (same seed), freshly initialised, "
        "trained like the dense baseline.",
        "- **Export**: `converters.quantize.quantize_int8` (full int8, int8 I/O, per-tensor dense weights as "
        "the ESP32 profile needs, 500 training samples for calibration); `converters.tflm_check."
        "check_with_tflm` runs the test set under the real TFLM kernels and finds the smallest arena "
        "(no board margin). DynHP models are exported after `converters.rebuild.compact_model`; the "
        "others as they are (TFLM has no sparse kernels, so tfmot's zeros cost full size).",
        "- **Modeled training memory** (`dynhp_tf.memory`): weights + gradients + 2 Adam slots per weight "
        "+ batch × (activations + input), float32, for the network in use during each epoch. "
        "*Peak* and *mean* are over epochs; *last epoch* is the final network at its final batch. tfmot "
        "adds one float mask per kernel weight to the dense figure. Accuracy in the DynHP trajectory is "
        "measured on the test set at each epoch's end, before that epoch's pruning event (reporting only, "
        "no model selection); its time is excluded from train time.",
        "- *params* counts the deployed Keras model (tfmot: dense shape); *MACs* per inference of that model "
        "(tfmot runs the dense MACs on TFLM). Headline deltas are per-seed paired differences of int8 TFLM "
        "accuracy.",
    ]


def _memory_summary(results, network) -> str:
    dense = _stat(results, network, "dense", None, "memory_mean_bytes")[0]
    parts = []
    for c in _compressions(results):
        fixed_last = _stat(results, network, "dynhp_fixed_batch", c, "memory_final_bytes")[0]
        fixed_mean = _stat(results, network, "dynhp_fixed_batch", c, "memory_mean_bytes")[0]
        grow_mean = _stat(results, network, "dynhp", c, "memory_mean_bytes")[0]
        if dense and not math.isnan(fixed_last):
            parts.append(f"{_cx(c)}: fixed batch last epoch {100 * (1 - fixed_last / dense):.0f}% less, "
                         f"fixed-batch mean {100 * (1 - fixed_mean / dense):.0f}% less, growing-batch mean "
                         f"{100 * (1 - grow_mean / dense):.0f}% less")
    return f"- {network}: " + "; ".join(parts) + "." if parts else f"- {network}: no fixed-batch DynHP run to compare."


def _full_data_note(train_samples: int) -> str:
    """How much longer the full Fashion-MNIST training set would take, when it was not used."""
    full = 60_000
    return f"; the full {full:,}-sample training set would take about {full / train_samples:.0f}x longer" \
        if train_samples < full else ""


def render(results, image_dir_name: str) -> str:
    networks = _networks(results)
    lines = ["# Benchmarks: DynHP against the alternatives", "",
             "Generated by `python -m benchmarks.compare` from `benchmarks/results/*.json`; regenerate with "
             "`python -m benchmarks.compare --report-only`. Do not edit by hand.", "", "## Setup", ""]
    lines += _method(results)
    lines += ["", "## Headline: int8 accuracy on TFLM, differences in percentage points", "",
              "Per-seed paired differences in percentage points; positive means the DynHP variant (*growing* "
              "batch, or *fixed* batch = the ablation) is more accurate. *From scratch* trains the growing-batch "
              "run's final architecture, so it has the same flatbuffer and arena; the fixed-batch run ends within "
              "one neuron's worth of parameters of that size. tfmot has the same number of non-zero weights as the growing-batch run "
              "but the dense flatbuffer and arena (ratios in the last two columns).", ""]
    for network in networks:
        title = results["meta"].get("networks", {}).get(network, {}).get("title", network)
        lines += [f"### {title}", ""] + headline_table(results, network) + [""]
    lines += ["## Training memory: what \"up to 80% less\" corresponds to here", "",
              "Modeled training memory relative to dense training at batch 32. The peak is always the dense "
              "figure: epoch 0 trains the dense network. With a growing batch the freed memory is spent on the "
              "batch (up to the memory budget = the dense figure, or `max_batch_size`), so the saving the paper's "
              "claim describes shows in the fixed-batch ablation: its last epoch, and its mean over epochs.", ""]
    for network in networks:
        lines += [f"### {network}", ""] + memory_table(results, network) + [""]
    lines += [_memory_summary(results, n) for n in networks]
    lines += ["", "Dense training memory breakdown at batch 32:", ""] + breakdown_table(results) + [""]
    for network in networks:
        title = results["meta"].get("networks", {}).get(network, {}).get("title", network)
        lines += [f"## {title}", "", "### Accuracy and device cost", ""] + accuracy_table(results, network)
        lines += ["", "### Training cost", ""] + training_table(results, network)
        lines += ["", f"![accuracy vs flatbuffer bytes]({image_dir_name}/accuracy_vs_flatbuffer_{network}.png)", "",
                  f"![DynHP trajectory]({image_dir_name}/dynhp_trajectory_{network}.png)", ""]
    return "\n".join(lines) + "\n"


def write_report(results_path, markdown_path, image_dir) -> str:
    """Writes the markdown and its PNGs; returns the markdown text."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    results = json.loads(pathlib.Path(results_path).read_text())
    markdown_path, image_dir = pathlib.Path(markdown_path), pathlib.Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    for network in _networks(results):
        plot_accuracy_vs_bytes(results, network, image_dir / f"accuracy_vs_flatbuffer_{network}.png")
        plot_trajectory(results, network, image_dir / f"dynhp_trajectory_{network}.png")
    text = render(results, os.path.relpath(image_dir, markdown_path.parent))
    # Sections other benchmarks own (benchmarks.sections) survive the rewrite.
    kept = kept_sections(markdown_path.read_text()) if markdown_path.exists() else ""
    text += ("\n" + kept) if kept else ""
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(text)
    return text
