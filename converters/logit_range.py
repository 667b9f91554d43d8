"""The int8 range of a classifier's logits, chosen for what softmax and argmax can see.

The converter gives the last FULLY_CONNECTED output (the logits, SOFTMAX's input) 256 steps
over the smallest and largest logit seen in calibration. The smallest ones (-43 on the
benchmark's 10x LeNet-300-100) belong to classes so far below the winner that softmax gives
them less than its output step (1/256) and argmax never picks them. A logit more than
K = ln(256 (n - 1)) below its sample's largest one (n classes) is such a logit: all of them
together hold less than one output step. So the range here runs from the smallest largest
logit of a calibration sample minus K to the largest logit: on that network 0.23 -> 0.09
logits per step, and int8/float top-1 agreement rose by 0.3 to 0.5 points (docs/benchmarks.md,
section int8_fidelity). Logits below the range saturate at its bottom; their classes still
lose, and the softmax output moves by less than a step.

Nothing else changes: TFLM and TFLite compute FULLY_CONNECTED's output multiplier and
SOFTMAX's input multiplier from the tensors' scales when the model is loaded, the bias stays
on the input x weight scale, and the new scale and zero point are written over the old ones in
place, so the flatbuffer keeps its size and layout.

Example:
    >>> tflite_model = argmax_logit_range(model, tflite_model, x_calibration)
"""
from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf.converters.errors import QuantizationCheckError
from dynhp_tf.converters.flatbuffer import _opcode_name
from dynhp_tf.converters.float_head import softmax_head


def argmax_range(logits: np.ndarray) -> tuple[float, float]:
    """(smallest largest logit of a sample - ln(256 (n - 1)), largest logit), widened to hold 0.

    Args:
        logits: [samples, n classes] float logits of the calibration samples.
    """
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=1)
    below = np.log(256 * (logits.shape[1] - 1))
    return min(float(top.min() - below), 0.0), max(float(top.max()), 0.0)


def set_softmax_input_range(tflite_model: bytes, low: float, high: float) -> bytes:
    """The flatbuffer with the int8 scale and zero point of SOFTMAX's input set to [low, high].

    Raises:
        QuantizationCheckError: the model has no single SOFTMAX fed by a FULLY_CONNECTED
            with a per-tensor int8 output, or another tensor shares its parameters.
    """
    buffer = bytearray(tflite_model)
    model = schema.Model.GetRootAs(buffer, 0)
    graph = model.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    name = [_opcode_name(schema.OperatorCodeT.InitFromObj(model.OperatorCodes(op.OpcodeIndex()))) for op in ops]
    softmax = [op for op, n in zip(ops, name) if n == "SOFTMAX"]
    logits = softmax[0].Inputs(0) if len(softmax) == 1 else None
    producer = [n for op, n in zip(ops, name) if op.OutputsLength() and op.Outputs(0) == logits]
    tensor = graph.Tensors(logits) if logits is not None else None
    if producer != ["FULLY_CONNECTED"] or tensor.Type() != schema.TensorType.INT8 \
            or tensor.Quantization().ScaleLength() != 1:
        raise QuantizationCheckError("logit range: expected one SOFTMAX fed by a FULLY_CONNECTED with a "
                                     f"per-tensor int8 output; found ops {sorted(set(name))}")
    scale, zero = tensor.Quantization().ScaleAsNumpy(), tensor.Quantization().ZeroPointAsNumpy()
    before = _all_scales(graph)
    step = (high - low) / 255
    scale[0] = step  # numpy views into `buffer`: written in place
    zero[0] = int(np.clip(np.round(-128 - low / step), -128, 127))
    changed = [i for i, s in enumerate(_all_scales(graph)) if s != before[i]]
    if changed != [logits]:  # a writer may share identical vectors between tensors
        raise QuantizationCheckError(f"logit range: tensors {changed} share the logits' quantization")
    return bytes(buffer)


def _all_scales(graph) -> list:
    scales = []
    for i in range(graph.TensorsLength()):
        q = graph.Tensors(i).Quantization()
        scales.append(tuple(q.ScaleAsNumpy()) if q is not None and q.ScaleLength() else ())
    return scales


def argmax_logit_range(model, tflite_model: bytes, calibration: np.ndarray) -> bytes:
    """`tflite_model` with its logits' range from `argmax_range` on `model`'s logits for
    `calibration`, when `model` ends in a Dense with softmax; otherwise unchanged (a linear
    output may be a regression, whose whole range matters)."""
    from dynhp_tf.logit_level import logits_function

    head = softmax_head(model)
    if head is None or not head.use_bias:
        return tflite_model
    logits = logits_function(model)
    values = np.concatenate([np.asarray(logits(calibration[i:i + 256])) for i in range(0, len(calibration), 256)])
    return set_softmax_input_range(tflite_model, *argmax_range(values))
