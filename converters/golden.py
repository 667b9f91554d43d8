"""Golden vectors of a generated firmware: the inputs TFLM got on the host and the outputs
it returned, checked against the flatbuffer's I/O tensors, with the tolerance the device's
outputs are judged by, and their C source (`src/golden_data.cc`).

Example:
    >>> golden_in, golden_out, tolerance = check_golden(tflite_model, x_int8, y_int8)
    >>> source = golden_data_cc(golden_in, golden_out)
"""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf.converters.c_source import c_array
from dynhp_tf.converters.errors import FirmwareError
from dynhp_tf.converters.render import render

# Must equal DYNHP_MAX_GOLDEN in firmware/core/dynhp_runner.h.
MAX_GOLDEN = 32
# int8 outputs: optimized kernels (ESP-NN, CMSIS-NN) may round one requantization step
# differently from the host's reference kernels, so allow 1 LSB and report the max diff.
INT8_TOLERANCE = 1.0
# float outputs without a DEQUANTIZE whose scale we can read: relative float noise only.
FLOAT_TOLERANCE = 1e-5

# Golden array dtype -> (C type, DYNHP_DTYPE_* macro, flatbuffer TensorType).
DTYPES = {
    np.dtype(np.int8): ("int8_t", "DYNHP_DTYPE_INT8", schema.TensorType.INT8),
    np.dtype(np.float32): ("float", "DYNHP_DTYPE_FLOAT32", schema.TensorType.FLOAT32),
}


def _subgraph_io(tflite_model: bytes):
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_model, 0))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise FirmwareError(
            f"the firmware runs models with one input and one output; this one has "
            f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs"
        )
    return model, graph


def check_golden(tflite_model: bytes, golden_inputs, golden_outputs):
    """Golden arrays as numpy, checked against the flatbuffer's I/O tensors."""
    model, graph = _subgraph_io(tflite_model)
    arrays = []
    for what, array, tensor_index in (("golden_inputs", golden_inputs, graph.inputs[0]),
                                      ("golden_outputs", golden_outputs, graph.outputs[0])):
        array = np.asarray(array)
        tensor = graph.tensors[tensor_index]
        if array.dtype not in DTYPES:
            raise FirmwareError(f"{what} has dtype {array.dtype}; expected int8 or float32")
        if DTYPES[array.dtype][2] != tensor.type:
            raise FirmwareError(f"{what} dtype {array.dtype} differs from the model's tensor")
        per_sample = int(np.prod(tensor.shape)) if tensor.shape is not None else 1
        if array.ndim < 1 or len(array) == 0 or array[0].size != per_sample:
            raise FirmwareError(
                f"{what} has shape {array.shape}; expected [n, ...] with {per_sample} "
                f"values per sample (model tensor shape {list(tensor.shape)})"
            )
        arrays.append(array)
    if len(arrays[0]) != len(arrays[1]):
        raise FirmwareError(
            f"{len(arrays[0])} golden inputs but {len(arrays[1])} golden outputs"
        )
    return arrays[0][:MAX_GOLDEN], arrays[1][:MAX_GOLDEN], _output_tolerance(model, graph,
                                                                          arrays[1].dtype)


def _output_tolerance(model, graph, dtype) -> float:
    if dtype == np.int8:
        return INT8_TOLERANCE
    # Float output behind a DEQUANTIZE: one int8 LSB of its input is `scale` in float.
    for op in graph.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.DEQUANTIZE:
            continue
        if op.outputs[0] != graph.outputs[0]:
            continue
        quant = graph.tensors[op.inputs[0]].quantization
        if quant is not None and quant.scale is not None and len(quant.scale):
            return float(quant.scale[0]) * INT8_TOLERANCE * (1 + 1e-6)
    return FLOAT_TOLERANCE


def golden_data_cc(golden_in: np.ndarray, golden_out: np.ndarray) -> str:
    in_ctype = DTYPES[golden_in.dtype][0]
    out_ctype = DTYPES[golden_out.dtype][0]
    return render(
        "golden_data.cc.tmpl", count=len(golden_in), input_shape=list(golden_in.shape[1:]),
        output_shape=list(golden_out.shape[1:]),
        inputs_array=c_array("g_golden_inputs", golden_in, in_ctype, align=16)
        .replace(f"const {in_ctype} g_golden_inputs", "const dynhp_input_t g_golden_inputs"),
        outputs_array=c_array("g_golden_outputs", golden_out, out_ctype, align=16)
        .replace(f"const {out_ctype} g_golden_outputs", "const dynhp_output_t g_golden_outputs"))
