"""Learning after deployment: a deployed int8 LeNet adapts online to a shifted Fashion-MNIST stream.

A LeNet-style CNN is trained on part of Fashion-MNIST, exported to full-integer int8
(`converters.quantize.quantize_int8`, per-tensor dense weights as the ESP32 profile needs), and
its weights are put on the flatbuffer's int8 grid (`converters.weight_grid.weight_scales`). Then
it meets a stream of test images under a shift (`--shift`: inverted, 1 - x; or brightness,
min(x + 0.5, 1)), one sample at a time, and each contender predicts each sample before learning
from it (`dynhp_tf.online.OnlineTrainer`):

  none               the deployed weights, no learning;
  sgd                plain online SGD, every sample, through the same quantized write rule;
  lowrank r=1, 4, 8  low-rank training (Gural et al., arXiv 2009.03887).

It reports accuracy over the stream (all of it and its last quarter), accuracy after the stream on
held-out shifted and clean test images, kernel writes per weight (max and mean), the auxiliary
state in bytes, and the wall time. Every trained layer (both convolutions, both dense layers)
learns. Activations stay float: the weights are the device's, the arithmetic is not.

    python -m benchmarks.lowrank [--train-samples 12000] [--epochs 4] [--stream 4000] [--shift inverted]
        [--lr LR] [--tune-stream 1000] [--out benchmarks/results/lowrank.json] [--docs docs/benchmarks.md]
        [--report-only]

It runs on tf_keras (TF_USE_LEGACY_KERAS=1, set here unless given): the per-sample loop is several
times faster there than on Keras 3. The result is the same method on either.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# One BLAS thread: the small per-sample QR/SVD run 10-30x slower multi-threaded on shared cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks.deploy import tflite_accuracy  # noqa: E402
from benchmarks.sections import replace_section  # noqa: E402
from dynhp_tf.converters.quantize import quantize_int8  # noqa: E402
from dynhp_tf.converters.weight_grid import weight_scales  # noqa: E402
from dynhp_tf._keras import keras  # noqa: E402
from dynhp_tf.datasets import fashion_mnist  # noqa: E402
from dynhp_tf.online import OnlineTrainer  # noqa: E402

SHIFTS = {
    "inverted": lambda x: 1.0 - x,
    "brightness": lambda x: np.minimum(x + 0.5, 1.0),
}
# name, OnlineTrainer arguments (None: no learning)
CONTENDERS = [
    ("none", None),
    ("sgd", {"method": "sgd"}),
    ("sgd, stochastic rounding", {"method": "sgd", "rounding": "stochastic"}),
    ("lowrank r=1", {"method": "lowrank", "rank": 1}),
    ("lowrank r=4", {"method": "lowrank", "rank": 4}),
    ("lowrank r=8", {"method": "lowrank", "rank": 8}),
]
HELD_OUT = 2000
CHANCE = 0.1  # ten classes
CALIBRATION = 500
# Learning rates tried per contender on a tuning stream of shifted *training* images the model did
# not train on; each contender then runs on the test stream with its best one.
LEARNING_RATES = (0.003, 0.01, 0.03, 0.1)


def lenet(seed: int):
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1"), layers.MaxPooling2D(name="pool1"),
        layers.Conv2D(16, 5, activation="relu", name="conv2"), layers.MaxPooling2D(name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(120, activation="relu", name="fc1"), layers.Dense(10, activation="softmax", name="out"),
    ], name="lenet")


def _accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=500, verbose=0), axis=1) == y))


def run(args) -> dict:
    began = time.perf_counter()
    (x, y), (x_test, y_test) = fashion_mnist()
    shift = SHIFTS[args.shift]
    rng = np.random.default_rng(args.seed)
    permutation = rng.permutation(len(x))
    train, tune = permutation[:args.train_samples], permutation[args.train_samples:][:args.tune_stream]
    xt, yt = shift(x[tune])[..., None], y[tune]
    x, y = x[train][..., None], y[train]
    order = rng.permutation(len(x_test))
    stream, held_out = order[:args.stream], order[-HELD_OUT:]

    start = time.perf_counter()
    model = lenet(args.seed)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0)
    train_seconds = time.perf_counter() - start
    flatbuffer = quantize_int8(model, x[:CALIBRATION], per_channel_dense=False)
    scales = weight_scales(flatbuffer, model)
    trained = model.get_weights()
    xs, ys = shift(x_test[stream])[..., None], y_test[stream]
    xh, yh = shift(x_test[held_out])[..., None], y_test[held_out]
    xc = x_test[held_out][..., None]
    deployed = {"int8_tflite_clean_accuracy": tflite_accuracy(flatbuffer, xc, yh),
                "int8_tflite_shifted_accuracy": tflite_accuracy(flatbuffer, xh, yh),
                "flatbuffer_bytes": len(flatbuffer), "train_seconds": train_seconds}
    print(f"trained {train_seconds:.0f} s; deployed int8: clean {deployed['int8_tflite_clean_accuracy']:.3f}, "
          f"{args.shift} {deployed['int8_tflite_shifted_accuracy']:.3f}", flush=True)

    def fresh_trainer(settings, lr):
        model.set_weights(trained)
        return OnlineTrainer(model, scales=scales, learning_rate=lr, seed=args.seed, **(settings or {}))

    tuning, results = {}, []
    for name, settings in CONTENDERS:
        rates = [args.lr or LEARNING_RATES[0]] if args.lr or settings is None else LEARNING_RATES
        if len(rates) > 1:
            tuning[name] = {lr: float(np.mean(fresh_trainer(settings, lr).adapt(xt, yt) == yt)) for lr in rates}
            print(f"{name:26s} tuning stream accuracy by lr: {tuning[name]}", flush=True)
        lr = max(rates, key=lambda r: tuning.get(name, {}).get(r, 0.0))
        trainer = fresh_trainer(settings, lr)
        start = time.perf_counter()
        if settings is None:
            hits = np.argmax(model.predict(xs, batch_size=500, verbose=0), axis=1) == ys
        else:
            hits = trainer.adapt(xs, ys) == ys
        seconds = time.perf_counter() - start
        last = hits[-len(hits) // 4:]
        summary = trainer.summary()
        row = {"contender": name, "settings": settings, "learning_rate": lr if settings else None,
               "stream_accuracy": float(hits.mean()),
               "stream_last_quarter_accuracy": float(last.mean()),
               "held_out_shifted_accuracy": _accuracy(model, xh, yh), "held_out_clean_accuracy": _accuracy(model, xc, yh),
               "writes_max": summary["writes_max"], "writes_mean": summary["writes_mean"],
               "aux_bytes": summary["aux_bytes"] if settings else 0, "weights": summary["weights"],
               "seconds": seconds,
               "writes_max_by_layer": {k: int(v.max()) for k, v in trainer.write_counts().items()}}
        results.append(row)
        print(f"{name:26s} stream {row['stream_accuracy']:.3f} last {row['stream_last_quarter_accuracy']:.3f} "
              f"held-out {row['held_out_shifted_accuracy']:.3f} clean {row['held_out_clean_accuracy']:.3f} "
              f"writes max {row['writes_max']} mean {row['writes_mean']:.2f} aux {row['aux_bytes']} B "
              f"{seconds:.0f} s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"meta": {"args": vars(args), "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                     "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)", "commit": commit,
                     "keras": "tf_keras" if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else "keras 3",
                     "elapsed_seconds": time.perf_counter() - began},
            "deployed": deployed, "tuning": tuning, "results": results}


def render(report: dict) -> str:
    """The docs/benchmarks.md section for one result file."""
    args, deployed = report["meta"]["args"], report["deployed"]
    lines = [
        "## Learning after deployment: low-rank training with few weight writes", "",
        f"Generated by `python -m benchmarks.lowrank` (commit `{report['meta']['commit']}`, "
        f"{report['meta']['keras']}, {report['meta']['machine']}).", "",
        f"- LeNet-style CNN (Conv6-Pool-Conv16-Pool-Dense120-Dense10) trained on {args['train_samples']:,} "
        f"Fashion-MNIST images for {args['epochs']} epochs, exported to int8 ({deployed['flatbuffer_bytes']:,} "
        f"bytes); the deployed int8 model (TFLite kernels) scores {100 * deployed['int8_tflite_clean_accuracy']:.1f}% "
        f"on clean and {100 * deployed['int8_tflite_shifted_accuracy']:.1f}% on {args['shift']} held-out test images.",
        f"- Stream: {args['stream']:,} {args['shift']} test images, batch 1, each predicted before it is learnt; "
        f"held-out: {HELD_OUT:,} other test images, shifted and clean, after the stream. All four layers learn, "
        + (f"lr {args['lr']}" if args['lr'] else "lr per contender, the best of " + ", ".join(map(str, LEARNING_RATES))
           + f" on {args['tune_stream']:,} shifted training images it was not trained on (the test stream is not "
           "used to choose)") + ", weights on the flatbuffer's int8 grid, writes only if >= 1% of a kernel's entries change; "
        "low-rank pseudo-batch 10 (conv) / 100 (dense), update lr x sum / sqrt(samples summed); "
        "round to nearest unless said.",
        "- Writes per weight: how many times a kernel entry's stored int8 value changed, max and mean over all "
        f"{report['results'][0]['weights']:,} kernel weights. Aux bytes: state kept between samples (the float32 "
        "L and R factors); SGD keeps none.", "",
        "| contender | lr | stream acc. % | last quarter % | held-out shifted % | held-out clean % "
        "| writes/weight max | writes/weight mean | aux bytes | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(f"| {r['contender']} | {r['learning_rate'] or '-'} | {100 * r['stream_accuracy']:.1f} | {100 * r['stream_last_quarter_accuracy']:.1f} "
                     f"| {100 * r['held_out_shifted_accuracy']:.1f} | {100 * r['held_out_clean_accuracy']:.1f} "
                     f"| {r['writes_max']:,} | {r['writes_mean']:.2f} | {r['aux_bytes']:,} | {r['seconds']:.0f} |")
    layers = list(report["results"][0]["writes_max_by_layer"])
    lines += ["", "Worst-case writes per weight, by layer:", "",
              "| contender | " + " | ".join(layers) + " |", "|---|" + "---|" * len(layers)]
    lines += [f"| {r['contender']} | " + " | ".join(f"{r['writes_max_by_layer'][k]:,}" for k in layers) + " |"
              for r in report["results"]]
    sgd = [r for r in report["results"] if (r["settings"] or {}).get("method") == "sgd"]
    best_sgd = max(sgd, key=lambda r: r["stream_accuracy"])
    lines += ["", "Against the paper's anchor (about 1000x fewer worst-case writes per weight than online SGD, at "
              f"better accuracy under drift): the best SGD here ({best_sgd['contender']}) reaches "
              f"{100 * best_sgd['stream_accuracy']:.1f}% over the stream with {best_sgd['writes_max']:,} writes on its "
              "most-written weight."]
    for r in report["results"]:
        if (r["settings"] or {}).get("method") == "lowrank":
            fewer = min(s["writes_max"] for s in sgd) / max(r["writes_max"], 1)
            lines.append(f"- {r['contender']}: {fewer:.0f}x fewer worst-case writes than either SGD, "
                         f"{best_sgd['writes_mean'] / max(r['writes_mean'], 1e-9):.0f}x fewer on average than the best SGD; "
                         f"stream accuracy {100 * (r['stream_accuracy'] - best_sgd['stream_accuracy']):+.1f} points, "
                         f"held-out shifted {100 * (r['held_out_shifted_accuracy'] - best_sgd['held_out_shifted_accuracy']):+.1f}"
                         + (f"; near chance ({100 * r['held_out_shifted_accuracy']:.1f}%): it diverged, so its few writes "
                            "are no result." if r["held_out_shifted_accuracy"] <= 1.5 * CHANCE else "."))
    default = next(r for r in report["results"] if r["contender"] == "lowrank r=4")
    layer = max(default["writes_max_by_layer"], key=default["writes_max_by_layer"].get)
    lines += ["", f"A convolution weight can be written at most once per pseudo-batch of 10 samples, a dense one once "
              f"per 100, an SGD weight once per sample. Low-rank r=4 wrote its most-written weight (in {layer}) "
              f"{default['writes_max']:,} times in {args['stream']:,} samples; SGD's most-written weight changed in "
              f"{best_sgd['writes_max']:,} of {args['stream']:,} samples.",
              "", f"Budget: one seed, sized to finish in about 15 minutes on 2 idle cores; this run took "
              f"{report['meta']['elapsed_seconds'] / 60:.1f} minutes on 2 cores shared with other jobs.",
              "", "Not done yet: the device part (an optional module of the generated C runtime adapting the last "
              "Dense layer of the int8 model under QEMU). These figures are the Keras simulation only."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lowrank", description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--stream", type=int, default=4000)
    parser.add_argument("--shift", choices=sorted(SHIFTS), default="inverted")
    parser.add_argument("--lr", type=float, default=None, help="one learning rate for all (default: tuned)")
    parser.add_argument("--tune-stream", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/lowrank.json"))
    parser.add_argument("--docs", type=pathlib.Path, default=None, help="also write its section into this markdown")
    parser.add_argument("--report-only", action="store_true", help="render the results in --out again, no run")
    args = parser.parse_args(argv)
    if args.report_only:
        report = json.loads(args.out.read_text())
        if args.docs:
            replace_section(args.docs, "lowrank", render(report))
        print(render(report))
        return
    if not 1 <= args.stream <= 10000 - HELD_OUT:
        parser.error(f"--stream must be between 1 and {10000 - HELD_OUT} (the rest of the test set is held out)")
    report = run(args)
    report["meta"]["args"] = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(args.out)
    if args.docs:
        replace_section(args.docs, "lowrank", render(report))
    print(render(report))


if __name__ == "__main__":
    main()
