"""Exploration: per-epoch test accuracy and cumulative FLOPs for a few variants (CNN)."""
import json, sys, time
import numpy as np
sys.argv = sys.argv
import benchmarks.cheap_training as ct
from dynhp_tf._keras import keras
from dynhp_tf.datasets import fashion_mnist
from dynhp_tf.error_maps import error_map_pruning
from dynhp_tf.flops import TrainingFlops
from dynhp_tf.instance_filter import InstanceFilter

def run(name, ratio, alpha, epochs, seed=0, network="cnn", samples=10000, **kw):
    (x, y), (xt, yt) = fashion_mnist()
    sub = np.random.default_rng(0).permutation(len(x))[:samples]
    x, y = x[sub, ..., None], y[sub]; xt, yt = xt[..., None], yt
    model = ct.build(network, seed)
    if alpha: model = error_map_pruning(model, alpha, **kw.pop("emp", {}))
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    cb = TrainingFlops() if ratio is None else InstanceFilter(keep_ratio=ratio, **kw)
    t = time.perf_counter()
    h = model.fit(x, y, batch_size=64, epochs=epochs, callbacks=[cb], validation_data=(xt, yt), validation_batch_size=500, verbose=0)
    h = h.history
    out = {"name": name, "seed": seed, "secs": time.perf_counter() - t, "val_acc": h["val_accuracy"],
           "cum_gflops": list(np.cumsum(h["train_flops"]) / 1e9), "kept": h.get("filter/kept_fraction")}
    print(json.dumps(out), flush=True)
    return out


import tensorflow as tf
class Diag(keras.callbacks.Callback):
    def __init__(self, filt, x, y, n=2000):
        super().__init__(); self.filt, self.x, self.y = filt, x[:n], y[:n]; self.rec = []
    def on_epoch_end(self, epoch, logs=None):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(self.y, self.model.predict(self.x, batch_size=500, verbose=0)).numpy()
        p = self.filt._predict(tf.constant(self.x)).numpy()
        k = int(0.2 * len(loss)); top = set(np.argsort(-loss)[:k]); ftop = np.argsort(-p)[:k]
        rec = len(top & set(ftop)) / k
        cls = np.bincount(self.y[ftop].astype(int), minlength=10)
        rho = np.corrcoef(np.argsort(np.argsort(loss)), np.argsort(np.argsort(p)))[0, 1]
        self.rec.append(rec)
        print(f"epoch {epoch}: recall@20 {rec:.2f} spearman {rho:.2f} T {self.filt.rule.threshold:.3f} loss-quantile80 {np.quantile(loss, .8):.3f} filter-top classes {cls.tolist()}", flush=True)

def rund(name, ratio, alpha, epochs, seed=0, **kw):
    (x, y), (xt, yt) = fashion_mnist()
    sub = np.random.default_rng(0).permutation(len(x))[:10000]
    x, y = x[sub, ..., None], y[sub]; xt = xt[..., None]
    model = ct.build("cnn", seed)
    if alpha: model = error_map_pruning(model, alpha)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    cb = InstanceFilter(keep_ratio=ratio, **kw)
    t = time.perf_counter()
    h = model.fit(x, y, batch_size=64, epochs=epochs, callbacks=[cb, Diag(cb, x, y)], validation_data=(xt, yt), validation_batch_size=500, verbose=0).history
    print(json.dumps({"name": name, "secs": time.perf_counter() - t, "val_acc": h["val_accuracy"], "cum_gflops": list(np.cumsum(h["train_flops"]) / 1e9), "kept": h["filter/kept_fraction"]}), flush=True)


class Oracle(InstanceFilter):
    """Ranks by the main network's true loss (a forward of every row, counted in labels)."""
    def choose(self, batch):
        x, y = batch[0], batch[1]
        n = int(x.shape[0])
        net = self.driver.network()
        loss = self._losses(net, x, y).numpy()
        self.epoch_flops["train_flops/labels"] += n * self.cost(net)["forward"]
        self._epoch_seen += n; self._seen_since_update += n
        order = np.argsort(-loss, kind="stable")
        k = int(np.ceil(self.keep_ratio * n)); e = int(np.ceil(self.explore_ratio * n))
        rest = order[k:]; rnd = np.random.default_rng(self._epoch_seen).choice(rest, e, replace=False)
        from dynhp_tf.flops import take_rows
        return take_rows(batch, np.sort(np.concatenate([order[:k], rnd])))
    def before_step(self, batch, network):
        self._epoch_kept += int(batch[0].shape[0])

def runo(name, ratio, alpha, epochs, seed=0, cls=Oracle, emp_layers=None, **kw):
    (x, y), (xt, yt) = fashion_mnist()
    sub = np.random.default_rng(0).permutation(len(x))[:10000]
    x, y = x[sub, ..., None], y[sub]; xt = xt[..., None]
    model = ct.build("cnn", seed)
    if alpha: model = error_map_pruning(model, alpha, layers=emp_layers and [l.name for l in model.layers if type(l).__name__ == "Conv2D"][1:])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if kw.pop("random", False):
        kw["filter_model"] = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Lambda(lambda t: tf.random.normal([tf.shape(t)[0], 1]), output_shape=(1,))])
    cb = cls(keep_ratio=ratio, **kw)
    t = time.perf_counter()
    h = model.fit(x, y, batch_size=64, epochs=epochs, callbacks=[cb], validation_data=(xt, yt), validation_batch_size=500, verbose=0).history
    print(json.dumps({"name": name, "secs": time.perf_counter() - t, "val_acc": h["val_accuracy"], "cum_gflops": list(np.cumsum(h["train_flops"]) / 1e9), "main": list(np.cumsum(h["train_flops/main"]) / 1e9), "kept": h["filter/kept_fraction"]}), flush=True)

if __name__ == "__main__":
    exec(sys.argv[1])
