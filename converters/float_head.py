"""A float classifier head: the last FULLY_CONNECTED and its SOFTMAX in float32, every other op int8.

Most int8/float top-1 disagreements left after calibration and fine-tuning are near-ties of the
float model's two best classes (gap 0.001-0.14 logits) that the int8 logits' step (about 0.07-0.09
on the 10x LeNet-300-100) cannot separate. Computing the last layer in float on the int8 hidden
activations removes that step (measured in docs/benchmarks.md, "a float classifier head"). The
cost is the last layer's weights at 4 bytes instead of 1, two small float activations and two
more ops.

Why float and not 16-bit: both boards have a single-precision FPU (ESP32 LX6, nRF52840
Cortex-M4F), and the TFLM kernels the firmware registers run these ops in float: reference
FULLY_CONNECTED, SOFTMAX, DEQUANTIZE and QUANTIZE; the CMSIS-NN FULLY_CONNECTED wrapper's
generic registration (`AddFullyConnected()`, which the generated resolver uses; not the
INT8-only one) and ESP-NN's FULLY_CONNECTED and SOFTMAX wrappers keep the reference float path
(tflite-micro kernels/cmsis_nn/fully_connected.cc; esp-tflite-micro kernels/esp_nn/
fully_connected.cc, softmax.cc). A 16x8 FULLY_CONNECTED does not run on the ESP32: the ESP-NN
wrapper requires the input type to equal the filter type and has no int16 case.

The graph (int8 I/O; with float I/O the float SOFTMAX writes the float output directly and the
converter's final DEQUANTIZE goes):

    before: h int8 -FULLY_CONNECTED(int8 W, int32 b)-> z int8 -SOFTMAX-> p int8 (1/256, -128)
    after:  h int8 -DEQUANTIZE-> h float -FULLY_CONNECTED(float W, float b)-> z float
                   -SOFTMAX-> p float -QUANTIZE-> p int8 (1/256, -128)

The weights are the Keras model's float ones, so the head is the float model's last layer exactly.

Example:
    >>> tflite_model = float_head(model, tflite_model)
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf._keras import keras
from dynhp_tf.budget import FLOAT_HEAD_NAMES
from dynhp_tf.converters.errors import QuantizationCheckError
from dynhp_tf.converters.flatbuffer import _opcode_name

# Opcode versions TFLite's builtin resolver accepts for these float/int8 uses (TFLM ignores them).
_VERSIONS = {"DEQUANTIZE": 2, "QUANTIZE": 1}


def softmax_head(model):
    """The model's last layer when it is a Dense with softmax (the head this module makes
    float, and whose logits `converters.logit_range` ranges); None otherwise."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", None) == "softmax":
        return last
    return None


def float_head(model, tflite_model: bytes) -> bytes:
    """`tflite_model` (int8, from `quantize_int8`) with its classifier head in float32.

    Args:
        model: The Keras model `tflite_model` was converted from; its last layer must be a
            Dense with softmax, whose float weights the head takes.
        tflite_model: The int8 flatbuffer.

    Raises:
        QuantizationCheckError: the model does not end in Dense+softmax, or the flatbuffer's
            last ops are not one int8 FULLY_CONNECTED feeding one SOFTMAX with weights of the
            Dense's shape.
    """
    layer = softmax_head(model)
    if layer is None:
        raise QuantizationCheckError(
            f"float head: model '{model.name}' must end in a Dense layer with softmax activation; "
            f"its last layer is {type(model.layers[-1]).__name__}")
    flat = schema.ModelT.InitFromPackedBuf(bytearray(tflite_model), 0)
    graph = flat.subgraphs[0]
    names = [_opcode_name(flat.operatorCodes[op.opcodeIndex]) for op in graph.operators]
    softmax = [i for i, n in enumerate(names) if n == "SOFTMAX"]
    fc = _producer(graph, int(graph.operators[softmax[0]].inputs[0])) if len(softmax) == 1 else None
    if fc is None or names[fc] != "FULLY_CONNECTED" or graph.tensors[graph.operators[fc].inputs[0]].type != schema.TensorType.INT8:
        raise QuantizationCheckError("float head: expected one SOFTMAX fed by an int8 FULLY_CONNECTED; "
                                     f"found ops {sorted(set(names))}")
    head, soft = graph.operators[fc], graph.operators[softmax[0]]
    kernel = np.asarray(layer.kernel, np.float32).T  # TFLite keeps [units, inputs]
    weights = graph.tensors[head.inputs[1]]
    if tuple(weights.shape) != kernel.shape:
        raise QuantizationCheckError(f"float head: weights {tuple(weights.shape)} in the flatbuffer, "
                                     f"{kernel.shape} in layer '{layer.name}'")
    _set_float(flat, head.inputs[1], kernel)
    bias = int(head.inputs[2]) if len(head.inputs) > 2 else -1
    if bias >= 0:
        _set_float(flat, bias, np.asarray(layer.bias, np.float32))
    _set_float(flat, head.outputs[0])  # the logits

    hidden = int(head.inputs[0])
    head.inputs[0] = _new_tensor(graph, graph.tensors[hidden], FLOAT_HEAD_NAMES[0].encode())
    graph.operators.insert(fc, _op(flat, "DEQUANTIZE", [hidden], [int(head.inputs[0])]))
    probabilities = int(soft.outputs[0])
    after = [op for op in graph.operators if probabilities in list(op.inputs)]
    if len(after) == 1 and _opcode_name(flat.operatorCodes[after[0].opcodeIndex]) == "DEQUANTIZE":
        soft.outputs[0] = after[0].outputs[0]  # float I/O: SOFTMAX writes the float output
        graph.operators.remove(after[0])
        _drop_tensor(flat, probabilities)
    else:
        soft.outputs[0] = _new_tensor(graph, graph.tensors[probabilities], FLOAT_HEAD_NAMES[1].encode())
        graph.operators.insert(graph.operators.index(soft) + 1,
                               _op(flat, "QUANTIZE", [int(soft.outputs[0])], [probabilities]))
    builder = flatbuffers.Builder(len(tflite_model) + 3 * kernel.size + 4096)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _producer(graph, tensor: int) -> int | None:
    return next((i for i, op in enumerate(graph.operators) if tensor in list(op.outputs)), None)


def _set_float(flat, index: int, values: np.ndarray | None = None) -> None:
    """Tensor `index` becomes float32 without quantization; a constant gets `values`."""
    tensor = flat.subgraphs[0].tensors[index]
    tensor.type, tensor.quantization = schema.TensorType.FLOAT32, None
    if values is None:
        return
    users = [t for g in flat.subgraphs for t in g.tensors if t.buffer == tensor.buffer]
    if len(users) != 1:
        raise QuantizationCheckError(f"float head: tensor {index} shares its buffer with another tensor")
    flat.buffers[tensor.buffer].data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)


def _new_tensor(graph, like, name: bytes) -> int:
    """A float32 activation tensor of `like`'s shape; returns its index."""
    tensor = schema.TensorT()
    tensor.shape = np.array(like.shape, np.int32)
    tensor.type, tensor.buffer, tensor.name = schema.TensorType.FLOAT32, 0, name
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _op(flat, name: str, inputs: list[int], outputs: list[int]):
    code = getattr(schema.BuiltinOperator, name)
    index = next((i for i, c in enumerate(flat.operatorCodes) if _opcode_name(c) == name), None)
    if index is None:
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), _VERSIONS[name]
        flat.operatorCodes.append(opcode)
        index = len(flat.operatorCodes) - 1
    else:
        flat.operatorCodes[index].version = max(flat.operatorCodes[index].version, _VERSIONS[name])
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = index, np.array(inputs, np.int32), np.array(outputs, np.int32)
    return op


def _drop_tensor(flat, index: int) -> None:
    """Remove activation tensor `index` (no op uses it any more) and renumber the rest."""
    graph = flat.subgraphs[0]
    del graph.tensors[index]

    def renumber(indices):
        return None if indices is None else np.array([i - (i > index) for i in indices], np.int32)

    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    for signature in flat.signatureDefs or []:
        for item in (signature.inputs or []) + (signature.outputs or []):
            item.tensorIndex -= item.tensorIndex > index
