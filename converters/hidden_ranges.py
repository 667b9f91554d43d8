"""Writes the hidden activations' clipped int8 ranges into a calibrated TFLite model.

`dynhp_tf.activation_range.clipped_range` is the rule (why: see there). The TFLite converter
calibrates a float model (min/max per tensor) and then quantizes it; `quantize_int8` calls
`set_activation_ranges` in between, so the converter derives every scale, zero point, bias and
same-scale neighbour (pooling, reshape) from these ranges as it would from its own min/max.

Example:
    >>> calibrated = set_activation_ranges(calibrated, x_calibration)
"""
from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf.activation_range import PERCENTILE, clipped_range
from dynhp_tf.converters.flatbuffer import _opcode_name

# Ops whose output is a Keras Dense/Conv layer's output (its activation fused); the fine-tuning's
# `_ActivationGrid` rounds the same tensors.
_WEIGHTED = ("FULLY_CONNECTED", "CONV_2D")
# Ops whose int8 output must share its input's scale: they take their input's clipped range.
_SAME_SCALE = ("MAX_POOL_2D", "RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def set_activation_ranges(calibrated: bytes, samples, percentile: float | None = PERCENTILE) -> bytes:
    """`calibrated` (the TFLite float model with calibration min/max per tensor that the
    converter hands to its quantizer) with the min/max of every hidden FULLY_CONNECTED and
    CONV_2D output set to `clipped_range` of its values on `samples` (the calibration samples).

    The logits (SOFTMAX's input) and the model's outputs keep their ranges: the exporter sets
    the logits' own (`logit_range.py`). Ops that must keep their input's scale (`_SAME_SCALE`)
    follow their input.
    """
    import tensorflow as tf

    if percentile is None:
        return calibrated
    buffer = bytearray(calibrated)
    graph = schema.Model.GetRootAs(buffer, 0).Subgraphs(0)
    model = schema.Model.GetRootAs(buffer, 0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    names = [_opcode_name(schema.OperatorCodeT.InitFromObj(model.OperatorCodes(op.OpcodeIndex()))) for op in ops]
    kept = {int(graph.Outputs(i)) for i in range(graph.OutputsLength())}
    kept |= {int(op.Inputs(0)) for op, name in zip(ops, names) if name == "SOFTMAX"}
    hidden = [int(op.Outputs(0)) for op, name in zip(ops, names) if name in _WEIGHTED]
    hidden = [t for t in hidden if t not in kept]
    if not hidden:
        return calibrated
    interpreter = tf.lite.Interpreter(model_content=bytes(calibrated), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    values = {t: [] for t in hidden}
    for sample in np.asarray(samples, np.float32):
        interpreter.set_tensor(source, sample[None])
        interpreter.invoke()
        for t in hidden:
            values[t].append(interpreter.get_tensor(t).copy())
    ranges = {t: clipped_range(np.stack(v), percentile) for t, v in values.items()}
    for op, name in zip(ops, names):  # in graph order, so a chain of them follows its head
        if name in _SAME_SCALE and int(op.Inputs(0)) in ranges and int(op.Outputs(0)) not in kept:
            ranges[int(op.Outputs(0))] = ranges[int(op.Inputs(0))]
    for t, (low, high) in ranges.items():
        q = graph.Tensors(t).Quantization()
        if q is None or q.MinLength() != 1 or q.MaxLength() != 1:
            continue  # no calibration statistics: the converter leaves the tensor alone anyway
        q.MinAsNumpy()[0], q.MaxAsNumpy()[0] = low, high  # numpy views into `buffer`
    return bytes(buffer)
