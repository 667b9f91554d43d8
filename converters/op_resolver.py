"""The TFLM op resolver of a generated firmware: exactly the ops the flatbuffer uses.

`model_ops_h` writes `include/model_ops.h`, which registers each op with its
`MicroMutableOpResolver` method, so only those kernels are linked; `generated_ops` reads
the list back from a written project.

Example:
    >>> resolver_methods(["FULLY_CONNECTED", "SOFTMAX"])
    ['AddFullyConnected', 'AddSoftmax']
"""

from __future__ import annotations

import pathlib
import re

from dynhp_tf.converters.errors import FirmwareError
from dynhp_tf.converters.render import render

# Builtin op (name in the flatbuffer) -> MicroMutableOpResolver method that registers it.
# Method names as declared in tensorflow/lite/micro/micro_mutable_op_resolver.h of
# tensorflow/tflite-micro. Only ops with an int8 (or float) TFLM kernel are listed.
OP_RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "CAST": "AddCast",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "ELU": "AddElu",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "HARD_SWISH": "AddHardSwish",
    "L2_NORMALIZATION": "AddL2Normalization",
    "LEAKY_RELU": "AddLeakyRelu",
    "LOGISTIC": "AddLogistic",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MUL": "AddMul",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "REDUCE_MAX": "AddReduceMax",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "SHAPE": "AddShape",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNPACK": "AddUnpack",
}


def resolver_methods(ops: list[str]) -> list[str]:
    """The `MicroMutableOpResolver` method for each op; refuses ops it does not know."""
    unknown = sorted(op for op in set(ops) if op not in OP_RESOLVER_METHODS)
    if unknown:
        raise FirmwareError(
            f"no TFLM op resolver method known for {', '.join(unknown)}; "
            f"supported ops: {', '.join(sorted(OP_RESOLVER_METHODS))}"
        )
    return [OP_RESOLVER_METHODS[op] for op in ops]


def model_ops_h(model_name: str, ops: list[str]) -> str:
    """The text of `include/model_ops.h`: a resolver sized for and registering `ops`."""
    lines = "\n".join(
        f"  if (resolver.{method}() != kTfLiteOk) return kTfLiteError;"
        for method in resolver_methods(ops)
    )
    return render("model_ops.h.tmpl", model_name=model_name, op_count=len(ops),
                  ops=", ".join(ops), registrations=lines)


def generated_ops(project_dir: pathlib.Path) -> list[str]:
    """Op names listed in a generated project's `include/model_ops.h` (for checks)."""
    methods = re.findall(r"resolver\.(\w+)\(\)", (pathlib.Path(project_dir) /
                                                   "include/model_ops.h").read_text())
    by_method = {m: op for op, m in OP_RESOLVER_METHODS.items()}
    return sorted(by_method[m] for m in methods)
