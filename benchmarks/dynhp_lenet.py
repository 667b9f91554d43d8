"""DynHP on LeNet-300-100 (784-300-100-10), Fashion-MNIST, 10x: accuracy, size, memory, overhead.

Trains, in one run and with the same data, optimizer and epochs:
  dense       plain model.fit at the initial batch size;
  dynhp-fixed DynHPCallback with batch growth off (max_batch_size = batch size): the
              callback's own overhead per epoch;
  dynhp       DynHPCallback with a growing batch (the product's default use).
and prints final test accuracy, params, per-layer widths, the batch-size trajectory, modeled
training memory (peak and mean vs dense) and the wall-time ratio of epochs vs plain fit.

    python -m benchmarks.dynhp_lenet [--epochs 10] [--target 10] [--batch-size 32]
        [--max-batch-size 256] [--lr-scaling sqrt]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.memory import memory_for, slots_per_weight


def lenet_300_100(seed: int):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28)), keras.layers.Flatten(),
        keras.layers.Dense(300, activation="relu"), keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def run(name, args, data, callback=None):
    (x, y), (x_test, y_test) = data
    model, timer = lenet_300_100(args.seed), EpochTimer()
    if callback is None:
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer], verbose=0)
    else:
        model.fit(callback.batches(x, y, batch_size=args.batch_size, seed=args.seed), epochs=args.epochs,
                  callbacks=[callback, timer], verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"{name:<12} test accuracy {accuracy:.4f}  mean epoch {np.mean(timer.seconds):.2f} s", flush=True)
    return model, accuracy, timer.seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=256)
    parser.add_argument("--lr-scaling", default="sqrt", choices=["none", "linear", "sqrt"])
    parser.add_argument("--criterion", default="l2_product")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    data = fashion_mnist()
    end_epoch = max(0, int(0.6 * args.epochs) - 1)

    def callback(max_batch):
        return DynHPCallback(args.target, end_epoch=end_epoch, batch_size=args.batch_size, max_batch_size=max_batch,
                             lr_scaling=args.lr_scaling, criterion=args.criterion, seed=args.seed, verbose=0)

    dense_model, dense_acc, dense_t = run("dense", args, data)
    _, _, fixed_t = run("dynhp-fixed", args, data, callback(args.batch_size))
    cb = callback(args.max_batch_size)
    _, dynhp_acc, dynhp_t = run("dynhp", args, data, cb)

    slots = slots_per_weight(dense_model.optimizer)
    dense_memory = memory_for(cb.graph, cb.graph.sizes, args.batch_size, slots).total
    memory = [r["dynhp/train_memory_bytes"] for r in cb.history]
    # Epoch 0 trains the dense network: its memory is the dense figure, before any pruning.
    trained_memory = [dense_memory] + memory[:-1]
    figures = {
        "epochs": args.epochs, "target_compression": args.target, "lr_scaling": args.lr_scaling,
        "max_batch_size": args.max_batch_size, "criterion": args.criterion, "end_epoch": end_epoch,
        "dense_accuracy": dense_acc, "dynhp_accuracy": dynhp_acc, "accuracy_drop_points": 100 * (dense_acc - dynhp_acc),
        "dense_params": cb.dense_params, "dynhp_params": cb.history[-1]["dynhp/params"],
        "compression": cb.history[-1]["dynhp/compression"], "widths": cb.widths(),
        "batch_sizes": [args.batch_size] + [r["dynhp/batch_size"] for r in cb.history[:-1]],
        "dense_train_memory_bytes": dense_memory,
        "dynhp_peak_memory_bytes": max(trained_memory), "dynhp_mean_memory_bytes": float(np.mean(trained_memory)),
        "overhead_ratio_fixed_batch": float(np.sum(fixed_t) / np.sum(dense_t)),
        "wall_time_ratio_growing_batch": float(np.sum(dynhp_t) / np.sum(dense_t)),
        "epoch_seconds": {"dense": dense_t, "dynhp-fixed": fixed_t, "dynhp": dynhp_t},
    }
    print(cb.width_table())
    print(f"batch size per epoch: {figures['batch_sizes']}")
    print(f"modeled training memory: dense {dense_memory} B, DynHP peak {figures['dynhp_peak_memory_bytes']} B "
          f"({figures['dynhp_peak_memory_bytes'] / dense_memory:.2f}x), mean {figures['dynhp_mean_memory_bytes']:.0f} B "
          f"({figures['dynhp_mean_memory_bytes'] / dense_memory:.2f}x)")
    print(f"accuracy: dense {dense_acc:.4f}, DynHP {dynhp_acc:.4f} ({figures['accuracy_drop_points']:+.2f} points drop)")
    print(f"wall-time ratio vs plain fit: callback with fixed batch {figures['overhead_ratio_fixed_batch']:.3f}, "
          f"with growing batch {figures['wall_time_ratio_growing_batch']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == "__main__":
    main()
