"""Device budgets: int8 flatbuffer bytes, TFLM arena bytes and MACs for given kept widths.

`device_plan(model, graph)` walks the Keras graph once and writes down the int8 program the
TFLite converter makes of it: which layers become ops (Dense/Conv, pooling, Flatten, Add,
Softmax) and which fold into the op before them (BatchNormalization, ReLU, Dropout), the
constant tensors (int8 kernels, int32 biases, per-channel scales) and the activation tensors
with the pruning group their channels belong to. `DevicePlan.estimate(kept)` is then plain
arithmetic, cheap enough to call at every pruning step:

- flatbuffer: kernels (1 byte per weight), biases (4 bytes), quantization parameters (12 bytes
  per channel for per-channel tensors), tensor names, plus a fixed cost per tensor, per op (by
  its kind) and per file. The names are written out as the converter makes them from the
  model's own model and layer names (each tensor is named after every TF op fused into it,
  and the TF op names differ between Keras 3 and tf_keras): in a 1.5 KB one-op model they
  are a third of the file, and an average length was 6-12% off there;
- activations the converter does not fuse are ops of their own (sigmoid: LOGISTIC, tanh:
  TANH, softmax: SOFTMAX, swish: LOGISTIC then MUL);
- arena: TFLM's greedy planner (largest buffer first, each at the lowest offset free over its
  lifetime; 16-byte aligned) over the int8 activations, plus its persistent data: 24 bytes
  per tensor, per-op state (node, registration, the kernel's op data) and 8 bytes per
  per-channel output channel (multiplier and shift), plus the allocator's own objects; when
  the activations are small, the planner's scratch or one op's Prepare temporaries take more
  than the plan and set the minimum instead;
- MACs: `PruningGraph.macs`.

The constants were calibrated against the exporter's real flatbuffers and the `tflite-micro`
wheel's smallest working arena (64-bit host) on the test suite's and the benchmark's models
(`tests/test_budget.py` holds every one of them, op-level models included, to 2% and 10% on
both frameworks; the flatbuffer is within 1.1%, within 0.1% above 50 KB). Biases are assumed
non-zero, as after training; the converter drops an all-zero dense bias (an untrained model's:
up to 27% of a tiny model's bytes; conv ops keep theirs), so the exporter, which knows the
final weights, plans with `zero_biases=True`.

Example:
    >>> plan = device_plan(model, pruning_groups(model))
    >>> plan.estimate(plan.graph.sizes).flatbuffer_bytes
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from dynhp_tf._keras import LEGACY
from dynhp_tf.groups import PruningGraph, _inbound, _shape, as_list
from dynhp_tf.layers import RULES

# Calibrated on the tflite-micro wheel and TF's converter (see the module docstring).
FILE_BYTES = 531          # header, operator codes, metadata, signature
TENSOR_BYTES = 84         # Tensor table, shape vector, empty buffer entry, per-tensor quantization
CONSTANT_BYTES = 94       # the same for a constant, whose buffer also holds its data
OP_BYTES = 68             # Operator table, input/output vectors, builtin options (an average)
# The options and vectors by op, where they differ from the average (fitted on the suite's models,
# op-level ones included: a pooling op's Pool2DOptions hold six fields, LOGISTIC has none).
OP_KIND_BYTES = {"FULLY_CONNECTED": 44, "CONV_2D": 63, "DEPTHWISE_CONV_2D": 123, "POOL": 112, "ADD": 134,
                 "MEAN": 56, "RESHAPE": 58, "SOFTMAX": 120, "MUL": 82, "LOGISTIC": 66, "TANH": 66}
CHANNEL_QUANT_BYTES = 12  # one float scale + one int64 zero point per channel, per tensor
QUANT_TABLE_BYTES = 48    # a per-tensor quantization table (in TENSOR_BYTES and CONSTANT_BYTES); float has none
ARENA_FIXED = 700        # interpreter, subgraph and allocator objects, input/output TfLiteTensors
EVAL_TENSOR_BYTES = 24
NODE_BYTES = 89          # node and registration structs, per-op allocations
# Persistent op data of TFLM's reference kernels per op (bytes, 64-bit host).
OP_DATA = {"FULLY_CONNECTED": 88, "CONV_2D": 84, "DEPTHWISE_CONV_2D": 84, "POOL": 40, "RESHAPE": 0,
           "SOFTMAX": 92, "ADD": 64, "MEAN": 48, "LOGISTIC": 16, "TANH": 16, "MUL": 40,
           "ELEMENTWISE": 16, "DEQUANTIZE": 32, "QUANTIZE": 32}
CHANNEL_DATA_BYTES = 8    # per-channel output multiplier and shift (int32 each)
# Arena TFLM needs while it plans (temporary tensors and planner lists): when the activations
# are small, this, not the plan, sets the smallest working arena.
PLANNING_BYTES_PER_TENSOR, PLANNING_BYTES = 59, -120
# Arena one op's Prepare holds at once (temporary input, filter, bias and output tensors and,
# per channel, their quantization arrays), by (op, per-channel): (fixed, per output channel).
# With small activations the largest of these sets the smallest working arena (a one-conv model
# needs 688 bytes there for a 64-byte plan).
PREPARE_BYTES = {("FULLY_CONNECTED", False): (352, 0), ("FULLY_CONNECTED", True): (336, 8),
                 ("CONV_2D", True): (640, 12), ("DEPTHWISE_CONV_2D", True): (640, 12)}
# Activations the converter fuses into the producing op (anything else is an op of its own).
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")
ALIGN = 16
# Pruning aims this much below each limit: the estimates' error on the suite's and the
# benchmark's models is within 1.1% (flatbuffer) and 6% (arena), so the export fits on the
# first try.
SAFETY = {"flatbuffer_bytes": 0.03, "arena_bytes": 0.06, "macs": 0.0}


@dataclasses.dataclass(frozen=True)
class DeviceEstimate:
    """Estimated device figures of one set of widths (bytes; MACs per inference)."""

    flatbuffer_bytes: int
    arena_bytes: int
    macs: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Tensor:
    elements: int           # at full width
    group: int | None       # the pruning group of its channel axis
    name: int = 0           # characters of its name
    bytes: int = 1          # per element: 1 for int8 activations, 4 for a float head's float32 ones


@dataclasses.dataclass(frozen=True)
class _Constant:
    weight: int | None      # index into PruningGraph.weights, or None for a small fixed constant
    bytes_per_element: int
    channels: int = 0                  # output channels at full width
    channels_group: int | None = None  # the group that scales them (None: fixed)
    per_channel: bool | None = False   # scales per channel; None: as the board's dense layers
    name: object = 0                   # characters of its name (while planning: its parts)
    fixed_bytes: int = 0
    quantized: bool = True             # False: float32 (a float head's weights and bias)


@dataclasses.dataclass(frozen=True)
class _Op:
    kind: str
    inputs: tuple[int, ...]
    output: int
    constants: tuple[_Constant, ...] = ()  # a per-channel first one adds multipliers to the op data


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """The int8 program of a model, as data; `estimate(kept)` gives the device figures."""

    graph: PruningGraph
    tensors: tuple[_Tensor, ...]
    ops: tuple[_Op, ...]
    outputs: tuple[int, ...]

    def _scaled(self, elements: int, group: int | None, kept) -> int:
        if group is None:
            return elements
        return elements * int(kept[group]) // self.graph.groups[group].size

    def _channels(self, constant: _Constant, kept) -> int:
        return self._scaled(constant.channels, constant.channels_group, kept)

    def flatbuffer_bytes(self, kept, per_channel_dense: bool = False) -> int:
        total = FILE_BYTES + sum(OP_KIND_BYTES.get(op.kind, OP_BYTES) for op in self.ops)
        names = sum(_string_bytes(t.name) for t in self.tensors)
        total += sum(TENSOR_BYTES - QUANT_TABLE_BYTES * (t.bytes == 4) for t in self.tensors)
        for op in self.ops:
            for c in op.constants:
                total += CONSTANT_BYTES - QUANT_TABLE_BYTES * (not c.quantized)
                names += _string_bytes(c.name)
                if c.weight is None:
                    total += c.fixed_bytes
                    continue
                total += self.graph.weights[c.weight].kept_size(kept) * c.bytes_per_element
                if c.per_channel or (c.per_channel is None and per_channel_dense):
                    total += CHANNEL_QUANT_BYTES * self._channels(c, kept)
        return total + names

    def arena_bytes(self, kept, per_channel_dense: bool = False) -> int:
        sizes = [-(-self._scaled(t.elements, t.group, kept) * t.bytes // ALIGN) * ALIGN for t in self.tensors]
        first = [0] * len(sizes)
        last = [0] * len(sizes)
        for index, op in enumerate(self.ops):
            first[op.output] = index
            for t in op.inputs:
                last[t] = max(last[t], index)
        for t in self.outputs:
            last[t] = len(self.ops) - 1
        head = greedy_plan(sizes, first, last)
        constants = sum(len(op.constants) for op in self.ops)
        channels, prepare = 0, 0
        for op in self.ops:
            c = op.constants[0] if op.constants else None
            per_channel = c is not None and bool(c.per_channel or (c.per_channel is None and per_channel_dense))
            width = self._channels(c, kept) if per_channel else 0
            channels += width
            fixed, per_unit = PREPARE_BYTES.get((op.kind, per_channel), (0, 0))
            prepare = max(prepare, fixed + per_unit * width)
        tail = (ARENA_FIXED + EVAL_TENSOR_BYTES * (len(self.tensors) + constants)
                + sum(NODE_BYTES + OP_DATA[op.kind] for op in self.ops) + CHANNEL_DATA_BYTES * channels)
        planning = PLANNING_BYTES_PER_TENSOR * (len(self.tensors) + constants) + PLANNING_BYTES
        return tail + max(head + ALIGN, planning, prepare)

    def estimate(self, kept, per_channel_dense: bool = False) -> DeviceEstimate:
        """Flatbuffer bytes, host TFLM arena bytes and MACs with `kept[g]` neurons in group g."""
        return DeviceEstimate(self.flatbuffer_bytes(kept, per_channel_dense),
                              self.arena_bytes(kept, per_channel_dense), self.graph.macs(kept))


def _string_bytes(characters: int) -> int:
    """A flatbuffer string: 32-bit length, the characters and a NUL, padded to 4 bytes."""
    return 4 + (characters + 4) // 4 * 4


def greedy_plan(sizes: list[int], first: list[int], last: list[int]) -> int:
    """Arena bytes of TFLM's greedy planner: buffers by decreasing size, each at the lowest
    offset that no buffer placed earlier and alive at the same time occupies."""
    placed: list[tuple[int, int]] = []  # (offset, buffer)
    for b in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        offset = 0
        for start, other in sorted(placed):
            if first[other] > last[b] or first[b] > last[other]:
                continue
            if start - offset >= sizes[b]:
                break
            offset = max(offset, start + sizes[other])
        placed.append((offset, b))
    return max((o + sizes[b] for o, b in placed), default=0)


def device_plan(model, graph: PruningGraph, zero_biases: bool = False, head: str = "int8") -> DevicePlan:
    """The int8 program `dynhp-export` makes of `model` (see the module docstring).

    Args:
        model: The Keras model (full width).
        graph: Its `pruning_groups`.
        zero_biases: Leave out the biases that are all zero now, as the converter does. Only
            for final weights: in training a zero-initialized bias soon becomes non-zero.
        head: "int8", or "float" for the exporter's float classifier head
            (`dynhp_tf.converters.float_head`); the model must end in Dense with softmax.
    """
    layers = list(model.layers)
    inbound = _inbound(model, layers)
    weight_index = {(w.layer, w.attr): i for i, w in enumerate(graph.weights)}
    group_of = {a.layer: a.group for a in graph.activations}
    tensors: list[_Tensor] = []
    names: list = []  # per tensor: its name parts [(layer, TF op role)], or a plain name
    bias_names: dict[int, list] = {}  # an op's output -> its bias's name parts (fused layers extend both)
    ops: list[_Op] = []
    out_of: dict[str, int] = {}

    def new_tensor(layer, group, name) -> int:
        tensors.append(_Tensor(math.prod(d for d in _shape(layer.output)[1:]), group))
        names.append(name)
        return len(tensors) - 1

    def weight(layer, attr, size, group, channels, per_channel, name):
        index = weight_index.get((layer.name, attr))
        return None if index is None else _Constant(index, size, channels, group, per_channel, name)

    if type(model).__name__ == "Sequential":  # its layers leave out the input
        tensors.append(_Tensor(graph.input_elements, None))
        names.append(INPUT_NAME)
    for layer in layers:
        cls = type(layer).__name__
        kind = RULES[cls].kind
        ins = [out_of[name] for name in inbound[layer.name]] or ([0] if tensors and kind != "input" else [])
        src = ins[0] if ins else None
        group = group_of.get(layer.name, None if src is None else tensors[src].group)
        activation = _activation(layer)
        if kind in ("input", "preprocess"):
            out_of[layer.name] = new_tensor(layer, None, INPUT_NAME) if src is None else src
        elif kind == "producer" or cls == "DepthwiseConv2D":
            # Conv kernels are always per-channel; Dense kernels as the board's library needs.
            conv = len(_shape(layer.output)) > 2
            op_kind = ("DEPTHWISE_CONV_2D" if cls == "DepthwiseConv2D" else "CONV_2D") if conv else "FULLY_CONNECTED"
            channels = int(_shape(layer.output)[-1])
            per_channel = True if conv else None
            core = "depthwise" if cls == "DepthwiseConv2D" else ("conv" if conv else "matmul")
            kernel = (weight(layer, "kernel", 1, group, channels, per_channel, [(layer.name, core)])
                      or weight(layer, "depthwise_kernel", 1, group, channels, per_channel, [(layer.name, core)]))
            fused = [(layer.name, activation)] if activation in FUSED_ACTIVATIONS and activation != "linear" else []
            bias = weight(layer, "bias", 4, group, channels, per_channel, None)
            if zero_biases and bias is not None and not np.any(np.asarray(layer.bias)):
                # Dense drops it; conv keeps a zero constant under a generated name.
                bias = dataclasses.replace(bias, name=CONSTANT_NAME) if conv else None
            # The op's output is named after every TF op fused into it (the bias the same, less
            # the kernel's op); a conv output repeats its bias's name, made unique by a "1".
            if bias is None or bias.name is not None:
                name = fused + [(layer.name, core)]
                out_name = name + ["1"] * (conv or not fused)
            else:
                name = fused + [(layer.name, "bias")] + ([(layer.name, core), (layer.name, "conv_bias")] if conv else [])
                out_name = name + ["1"] if conv else [(layer.name, core)] + name
            out = new_tensor(layer, group, out_name)
            if bias is not None and bias.name is None:
                bias = dataclasses.replace(bias, name=name)
                bias_names[out] = name
            ops.append(_Op(op_kind, (src,), out, tuple(c for c in (kernel, bias) if c is not None)))
            for step, op_kind in enumerate(SEPARATE_ACTIVATIONS.get(activation, ("ELEMENTWISE",)) if not fused and activation != "linear" else ()):
                ops.append(_Op(op_kind, (out,) if step == 0 else (out, ops[-1].output),
                               new_tensor(layer, group, [(layer.name, ACTIVATION_OPS[op_kind])])))
            out_of[layer.name] = ops[-1].output
        elif kind == "channelwise" or (kind == "pass" and _shape(layer.output) == _shape(layer.input)
                                       and activation in FUSED_ACTIVATIONS):
            out_of[layer.name] = src  # folded into the op before it (BatchNorm, ReLU, Dropout)
            folded = {"BatchNormalization": "batchnorm", "ReLU": "relu"}.get(cls) or (
                activation if activation != "linear" else None)
            if cls == "BatchNormalization" and src is not None:
                folded = _fold_batchnorm(layer, src, ops, names, bias_names, weight, zero_biases)
            if src is not None and folded is not None and isinstance(names[src], list):
                for name in (names[src], bias_names.get(src)):
                    if name is not None:
                        name[:0] = [(layer.name, folded)]
        elif kind == "view" and len(_shape(layer.input)) == 2:
            out_of[layer.name] = src
        else:
            op_kind = {"view": "RESHAPE", "add": "ADD"}.get(kind) or _pass_kind(cls, activation)
            fixed = {"RESHAPE": (_Constant(None, 0, fixed_bytes=8, name=CONSTANT_NAME),),
                     "MEAN": (_Constant(None, 0, fixed_bytes=8, name=[(layer.name, "reduction_indices")]),)}
            out = new_tensor(layer, group, [(layer.name, cls if cls in _TF_OPS else ACTIVATION_OPS.get(op_kind, op_kind))])
            ops.append(_Op(op_kind, tuple(ins), out, fixed.get(op_kind, ())))
            out_of[layer.name] = out
    outputs = tuple(out_of[t._keras_history[0].name] for t in as_list(model.outputs))
    for t in outputs:  # the converter names a model output "Identity"
        names[t] = OUTPUT_NAME
    if head == "float":
        _float_head(tensors, names, ops)
    scope = model.name + SCOPE_SUFFIX

    def length(name) -> int:
        if isinstance(name, str):
            return len(name)
        # Every TF op is written "<model>/<layer>/<op>", also each of a role's several ops
        # (Keras 3's BatchNorm: "batchnorm/add_1;batchnorm/mul_1;..."); a "1" makes it unique.
        ops = [(layer, op) for part in name if part != "1" for layer, role in [part] for op in _tf_op(role).split(";")]
        return (sum(len(scope) + len(layer) + len(SCOPE_SUFFIX) + 2 + len(op) for layer, op in ops)
                + len(ops) - 1 + name.count("1"))

    tensors = [dataclasses.replace(t, name=length(n)) for t, n in zip(tensors, names)]
    ops = [dataclasses.replace(op, constants=tuple(dataclasses.replace(c, name=length(c.name)) for c in op.constants))
           for op in ops]
    return DevicePlan(graph, tuple(tensors), tuple(ops), outputs)


def _float_head(tensors: list, names: list, ops: list) -> None:
    """The plan's last FULLY_CONNECTED and SOFTMAX as `converters.float_head` makes them:
    DEQUANTIZE, FULLY_CONNECTED and SOFTMAX in float32 (4-byte weights and activations, no
    quantization parameters), then QUANTIZE into the int8 output."""
    fc, soft = ops[-2:] if len(ops) >= 2 else (None, None)
    if fc is None or (fc.kind, soft.kind) != ("FULLY_CONNECTED", "SOFTMAX") or soft.inputs != (fc.output,):
        raise ValueError("a float head needs a model that ends in a Dense layer with softmax activation")

    def float_copy(index, name) -> int:
        tensors.append(dataclasses.replace(tensors[index], bytes=4))
        names.append(name)
        return len(tensors) - 1

    hidden = float_copy(fc.inputs[0], FLOAT_HEAD_NAMES[0])
    tensors[fc.output] = dataclasses.replace(tensors[fc.output], bytes=4)
    probabilities = float_copy(soft.output, FLOAT_HEAD_NAMES[1])
    weights = tuple(dataclasses.replace(c, bytes_per_element=4, per_channel=False, quantized=False)
                    for c in fc.constants)
    ops[-2:] = [_Op("DEQUANTIZE", fc.inputs, hidden), dataclasses.replace(fc, inputs=(hidden,), constants=weights),
                dataclasses.replace(soft, output=probabilities), _Op("QUANTIZE", (probabilities,), soft.output)]


# The classifier head's precision: int8 like every other op, or float32 (`converters.float_head`).
HEADS = ("int8", "float")
# Names `converters.float_head` gives the tensors it adds (the float hidden and softmax output).
FLOAT_HEAD_NAMES = ("float_head/hidden", "float_head/softmax")
# The tensor names TF's converter writes: "<model>/<layer>/<TF op>", the TF ops fused into
# one tensor joined by ";" (tf_keras); Keras 3 calls the model and each layer in a fresh name
# scope, which adds "_1" to both. TF op names by role, (Keras 3, tf_keras).
SCOPE_SUFFIX = "" if LEGACY else "_1"
INPUT_NAME, OUTPUT_NAME, CONSTANT_NAME = "x", "Identity", "arith.constant"
_TF_OPS = {"conv": ("convolution", "Conv2D"), "depthwise": ("depthwise", "depthwise"), "matmul": ("MatMul", "MatMul"),
           "bias": ("BiasAdd", "BiasAdd"), "conv_bias": ("Squeeze", "BiasAdd/ReadVariableOp/resource"),
           # BatchNorm folded into an op with a bias of its own / into one without.
           "batchnorm": ("batchnorm/add_1;batchnorm/mul_1;batchnorm/Rsqrt;batchnorm/sub", "FusedBatchNormV3"),
           "batchnorm_shift": ("batchnorm/add_1;batchnorm/sub", "FusedBatchNormV3"),
           "reduction_indices": ("Mean/reduction_indices",) * 2, "relu": ("Relu",) * 2, "relu6": ("Relu6",) * 2,
           "MaxPooling2D": ("MaxPool2d", "MaxPool"), "AveragePooling2D": ("AvgPool2d", "AvgPool"),
           "Add": ("Add", "add"), "RESHAPE": ("Reshape",) * 2, "MEAN": ("Mean",) * 2}


def _tf_op(role: str) -> str:
    return _TF_OPS[role][LEGACY] if role in _TF_OPS else role


# Activations the converter lowers to ops of their own (after the producer's op, in order),
# and the TF op each op's output is named after.
SEPARATE_ACTIVATIONS = {"softmax": ("SOFTMAX",), "sigmoid": ("LOGISTIC",), "tanh": ("TANH",),
                        "swish": ("LOGISTIC", "MUL"), "silu": ("LOGISTIC", "MUL")}
ACTIVATION_OPS = {"SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "MUL": "mul", "ELEMENTWISE": "Activation"}


def _activation(layer) -> str:
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return "relu" if type(layer).__name__ == "ReLU" else name


def _fold_batchnorm(layer, src, ops, names, bias_names, weight, zero_biases) -> str | None:
    """BatchNorm folds into the op before it: its shift becomes that op's bias (a new one when
    the op had none), and the bias and output are also named after it. A zero shift with
    final weights (untrained) leaves a conv a zero bias under a generated name, a Dense none."""
    index = next((i for i, op in enumerate(ops) if op.output == src), None)
    if index is None or ops[index].kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return None
    shift = np.any(np.asarray(layer.beta)) or np.any(np.asarray(layer.moving_mean))
    conv = ops[index].kind != "FULLY_CONNECTED"
    own_bias = src in bias_names
    named = shift or not zero_biases or own_bias
    if not own_bias and len(ops[index].constants) < 2 and (named or conv):
        name = [part for part in names[src] if part != "1"] if named else CONSTANT_NAME
        kernel = ops[index].constants[0]
        bias = weight(layer, "beta", 4, kernel.channels_group, kernel.channels, True if conv else None, name)
        if bias is not None:
            ops[index] = dataclasses.replace(ops[index], constants=ops[index].constants + (bias,))
            if named:
                bias_names[src] = name
    return None if not named else "batchnorm" if own_bias else "batchnorm_shift"


def _pass_kind(cls: str, activation: str) -> str:
    if "Pooling" in cls:
        return "MEAN" if cls.startswith("Global") and "Average" in cls else "POOL"
    return SEPARATE_ACTIVATIONS.get(activation, ("ELEMENTWISE",))[0]


def meets(estimate: DeviceEstimate, limits: dict[str, int]) -> bool:
    """Every limit holds, with the estimator's safety margin (`SAFETY`)."""
    return all(getattr(estimate, k) <= v * (1 - SAFETY[k]) for k, v in limits.items())


def largest_fitting(plan: DevicePlan, keep, scores, limits: dict[str, int], per_channel_dense=False,
                    min_neurons=1, multiple=1, layer_floor=0.0, floor_neurons=1):
    """The largest network reachable from `keep` by pruning in `scores` order that meets `limits`.

    Returns (params, keep), or None when even the smallest network (`min_neurons`) misses.
    Bisects the parameter target of `dynhp_tf.selection.select` (with the same `layer_floor`
    and `floor_neurons` as the pruning that follows, so the network it returns is the one that
    pruning reaches; floor_neurons=1 by default, since the neuron floor cannot see the arena): a
    smaller target removes a superset of neurons, so every estimate only falls.
    """
    from dynhp_tf.selection import select, smallest_params

    graph = plan.graph

    def fitting(k):
        return meets(plan.estimate([int(x.sum()) for x in k], per_channel_dense), limits)

    if fitting(keep):
        return graph.params([int(k.sum()) for k in keep]), keep
    low, high = smallest_params(graph, min_neurons, multiple), graph.params([int(k.sum()) for k in keep])
    best = select(graph, keep, scores, low, min_neurons, multiple, layer_floor=layer_floor,
                  floor_neurons=floor_neurons)
    if not fitting(best):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        candidate = select(graph, keep, scores, middle, min_neurons, multiple, layer_floor=layer_floor,
                           floor_neurons=floor_neurons)
        if fitting(candidate):
            low, best = middle, candidate
        else:
            high = middle
    return low, best
