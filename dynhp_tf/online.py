"""Online training after deployment, one sample at a time, with weights on the int8 grid and few writes.

A deployed model's weights sit in flash or another non-volatile memory that is slow to write and
wears out, quantized to its int8 grid. `OnlineTrainer` adapts the Dense and Conv2D layers of a
Keras (3 or tf_keras) Sequential model to a stream, batch size 1, in one of two ways that share the
write rule and its counting:

- `method="lowrank"` (Gural et al., arXiv 2009.03887): each sample's kernel gradient, error x
  activation (a convolution: one term per output pixel), is folded into a rank-r
  `LowRankAccumulator`. Every `pseudo_batch` samples (default 10 for a convolution, 100 for a
  Dense layer, the paper's values) the update -lr * L R^T / sqrt(b) is formed, b being the samples
  summed since the last write: the mean gradient with the learning rate scaled by sqrt(b), the
  effective batch. It is quantized to the layer's grid and written only if at least
  `write_fraction` of the kernel's entries change (`quantized_write`); otherwise the accumulator
  keeps summing.
- `method="sgd"`: plain online SGD, the baseline. Each sample's update -lr * gradient goes through
  the same `quantized_write`; there is no accumulator, so an update below the threshold is lost.

Biases are updated every sample, in float (on an int8 device they are int32 with a scale far
finer than the weights'). `write_counts()` counts, per kernel entry, how often its stored int8
value changed. Activations stay float: this simulates the device's weights, not its integer
arithmetic.

Choices of ours: deterministic round-to-nearest by default (`rounding="stochastic"` is offered:
without it plain SGD loses every update smaller than half a grid step); the gradient is not
max-norm scaled (the paper does; we keep plain lr); a convolution sample's per-pixel terms are
folded in one decomposition (exactly their sum, then one rank reduction) rather than one reduction
per pixel: unbiased either way, less variance, and one small SVD per sample instead of hundreds.

Example:
    >>> trainer = OnlineTrainer(model, scales=weight_scales(flatbuffer, model), rank=4)
    >>> predictions = trainer.adapt(x_stream, y_stream)   # each predicted before learning from it
    >>> trainer.summary()["writes_max"]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.lowrank import LowRankAccumulator

METHODS = ("lowrank", "sgd")
ROUNDINGS = ("nearest", "stochastic")
INT8_MAX = 127
PSEUDO_BATCH = {"Dense": 100, "Conv2D": 10}


def quantized_write(q: np.ndarray, delta: np.ndarray, scales: np.ndarray, *, min_fraction: float,
                    rounding: str = "nearest", rng: np.random.Generator | None = None):
    """Apply a float update to int8 weights if it changes enough of them.

    Args:
        q: the stored int8 values, (n, m) (one row per output unit or channel).
        delta: the float update, (n, m).
        scales: the grid step of each row, (n,) (a per-tensor grid repeats one value).
        min_fraction: write only if at least this fraction of the entries change.
        rounding: "nearest" or "stochastic" (round up with probability equal to the remainder).
        rng: random source for stochastic rounding.

    Returns:
        (new q, written): the values after the write (`q` itself when nothing is written) and
        whether the write happened. Values stay within [-127, 127].
    """
    steps = delta / scales[:, None]
    if rounding == "stochastic":
        steps = np.floor(steps + rng.uniform(size=steps.shape))
    else:
        steps = np.round(steps)
    new = np.clip(q + steps, -INT8_MAX, INT8_MAX).astype(q.dtype)
    changed = np.count_nonzero(new != q)
    if changed == 0 or changed < min_fraction * q.size:
        return q, False
    return new, True


@dataclass
class _Layer:
    """One trained layer: its int8 kernel as (n, m) rows, grid, accumulator and counters."""
    layer: object
    kind: str
    q: np.ndarray
    scales: np.ndarray
    writes: np.ndarray
    bias_writes: np.ndarray
    pseudo_batch: int
    accumulator: LowRankAccumulator | None
    pending: int = 0

    def kernel(self) -> np.ndarray:
        """The Keras kernel holding q on the grid."""
        rows = self.q.astype(np.float32) * self.scales[:, None].astype(np.float32)
        return rows.T.reshape(tuple(self.layer.kernel.shape))


def _layer_scales(layer, rows: np.ndarray, scales) -> np.ndarray:
    n = rows.shape[0]
    if scales is None:  # symmetric per-channel, as TFLite quantizes a kernel
        step = np.abs(rows).max(axis=1) / INT8_MAX
        return np.where(step > 0, step, 1.0)
    given = scales.get(layer.name) if isinstance(scales, dict) else scales
    if given is None:
        raise ValueError(f"scales has no entry for layer '{layer.name}'")
    step = np.broadcast_to(np.asarray(given, dtype=np.float64).reshape(-1), (n,)) \
        if np.size(given) in (1, n) else None
    if step is None or not np.all(np.isfinite(step)) or np.any(step <= 0):
        raise ValueError(f"scales for layer '{layer.name}' must be one positive value or {n} (one per "
                         f"output channel); got {np.size(given)} value(s)")
    reach = float(np.max(np.abs(rows) / step[:, None]))
    if reach > INT8_MAX + 0.5:
        raise ValueError(f"scales for layer '{layer.name}' do not cover its weights (largest |w| / scale "
                         f"= {reach:.1f} > {INT8_MAX})")
    return step.copy()


class OnlineTrainer:
    """Adapts the Dense and Conv2D layers of a Sequential model online, on the int8 weight grid.

    Args:
        model: a keras.Sequential model (Keras 3 or tf_keras) ending in class scores; its kernels
            are snapped to the grid at once and rewritten only by this trainer's writes.
        method: "lowrank" or "sgd" (see the module docstring).
        rank: r of the low-rank accumulators.
        learning_rate: lr (float > 0).
        pseudo_batch: samples between write attempts (low-rank only); default 10 for Conv2D,
            100 for Dense. An int applies to every layer.
        write_fraction: write only if at least this fraction of a kernel's entries change.
        rounding: "nearest" or "stochastic", for both methods.
        scales: the grid. None: symmetric per-channel from the current kernels (max |w| / 127);
            a float: one symmetric per-tensor step for every kernel; a dict layer name -> one step
            or one per output channel, e.g. `dynhp_tf.converters.weight_grid.weight_scales(flatbuffer, model)`.
        layers: names of the layers to train; default every Dense and Conv2D layer.
        loss: a Keras loss taking (labels, model outputs); default sparse categorical
            cross-entropy, from logits unless the last layer's activation is softmax.
        unbiased: unbiased rank reduction (the paper's) or plain truncation.
        seed: seed of the rank reductions and of stochastic rounding.
    """

    def __init__(self, model, *, method="lowrank", rank=4, learning_rate=0.01, pseudo_batch=None,
                 write_fraction=0.01, rounding="nearest", scales=None, layers=None, loss=None,
                 unbiased=True, seed=0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        if not (isinstance(rank, (int, np.integer)) and rank >= 1):
            raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        if not 0.0 <= write_fraction <= 1.0:
            raise ValueError(f"write_fraction must be in [0, 1], got {write_fraction!r}")
        if pseudo_batch is not None and not (isinstance(pseudo_batch, (int, np.integer)) and pseudo_batch >= 1):
            raise ValueError(f"pseudo_batch must be an integer >= 1 or None, got {pseudo_batch!r}")
        if not isinstance(model, keras.Sequential):
            raise ValueError(f"model must be a keras.Sequential (a chain of layers); got {type(model).__name__} "
                             f"'{model.name}'")
        self.model, self.method, self.rank, self.learning_rate = model, method, int(rank), float(learning_rate)
        self.write_fraction, self.rounding = float(write_fraction), rounding
        self.rng = np.random.default_rng(seed)
        trainable = [layer for layer in model.layers if type(layer).__name__ in PSEUDO_BATCH]
        names = [layer.name for layer in trainable]
        unknown = sorted(set(layers or ()) - set(names))
        if unknown:
            raise ValueError(f"layers {unknown} are not Dense or Conv2D layers of '{model.name}' ({names})")
        self.layers = [self._prepare(layer, scales, pseudo_batch, unbiased, seed + i)
                       for i, layer in enumerate(trainable) if layers is None or layer.name in layers]
        if loss is None:
            softmax = getattr(getattr(model.layers[-1], "activation", None), "__name__", "") == "softmax"
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax)
        self.loss = loss
        self.samples = 0
        self._gradients = tf.function(self._sample_gradients, reduce_retracing=True)

    def _prepare(self, layer, scales, pseudo_batch, unbiased, seed) -> _Layer:
        kind = type(layer).__name__
        if kind == "Conv2D" and (getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last"):
            raise ValueError(f"layer '{layer.name}': only channels_last Conv2D with groups=1 can be trained")
        if not layer.use_bias:
            raise ValueError(f"layer '{layer.name}' has no bias; the online trainer needs one")
        kernel = np.asarray(layer.kernel.numpy(), dtype=np.float64)
        rows = kernel.reshape(-1, kernel.shape[-1]).T  # (n outputs, m inputs)
        step = _layer_scales(layer, rows, scales)
        q = np.clip(np.round(rows / step[:, None]), -INT8_MAX, INT8_MAX).astype(np.int16)
        n, m = rows.shape
        accumulator = LowRankAccumulator(n, m, self.rank, unbiased=unbiased, seed=seed) \
            if self.method == "lowrank" else None
        entry = _Layer(layer, kind, q, step, np.zeros((n, m), np.int64), np.zeros(n, np.int64),
                       int(pseudo_batch or PSEUDO_BATCH[kind]), accumulator)
        layer.kernel.assign(entry.kernel())
        return entry

    # --- per-sample gradients: error at each trained layer's pre-activation x its input ------------

    def _sample_gradients(self, x, y):
        trained = {entry.layer.name: entry for entry in self.layers}
        terms = []
        with tf.GradientTape() as tape:
            h, pre = x, []
            for layer in self.model.layers:
                if layer.name not in trained:
                    h = layer(h, training=False)
                    continue
                kernel, bias = tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.bias)
                if type(layer).__name__ == "Dense":
                    z = tf.matmul(h, kernel) + bias
                    inputs = h
                else:
                    conv = dict(strides=(1, *layer.strides, 1), padding=layer.padding.upper())
                    z = tf.nn.conv2d(h, kernel, dilations=(1, *layer.dilation_rate, 1), **conv) + bias
                    inputs = tf.image.extract_patches(h, sizes=(1, *layer.kernel_size, 1),
                                                      rates=(1, *layer.dilation_rate, 1), **conv)
                tape.watch(z)
                pre.append(z)
                terms.append(tf.reshape(inputs, (-1, inputs.shape[-1])))
                h = layer.activation(z)
            loss = self.loss(y, h)
        errors = tape.gradient(loss, pre)
        return h[0], [(tf.reshape(e, (-1, e.shape[-1])), t) for e, t in zip(errors, terms)]

    def gradients(self, x, y):
        """The model's output for one sample and, per trained layer, (errors (P, n), inputs (P, m)).

        P is 1 for a Dense layer and the number of output pixels for a Conv2D layer; the kernel
        gradient is errors.T @ inputs (n, m).
        """
        x = tf.convert_to_tensor(np.asarray(x, np.float32)[None, ...])
        y = tf.convert_to_tensor(np.asarray(y).reshape(1))
        output, terms = self._gradients(x, y)
        return output.numpy(), [(e.numpy().astype(np.float64), t.numpy().astype(np.float64)) for e, t in terms]

    # --- learning -----------------------------------------------------------------------------

    def _write(self, entry: _Layer, update: np.ndarray) -> bool:
        new, written = quantized_write(entry.q, update, entry.scales, min_fraction=self.write_fraction,
                                       rounding=self.rounding, rng=self.rng)
        if written:
            entry.writes += new != entry.q
            entry.q = new
            entry.layer.kernel.assign(entry.kernel())
        return written

    def step(self, x, y) -> np.ndarray:
        """Predict one sample, then learn from it; returns the prediction made before learning."""
        output, terms = self.gradients(x, y)
        for entry, (errors, inputs) in zip(self.layers, terms):
            bias = entry.layer.bias.numpy()
            new_bias = bias - self.learning_rate * errors.sum(axis=0).astype(bias.dtype)
            entry.bias_writes += new_bias != bias
            entry.layer.bias.assign(new_bias)
            if entry.accumulator is None:
                self._write(entry, -self.learning_rate * errors.T @ inputs)
                continue
            entry.accumulator.add(errors.T, inputs.T)
            entry.pending += 1
            if entry.pending % entry.pseudo_batch == 0:
                update = -self.learning_rate * entry.accumulator.value() / np.sqrt(entry.pending)
                if self._write(entry, update):
                    entry.accumulator.reset()
                    entry.pending = 0
        self.samples += 1
        return output

    def adapt(self, x, y) -> np.ndarray:
        """`step` over a stream; returns the predicted class of each sample (before it was learnt)."""
        return np.array([int(np.argmax(self.step(xi, yi))) for xi, yi in zip(x, y)], dtype=np.int64)

    # --- what it cost ---------------------------------------------------------------------------

    def write_counts(self) -> dict[str, np.ndarray]:
        """Per trained layer, how many times each kernel entry's int8 value was written, (n, m)."""
        return {entry.layer.name: entry.writes.copy() for entry in self.layers}

    def int8_kernels(self) -> dict[str, np.ndarray]:
        """Per trained layer, the stored int8 values as (n outputs, m inputs)."""
        return {entry.layer.name: entry.q.astype(np.int8) for entry in self.layers}

    def aux_bytes(self, bytes_per_value: int = 4) -> int:
        """State kept between samples beyond the model: the low-rank factors (SGD keeps none)."""
        return sum(e.accumulator.state_bytes(bytes_per_value) for e in self.layers if e.accumulator is not None)

    def summary(self) -> dict:
        """Samples seen, kernel writes per weight (max, mean) over all trained kernels, aux bytes."""
        writes = np.concatenate([e.writes.ravel() for e in self.layers])
        return {"samples": self.samples, "writes_max": int(writes.max()), "writes_mean": float(writes.mean()),
                "weights": int(writes.size), "aux_bytes": self.aux_bytes()}
