"""Bias correction: move the mean int8 error of each layer into its float bias before conversion.

Rounding weights to int8 (and each layer's input to its int8 grid) shifts the mean of a
layer's pre-activations by a fixed amount per output channel; ReLU and argmax turn that shift
into different classes. Measured on calibration data, the shift is removed by adding it to the
float bias (Nagel et al. 2019, "Data-Free Quantization", empirical variant). The converter then
quantizes the corrected model as usual: the weights, and so their rounding, are unchanged.

Layers are corrected in order, each seeing the inputs the int8 model would give it (earlier
layers already corrected), so one layer's residual error is not corrected twice.

The int8 simulation mirrors TFLite's scheme: symmetric weights in [-127, 127], one scale per
output channel for convolutions and for dense layers when `per_channel_dense`, one per tensor
otherwise; activations asymmetric over [-128, 127] with the calibration samples' min/max.

Example:
    >>> corrected, shifts = correct_biases(compact, x_cal, per_channel_dense=False)
    >>> tflite_model = quantize_int8(corrected, x_cal, per_channel_dense=False)
"""
from __future__ import annotations

import numpy as np

from dynhp_tf._keras import keras

# Layers whose kernel's last axis is the output channel and that the converter fuses with
# their bias (and activation) into one int8 op.
_CORRECTED = (keras.layers.Dense, keras.layers.Conv2D)


def quantize_weights(kernel: np.ndarray, per_channel: bool) -> np.ndarray:
    """`kernel` rounded to TFLite's symmetric int8 grid and scaled back to float."""
    axes = tuple(range(kernel.ndim - 1)) if per_channel else None
    scale = np.max(np.abs(kernel), axis=axes, keepdims=per_channel) / 127.0
    scale = np.where(scale == 0, 1.0, scale)  # an all-zero channel stays zero
    return np.clip(np.round(kernel / scale), -127, 127) * scale


def fake_quantize(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """`x` on the asymmetric int8 grid of the range [low, high] (widened to hold 0, as TFLite does)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        return np.zeros_like(x)
    scale = (high - low) / 255.0
    zero = np.round(-128 - low / scale)
    return (np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale


def _layer_input(model, index: int, x: np.ndarray) -> np.ndarray:
    probe = keras.Model(model.inputs, model.layers[index].input)
    return np.asarray(probe.predict(x, batch_size=256, verbose=0))


def _pre_activation(layer, x: np.ndarray) -> np.ndarray:
    activation = layer.activation
    layer.activation = keras.activations.linear  # the shift is measured before the nonlinearity
    try:
        return np.asarray(layer(x, training=False))
    finally:
        layer.activation = activation


def correct_biases(model, calibration: np.ndarray, *, per_channel_dense: bool, max_samples: int = 500):
    """A copy of `model` whose Dense/Conv2D biases absorb their mean int8 error.

    Args:
        model: A Keras (3 or tf_keras) model with one input (the compact model).
        calibration: Float samples [n, *input_shape], the converter's representative data.
        per_channel_dense: Dense weights will be quantized per output channel (as the
            converter is told); convolutions always are.
        max_samples: Cap on samples used (each layer runs two forward passes over them).

    Returns:
        (corrected model, {layer name: largest absolute bias shift}).
    """
    x = np.asarray(calibration, dtype=np.float32)[:max_samples]
    corrected = keras.models.clone_model(model)
    corrected.set_weights(model.get_weights())
    simulated = keras.models.clone_model(model)  # int8 weights, corrected biases so far
    simulated.set_weights(model.get_weights())
    shifts = {}
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, _CORRECTED) or not layer.use_bias:
            continue
        sim_layer = simulated.layers[index]
        kernel, bias = layer.get_weights()
        per_channel = per_channel_dense or not isinstance(layer, keras.layers.Dense)
        sim_layer.set_weights([quantize_weights(kernel, per_channel), sim_layer.get_weights()[1]])
        x_float = _layer_input(model, index, x)
        x_int8 = fake_quantize(_layer_input(simulated, index, x), float(x_float.min()), float(x_float.max()))
        error = _pre_activation(layer, x_float) - _pre_activation(sim_layer, x_int8)
        shift = error.reshape(-1, error.shape[-1]).mean(axis=0)
        sim_layer.set_weights([sim_layer.get_weights()[0], sim_layer.get_weights()[1] + shift])
        corrected.layers[index].set_weights([kernel, bias + shift])
        shifts[layer.name] = float(np.max(np.abs(shift)))
    return corrected, shifts
