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
        [--lr 0.01] [--out benchmarks/results/lowrank.json] [--docs docs/benchmarks.md]

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
from converters.quantize import quantize_int8  # noqa: E402
from converters.weight_grid import weight_scales  # noqa: E402
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
CALIBRATION = 500


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
    (x, y), (x_test, y_test) = fashion_mnist()
    rng = np.random.default_rng(args.seed)
    train = rng.permutation(len(x))[:args.train_samples]
    x, y = x[train][..., None], y[train]
    order = rng.permutation(len(x_test))
    stream, held_out = order[:args.stream], order[-HELD_OUT:]
    shift = SHIFTS[args.shift]

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

    results = []
    for name, settings in CONTENDERS:
        model.set_weights(trained)
        trainer = OnlineTrainer(model, scales=scales, learning_rate=args.lr, seed=args.seed, **(settings or {}))
        start = time.perf_counter()
        if settings is None:
            hits = np.argmax(model.predict(xs, batch_size=500, verbose=0), axis=1) == ys
        else:
            hits = trainer.adapt(xs, ys) == ys
        seconds = time.perf_counter() - start
        last = hits[-len(hits) // 4:]
        summary = trainer.summary()
        row = {"contender": name, "settings": settings, "stream_accuracy": float(hits.mean()),
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
                     "keras": "tf_keras" if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else "keras 3"},
            "deployed": deployed, "results": results}


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
        f"lr {args['lr']}, weights on the flatbuffer's int8 grid, writes only if >= 1% of a kernel's entries change; "
        "low-rank pseudo-batch 10 (conv) / 100 (dense), update lr x sum / sqrt(samples summed); "
        "round to nearest unless said.",
        "- Writes per weight: how many times a kernel entry's stored int8 value changed, max and mean over all "
        f"{report['results'][0]['weights']:,} kernel weights. Aux bytes: state kept between samples (the float32 "
        "L and R factors); SGD keeps none.", "",
        "| contender | stream acc. % | last quarter % | held-out shifted % | held-out clean % | writes/weight max "
        "| writes/weight mean | aux bytes | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(f"| {r['contender']} | {100 * r['stream_accuracy']:.1f} | {100 * r['stream_last_quarter_accuracy']:.1f} "
                     f"| {100 * r['held_out_shifted_accuracy']:.1f} | {100 * r['held_out_clean_accuracy']:.1f} "
                     f"| {r['writes_max']:,} | {r['writes_mean']:.2f} | {r['aux_bytes']:,} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lowrank", description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--stream", type=int, default=4000)
    parser.add_argument("--shift", choices=sorted(SHIFTS), default="inverted")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/lowrank.json"))
    parser.add_argument("--docs", type=pathlib.Path, default=None, help="also write its section into this markdown")
    args = parser.parse_args(argv)
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
