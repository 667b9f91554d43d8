"""Ahead-of-time C for an int8 flatbuffer: the model-specific half of the C runtime.

Every op runs in int8, except a float classifier head (`converters.float_head`: DEQUANTIZE,
float FULLY_CONNECTED and SOFTMAX, QUANTIZE), which runs in float32 like TFLM's reference
kernels.

The kernels are static C99 sources in `firmware/c_runtime/`; this module writes only what
belongs to one model: its weights as const arrays, the requantization multipliers and shifts
(computed here in double precision exactly as TFLM's Prepare step computes them), one static
activation arena whose offsets come from an offline lifetime plan, and the call sequence
`dynhp_model_invoke(in, out)`. No interpreter, no heap, no tensor structs at run time.

An op the kernels cannot run is refused here, by name, before anything is written.

Example:
    >>> model = generate_model_c(tflite_model)
    >>> model.files["dynhp_model.c"][:40], model.arena_bytes
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf.converters.c_source import c_array
from dynhp_tf.converters.errors import UnsupportedOpError
from dynhp_tf.converters.flatbuffer import _opcode_name
from dynhp_tf.converters.golden import FLOAT_TOLERANCE
from dynhp_tf.converters.render import render

SUPPORTED_OPS = (
    "ADD", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "LOGISTIC", "MAX_POOL_2D", "MEAN", "QUANTIZE", "RESHAPE", "SOFTMAX",
    "TANH",
)
ALIGN = 4
_T = schema.TensorType
_ACT = schema.ActivationFunctionType
_CTYPE = {_T.INT8: "int8_t", _T.FLOAT32: "float"}
_BYTES = {_T.INT8: 1, _T.FLOAT32: 4}
_FLOAT_MAX = float(np.finfo(np.float32).max)




@dataclasses.dataclass
class ModelC:
    """Generated sources and the figures of the static plan.

    Attributes:
        files: {file name: C source} (`dynhp_model.h`, `dynhp_model.c`).
        arena_bytes: Size of the static activation arena (all intermediate tensors).
        weight_bytes: Bytes of const model data (weights, biases, multipliers, shifts).
        ops: The op names in call order.
        macs: Multiply-accumulates per inference of the conv, depthwise and dense layers.
        tolerance: The golden check's largest allowed difference from TFLM: 0 (bit-exact),
            except a float output of the float head's SOFTMAX, whose `expf` may differ by
            an ulp between C libraries (glibc on the host, newlib on the board):
            `golden.FLOAT_TOLERANCE`.
    """

    files: dict[str, str]
    arena_bytes: int
    weight_bytes: int
    ops: list[str]
    macs: int
    tolerance: float = 0.0


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(Q0.31 multiplier, power-of-two exponent) of `real`, as TFLM's QuantizeMultiplier."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    fixed = math.floor(fraction * 2.0**31 + 0.5)  # round half away from zero (real > 0)
    if fixed == 2**31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return 2**31 - 1, 30
    return int(fixed), int(shift)


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


# Real clamp bounds of the fused activations the runtime supports (None: unbounded).
_ACTIVATION_BOUNDS = {_ACT.NONE: (None, None), _ACT.RELU: (0.0, None), _ACT.RELU6: (0.0, 6.0),
                      _ACT.RELU_N1_TO_1: (-1.0, 1.0)}


def _activation_bounds(act: int) -> tuple[float | None, float | None]:
    if act not in _ACTIVATION_BOUNDS:
        raise UnsupportedOpError(f"the C runtime supports fused activations NONE, RELU, "
                                 f"RELU6, RELU_N1_TO_1, not code {act}")
    return _ACTIVATION_BOUNDS[act]


def _activation_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    """int8 clamp bounds of a fused activation (single-precision division, as TFLM)."""
    def q(real: float) -> int:
        return zp + _round_half_away(float(np.float32(real) / np.float32(scale)))

    lo, hi = _activation_bounds(act)
    return -128 if lo is None else max(-128, q(lo)), 127 if hi is None else min(127, q(hi))


def _float_range(act: int) -> tuple[float, float]:
    """Clamp bounds of a fused activation on float32 outputs (TFLM's float range)."""
    lo, hi = _activation_bounds(act)
    return -_FLOAT_MAX if lo is None else lo, _FLOAT_MAX if hi is None else hi


def _bias(op) -> int:
    """The tensor index of an op's optional third input (the bias), or -1."""
    return op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else -1


def _padding(kind: int, in_size: int, out_size: int, k: int, stride: int, dil: int) -> int:
    effective = (k - 1) * dil + 1
    if kind == schema.Padding.VALID:
        return 0
    return max(0, (out_size - 1) * stride + effective - in_size) // 2


class _Graph:
    """Read access to subgraph 0: tensors, their quantization and constant data."""

    def __init__(self, tflite_model: bytes):
        self.model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_model, 0))
        self.raw = tflite_model
        if len(self.model.subgraphs) != 1:
            raise UnsupportedOpError("the C runtime runs models with one subgraph")
        self.g = self.model.subgraphs[0]
        if len(self.g.inputs) != 1 or len(self.g.outputs) != 1:
            raise UnsupportedOpError("the C runtime runs models with one input and one output")

    def tensor(self, i):
        return self.g.tensors[i]

    def shape(self, i) -> list[int]:
        shape = self.tensor(i).shape
        return [int(d) for d in shape] if shape is not None else []

    def size(self, i) -> int:
        return int(np.prod(self.shape(i))) if self.shape(i) else 1

    def nbytes(self, i) -> int:
        kind = self.tensor(i).type
        if kind not in _BYTES:
            raise UnsupportedOpError(f"tensor '{self.name(i)}' has type {kind}; the C runtime "
                                     f"keeps int8 and float32 activations")
        return self.size(i) * _BYTES[kind]

    def is_float(self, i) -> bool:
        return self.tensor(i).type == _T.FLOAT32

    def qparams(self, i) -> tuple[np.ndarray, np.ndarray]:
        q = self.tensor(i).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            raise UnsupportedOpError(f"tensor '{self.name(i)}' is not quantized")
        return np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.int64)

    def scale_zp(self, i) -> tuple[float, int]:
        scales, zps = self.qparams(i)
        return float(scales[0]), int(zps[0])

    def name(self, i) -> str:
        name = self.tensor(i).name
        return name.decode() if isinstance(name, bytes) else str(name)

    def data(self, i) -> np.ndarray | None:
        t = self.tensor(i)
        buf = self.model.buffers[t.buffer]
        raw = None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, np.uint8).tobytes()
        elif getattr(buf, "offset", 0) and buf.offset > 1:
            raw = self.raw[buf.offset:buf.offset + buf.size]
        if raw is None:
            return None
        dtype = {_T.INT8: np.int8, _T.INT32: np.int32, _T.FLOAT32: np.float32}.get(t.type)
        if dtype is None:
            raise UnsupportedOpError(f"constant tensor '{self.name(i)}' has unsupported type "
                                     f"{t.type}")
        return np.frombuffer(raw, dtype).reshape(self.shape(i))


def op_list(tflite_model: bytes) -> list[str]:
    """Names of the model's ops in execution order."""
    graph = _Graph(tflite_model)
    return [_opcode_name(graph.model.operatorCodes[op.opcodeIndex]) for op in graph.g.operators]


def check_supported(tflite_model: bytes) -> None:
    """Raise `UnsupportedOpError` naming every op the C runtime has no kernel for."""
    missing = sorted(set(op_list(tflite_model)) - set(SUPPORTED_OPS))
    if missing:
        raise UnsupportedOpError(
            f"the C runtime cannot run op(s) {', '.join(missing)}; it runs "
            f"{', '.join(SUPPORTED_OPS)} (use --runtime tflm for this model)"
        )


class _Writer:
    """Collects const arrays, parameter structs and calls while walking the ops."""

    def __init__(self, graph: _Graph):
        self.graph = graph
        self.decls: list[str] = []
        self.calls: list[str] = []
        self.const_bytes = 0
        self.macs = 0

    def array(self, name: str, values, ctype: str) -> str:
        values = np.asarray(values).ravel()
        self.const_bytes += values.size * (1 if ctype == "int8_t" else 4)
        self.decls.append("static " + c_array(name, values, ctype))
        return name

    def struct(self, ctype: str, name: str, fields: dict) -> str:
        body = ", ".join(f".{k} = {v}" for k, v in fields.items())
        self.decls.append(f"static const {ctype} {name} = {{{body}}};\n")
        return name

    def requant(self, n: int, reals) -> tuple[str, str]:
        pairs = [quantize_multiplier(r) for r in reals]
        mult = self.array(f"mult_{n}", [m for m, _ in pairs], "int32_t")
        shift = self.array(f"shift_{n}", [s for _, s in pairs], "int8_t")
        return mult, shift


def _int8_input(graph: _Graph, name: str, i: int) -> None:
    if graph.tensor(i).type != _T.INT8:
        raise UnsupportedOpError(f"{name}: the C runtime needs int8 tensors, "
                                 f"'{graph.name(i)}' is type {graph.tensor(i).type}")


def _conv(w: _Writer, n: int, op, loc, depthwise: bool) -> None:
    g = w.graph
    name = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    x, f = op.inputs[0], op.inputs[1]
    b = _bias(op)
    y = op.outputs[0]
    for i in (x, f, y):
        _int8_input(g, name, i)
    _, in_h, in_w, in_c = g.shape(x)
    _, out_h, out_w, out_c = g.shape(y)
    fshape = g.shape(f)
    k_h, k_w = fshape[1], fshape[2]
    if not depthwise and fshape[3] != in_c:
        raise UnsupportedOpError("CONV_2D with groups is not supported by the C runtime")
    o = op.builtinOptions
    in_scale, in_zp = g.scale_zp(x)
    out_scale, out_zp = g.scale_zp(y)
    f_scales, f_zps = g.qparams(f)
    if np.any(f_zps != 0):
        raise UnsupportedOpError(f"{name}: filter zero point must be 0")
    f_scales = np.broadcast_to(f_scales, (out_c,))
    reals = [float(in_scale) * float(s) / float(out_scale) for s in f_scales]
    mult, shift = w.requant(n, reals)
    filters = g.data(f)
    filt = w.array(f"filter_{n}", filters, "int8_t")
    bias = w.array(f"bias_{n}", g.data(b), "int32_t") if b >= 0 else "0"
    folded = "0"
    if not depthwise:  # windows without padding: sum((x - zp) * w) = sum(x * w) - zp * sum(w)
        raw = g.data(b).astype(np.int64) if b >= 0 else np.zeros(out_c, np.int64)
        values = raw - in_zp * filters.reshape(out_c, -1).astype(np.int64).sum(axis=1)
        if np.any(np.abs(values) >= 2**31):
            raise UnsupportedOpError("CONV_2D: folded bias overflows int32")
        folded = w.array(f"bias_folded_{n}", values, "int32_t")
    lo, hi = _activation_range(o.fusedActivationFunction, out_scale, out_zp)
    fields = dict(
        in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k_h,
        k_w=k_w, stride_h=o.strideH, stride_w=o.strideW, dil_h=o.dilationHFactor,
        dil_w=o.dilationWFactor,
        pad_h=_padding(o.padding, in_h, out_h, k_h, o.strideH, o.dilationHFactor),
        pad_w=_padding(o.padding, in_w, out_w, k_w, o.strideW, o.dilationWFactor),
        depth_multiplier=(out_c // in_c) if depthwise else 1,
        in_zp=in_zp, out_zp=out_zp, act_min=lo, act_max=hi, filter=filt, bias=bias,
        bias_folded=folded, mult=mult, shift=shift,
    )
    w.struct("dynhp_conv_t", f"op_{n}", fields)
    kernel = "dynhp_depthwise_conv2d" if depthwise else "dynhp_conv2d"
    w.calls.append(f"{kernel}(&op_{n}, {loc(x)}, {loc(y)});")
    w.macs += out_h * out_w * out_c * k_h * k_w * (1 if depthwise else in_c)


def _fully_connected(w: _Writer, n: int, op, loc) -> None:
    g = w.graph
    x, f = op.inputs[0], op.inputs[1]
    if g.is_float(x):
        return _fully_connected_f32(w, n, op, loc)
    b = _bias(op)
    y = op.outputs[0]
    for i in (x, f, y):
        _int8_input(g, "FULLY_CONNECTED", i)
    weights = g.data(f)
    if weights is None:
        raise UnsupportedOpError("FULLY_CONNECTED with non-constant weights is not supported")
    units, depth = weights.shape
    in_scale, in_zp = g.scale_zp(x)
    out_scale, out_zp = g.scale_zp(y)
    f_scales, f_zps = g.qparams(f)
    if np.any(f_zps != 0):
        raise UnsupportedOpError("FULLY_CONNECTED: weight zero point must be 0")
    bias = g.data(b).astype(np.int64) if b >= 0 else np.zeros(units, np.int64)
    # sum((x - zp) * w) = sum(x * w) - zp * sum(w): fold the constant part into the bias.
    folded = bias - in_zp * weights.astype(np.int64).sum(axis=1)
    if np.any(np.abs(folded) >= 2**31):
        raise UnsupportedOpError("FULLY_CONNECTED: folded bias overflows int32")
    reals = [float(in_scale) * float(s) / float(out_scale) for s in f_scales]
    mult, shift = w.requant(n, reals)
    lo, hi = _activation_range(op.builtinOptions.fusedActivationFunction, out_scale, out_zp)
    fields = dict(
        rows=g.size(x) // depth, depth=depth, units=units, per_channel=int(len(f_scales) > 1),
        out_zp=out_zp, act_min=lo, act_max=hi,
        weights=w.array(f"weights_{n}", weights, "int8_t"),
        bias_folded=w.array(f"bias_{n}", folded, "int32_t"), mult=mult, shift=shift,
    )
    w.struct("dynhp_fc_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_fully_connected(&op_{n}, {loc(x)}, {loc(y)});")
    w.macs += (g.size(x) // depth) * depth * units


def _float_tensors(graph: _Graph, name: str, *tensors) -> None:
    for i in tensors:
        if i >= 0 and not graph.is_float(i):
            raise UnsupportedOpError(f"{name}: float32 tensors expected, '{graph.name(i)}' is type "
                                     f"{graph.tensor(i).type}")


def _f32(value: float) -> str:
    return f"{float(np.float32(value))!r}f"


def _fully_connected_f32(w: _Writer, n: int, op, loc) -> None:
    """The float head's FULLY_CONNECTED: float32 input, weights, bias and output."""
    g = w.graph
    x, f, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = _bias(op)
    _float_tensors(g, "FULLY_CONNECTED", x, f, b, y)
    weights = g.data(f)
    if weights is None:
        raise UnsupportedOpError("FULLY_CONNECTED with non-constant weights is not supported")
    units, depth = weights.shape
    lo, hi = _float_range(op.builtinOptions.fusedActivationFunction)
    fields = dict(rows=g.size(x) // depth, depth=depth, units=units, act_min=_f32(lo), act_max=_f32(hi),
                  weights=w.array(f"weights_{n}", weights, "float"),
                  bias=w.array(f"bias_{n}", g.data(b), "float") if b >= 0 else "0")
    w.struct("dynhp_fc_f32_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_fully_connected_f32(&op_{n}, {loc(x)}, {loc(y)});")
    w.macs += g.size(x) * units


def _pool(w: _Writer, n: int, op, loc, kernel: str) -> None:
    g = w.graph
    x, y = op.inputs[0], op.outputs[0]
    _int8_input(g, kernel, x)
    _, in_h, in_w, c = g.shape(x)
    _, out_h, out_w, _ = g.shape(y)
    o = op.builtinOptions
    if g.scale_zp(x) != g.scale_zp(y):
        raise UnsupportedOpError(f"{kernel}: input and output quantization differ")
    out_scale, out_zp = g.scale_zp(y)
    lo, hi = _activation_range(o.fusedActivationFunction, out_scale, out_zp)
    fields = dict(
        in_h=in_h, in_w=in_w, c=c, out_h=out_h, out_w=out_w, k_h=o.filterHeight,
        k_w=o.filterWidth, stride_h=o.strideH, stride_w=o.strideW,
        pad_h=_padding(o.padding, in_h, out_h, o.filterHeight, o.strideH, 1),
        pad_w=_padding(o.padding, in_w, out_w, o.filterWidth, o.strideW, 1),
        act_min=lo, act_max=hi,
    )
    w.struct("dynhp_pool_t", f"op_{n}", fields)
    w.calls.append(f"{kernel}(&op_{n}, {loc(x)}, {loc(y)});")


def _mean(w: _Writer, n: int, op, loc) -> None:
    g = w.graph
    x, axes, y = op.inputs[0], op.inputs[1], op.outputs[0]
    _int8_input(g, "MEAN", x)
    shape = g.shape(x)
    axis = g.data(axes)
    if len(shape) != 4 or axis is None or sorted(int(a) % 4 for a in axis.ravel()) != [1, 2]:
        raise UnsupportedOpError("MEAN: the C runtime averages a 4-D tensor over axes 1 and 2 "
                                 "(GlobalAveragePooling2D) only")
    in_scale, in_zp = g.scale_zp(x)
    out_scale, out_zp = g.scale_zp(y)
    # TFLM folds 1/n into the multiplier of in/out: shifted up by floor(log2 n) bits
    # (at most 32, and keeping the exponent >= -31), then divided by n in integers.
    n = shape[1] * shape[2]
    mult, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    up = min(n.bit_length() - 1, 32, 31 + shift)
    fields = dict(h=shape[1], w=shape[2], c=shape[3], in_zp=in_zp, out_zp=out_zp,
                  mult=(mult << up) // n, shift=shift - up)
    w.struct("dynhp_mean_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_mean_hw(&op_{n}, {loc(x)}, {loc(y)});")


def _add(w: _Writer, n: int, op, loc) -> None:
    g = w.graph
    a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
    for i in (a, b, y):
        _int8_input(g, "ADD", i)
    if g.shape(a) != g.shape(b):
        raise UnsupportedOpError("ADD with broadcasting is not supported by the C runtime")
    (sa, za), (sb, zb), (so, zo) = g.scale_zp(a), g.scale_zp(b), g.scale_zp(y)
    twice_max = 2.0 * max(sa, sb)
    m1, s1 = quantize_multiplier(sa / twice_max)
    m2, s2 = quantize_multiplier(sb / twice_max)
    mo, so_ = quantize_multiplier(twice_max / ((1 << 20) * so))
    lo, hi = _activation_range(op.builtinOptions.fusedActivationFunction, so, zo)
    fields = dict(count=g.size(y), in1_offset=-za, in2_offset=-zb, out_zp=zo, act_min=lo,
                  act_max=hi, mult1=m1, mult2=m2, mult_out=mo, shift1=s1, shift2=s2,
                  shift_out=so_)
    w.struct("dynhp_add_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_add(&op_{n}, {loc(a)}, {loc(b)}, {loc(y)});")


def _input_radius(integer_bits: int, left_shift: int) -> int:
    """Largest |input - zero point| whose rescaled value still fits the fixed-point
    format (TFLM's CalculateInputRadius); beyond it the output saturates."""
    return math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))


def _sigmoid(w: _Writer, n: int, op, loc, name: str) -> None:
    """LOGISTIC or TANH: TFLM's Prepare rescales the input to Q4.27 with a multiplier
    from frexp (rounded half away from zero), not through QuantizeMultiplier."""
    g = w.graph
    x, y = op.inputs[0], op.outputs[0]
    for i in (x, y):
        _int8_input(g, name, i)
    out_scale, out_zp = g.scale_zp(y)
    want = (1.0 / 256, -128) if name == "LOGISTIC" else (1.0 / 128, 0)
    if out_zp != want[1] or abs(out_scale - want[0]) > 1e-9:
        raise UnsupportedOpError(f"{name}: int8 output must have scale {want[0]:g} and zero "
                                 f"point {want[1]}")
    in_scale, in_zp = g.scale_zp(x)
    fraction, left_shift = math.frexp(float(in_scale) * (1 << 27))
    mult = _round_half_away(fraction * 2.0**31)
    if mult >= 2**31 or left_shift < 0:
        raise UnsupportedOpError(f"{name}: input scale {in_scale:g} is out of range")
    fields = dict(count=g.size(x), in_zp=in_zp, radius=_input_radius(4, left_shift),
                  input_multiplier=mult, input_left_shift=left_shift)
    w.struct("dynhp_sigmoid_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_{name.lower()}(&op_{n}, {loc(x)}, {loc(y)});")


def _softmax(w: _Writer, n: int, op, loc) -> None:
    g = w.graph
    x, y = op.inputs[0], op.outputs[0]
    if g.is_float(x):  # the float head's
        _float_tensors(g, "SOFTMAX", y)
        depth = g.shape(x)[-1]
        w.struct("dynhp_softmax_f32_t", f"op_{n}",
                 dict(rows=g.size(x) // depth, depth=depth, beta=_f32(op.builtinOptions.beta)))
        w.calls.append(f"dynhp_softmax_f32(&op_{n}, {loc(x)}, {loc(y)});")
        return
    for i in (x, y):
        _int8_input(g, "SOFTMAX", i)
    out_scale, out_zp = g.scale_zp(y)
    if out_zp != -128 or abs(out_scale - 1.0 / 256) > 1e-9:
        raise UnsupportedOpError("SOFTMAX: int8 output must have scale 1/256 and zero point -128")
    in_scale, _ = g.scale_zp(x)
    integer_bits = 5  # the exp argument is Q5.26, as in TFLM
    beta = float(np.float32(op.builtinOptions.beta))
    real = min(beta * in_scale * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    radius = _input_radius(integer_bits, left_shift)
    depth = g.shape(x)[-1]
    fields = dict(rows=g.size(x) // depth, depth=depth, input_multiplier=mult,
                  input_left_shift=left_shift, diff_min=-radius)
    w.struct("dynhp_softmax_t", f"op_{n}", fields)
    w.calls.append(f"dynhp_softmax(&op_{n}, {loc(x)}, {loc(y)});")


def _quant(w: _Writer, n: int, op, loc, quantize: bool) -> None:
    g = w.graph
    x, y = op.inputs[0], op.outputs[0]
    want = (_T.FLOAT32, _T.INT8) if quantize else (_T.INT8, _T.FLOAT32)
    if (g.tensor(x).type, g.tensor(y).type) != want:
        name = "QUANTIZE" if quantize else "DEQUANTIZE"
        raise UnsupportedOpError(f"{name}: the C runtime converts only between float32 and int8")
    scale, zp = g.scale_zp(y if quantize else x)
    w.struct("dynhp_quant_t", f"op_{n}", dict(count=g.size(x), zp=zp, scale=_f32(scale)))
    kernel = "dynhp_quantize" if quantize else "dynhp_dequantize"
    w.calls.append(f"{kernel}(&op_{n}, {loc(x)}, {loc(y)});")


def _reshape(w: _Writer, n: int, op, loc) -> None:
    g = w.graph
    x, y = op.inputs[0], op.outputs[0]
    if g.tensor(x).type != _T.INT8:
        raise UnsupportedOpError("RESHAPE: the C runtime reshapes int8 tensors only")
    if loc(x) == loc(y):  # aliased by the plan: nothing to do at run time
        w.calls.append("/* output aliases the input */")
    else:
        w.calls.append(f"dynhp_copy({loc(x)}, {loc(y)}, {g.size(x)});")


PLAN_TRIES = 64  # shuffled placement orders tried after the deterministic ones


def _place(order, sizes: dict[int, int], life: dict[int, tuple[int, int]]) -> tuple[dict[int, int], int]:
    """First fit in `order`: each tensor at the lowest aligned offset that no tensor alive at
    the same time occupies."""
    offsets: dict[int, int] = {}
    for t in order:
        first, last = life[t]
        busy = sorted((offsets[o], offsets[o] + sizes[o]) for o in offsets
                      if not (life[o][1] < first or last < life[o][0]))
        offset = 0
        for start, end in busy:
            if offset + sizes[t] <= start:
                break
            offset = max(offset, -(-end // ALIGN) * ALIGN)
        offsets[t] = offset
    total = max((offsets[t] + sizes[t] for t in offsets), default=0)
    return offsets, -(-total // ALIGN) * ALIGN


def _plan(graph: _Graph, activations: dict[int, tuple[int, int]]) -> tuple[dict[int, int], int]:
    """Offsets in one arena, from the tensors' lifetimes (first op, last op).

    First fit depends on the order tensors are placed in, and no single order is best for
    every graph (largest-first, TFLM's own choice, wastes a whole tensor on a residual
    block). So several orders are tried, deterministic ones and seeded shuffles, and the
    smallest arena wins; the search stops at the lower bound (the most bytes alive at once).
    """
    sizes = {t: graph.nbytes(t) for t in activations}
    life = activations
    ops = range(min((f for f, _ in life.values()), default=0), max((l for _, l in life.values()), default=-1) + 1)
    bound = max((sum(-(-sizes[t] // ALIGN) * ALIGN for t in life if life[t][0] <= n <= life[t][1])
                 for n in ops), default=0)
    tensors = sorted(activations)
    orders = [
        sorted(tensors, key=lambda t: (-sizes[t], life[t][0])),
        sorted(tensors, key=lambda t: (-(life[t][1] - life[t][0]), -sizes[t], life[t][0])),
        sorted(tensors, key=lambda t: (life[t][0], -sizes[t])),
    ]
    rng = np.random.default_rng(0)
    orders += [list(rng.permutation(tensors)) for _ in range(PLAN_TRIES)]
    best = None
    for order in orders:
        plan = _place(order, sizes, life)
        if best is None or plan[1] < best[1]:
            best = plan
        if best[1] <= bound:
            break
    return best


def generate_model_c(tflite_model: bytes) -> ModelC:
    """C sources for `tflite_model` against the kernels in firmware/c_runtime.

    Raises:
        UnsupportedOpError: an op, op variant or tensor type the runtime cannot run.
    """
    check_supported(tflite_model)
    graph = _Graph(tflite_model)
    g = graph.g
    model_in, model_out = int(g.inputs[0]), int(g.outputs[0])
    for what, i in (("input", model_in), ("output", model_out)):
        if graph.tensor(i).type not in _CTYPE:
            raise UnsupportedOpError(f"model {what} type {graph.tensor(i).type} is not "
                                     f"int8 or float32")
    names = op_list(tflite_model)
    # A RESHAPE only renames bytes: its output is its input's buffer (no copy, no RAM),
    # unless the output is the caller's buffer.
    alias: dict[int, int] = {}
    for name, op in zip(names, g.operators):
        if name == "RESHAPE" and int(op.outputs[0]) != model_out:
            source = int(op.inputs[0])
            alias[int(op.outputs[0])] = alias.get(source, source)

    def root(t) -> int:
        return alias.get(int(t), int(t))

    # Lifetimes (first op writing, last op reading) of every buffer that is neither
    # constant nor the model's input/output (those are the caller's buffers).
    activations: dict[int, tuple[int, int]] = {}
    for n, op in enumerate(g.operators):
        for t in list(op.inputs) + list(op.outputs):
            if int(t) < 0:
                continue
            t = root(t)
            if t in (model_in, model_out) or graph.data(t) is not None:
                continue
            first, last = activations.get(t, (n, n))
            activations[t] = (min(first, n), max(last, n))
    offsets, arena_bytes = _plan(graph, activations)

    def loc(t) -> str:
        t = root(t)
        if t == model_in:
            return "in"
        if t == model_out:
            return "out"
        cast = "(float *)" if graph.tensor(t).type == _T.FLOAT32 else ""
        return f"{cast}(g_arena.bytes + {offsets[t]})"

    writer = _Writer(graph)
    emit = {
        "CONV_2D": lambda n, op: _conv(writer, n, op, loc, depthwise=False),
        "DEPTHWISE_CONV_2D": lambda n, op: _conv(writer, n, op, loc, depthwise=True),
        "FULLY_CONNECTED": lambda n, op: _fully_connected(writer, n, op, loc),
        "MAX_POOL_2D": lambda n, op: _pool(writer, n, op, loc, "dynhp_max_pool"),
        "AVERAGE_POOL_2D": lambda n, op: _pool(writer, n, op, loc, "dynhp_avg_pool"),
        "MEAN": lambda n, op: _mean(writer, n, op, loc),
        "ADD": lambda n, op: _add(writer, n, op, loc),
        "SOFTMAX": lambda n, op: _softmax(writer, n, op, loc),
        "QUANTIZE": lambda n, op: _quant(writer, n, op, loc, quantize=True),
        "DEQUANTIZE": lambda n, op: _quant(writer, n, op, loc, quantize=False),
        "RESHAPE": lambda n, op: _reshape(writer, n, op, loc),
        "LOGISTIC": lambda n, op: _sigmoid(writer, n, op, loc, "LOGISTIC"),
        "TANH": lambda n, op: _sigmoid(writer, n, op, loc, "TANH"),
    }
    for n, (name, op) in enumerate(zip(names, g.operators)):
        emit[name](n, op)
        writer.calls[-1] += f"  /* {name} */"

    in_type, out_type = _CTYPE[graph.tensor(model_in).type], _CTYPE[graph.tensor(model_out).type]
    header = render("dynhp_model.h.tmpl", in_type=in_type, out_type=out_type,
                    input_elements=graph.size(model_in), output_elements=graph.size(model_out),
                    arena_bytes=arena_bytes, op_count=len(names), macs=writer.macs)
    source = render("dynhp_model.c.tmpl", ops=", ".join(names),
                    declarations="\n".join(writer.decls),
                    arena_array_bytes=max(arena_bytes, ALIGN),
                    calls="\n".join(f"  {call}" for call in writer.calls))
    math_output = graph.is_float(model_out) and bool(names) and names[-1] == "SOFTMAX"
    return ModelC(
        files={"dynhp_model.h": header, "dynhp_model.c": source},
        arena_bytes=arena_bytes, weight_bytes=writer.const_bytes, ops=names, macs=writer.macs,
        tolerance=FLOAT_TOLERANCE if math_output else 0.0,
    )
