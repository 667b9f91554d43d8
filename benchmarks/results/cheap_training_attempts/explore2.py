"""Issue 14, second round: one change at a time at equal FLOPs (0.5x plain's 8 epochs), CNN.

Each run trains until the next epoch would pass the budget (`benchmarks.cheap_training.FlopsBudget`)
and prints per-epoch test accuracy and cumulative GFLOPs as one JSON line. Run as
`nice -n 10 env PYTHONPATH=. python benchmarks/results/cheap_training_attempts/explore2.py 'run(...)'`.
"""
import json, sys, time
import numpy as np
import benchmarks.cheap_training as ct
from dynhp_tf._keras import keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.error_maps import error_map_pruning
from dynhp_tf.flops_budget import FlopsBudget  # was benchmarks.cheap_training.FlopsBudget, same rule
from dynhp_tf.instance_filter import InstanceFilter

PLAIN_8 = 518.12352e9  # plain training's FLOPs over 8 epochs (cheap_training_budget.json)


def run(name, seed=0, ratio=0.2, alpha=0.5, lr=1e-3, budget=0.5, samples=10000, g1=1.0, g2=1.0, **kw):
    (x, y), (xt, yt) = fashion_mnist()
    sub = np.random.default_rng(0).permutation(len(x))[:samples]
    x, y = x[sub, ..., None], y[sub]; xt = xt[..., None]
    model = ct.build("cnn", seed)
    if alpha: model = error_map_pruning(model, alpha, g1=g1, g2=g2)
    model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    kw.setdefault("explore", "random")
    cb = InstanceFilter(keep_ratio=ratio, **kw)
    t = time.perf_counter()
    h = model.fit(x, y, batch_size=64, epochs=1000, callbacks=[cb, FlopsBudget(cb, budget * PLAIN_8)],
                  validation_data=(xt, yt), validation_batch_size=500, verbose=0).history
    out = {"name": name, "seed": seed, "secs": round(time.perf_counter() - t, 1), "epochs": len(h["train_flops"]),
           "val_acc": [round(v, 4) for v in h["val_accuracy"]], "cum_gflops": [round(v, 1) for v in np.cumsum(h["train_flops"]) / 1e9],
           "kept": [round(v, 3) for v in h["filter/kept_fraction"]], "flops_vs_plain": round(sum(h["train_flops"]) / PLAIN_8, 3)}
    print(json.dumps(out), flush=True)
    return out



def small_filter(c1=4, c2=8, pool=1):
    """A cheaper filter than `default_filter` (probe)."""
    L = keras.layers
    body = [L.AveragePooling2D(pool)] if pool > 1 else []
    return keras.Sequential([keras.Input((28, 28, 1))] + body + [
        L.Conv2D(c1, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(c2, 3, strides=2, padding="same", activation="relu"), L.Flatten(), L.Dense(1)])


if __name__ == "__main__":
    exec(sys.argv[1])
