"""A short fine-tuning that narrows a classifier's logit range, so its int8 model agrees with it.

The int8 converter gives the last layer's output (the logits) 256 steps over the range it saw
on the calibration data. That range is set by the most confident samples (-53 to +16 on the
benchmark's 10x LeNet-300-100), so one step is about 0.27 logits; when the float model's top two
classes are closer than that, the int8 scores tie and argmax picks the first class. In the
benchmark 73-95% of int8/float disagreements are such ties (docs/benchmarks.md, section
"int8 vs float agreement"). Bias correction and per-channel weights do not change that.

The fine-tuning adds to the cross-entropy a penalty on the logits beyond a bound `tau` (a
quantile of their magnitudes on the training data): only the extreme, already confident
logits are pulled in, the range shrinks (1.6x there, 3x on the unpruned network), and near-ties
keep their gaps. It bought +0.3 points of agreement there at 1.2 points of float accuracy, and
+0.5 points (to 99.53%) at no cost on the benchmark's CNN: measure before relying on it.

It is not tfmot's quantization-aware training: tfmot has no Keras 3 support
(tensorflow/model-optimization issue 1119), and fake-quantizing the logits during training
(`tf.quantization.fake_quant_with_min_max_args`) alone measured no gain on the unpruned network. This works on Keras 3
and tf_keras alike (a plain `tf.GradientTape` loop).

With `weight_grid=` the same loop is a quantization-aware fine-tuning of the weights: the loss
is taken with the Dense/Conv kernels on their int8 grid, the gradient updates the float
kernels (straight-through), and the kernels end on the grid, so the converter keeps them
exactly. This is what `DynHPCallback(int8_finetune_epochs=)` runs (without the penalty): +0.2
to +0.3 points of agreement over as many plain epochs, at no accuracy cost, in the benchmark.

With `weight_grid=` and `activation_grid=True` the activations are fake-quantized too:
every hidden Dense/Conv output is rounded, straight-through, to the asymmetric int8 grid the
converter will give it (its min/max over the calibration samples, re-measured each epoch), and
the logits to the exporter's argmax logit range (`converters/logit_range.py`), so the loss
sees the int8 network's rounding, not only its weights'. The callback uses it: on the demo
model it bought +0.27 points over the weight grid alone (99.52% vs 99.25% mean of 3 and 2
trainings), on the benchmark's LeNet-300-100 and CNN nothing measurable (-0.04, +0.03).

Weights that are exactly zero stay zero, so neurons DynHP removed stay removed and the
export's compact model keeps its size.

Example:
    >>> model.fit(cb.batches(x, y), epochs=8, callbacks=[cb])
    >>> narrow_logit_range(model, x, y)              # then save and export as usual
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.calibration import balanced_indices
from dynhp_tf.logit_level import level_top_logit, logits_function


# Which kernels the converter quantizes along their last axis (output channels): Conv always,
# Dense only when the board's library runs per-channel FULLY_CONNECTED.
_CONV = ("Conv1D", "Conv2D")


def grid_kernels(model, per_channel_dense: bool) -> list:
    """(kernel variable, per-tensor?) of every Dense and Conv1D/Conv2D layer of `model`."""
    return [(layer.kernel, type(layer).__name__ == "Dense" and not per_channel_dense) for layer in model.layers
            if type(layer).__name__ in ("Dense", *_CONV)]


def on_int8_grid(kernel, per_tensor: bool):
    """`kernel` rounded to the symmetric int8 grid the converter gives it: scale max|w| / 127,
    per tensor or per output channel (last axis). Exact zeros stay zero."""
    axes = None if per_tensor else tuple(range(len(kernel.shape) - 1))
    scale = tf.reduce_max(tf.abs(kernel), axis=axes) / 127
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    return tf.round(kernel / scale) * scale


def on_activation_grid(x, low, high):
    """`x` rounded to the asymmetric int8 grid of the range [low, high] (widened to hold 0, as the
    converter does), clipped to it; the gradient passes straight through."""
    low, high = tf.minimum(low, 0.0), tf.maximum(high, 0.0)
    scale = tf.maximum(high - low, 1e-9) / 255
    zero = tf.clip_by_value(tf.round(-128 - low / scale), -128, 127)
    grid = (tf.clip_by_value(tf.round(x / scale) + zero, -128, 127) - zero) * scale
    return x + tf.stop_gradient(grid - x)


class _ActivationGrid:
    """Fake-quantizes the outputs of `model`'s hidden Dense/Conv layers and its logits while active.

    The layers' `activation` is wrapped (Dense and Conv apply it last in `call`, on both
    frameworks), so the converter's fused Dense+activation output is what gets rounded. Ranges
    are variables, so a traced step needs no retracing when `calibrate` moves them.
    """

    def __init__(self, model, logits, samples, round_logits: bool = True):
        self.round_logits = round_logits
        self.layers = [layer for layer in model.layers[:-1] if type(layer).__name__ in ("Dense", *_CONV)]
        self.logits, self.samples = logits, samples
        self.active = tf.Variable(0.0, trainable=False)
        self.ranges = [tf.Variable([0.0, 0.0], trainable=False) for _ in range(len(self.layers) + 1)]
        self.outputs = keras.Model(model.inputs, [layer.output for layer in self.layers]) if self.layers else None
        self.originals = [layer.activation for layer in self.layers]
        for layer, activation, bounds in zip(self.layers, self.originals, self.ranges):
            layer.activation = self._wrap(activation, bounds)

    def _wrap(self, activation, bounds):
        def fake_quantized(x):
            y = activation(x)
            return y + self.active * (on_activation_grid(y, bounds[0], bounds[1]) - y)
        return fake_quantized

    def calibrate(self):
        """Sets every range from the float network's outputs on the calibration samples."""
        from dynhp_tf.converters.logit_range import argmax_range

        self.active.assign(0.0)
        if self.outputs is not None:
            values = self.outputs(self.samples)
            values = values if isinstance(values, (list, tuple)) else [values]
            for bounds, v in zip(self.ranges, values):
                bounds.assign([float(np.min(v)), float(np.max(v))])
        self.ranges[-1].assign(argmax_range(np.asarray(self.logits(self.samples))))
        self.active.assign(1.0)

    def quantize_logits(self, z):
        if not self.round_logits:
            return z
        return z + self.active * (on_activation_grid(z, self.ranges[-1][0], self.ranges[-1][1]) - z)

    def restore(self):
        for layer, activation in zip(self.layers, self.originals):
            layer.activation = activation


def narrow_logit_range(model, x, y, *, epochs: int = 3, batch_size: int = 64, learning_rate: float = 1e-4,
                       quantile: float = 90.0, weight: float = 1.0, seed: int = 0,
                       weight_grid: str | None = None, activation_grid: bool = False,
                       calibration_samples: int = 500, level_logits: bool = False,
                       float_head: bool = False) -> dict:
    """Fine-tunes `model` in place so that its logits fit a narrower int8 range.

    Args:
        model: A trained classifier (Keras 3 or tf_keras) whose last layer is a Dense
            with softmax or linear activation; a DynHP-pruned model keeps its pruning.
        x, y: Training inputs and integer class labels.
        epochs: Passes over `x` (three in the benchmark; one bought about half as much).
        batch_size, learning_rate: Of the fine-tuning (Adam).
        quantile: `tau` is this percentile of the logits' magnitudes on (up to 10,000 of) `x`.
        weight: Of the penalty mean(relu(|logit| - tau)^2) against the cross-entropy.
        seed: Shuffling seed.
        weight_grid: None, "per-tensor" or "per-channel": quantization-aware fine-tuning of
            the weights. Each step computes the loss with the Dense/Conv kernels on the int8 grid
            the converter will give them (`on_int8_grid`; Dense per-tensor or per-channel as
            the board requires, Conv per channel) and applies the gradient to the float
            kernels (straight-through); at the end the kernels are left on that grid, so the
            float model and the int8 model share their weights exactly.
        activation_grid: With `weight_grid`, also round each hidden Dense/Conv output and the
            logits to the int8 grid the exporter will use (`_ActivationGrid`).
        calibration_samples: Class-balanced samples of `x` whose float outputs set those
            activation ranges, as the exporter's calibration does (500 there).
        level_logits: First shift the logits so that each sample's top logit is about
            constant (`dynhp_tf.logit_level.level_top_logit` on those calibration samples; the
            softmax does not change), which narrows the logits' int8 range.
        float_head: The export will compute the last Dense in float32 (`dynhp-export --head
            float`): its kernel stays off the int8 grid and the logits are not rounded (the
            hidden layers' grids still apply), as that model computes them. With a float head
            there is no int8 logit range to level or narrow.

    Returns:
        {"tau", "range_before", "range_after"}: the bound and the logits' (min, max) on the
        same samples before and after; with `level_logits` also "top_spread_before" and
        "top_spread_after" (`level_top_logit`).

    Example:
        >>> narrow_logit_range(model, x_train, y_train)["range_after"]
        (-15.6, 16.1)
    """
    logits = logits_function(model)
    x, y = np.asarray(x, np.float32), np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold one integer class per sample of x ({len(x)}), got shape {y.shape} "
                         f"dtype {y.dtype}")
    probe = x[:10_000]

    def logit_range():
        values = np.concatenate([np.asarray(logits(probe[i:i + 1000])) for i in range(0, len(probe), 1000)])
        return values, (float(values.min()), float(values.max()))

    values, before = logit_range()
    tau = float(np.percentile(np.abs(values), quantile))
    calibration = x[balanced_indices(y, calibration_samples, seed)]
    levelled = level_top_logit(model, calibration) if level_logits else {}
    variables = model.trainable_variables
    keep = [tf.constant(np.asarray(v) != 0, dtype=v.dtype) for v in variables]  # pruned stays pruned
    optimizer = keras.optimizers.Adam(learning_rate)
    if weight_grid not in (None, "per-tensor", "per-channel"):
        raise ValueError(f"weight_grid: expected None, 'per-tensor' or 'per-channel', got {weight_grid!r}")
    kernels = [] if weight_grid is None else grid_kernels(model, weight_grid == "per-channel")
    if float_head:
        kernels = [(k, per_tensor) for k, per_tensor in kernels if k is not model.layers[-1].kernel]
    activations = None
    if weight_grid is not None and activation_grid:
        activations = _ActivationGrid(model, logits, calibration, round_logits=not float_head)

    @tf.function
    def step(xb, yb):
        floats = [tf.identity(k) for k, _ in kernels]
        for k, per_tensor in kernels:
            k.assign(on_int8_grid(k, per_tensor))
        with tf.GradientTape() as tape:
            z = logits(xb, training=True)
            if activations is not None:
                z = activations.quantize_logits(z)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yb, z))
            loss += weight * tf.reduce_mean(tf.square(tf.nn.relu(tf.abs(z) - tau)))
        gradients = tape.gradient(loss, variables)
        for (k, _), value in zip(kernels, floats):
            k.assign(value)
        optimizer.apply_gradients(zip(gradients, variables))
        for v, k in zip(variables, keep):
            v.assign(v * k)

    data = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    try:
        for _ in range(epochs):
            if activations is not None:
                activations.calibrate()  # ranges of the weights as they are now (on their grid)
            for xb, yb in data.shuffle(len(x), seed=seed).batch(batch_size):
                step(xb, yb)
    finally:
        if activations is not None:
            activations.restore()
    for k, per_tensor in kernels:
        k.assign(on_int8_grid(k, per_tensor))
    _, after = logit_range()
    return {"tau": tau, "range_before": before, "range_after": after, **levelled}
