"""The C-runtime project of an export: generated model C, golden vectors and the static
runtime sources, laid out so that one command builds it for the host or for a Cortex-M4
under QEMU (`dynhp_tf.converters.emulate`).

Layout of the written directory:

    src/        dynhp_model.c (generated), dynhp_golden.c (generated), dynhp_kernels.c,
                dynhp_c_runner.c
    include/    dynhp_model.h, dynhp_golden.h (generated), dynhp_kernels.h,
                dynhp_c_runner.h, dynhp_platform.h
    mps2/       the QEMU mps2-an386 platform layer (startup, linker script, semihosting)
    host/       the PC platform layer
    Makefile    `make host`, `make mps2`, `make run-qemu`

Given a board, the same directory is also a PlatformIO project for it with no TFLM
library: `platformio.ini` from the board profile's `[firmware]` table, the board's own
platform layer from `firmware/layers/<layer>` (the file the TFLM project uses), and, in
place of that layer's TFLM main, the C runtime's main from
`firmware/c_runtime/boards/<layer>` (plus, for ESP-IDF, a component file without TFLM).
PlatformIO compiles `src/` only, so `mps2/` and `host/` stay out of the board build.

Example:
    >>> info = write_c_project(path, tflite_model, model_name="lenet", board_name="nano33ble",
    ...                        golden_inputs=x, golden_outputs=y, tolerance=1.0)
"""

from __future__ import annotations

import importlib.resources
import pathlib

import numpy as np

from dynhp_tf.converters.c_runtime import ModelC, generate_model_c
from dynhp_tf.converters.c_source import c_array
from dynhp_tf.converters.figures import host_figures_json
from dynhp_tf.converters.firmware_project import (FIRMWARE_PACKAGE, board_data, package_files,
                                                 platformio_ini, model_hash)
from dynhp_tf.converters.render import render

_CTYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.float32): "float"}



def _static_files() -> dict[str, bytes]:
    root = importlib.resources.files(FIRMWARE_PACKAGE)
    files = {}
    for rel, dest in (
        ("c_runtime/dynhp_kernels.c", "src/dynhp_kernels.c"),
        ("c_runtime/dynhp_c_runner.c", "src/dynhp_c_runner.c"),
        ("c_runtime/dynhp_kernels.h", "include/dynhp_kernels.h"),
        ("c_runtime/dynhp_c_runner.h", "include/dynhp_c_runner.h"),
        ("core/dynhp_platform.h", "include/dynhp_platform.h"),
        ("c_runtime/host/platform_host.c", "host/platform_host.c"),
        ("c_runtime/host/main_host.c", "host/main_host.c"),
        ("c_runtime/host/batch_main.c", "host/batch_main.c"),
    ):
        files[dest] = root.joinpath(rel).read_bytes()
    mps2 = root.joinpath("c_runtime/qemu_mps2_an386")
    for entry in mps2.iterdir():
        if entry.is_file():
            files[f"mps2/{entry.name}"] = entry.read_bytes()
    return files


def golden_sources(*, model_name: str, board_name: str, digest: str, model_bytes: int,
                   golden_inputs: np.ndarray, golden_outputs: np.ndarray,
                   tolerance: float) -> dict[str, str]:
    """`dynhp_golden.h` (identity, tolerance) and `dynhp_golden.c` (the vectors)."""
    in_type = _CTYPES[np.asarray(golden_inputs).dtype]
    out_type = _CTYPES[np.asarray(golden_outputs).dtype]
    header = render("dynhp_golden.h.tmpl", board_name=board_name, model_name=model_name,
                    digest=digest, model_bytes=model_bytes, golden_count=len(golden_inputs),
                    tolerance=repr(float(tolerance)))
    source = render(
        "dynhp_golden.c.tmpl",
        inputs_array=c_array("g_golden_inputs", golden_inputs, in_type)
        .replace(f"const {in_type} g_golden_inputs", "const dynhp_model_input_t g_golden_inputs"),
        outputs_array=c_array("g_golden_outputs", golden_outputs, out_type)
        .replace(f"const {out_type} g_golden_outputs",
                 "const dynhp_model_output_t g_golden_outputs"))
    return {"include/dynhp_golden.h": header, "src/dynhp_golden.c": source}


def board_files(board, *, model_name: str, digest: str, model: ModelC,
                golden_count: int) -> dict[str, bytes]:
    """The PlatformIO side of the project for `board` (a Board, board dict or name)."""
    board_name, title, _, firmware = board_data(board)
    layer = str(firmware["layer"])
    files = dict(package_files(f"layers/{layer}"))
    files.update(package_files(f"c_runtime/boards/{layer}"))  # its main replaces TFLM's
    # The float head's kernels must not be contracted into fused multiply-adds (the board's
    # default in GNU C), or they would round differently from the golden vectors' TFLM run.
    firmware = dict(firmware, build_flags=[*firmware.get("build_flags", []), "-ffp-contract=off"])
    ini = platformio_ini(board_name=board_name, title=title, model_name=model_name,
                          digest=digest, firmware=firmware, tflm=False)
    readme = render("c_project_README.md.tmpl", model_name=model_name, title=title,
                    digest=digest, arena_bytes=f"{model.arena_bytes:,}", macs=f"{model.macs:,}",
                    golden_count=golden_count, platform=firmware["platform"],
                    board=firmware["board"])
    files["platformio.ini"] = ini.encode()
    files["README.md"] = readme.encode()
    files["dynhp_host.json"] = host_figures_json(
        board=board_name, model=model_name, model_hash=digest, runtime="c",
        arena_bytes=model.arena_bytes, model_bytes=model.weight_bytes, golden_count=golden_count,
        tolerance=model.tolerance).encode()
    files[".gitignore"] = render("c_project.gitignore.tmpl").encode()
    return files


def project_files(tflite_model: bytes, *, model_name: str, board_name: str,
                  golden_inputs: np.ndarray, golden_outputs: np.ndarray,
                  tolerance: float, model: ModelC | None = None,
                  board=None) -> tuple[dict[str, bytes], ModelC]:
    """Every file of the C-runtime project as {relative path: bytes}, and the model's C.

    With `board` (a Board, board dict or name), the PlatformIO files too (`board_files`).
    """
    model = model or generate_model_c(tflite_model)
    files = _static_files()
    files["include/dynhp_model.h"] = model.files["dynhp_model.h"].encode()
    files["src/dynhp_model.c"] = model.files["dynhp_model.c"].encode()
    golden = golden_sources(
        model_name=model_name, board_name=board_name, digest=model_hash(tflite_model),
        model_bytes=model.weight_bytes, golden_inputs=golden_inputs,
        golden_outputs=golden_outputs, tolerance=tolerance,
    )
    files.update({k: v.encode() for k, v in golden.items()})
    files["Makefile"] = render("Makefile.tmpl").encode()
    if board is not None:
        files.update(board_files(board, model_name=model_name, digest=model_hash(tflite_model),
                                 model=model, golden_count=len(golden_inputs)))
    return files, model


def write_c_project(out_dir, tflite_model: bytes, **kwargs) -> ModelC:
    """Write the project (see the module docstring) into `out_dir`; returns the model's C."""
    files, model = project_files(tflite_model, **kwargs)
    out_dir = pathlib.Path(out_dir)
    for rel, content in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return model
