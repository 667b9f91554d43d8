"""BatchNorm statistics that describe the network after a pruning event.

Removing neurons changes what every later BatchNormalization layer receives: its moving mean
and variance still describe the network before the event. Keras updates them by an
exponential average (momentum 0.99 by default, about 100 steps of memory), and DynHP's grown
batch takes fewer steps per epoch, so the stale statistics can outlive the epoch: measured on
the benchmark's residual CNN (quick mode), inference accuracy was at chance level (9%) while
the same weights with batch statistics reached 40%. `recalibrate_batchnorm` re-estimates
them from a sample of the training data after each event, the way the network trains: each
BatchNorm's input is taken in training mode (earlier BatchNorms normalise by batch statistics)
and its moving mean and variance become the exact pooled mean and variance over the sample.
"""
from __future__ import annotations

import numpy as np

from dynhp_tf._keras import keras
from dynhp_tf.compact import single
from dynhp_tf.groups import as_list


def batchnorm_layers(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _channel_axes(layer, rank: int) -> tuple[int, ...]:
    """The axes a BatchNorm layer reduces over (all but its feature axes)."""
    features = {a % rank for a in as_list(layer.axis)}
    return tuple(a for a in range(rank) if a not in features)


def recalibrate_batchnorm(model, x, batch_size: int = 256) -> bool:
    """Sets every BatchNorm's moving mean and variance to its input's statistics over `x`.

    Args:
        model: a Keras functional or Sequential model.
        x: input samples (one array, or a list for several inputs), as the model trains on them.
        batch_size: samples per forward pass; the statistics pool all of them.

    Returns:
        Whether the model has BatchNorm layers (False: nothing to do).

    Example:
        >>> recalibrate_batchnorm(model, x_train[:1024])
    """
    layers = batchnorm_layers(model)
    if not layers:
        return False
    probe = keras.Model(single(model.inputs), [layer.input for layer in layers])
    inputs = as_list(x)
    count = len(inputs[0])
    sums = [None] * len(layers)
    for start in range(0, count, batch_size):
        batch = single([a[start:start + batch_size] for a in inputs])
        # training=True: each BatchNorm sees its input as in a train step (it also moves the
        # moving averages a little; they are overwritten below).
        values = as_list(probe(batch, training=True))
        for i, (layer, value) in enumerate(zip(layers, values)):
            v = np.asarray(value, dtype="float64")
            axes = _channel_axes(layer, v.ndim)
            n = np.prod([v.shape[a] for a in axes])
            part = np.stack([v.sum(axis=axes), (v * v).sum(axis=axes), np.full(v.sum(axis=axes).shape, n)])
            sums[i] = part if sums[i] is None else sums[i] + part
    for layer, (total, squares, n) in zip(layers, sums):
        mean = total / n
        variance = np.maximum(squares / n - mean * mean, 0.0)
        layer.moving_mean.assign(mean.reshape(layer.moving_mean.shape).astype("float32"))
        layer.moving_variance.assign(variance.reshape(layer.moving_variance.shape).astype("float32"))
    return True
