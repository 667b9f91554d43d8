"""Writes a complete PlatformIO project that runs an exported model on a board.

The project is the portable C++ core (`firmware/core`), the board's thin platform layer
(`firmware/layers/<layer>`), a host build (`firmware/host`) and the generated sources:
the model array, an op resolver with exactly the model's ops, the arena size and the
golden vectors. What differs between boards is data: the `[firmware]` table of the board
profile (`boards/<name>.toml`) names the PlatformIO platform, board, framework, layer and
TFLM library. The op resolver header comes from `op_resolver`, the golden vectors and
their tolerance from `golden`, the text of every generated file from its template
(`converters/templates`, filled in by `render`).

Example:
    >>> write_firmware_project(
    ...     pathlib.Path("out/firmware"), board=load_board("esp32"),
    ...     tflite_model=tflite_model, model_name="lenet_300_100", ops=op_names(tflite_model),
    ...     arena_bytes=7328, golden_inputs=x_int8, golden_outputs=y_int8, host_arena_bytes=5856)
"""

from __future__ import annotations

import hashlib
import importlib.resources
import pathlib
from typing import Any, Iterator

import numpy as np

from dynhp_tf.converters.c_source import c_array, c_identifier
from dynhp_tf.converters.errors import FirmwareError
from dynhp_tf.converters.figures import host_figures_json
from dynhp_tf.converters.flatbuffer import op_names
from dynhp_tf.converters.golden import DTYPES, check_golden, golden_data_cc
from dynhp_tf.converters.op_resolver import model_ops_h, resolver_methods
from dynhp_tf.converters.render import render

FIRMWARE_PACKAGE = "dynhp_tf.firmware"


def model_hash(tflite_model: bytes) -> str:
    """Short form of the flatbuffer's SHA-256 (first 12 hex digits), as the firmware prints it."""
    return hashlib.sha256(tflite_model).hexdigest()[:12]


def board_data(board) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
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


def package_files(subdir: str) -> Iterator[tuple[str, bytes]]:
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


def _model_config_h(*, board_name, model_name, digest, arena_bytes, arena_static, golden_in,
                    golden_out, tolerance) -> str:
    in_ctype, in_macro, _ = DTYPES[golden_in.dtype]
    out_ctype, out_macro, _ = DTYPES[golden_out.dtype]
    return render(
        "model_config.h.tmpl", board_name=board_name, model_name=model_name, digest=digest,
        storage="static array in .bss" if arena_static else "heap, allocated once at boot",
        arena_bytes=arena_bytes, arena_static=1 if arena_static else 0, in_macro=in_macro,
        out_macro=out_macro, in_ctype=in_ctype, out_ctype=out_ctype,
        golden_count=len(golden_in), input_elements=golden_in[0].size,
        output_elements=golden_out[0].size, tolerance=repr(tolerance))


def _model_data_cc(model_name: str, digest: str, tflite_model: bytes) -> str:
    return render("model_data.cc.tmpl", model_name=model_name, digest=digest,
                  model_bytes=len(tflite_model),
                  model_array=c_array("g_model_data", tflite_model, "unsigned char", align=16))


def platformio_ini(*, board_name, title, model_name, digest, firmware, tflm=True) -> str:
    """`platformio.ini` for a board's [firmware] table: with the TFLM library, or (tflm=False,
    the C runtime's project) none; the table's `build_flags` under `build_flags =`."""
    if not tflm:  # the C runtime's project (converters.c_project): no library at all
        lines = ["; C runtime: plain C kernels in src/, no TFLM library."]
    elif firmware["library_source"] == "lib_deps":
        lines = [f"lib_deps = {firmware['library']} @ {firmware['library_version']}"]
    else:
        lines = [f"; {firmware['library']} comes from the ESP-IDF Component Manager:",
                 "; see src/idf_component.yml."]
    flags = list(firmware.get("build_flags", []))
    if flags:
        lines.append("build_flags =")
        lines.extend(f"    {flag}" for flag in flags)
    return render("platformio.ini.tmpl", model_name=model_name, title=title, digest=digest,
                  board_name=board_name, platform=firmware["platform"], board=firmware["board"],
                  framework=firmware["framework"], monitor_speed=firmware["monitor_speed"],
                  library_and_flags="\n".join(lines))


def _idf_component_yml(firmware) -> str:
    return render("idf_component.yml.tmpl", idf_version=firmware.get("idf_version", ">=5.0"),
                  library=firmware["library"], library_version=firmware["library_version"])


def _readme(*, board_name, title, model_name, digest, firmware, arena_bytes, arena_static,
            static_max, ops, golden_count, tolerance, model_bytes) -> str:
    placement = (
        f"a static array (arenas up to {static_max:,} bytes are placed statically; this "
        f"is not the arena limit, which the export's fit check applies)"
        if arena_static else
        f"the heap, allocated once at boot (arenas above {static_max:,} bytes are not "
        f"placed statically; the arena limit is the export's fit check)"
    )
    return render(
        "firmware_README.md.tmpl", model_name=model_name, title=title, digest=digest,
        model_bytes=model_bytes, golden_count=golden_count, board_name=board_name,
        monitor_speed=firmware["monitor_speed"], platform=firmware["platform"],
        board=firmware["board"], framework=firmware["framework"], ops=", ".join(ops),
        arena_bytes=arena_bytes, why=firmware.get("why", ""), placement=placement,
        library=f"`{firmware['library']}` {firmware['library_version']}",
        tolerance=f"{tolerance:g}")


def project_files(
    *,
    board,
    tflite_model: bytes,
    model_name: str,
    ops: list[str],
    arena_bytes: int,
    golden_inputs: np.ndarray,
    golden_outputs: np.ndarray,
    host_arena_bytes: int | None = None,
) -> dict[str, bytes]:
    """Every file of the project, as {relative path: content}; see `write_firmware_project`."""
    board_name, title, top, firmware = board_data(board)
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
    golden_in, golden_out, tolerance = check_golden(tflite_model, golden_inputs, golden_outputs)
    name = c_identifier(model_name)
    digest = model_hash(tflite_model)
    static_max = int(top["static_arena_max_bytes"])
    arena_static = arena_bytes <= static_max

    files: dict[str, bytes] = {}
    layer = str(firmware["layer"])
    for rel, content in package_files(f"layers/{layer}"):
        files[rel] = content
    for rel, content in package_files("core"):
        files[("include/" if rel.endswith(".h") else "src/") + rel] = content
    for rel, content in package_files("host"):
        files[f"host/{rel}"] = content

    text = {
        "platformio.ini": platformio_ini(board_name=board_name, title=title, model_name=name,
                                          digest=digest, firmware=firmware),
        "include/model_config.h": _model_config_h(
            board_name=board_name, model_name=name, digest=digest, arena_bytes=arena_bytes,
            arena_static=arena_static, golden_in=golden_in, golden_out=golden_out,
            tolerance=tolerance),
        "include/model_ops.h": model_ops_h(name, ops),
        "include/model_data.h": render("model_data.h.tmpl"),
        "src/model_data.cc": _model_data_cc(name, digest, tflite_model),
        "src/golden_data.cc": golden_data_cc(golden_in, golden_out),
        "README.md": _readme(board_name=board_name, title=title, model_name=name, digest=digest,
                             firmware=firmware, arena_bytes=arena_bytes,
                             arena_static=arena_static, static_max=static_max, ops=ops,
                             golden_count=len(golden_in), tolerance=tolerance,
                             model_bytes=len(tflite_model)),
        ".gitignore": render("firmware.gitignore.tmpl"),
    }
    if firmware["library_source"] == "idf_component":
        text["src/idf_component.yml"] = _idf_component_yml(firmware)
    elif firmware["library_source"] != "lib_deps":
        raise FirmwareError(
            f"[firmware] library_source must be 'idf_component' or 'lib_deps', "
            f"got '{firmware['library_source']}'"
        )
    text["dynhp_host.json"] = host_figures_json(
        board=board_name, model=name, model_hash=digest,
        model_sha256=hashlib.sha256(tflite_model).hexdigest(), model_bytes=len(tflite_model),
        arena_bytes=arena_bytes, arena_static=arena_static, host_arena_bytes=host_arena_bytes,
        ops=ops, golden_count=len(golden_in), tolerance=tolerance,
        library=f"{firmware['library']} {firmware['library_version']}")
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
    host_arena_bytes: int | None = None,
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
            `golden.MAX_GOLDEN` samples are embedded.
        host_arena_bytes: The arena TFLM needed on the host (without margin), recorded in
            `dynhp_host.json` (`dynhp_tf.converters.figures`) beside `arena_bytes`.

    Raises:
        FirmwareError: unknown op, ops that disagree with the flatbuffer, golden arrays
            that do not match the model's tensors, or a board without `[firmware]`.
    """
    files = project_files(board=board, tflite_model=tflite_model, model_name=model_name,
                          ops=ops, arena_bytes=arena_bytes, golden_inputs=golden_inputs,
                          golden_outputs=golden_outputs,
                          host_arena_bytes=host_arena_bytes)
    out_dir = pathlib.Path(out_dir)
    for rel, content in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
