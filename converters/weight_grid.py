"""The int8 weight grid of an exported model, per Keras layer: what on-device training must keep to.

`dynhp_tf.online.OnlineTrainer` writes weights as int8 values times the flatbuffer's scales. This
reads those scales (one per tensor, or one per output channel) from the weight tensor of every
FULLY_CONNECTED and CONV_2D op, pairs the ops in order with the model's Dense and Conv2D layers,
and checks the pairing: same shape, and the Keras kernel divided by the scales rounds to the
flatbuffer's int8 values. A model that is not the one exported (or whose kernels the converter
changed, e.g. by folding a BatchNormalization) is refused by layer name.

Example:
    >>> scales = weight_scales(flatbuffer, model)   # {"fc1": array of 1 or 120 scales, ...}
    >>> trainer = OnlineTrainer(model, scales=scales)
"""
from __future__ import annotations

import numpy as np

from dynhp_tf.converters.errors import ExportError
from dynhp_tf.converters.flatbuffer import _model, _operators

# Flatbuffer weight layout (outputs first) -> Keras kernel layout (outputs last).
_KERAS_OPS = {"Dense": ("FULLY_CONNECTED", (1, 0)), "Conv2D": ("CONV_2D", (1, 2, 3, 0))}
# Entries allowed to round differently (TFLite rounds halves away from zero, numpy to even).
_MAX_MISMATCH = 0.01


def weight_scales(tflite_model: bytes, model) -> dict[str, np.ndarray]:
    """Scales of each Dense/Conv2D kernel of `model` in its int8 flatbuffer, by layer name.

    Args:
        tflite_model: the full-integer flatbuffer exported from `model`.
        model: the Keras model that was exported (for DynHP: the compact rebuild).

    Returns:
        Layer name -> float64 array of 1 (per-tensor) or n (per output channel) scales.

    Raises:
        ExportError: the op and layer counts or shapes differ, or a kernel is not on the
            flatbuffer's grid, naming the layer.
    """
    fb = _model(tflite_model)
    subgraph = fb.subgraphs[0]
    ops = [(name, op) for sg, op, name in _operators(fb) if sg is subgraph]
    layers = [layer for layer in model.layers if type(layer).__name__ in _KERAS_OPS]
    weights = [op for name, op in ops if name in {v[0] for v in _KERAS_OPS.values()}]
    if len(weights) != len(layers):
        raise ExportError(f"the flatbuffer has {len(weights)} FULLY_CONNECTED/CONV_2D ops but model "
                          f"'{model.name}' has {len(layers)} Dense/Conv2D layers; is it the exported model?")
    scales = {}
    for layer, op in zip(layers, weights):
        op_name, to_keras = _KERAS_OPS[type(layer).__name__]
        tensor = subgraph.tensors[op.inputs[1]]
        kernel = np.asarray(layer.kernel.numpy(), np.float64)
        values = np.asarray(fb.buffers[tensor.buffer].data, np.uint8).view(np.int8)
        step = np.asarray(tensor.quantization.scale if tensor.quantization else [], np.float64)
        if values.size != kernel.size or step.size not in (1, kernel.shape[-1]) \
                or tuple(np.transpose(np.empty(tensor.shape), to_keras).shape) != kernel.shape:
            raise ExportError(f"layer '{layer.name}' (kernel {kernel.shape}) does not match the flatbuffer's "
                              f"{op_name} weights {tuple(tensor.shape)} with {step.size} scale(s)")
        stored = np.transpose(values.reshape(tensor.shape), to_keras)
        mismatch = np.mean(np.abs(np.round(kernel / step) - stored) > 1)
        if mismatch > _MAX_MISMATCH:
            raise ExportError(f"layer '{layer.name}': {100 * mismatch:.1f}% of its kernel is not the flatbuffer's "
                              f"int8 weights times their scales; is it the exported model?")
        scales[layer.name] = step
    return scales
