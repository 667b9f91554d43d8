"""Writes a complete PlatformIO project that runs an exported model on a board.

The project is the portable C++ core (`firmware/core`), the board's thin platform layer
(`firmware/layers/<layer>`), a host build (`firmware/host`) and the generated sources:
the model array, an op resolver with exactly the model's ops, the arena size and the
golden vectors. What differs between boards is data: the `[firmware]` table of the board
profile (`boards/<name>.toml`) names the PlatformIO platform, board, framework, layer and
TFLM library.

Example:
    >>> write_firmware_project(
    ...     pathlib.Path("out/firmware"), board=load_board("esp32"),
    ...     tflite_model=tflite_model, model_name="lenet_300_100", ops=op_names(tflite_model),
    ...     arena_bytes=7328, golden_inputs=x_int8, golden_outputs=y_int8, report={})
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import pathlib
import re
from typing import Any, Iterator

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from dynhp_tf.converters.c_source import c_array, c_identifier
from dynhp_tf.converters.errors import FirmwareError
from dynhp_tf.converters.flatbuffer import op_names

FIRMWARE_PACKAGE = "dynhp_tf.firmware"

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

# Must equal DYNHP_MAX_GOLDEN in firmware/core/dynhp_runner.h.
MAX_GOLDEN = 32
# int8 outputs: optimized kernels (ESP-NN, CMSIS-NN) may round one requantization step
# differently from the host's reference kernels, so allow 1 LSB and report the max diff.
INT8_TOLERANCE = 1.0
# float outputs without a DEQUANTIZE whose scale we can read: relative float noise only.
FLOAT_TOLERANCE = 1e-5

# Golden array dtype -> (C type, DYNHP_DTYPE_* macro, flatbuffer TensorType).
_DTYPES = {
    np.dtype(np.int8): ("int8_t", "DYNHP_DTYPE_INT8", schema.TensorType.INT8),
    np.dtype(np.float32): ("float", "DYNHP_DTYPE_FLOAT32", schema.TensorType.FLOAT32),
}




def model_hash(tflite_model: bytes) -> str:
    """Short form of the flatbuffer's SHA-256 (first 12 hex digits), as the firmware prints it."""
    return hashlib.sha256(tflite_model).hexdigest()[:12]


def resolver_methods(ops: list[str]) -> list[str]:
    """The `MicroMutableOpResolver` method for each op; refuses ops it does not know."""
    unknown = sorted(op for op in set(ops) if op not in OP_RESOLVER_METHODS)
    if unknown:
        raise FirmwareError(
            f"no TFLM op resolver method known for {', '.join(unknown)}; "
            f"supported ops: {', '.join(sorted(OP_RESOLVER_METHODS))}"
        )
    return [OP_RESOLVER_METHODS[op] for op in ops]


def _board_data(board) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(name, title, top-level fields, [firmware] table) of a Board, a dict, or a name."""
    if isinstance(board, str):
        from dynhp_tf.converters.boards import load_board

        board = load_board(board)
    if isinstance(board, dict):
        top = board
        tables = {k: v for k, v in board.items() if isinstance(v, dict)}
    else:
        top = {k: getattr(board, k) for k in ("name", "title", "static_arena_max_bytes",
                                              "arena_budget_bytes") if hasattr(board, k)}
        tables = getattr(board, "tables", None) or getattr(board, "raw", None) or {}
    if "firmware" not in tables:
        raise FirmwareError(f"board profile '{top.get('name', '?')}' has no [firmware] table")
    firmware = tables["firmware"]
    required = ["platform", "board", "framework", "layer", "monitor_speed", "library",
                "library_version", "library_source"]
    missing = [key for key in required if key not in firmware]
    if missing:
        raise FirmwareError(
            f"[firmware] table of board '{top.get('name', '?')}' lacks {', '.join(missing)}"
        )
    if "static_arena_max_bytes" not in top:
        raise FirmwareError(f"board '{top.get('name', '?')}' lacks static_arena_max_bytes")
    return str(top["name"]), str(top.get("title", top["name"])), top, firmware


def _subgraph_io(tflite_model: bytes):
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_model, 0))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise FirmwareError(
            f"the firmware runs models with one input and one output; this one has "
            f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs"
        )
    return model, graph


def _check_golden(tflite_model: bytes, golden_inputs, golden_outputs):
    """Golden arrays as numpy, checked against the flatbuffer's I/O tensors."""
    model, graph = _subgraph_io(tflite_model)
    arrays = []
    for what, array, tensor_index in (("golden_inputs", golden_inputs, graph.inputs[0]),
                                      ("golden_outputs", golden_outputs, graph.outputs[0])):
        array = np.asarray(array)
        tensor = graph.tensors[tensor_index]
        if array.dtype not in _DTYPES:
            raise FirmwareError(f"{what} has dtype {array.dtype}; expected int8 or float32")
        if _DTYPES[array.dtype][2] != tensor.type:
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


def _package_files(subdir: str) -> Iterator[tuple[str, bytes]]:
    """(path relative to `subdir`, content) of every file under firmware/<subdir>."""
    root = importlib.resources.files(FIRMWARE_PACKAGE).joinpath(subdir)

    def walk(node, prefix):
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            if entry.name in ("__pycache__",) or entry.name.endswith(".pyc"):
                continue
            if entry.is_dir():
                yield from walk(entry, f"{prefix}{entry.name}/")
            else:
                yield f"{prefix}{entry.name}", entry.read_bytes()

    if not root.is_dir():
        raise FirmwareError(f"firmware template folder '{subdir}' is missing from the package")
    yield from walk(root, "")


def _host_arena_bytes(report: dict) -> int | None:
    """The TFLM host measurement (without margin) in the exporter's report, if any."""
    from dynhp_tf.converters.monitor import host_figures

    value = host_figures(report or {}).get("host_arena_bytes")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _model_config_h(*, board_name, model_name, digest, arena_bytes, arena_static, golden_in,
                    golden_out, tolerance) -> str:
    in_ctype, in_macro, _ = _DTYPES[golden_in.dtype]
    out_ctype, out_macro, _ = _DTYPES[golden_out.dtype]
    storage = "static array in .bss" if arena_static else "heap, allocated once at boot"
    return f"""\
// Configuration of this firmware build: which model, how much arena, which
// golden vectors. Generated by dynhp-export; the definitions of the golden
// arrays are in src/golden_data.cc.
#ifndef MODEL_CONFIG_H_
#define MODEL_CONFIG_H_

#include <stdint.h>

#define DYNHP_BOARD "{board_name}"
#define DYNHP_MODEL_NAME "{model_name}"
// First 12 hex digits of the SHA-256 of the .tflite flatbuffer.
#define DYNHP_MODEL_HASH "{digest}"

// Host-measured TFLM arena plus the board's margin. Placement: {storage}.
#define DYNHP_ARENA_BYTES {arena_bytes}
#define DYNHP_ARENA_STATIC {1 if arena_static else 0}

#define DYNHP_DTYPE_INT8 1
#define DYNHP_DTYPE_FLOAT32 2
#define DYNHP_INPUT_DTYPE {in_macro}
#define DYNHP_OUTPUT_DTYPE {out_macro}
typedef {in_ctype} dynhp_input_t;
typedef {out_ctype} dynhp_output_t;

// Golden vectors: inputs TFLM was given on the host, and the outputs it produced.
#define DYNHP_GOLDEN_COUNT {len(golden_in)}
#define DYNHP_INPUT_ELEMENTS {golden_in[0].size}u
#define DYNHP_OUTPUT_ELEMENTS {golden_out[0].size}u
// Largest accepted |device - host| per output value: one LSB of the int8 output
// (for a float output behind DEQUANTIZE, that LSB times the output scale).
#define DYNHP_TOLERANCE {tolerance!r}

extern const dynhp_input_t g_golden_inputs[];
extern const dynhp_output_t g_golden_outputs[];

#endif  // MODEL_CONFIG_H_
"""


def _model_ops_h(model_name: str, ops: list[str]) -> str:
    lines = "\n".join(
        f"  if (resolver.{method}() != kTfLiteOk) return kTfLiteError;"
        for method in resolver_methods(ops)
    )
    return f"""\
// Op resolver for {model_name}: exactly the {len(ops)} builtin ops its flatbuffer
// uses ({", ".join(ops)}), so only those kernels are linked.
// Generated by dynhp-export.
#ifndef MODEL_OPS_H_
#define MODEL_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

#define DYNHP_MODEL_OP_COUNT {len(ops)}

typedef tflite::MicroMutableOpResolver<DYNHP_MODEL_OP_COUNT> ModelOpResolver;

inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{
{lines}
  return kTfLiteOk;
}}

#endif  // MODEL_OPS_H_
"""


_MODEL_DATA_H = """\
// The .tflite flatbuffer, compiled into flash. Generated by dynhp-export.
#ifndef MODEL_DATA_H_
#define MODEL_DATA_H_

extern const unsigned char g_model_data[];
extern const unsigned int g_model_data_len;

#endif  // MODEL_DATA_H_
"""


def _model_data_cc(model_name: str, digest: str, tflite_model: bytes) -> str:
    return (
        f"// {model_name}.tflite ({len(tflite_model)} bytes, sha256 {digest}...).\n"
        "// Aligned to 16 bytes: TFLM reads the flatbuffer in place.\n"
        "// Generated by dynhp-export.\n"
        '#include "model_data.h"\n\n'
        + c_array("g_model_data", tflite_model, "unsigned char", align=16)
        + f"\nconst unsigned int g_model_data_len = {len(tflite_model)};\n"
    )


def _golden_data_cc(golden_in: np.ndarray, golden_out: np.ndarray) -> str:
    in_ctype = _DTYPES[golden_in.dtype][0]
    out_ctype = _DTYPES[golden_out.dtype][0]
    return (
        f"// {len(golden_in)} golden samples: inputs as TFLM got them on the host\n"
        f"// (shape {list(golden_in.shape[1:])}) and the outputs it returned\n"
        f"// (shape {list(golden_out.shape[1:])}). Generated by dynhp-export.\n"
        '#include "model_config.h"\n\n'
        + c_array("g_golden_inputs", golden_in, in_ctype, align=16)
        .replace(f"const {in_ctype} g_golden_inputs", "const dynhp_input_t g_golden_inputs")
        + "\n"
        + c_array("g_golden_outputs", golden_out, out_ctype, align=16)
        .replace(f"const {out_ctype} g_golden_outputs", "const dynhp_output_t g_golden_outputs")
    )


def _platformio_ini(*, board_name, title, model_name, digest, firmware, tflm=True) -> str:
    lines = [
        f"; PlatformIO project: {model_name} on the {title}.",
        f"; Generated by dynhp-export for model {digest}; board data from boards/{board_name}.toml.",
        "",
        "[platformio]",
        f"default_envs = {board_name}",
        "",
        f"[env:{board_name}]",
        f"platform = {firmware['platform']}",
        f"board = {firmware['board']}",
        f"framework = {firmware['framework']}",
        f"monitor_speed = {firmware['monitor_speed']}",
    ]
    if not tflm:  # the C runtime's project (converters.c_project): no library at all
        lines.append("; C runtime: plain C kernels in src/, no TFLM library.")
    elif firmware["library_source"] == "lib_deps":
        lines.append(f"lib_deps = {firmware['library']} @ {firmware['library_version']}")
    else:
        lines.append(f"; {firmware['library']} comes from the ESP-IDF Component Manager:")
        lines.append("; see src/idf_component.yml.")
    flags = list(firmware.get("build_flags", []))
    if flags:
        lines.append("build_flags =")
        lines.extend(f"    {flag}" for flag in flags)
    return "\n".join(lines) + "\n"


def _idf_component_yml(firmware) -> str:
    return (
        "# ESP-IDF Component Manager manifest of the application component: the IDF build\n"
        "# that PlatformIO runs downloads these into managed_components/ on first build.\n"
        "dependencies:\n"
        f"  idf: \"{firmware.get('idf_version', '>=5.0')}\"\n"
        f"  {firmware['library']}: \"{firmware['library_version']}\"\n"
    )


def _readme(*, board_name, title, model_name, digest, firmware, arena_bytes, arena_static,
            static_max, ops, golden_count, tolerance, model_bytes) -> str:
    placement = (
        f"a static array (arenas up to {static_max:,} bytes are placed statically; this "
        f"is not the arena limit, which the export's fit check applies)"
        if arena_static else
        f"the heap, allocated once at boot (arenas above {static_max:,} bytes are not "
        f"placed statically; the arena limit is the export's fit check)"
    )
    library = f"`{firmware['library']}` {firmware['library_version']}"
    return f"""\
# {model_name} on the {title}

Firmware generated by `dynhp-export` for model `{digest}` ({model_bytes} bytes of int8
TFLite flatbuffer). At boot it runs the {golden_count} golden inputs through TensorFlow Lite
Micro, compares every output with the output TFLM produced on the host, and prints one JSON
object per line: RAM, stack, per-inference latency and whether the check passed.

## Build, flash, watch

    pio run                     # build
    pio run -t upload           # flash (add --upload-port PORT if several boards are attached)
    dynhp-monitor --port PORT --report dynhp_host.json    # watch

`dynhp-monitor` reads the serial port at {firmware['monitor_speed']} baud, skips boot noise
(anything that is not a JSON line), prints a table of device figures next to the host
figures in `dynhp_host.json` (model hash, arena), and exits with status 0 when the check
passed, 1 when it failed (or the firmware reported an error), 3 when no result arrived
and 4 when the board runs a different model (hash differs). `pio device monitor`
shows the raw lines. The result line repeats every 5 seconds, so the monitor can be
started after the board has booted. Save a run with `pio device monitor > run.log` and
check it later with `dynhp-monitor --log run.log --report dynhp_host.json`.

## What is in here

| Path | What |
|---|---|
| `platformio.ini` | platform `{firmware['platform']}`, board `{firmware['board']}`, framework `{firmware['framework']}` |
| `src/model_data.cc` | the flatbuffer as a 16-byte aligned array |
| `include/model_ops.h` | op resolver with exactly the model's ops: {", ".join(ops)} |
| `include/model_config.h` | arena size ({arena_bytes} bytes), golden-vector shapes, tolerance |
| `src/golden_data.cc` | golden inputs and outputs |
| `src/dynhp_runner.cc`, `include/dynhp_runner.h` | portable core: TFLM only |
| `include/dynhp_platform.h` | the six functions a board layer supplies |
| `src/main.c*`, `src/platform_*` | this board's layer |
| `host/` | the same core built on a PC against a TFLM source tree |
| `dynhp_host.json` | host figures `dynhp-monitor` compares against |

TFLM library: {library}. {firmware.get('why', '')}

The arena ({arena_bytes} bytes: the host measurement plus the board's margin) lives in
{placement}. Outputs may differ from the host by at most {tolerance:g} per value (one LSB
of the int8 output), because the optimized kernels may round differently from the
reference kernels the host ran; the largest difference is always reported as
`max_abs_diff`.

## Output format

    {{"event":"boot","board":"{board_name}","model_hash":"{digest}","arena_bytes":{arena_bytes},...}}
    {{"event":"summary","golden":"passed","arena_used_bytes":...,"heap_free_bytes":...,
     "heap_min_free_bytes":...,"stack_free_min_bytes":...,"inference_us":[...],
     "max_abs_diff":0,"first_mismatch":null,...}}

`golden` is `passed`, `failed` (then `first_mismatch` gives sample, index, expected, got)
or `error` (then `error_stage` and `error` say what failed: model, resolver, arena,
allocate, tensors or invoke). Figures a board cannot measure are `null`.

## Run the same core on a PC

    cd host && make TFLM_DIR=/path/to/tflite-micro run

builds TFLM's `microlite` library from your checkout, compiles the core with a PC
platform layer, runs the golden check and pipes the result into `dynhp-monitor`.

## What was verified where

Verified by `dynhp-export` on the exporting machine: the model runs under the real TFLM
kernels on the host (the `tflite-micro` Python package), the arena measurement, the golden
outputs, this project passes `pio project config`. In the dynhp-tf test suite the generated
sources compile with the host C++ compiler with warnings as errors.

Only you can verify, with the board: that the project builds with the real toolchain and
library (PlatformIO downloads them on first build), that it flashes, and the device
figures (RAM, stack, latency, and that the golden check passes on the board's kernels).
"""


def project_files(
    *,
    board,
    tflite_model: bytes,
    model_name: str,
    ops: list[str],
    arena_bytes: int,
    golden_inputs: np.ndarray,
    golden_outputs: np.ndarray,
    report: dict,
) -> dict[str, bytes]:
    """Every file of the project, as {relative path: content}; see `write_firmware_project`."""
    board_name, title, top, firmware = _board_data(board)
    if not isinstance(arena_bytes, (int, np.integer)) or arena_bytes <= 0:
        raise FirmwareError(f"arena_bytes must be a positive integer, got {arena_bytes!r}")
    arena_bytes = int(arena_bytes)
    flatbuffer_ops = op_names(tflite_model)
    if sorted(set(ops)) != flatbuffer_ops:
        raise FirmwareError(
            f"ops {sorted(set(ops))} differ from the ops in the flatbuffer {flatbuffer_ops}"
        )
    ops = flatbuffer_ops
    resolver_methods(ops)
    golden_in, golden_out, tolerance = _check_golden(tflite_model, golden_inputs, golden_outputs)
    name = c_identifier(model_name)
    digest = model_hash(tflite_model)
    static_max = int(top["static_arena_max_bytes"])
    arena_static = arena_bytes <= static_max

    files: dict[str, bytes] = {}
    layer = str(firmware["layer"])
    for rel, content in _package_files(f"layers/{layer}"):
        files[rel] = content
    for rel, content in _package_files("core"):
        files[("include/" if rel.endswith(".h") else "src/") + rel] = content
    for rel, content in _package_files("host"):
        files[f"host/{rel}"] = content

    text = {
        "platformio.ini": _platformio_ini(board_name=board_name, title=title, model_name=name,
                                          digest=digest, firmware=firmware),
        "include/model_config.h": _model_config_h(
            board_name=board_name, model_name=name, digest=digest, arena_bytes=arena_bytes,
            arena_static=arena_static, golden_in=golden_in, golden_out=golden_out,
            tolerance=tolerance),
        "include/model_ops.h": _model_ops_h(name, ops),
        "include/model_data.h": _MODEL_DATA_H,
        "src/model_data.cc": _model_data_cc(name, digest, tflite_model),
        "src/golden_data.cc": _golden_data_cc(golden_in, golden_out),
        "README.md": _readme(board_name=board_name, title=title, model_name=name, digest=digest,
                             firmware=firmware, arena_bytes=arena_bytes,
                             arena_static=arena_static, static_max=static_max, ops=ops,
                             golden_count=len(golden_in), tolerance=tolerance,
                             model_bytes=len(tflite_model)),
        ".gitignore": ".pio/\nmanaged_components/\ndependencies.lock\nsdkconfig.*\n"
                      "!sdkconfig.defaults\nhost/dynhp_host\n",
    }
    if firmware["library_source"] == "idf_component":
        text["src/idf_component.yml"] = _idf_component_yml(firmware)
    elif firmware["library_source"] != "lib_deps":
        raise FirmwareError(
            f"[firmware] library_source must be 'idf_component' or 'lib_deps', "
            f"got '{firmware['library_source']}'"
        )
    host_figures = {
        "board": board_name,
        "model": name,
        "model_hash": digest,
        "model_sha256": hashlib.sha256(tflite_model).hexdigest(),
        "model_bytes": len(tflite_model),
        "arena_bytes": arena_bytes,
        "arena_static": arena_static,
        "host_arena_bytes": _host_arena_bytes(report),
        "ops": ops,
        "golden_count": len(golden_in),
        "tolerance": tolerance,
        "library": f"{firmware['library']} {firmware['library_version']}",
    }
    text["dynhp_host.json"] = json.dumps(host_figures, indent=2) + "\n"
    files.update({k: v.encode() for k, v in text.items()})
    return files


def write_firmware_project(
    out_dir: pathlib.Path,
    *,
    board,
    tflite_model: bytes,
    model_name: str,
    ops: list[str],
    arena_bytes: int,
    golden_inputs: np.ndarray,
    golden_outputs: np.ndarray,
    report: dict,
) -> None:
    """Write a PlatformIO project for `board` that runs and checks `tflite_model`.

    Args:
        out_dir: Becomes the project root (`platformio.ini` directly inside); created if
            missing. Files of the same name are overwritten, others left alone.
        board: A `dynhp_tf.converters.boards.Board`, a parsed board TOML dict, or a board name; its
            `[firmware]` table chooses platform, framework, layer and TFLM library.
        tflite_model: The flatbuffer bytes, embedded verbatim (16-byte aligned).
        model_name: Used in comments and the JSON output (made into a C identifier).
        ops: Builtin op names the model uses; must equal the flatbuffer's own op list.
        arena_bytes: Arena size including the board margin; written unchanged. Static
            when at most the board's `static_arena_max_bytes`, heap otherwise.
        golden_inputs / golden_outputs: [n, ...] arrays in the model's I/O dtype (int8 or
            float32) as TFLM got and returned them on the host; the first
            `MAX_GOLDEN` samples are embedded.
        report: The exporter's report; the host arena figure is copied from it into
            `dynhp_host.json` when present.

    Raises:
        FirmwareError: unknown op, ops that disagree with the flatbuffer, golden arrays
            that do not match the model's tensors, or a board without `[firmware]`.
    """
    files = project_files(board=board, tflite_model=tflite_model, model_name=model_name,
                          ops=ops, arena_bytes=arena_bytes, golden_inputs=golden_inputs,
                          golden_outputs=golden_outputs, report=report)
    out_dir = pathlib.Path(out_dir)
    for rel, content in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def generated_ops(project_dir: pathlib.Path) -> list[str]:
    """Op names listed in a generated project's `include/model_ops.h` (for checks)."""
    methods = re.findall(r"resolver\.(\w+)\(\)", (pathlib.Path(project_dir) /
                                                   "include/model_ops.h").read_text())
    by_method = {m: op for op, m in OP_RESOLVER_METHODS.items()}
    return sorted(by_method[m] for m in methods)
