"""Error map pruning: a Conv2D's backward pass keeps only its most useful output channels.

After Wu, Wang, Shi, Hu (TCAD 2020). In each training step the layer scores its output
channels by `g1 * ||W_j||_1 + g2 * ||dY_j||_1` (kernel of channel j; error map of channel j
summed over the batch and positions) and keeps the fraction `alpha` with the largest score.
The others get no weight (and bias) gradient and pass no error to the layer's input. The
backward pass really runs on the kept channels only (the kernel and the error maps are
gathered first), so it costs `alpha` of the dense backward, which `dynhp_tf.flops` counts.

Our choices (the paper leaves them open): each term is divided by its mean over the channels,
so that g1 and g2 are scale-free relative weights (the raw error-map L1 is orders of magnitude
below the weight L1 and shrinks with the batch-mean loss); defaults g1 = g2 = 1; the number
kept is ceil(alpha * filters). The forward pass and inference are plain Conv2D.

`ErrorMapConv2D` is a Conv2D subclass (the switch is per layer and saved with the model;
alpha = 1 turns it off). `error_map_pruning(model, alpha)` swaps Conv2D layers for it, and
`strip_error_map_pruning(model)` swaps them back (e.g. before export).
"""
from __future__ import annotations

import math

import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.layers import LayerRule, register_layer, rule_for


def kept_channels(filters: int, alpha: float) -> int:
    return max(1, min(filters, math.ceil(alpha * filters - 1e-9)))


def channel_scores(kernel, error, g1: float, g2: float):
    """Per output channel: g1 * |W_j|_1 / mean + g2 * |dY_j|_1 / mean (NHWC error maps)."""
    weight = tf.reduce_sum(tf.abs(kernel), axis=[0, 1, 2])
    maps = tf.reduce_sum(tf.abs(error), axis=[0, 1, 2])
    tiny = 1e-30
    return g1 * weight / (tf.reduce_mean(weight) + tiny) + g2 * maps / (tf.reduce_mean(maps) + tiny)


def _scatter_channels(values, index, channels: int):
    """Puts the last-axis slices `values[..., i]` at channels `index` of a zero tensor."""
    rank = len(values.shape)
    moved = tf.transpose(values, [rank - 1] + list(range(rank - 1)))
    shape = tf.concat([[channels], tf.shape(moved)[1:]], 0)
    full = tf.scatter_nd(tf.expand_dims(index, 1), moved, shape)
    return tf.transpose(full, list(range(1, rank)) + [0])


@keras.saving.register_keras_serializable(package="dynhp_tf")
class ErrorMapConv2D(keras.layers.Conv2D):
    """A Conv2D whose training backward pass keeps only the top `error_map_alpha` channels.

    Args:
        error_map_alpha: fraction of output channels whose error maps are kept (0, 1];
            1 is a plain Conv2D.
        error_map_g1, error_map_g2: weights of the kernel L1 and error-map L1 terms of the
            score (each divided by its mean over channels).
        **kwargs: Conv2D's arguments (channels_last, groups=1).

    Example:
        >>> layer = ErrorMapConv2D(32, 3, activation="relu", error_map_alpha=0.5)
    """

    def __init__(self, *args, error_map_alpha=1.0, error_map_g1=1.0, error_map_g2=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < error_map_alpha <= 1:
            raise ValueError(f"error_map_alpha: expected a number in (0, 1], got {error_map_alpha!r}")
        if error_map_g1 < 0 or error_map_g2 < 0 or error_map_g1 + error_map_g2 <= 0:
            raise ValueError(f"error_map_g1, error_map_g2: expected non-negative weights, not both 0, got "
                             f"{error_map_g1!r}, {error_map_g2!r}")
        if self.data_format != "channels_last" or self.groups != 1:
            raise ValueError(f"{self.name}: ErrorMapConv2D needs data_format='channels_last' and groups=1")
        self.error_map_alpha = float(error_map_alpha)
        self.error_map_g1, self.error_map_g2 = float(error_map_g1), float(error_map_g2)

    def get_config(self):
        return {**super().get_config(), "error_map_alpha": self.error_map_alpha,
                "error_map_g1": self.error_map_g1, "error_map_g2": self.error_map_g2}

    def call(self, inputs, training=None):
        if not training or self.error_map_alpha >= 1:
            return super().call(inputs)
        kernel = tf.convert_to_tensor(self.kernel)
        bias = tf.convert_to_tensor(self.bias) if self.use_bias else tf.zeros(kernel.shape[-1], kernel.dtype)
        outputs = self._pruned_conv(tf.convert_to_tensor(inputs), kernel, bias)
        return outputs if self.activation is None else self.activation(outputs)

    def _pruned_conv(self, x, kernel, bias):
        strides = [1, *self.strides, 1]
        dilations = [1, *self.dilation_rate, 1]
        padding = self.padding.upper()
        channels = int(kernel.shape[-1])
        keep = kept_channels(channels, self.error_map_alpha)
        g1, g2 = self.error_map_g1, self.error_map_g2

        @tf.custom_gradient
        def conv(x, kernel, bias):
            y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations), bias)

            def grad(dy):
                index = tf.math.top_k(channel_scores(kernel, dy, g1, g2), keep).indices
                dy_kept, kernel_kept = tf.gather(dy, index, axis=3), tf.gather(kernel, index, axis=3)
                dx = tf.nn.conv2d_transpose(dy_kept, kernel_kept, tf.shape(x), strides, padding,
                                            dilations=dilations)
                dkernel = tf.compat.v1.nn.conv2d_backprop_filter(x, tf.shape(kernel_kept), dy_kept, strides,
                                                                 padding, dilations=dilations)
                dbias = tf.reduce_sum(dy_kept, axis=[0, 1, 2])
                return (dx, _scatter_channels(dkernel, index, channels),
                        _scatter_channels(dbias, index, channels))

            return y, grad

        return conv(x, kernel, bias)


# DynHP prunes it like a Conv2D (tf_keras names the class by its registered name in configs).
for _name in ("ErrorMapConv2D", "dynhp_tf>ErrorMapConv2D"):
    register_layer(_name, rule_for("Conv2D"))


def _swap_conv(model, make):
    def clone(layer):
        config = layer.get_config()
        return make(layer, config) or type(layer).from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def error_map_pruning(model, alpha: float, layers=None, g1: float = 1.0, g2: float = 1.0,
                      skip_first: bool = False):
    """A copy of `model` (same weights, not compiled) whose Conv2D layers prune error maps.

    Args:
        model: a Sequential or functional Keras model.
        alpha: fraction of output channels kept in each chosen layer's backward pass.
        layers: names of the Conv2D layers to switch (default: all of them).
        g1, g2: see `ErrorMapConv2D`.
        skip_first: leave the model's first Conv2D (in layer order) plain. Its backward is a
            weight gradient only (no error flows to the input), so pruning it saves little,
            while every later layer learns from its features: with a learning-rate decay over
            a FLOPs budget (`FlopsBudget`), sparing it was 0.3 to 0.4 points better on the
            benchmark CNN, on all of 10 seeds (docs/benchmarks.md, cheap_training).

    Example:
        >>> fast = error_map_pruning(model, alpha=0.5)
        >>> fast.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    """
    order = [l.name for l in model.layers if type(l) is keras.layers.Conv2D]
    convs = set(order)
    chosen = convs if layers is None else set(layers)
    if not chosen <= convs:
        raise ValueError(f"layers: expected names of Conv2D layers of the model, got {sorted(chosen - convs)}")
    chosen -= set(order[:1]) if skip_first else set()
    ErrorMapConv2D(1, 1, error_map_alpha=alpha, error_map_g1=g1, error_map_g2=g2)  # checks the arguments

    def make(layer, config):
        if layer.name in chosen:
            return ErrorMapConv2D.from_config({**config, "error_map_alpha": alpha, "error_map_g1": g1,
                                               "error_map_g2": g2})
        return None

    return _swap_conv(model, make)


def strip_error_map_pruning(model):
    """A copy of `model` with every `ErrorMapConv2D` a plain Conv2D (same weights)."""
    def make(layer, config):
        if isinstance(layer, ErrorMapConv2D):
            return keras.layers.Conv2D.from_config(
                {k: v for k, v in config.items() if not k.startswith("error_map_")})
        return None

    return _swap_conv(model, make)
