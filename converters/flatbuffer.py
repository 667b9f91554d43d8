"""Read facts from a .tflite flatbuffer: which ops it uses, which tensors are dense weights.

Parsed with the flatbuffer schema module that ships in the `tflite-micro` wheel (the same
schema TFLM itself reads), so the op list is exactly what the firmware's op resolver must
register, independent of TensorFlow's private interpreter APIs.
"""

from __future__ import annotations

import copy

import flatbuffers

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_BUILTIN_NAMES = {
    value: name
    for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_") and isinstance(value, int)
}


def _model(tflite_model: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_model, 0))


def _opcode_name(opcode) -> str:
    # Old flatbuffers keep codes < 127 in deprecatedBuiltinCode only; take the larger.
    code = max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
    if code == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{opcode.customCode.decode() if opcode.customCode else '?'}"
    return _BUILTIN_NAMES.get(code, f"UNKNOWN_{code}")


def _operators(model):
    for subgraph in model.subgraphs or []:
        for op in subgraph.operators or []:
            yield subgraph, op, _opcode_name(model.operatorCodes[op.opcodeIndex])


def op_names(tflite_model: bytes) -> list[str]:
    """Sorted, de-duplicated names of the builtin ops the model uses (e.g. 'FULLY_CONNECTED')."""
    return sorted({name for _, _, name in _operators(_model(tflite_model))})


def input_ops(tflite_model: bytes, kinds) -> tuple[list[str], float | None]:
    """The ops among `kinds` applied to the input before any other op, and the input scale.

    Follows subgraph 0 from its first input through a QUANTIZE (float I/O) and then through
    each op in `kinds` that consumes the tensor, stopping at the first other op.
    """
    model = _model(tflite_model)
    subgraph = model.subgraphs[0]

    def scale(index):
        quantization = subgraph.tensors[index].quantization
        values = None if quantization is None else quantization.scale
        return float(values[0]) if values is not None and len(values) else None

    tensor, chain = int(subgraph.inputs[0]), []
    input_scale = scale(tensor)
    while True:
        consumer = next(((op, _opcode_name(model.operatorCodes[op.opcodeIndex]))
                         for op in subgraph.operators or [] if tensor in list(op.inputs)), None)
        if consumer is None or consumer[1] not in set(kinds) | {"QUANTIZE"}:
            return chain, input_scale
        tensor = int(consumer[0].outputs[0])
        if consumer[1] == "QUANTIZE":  # float I/O: the int8 input is this op's output
            input_scale = scale(tensor)
        else:
            chain.append(consumer[1])


def fully_connected_weight_tensors(tflite_model: bytes) -> list[int]:
    """Tensor indices (subgraph 0) of every FULLY_CONNECTED op's weights (its input 1)."""
    model = _model(tflite_model)
    return [
        int(op.inputs[1])
        for subgraph, op, name in _operators(model)
        if name == "FULLY_CONNECTED" and subgraph is model.subgraphs[0]
    ]


def op_output_models(tflite_model: bytes):
    """For each op of subgraph 0: (op index, op name, its output tensor index, a copy of
    the flatbuffer whose only output is that tensor). Lets a runtime that shows only model
    outputs (TFLM) be compared op by op with one that shows all tensors."""
    model = _model(tflite_model)
    subgraph = model.subgraphs[0]
    for index, op in enumerate(subgraph.operators or []):
        variant = copy.deepcopy(model)
        tensor = int(op.outputs[0])
        variant.subgraphs[0].outputs = [tensor]
        builder = flatbuffers.Builder(len(tflite_model) + 1024)
        builder.Finish(variant.Pack(builder), file_identifier=b"TFL3")
        name = _opcode_name(model.operatorCodes[op.opcodeIndex])
        yield index, name, tensor, bytes(builder.Output())
