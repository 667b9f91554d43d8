"""Rescale hidden ReLU units so each uses more of its layer's int8 range; the float model is unchanged.

The int8 converter gives a layer's output one range for all its units (per-tensor activations),
set by the unit with the largest outputs. A unit whose outputs stay small then sees only a few of
the 256 steps, and its rounding, passed on through the next layer, moves near-tied logits past
each other. ReLU is positively homogeneous: multiplying a unit's incoming weights and bias by c > 0
and dividing its outgoing weights by c leaves the network's function as it was. With
c = sqrt(layer max / unit max) on calibration samples every unit's largest output moves halfway
(geometrically) toward the layer's, so its rounding shrinks relative to what it carries, while its
weights move less than a full equalization would move them (the weights are per-tensor too).

Measured on the demo model (docs/benchmarks.md, section "int8 agreement: hidden-layer ranges,
logit margins, top-logit spread"). Only a ReLU Dense whose output feeds the next layer, a Dense,
directly is rescaled (the Sequential MLP); any other layer is left as it is.

Example:
    >>> equalize_hidden_units(model, x_calibration)   # model's outputs unchanged (up to rounding)
"""
from __future__ import annotations

import numpy as np

from dynhp_tf._keras import keras


def _relu_dense(layer) -> bool:
    return type(layer).__name__ == "Dense" and getattr(layer.activation, "__name__", None) == "relu"


def equalize_hidden_units(model, samples) -> list:
    """Rescales the units of every ReLU Dense of `model` that feeds a Dense (in place).

    Args:
        model: A Sequential-style Keras model (Keras 3 or tf_keras).
        samples: Inputs whose outputs measure each unit's range (the calibration samples).

    Returns:
        The scale factors c, one array per rescaled layer (1 for units that never fire here,
        such as pruned ones, whose zero weights stay zero).
    """
    scales = []
    sequential = isinstance(model, keras.Sequential)  # each layer feeds the next
    for layer, consumer in zip(model.layers[:-1], model.layers[1:]):
        if not _relu_dense(layer) or type(consumer).__name__ != "Dense" or not layer.use_bias \
                or not (sequential or consumer.input is layer.output):
            continue
        outputs = np.asarray(keras.Model(model.inputs, layer.output)(samples), np.float64)
        unit_max = outputs.max(axis=0)
        c = np.ones_like(unit_max)
        live = unit_max > 0
        c[live] = np.sqrt(unit_max.max() / unit_max[live])
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * c.astype(kernel.dtype), bias * c.astype(bias.dtype)])
        following = consumer.get_weights()
        consumer.set_weights([following[0] / c[:, None].astype(following[0].dtype), *following[1:]])
        scales.append(c)
    return scales
