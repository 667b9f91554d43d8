"""Issue 14, third round: a learning-rate decay that follows the FLOPs budget, plain and filtered alike.

Like explore2.py (same data, CNN, batch 64, Adam(1e-3), test accuracy after every epoch), with
`dynhp_tf.flops_budget.FlopsBudget(counter, budget, decay=...)`: every run (plain included)
stops before the epoch that would pass its budget, and with `decay` its learning rate falls
to about 0 at that budget. Run as
`nice -n 10 env PYTHONPATH=. python benchmarks/results/cheap_training_attempts/explore3.py 'run(...)'`.
"""
import json, sys, time
import numpy as np
import benchmarks.cheap_training as ct
from dynhp_tf._keras import keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.error_maps import error_map_pruning
from dynhp_tf.flops import TrainingFlops
from dynhp_tf.flops_budget import FlopsBudget
from dynhp_tf.instance_filter import InstanceFilter, default_filter

PLAIN_8 = 518.12352e9  # plain training's FLOPs over 8 epochs (cheap_training_budget.json)


def run(name, seed=0, ratio=0.2, alpha=0.5, lr=1e-3, budget=0.5, samples=10000, g1=0.0, g2=1.0,
        decay="cosine", channels=(4, 8), skip_first=False, random=False, **kw):
    (x, y), (xt, yt) = fashion_mnist()
    sub = np.random.default_rng(0).permutation(len(x))[:samples]
    x, y = x[sub, ..., None], y[sub]; xt = xt[..., None]
    model = ct.build("cnn", seed)
    if alpha:
        convs = [l.name for l in model.layers if type(l) is keras.layers.Conv2D]
        model = error_map_pruning(model, alpha, layers=convs[int(skip_first):], g1=g1, g2=g2)
    model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if ratio:
        kw.setdefault("explore", "random")
        scores = default_filter(x.shape[1:], channels)
        if random:  # the ablation of benchmarks.cheap_training: random scores, no filter network
            import tensorflow as tf
            scores = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Lambda(
                lambda t: tf.random.normal([tf.shape(t)[0], 1]), output_shape=(1,))])
        cb = InstanceFilter(keep_ratio=ratio, filter_model=scores, **kw)
    else:
        cb = TrainingFlops()
    t = time.perf_counter()
    h = model.fit(x, y, batch_size=64, epochs=1000, callbacks=[cb, FlopsBudget(cb, budget * PLAIN_8 * 1.000001, decay)],
                  validation_data=(xt, yt), validation_batch_size=500, verbose=0).history
    out = {"name": name, "seed": seed, "decay": decay, "secs": round(time.perf_counter() - t, 1), "epochs": len(h["train_flops"]),
           "val_acc": [round(v, 4) for v in h["val_accuracy"]], "cum_gflops": [round(v, 1) for v in np.cumsum(h["train_flops"]) / 1e9],
           "kept": [round(v, 3) for v in h.get("filter/kept_fraction", [1.0])], "flops_vs_plain": round(sum(h["train_flops"]) / PLAIN_8, 3)}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    exec(sys.argv[1])
