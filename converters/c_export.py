"""`dynhp-export --runtime c`: the C-runtime project of an export and its measured figures.

The exporter calls `build_c_runtime` after the TFLM host check. It generates the model's C
(refusing, by name, an op the runtime has no kernel for), writes the project into a
directory, and, when the Cortex-M4 toolchain and QEMU are installed, builds and runs it
under QEMU mps2-an386 (`dynhp_tf.converters.emulate`). Then the fit check and the report use the
measured flash and RAM, labelled as measured; without the toolchain the estimates stay,
labelled as estimates, and the report says why.

Example:
    >>> c = build_c_runtime(tflite_model, tflm, model_name="lenet", board=board, tmp_dir=tmp)
    >>> c.figures["flash_bytes"] if c.figures else c.not_measured
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

from dynhp_tf.converters.c_project import write_c_project
from dynhp_tf.converters.c_runtime import _Graph, generate_model_c
from dynhp_tf.converters.emulate import EmulationError, ToolchainMissingError, emulate_project
from dynhp_tf.converters.fit import FitReport, FitRow
from dynhp_tf.converters.flatbuffer import fully_connected_weight_tensors

MEASURED = "measured under QEMU mps2-an386"


@dataclasses.dataclass
class CRuntime:
    """The generated C runtime: figures measured under QEMU, or why they were not."""

    macs: int
    arena_bytes: int
    weight_bytes: int
    figures: dict | None
    not_measured: str | None
    flatbuffer: dict  # the int8 model the C was generated from: bytes, grid, agreement

    def summary(self) -> dict:
        figures = {k: v for k, v in (self.figures or {}).items() if k != "events"}
        return {"macs": self.macs, "arena_bytes": self.arena_bytes,
                "weight_bytes": self.weight_bytes, "measured": figures or None,
                "not_measured": self.not_measured, "flatbuffer": self.flatbuffer}


def _flatbuffer_summary(tflite_model: bytes, tflm) -> dict:
    """What the generated C runs: its flatbuffer's grid and how it agrees with float."""
    graph = _Graph(tflite_model)
    weights = fully_connected_weight_tensors(tflite_model)
    per_channel = all(len(graph.qparams(i)[0]) == graph.shape(i)[0] for i in weights if not graph.is_float(i))
    return {"bytes": len(tflite_model), "sha256": hashlib.sha256(tflite_model).hexdigest(),
            "dense_quantization": "per-channel" if per_channel else "per-tensor",
            "head": "float" if weights and graph.is_float(weights[-1]) else "int8",
            "top1_agreement": tflm.top1_agreement, "float_accuracy": tflm.float_accuracy,
            "int8_accuracy": tflm.int8_accuracy, "samples": tflm.samples,
            "sample_source": tflm.sample_source}


def build_c_runtime(tflite_model: bytes, tflm, *, model_name: str, board,
                    project_dir: pathlib.Path) -> CRuntime:
    """Write the C project into `project_dir` and measure it under QEMU if possible.

    Raises:
        UnsupportedOpError: an op the C runtime cannot run.
        EmulationError: the firmware was built and run but its golden check failed.
    """
    model = generate_model_c(tflite_model)
    flatbuffer = _flatbuffer_summary(tflite_model, tflm)
    write_c_project(project_dir, tflite_model, model_name=model_name, board_name=board.name,
                    golden_inputs=tflm.golden_inputs, golden_outputs=tflm.golden_outputs,
                    tolerance=model.tolerance,  # 0: bit-exact with TFLM's reference kernels
                    model=model, board=board)  # also a PlatformIO project for the board
    try:
        figures = emulate_project(project_dir)
    except ToolchainMissingError as e:
        return CRuntime(model.macs, model.arena_bytes, model.weight_bytes, None, str(e), flatbuffer)
    if figures["golden"] != "passed" or figures["qemu_exit_status"] != 0:
        raise EmulationError(
            f"the C runtime's golden check {figures['golden']} under QEMU mps2-an386 "
            f"(max difference {figures['max_abs_diff']})"
        )
    return CRuntime(model.macs, model.arena_bytes, model.weight_bytes, figures, None, flatbuffer)


def measured_fit(board, c_runtime: CRuntime, compression: float) -> FitReport:
    """Fit rows from the measured Cortex-M4 image: flash = text + data, RAM = static + stack."""
    f = c_runtime.figures
    rows = (
        FitRow(f"flash ({MEASURED})", int(f["flash_bytes"]), 0, board.flash_bytes),
        FitRow(f"RAM, static + stack ({MEASURED})", int(f["ram_bytes"]), 0, board.ram_bytes),
    )
    worst = max(row.model_bytes / row.limit for row in rows)
    return FitReport(board.name, rows, compression, None if worst <= 1.0 else compression * worst)


def markdown_section(report: dict) -> list[str]:
    """Lines of report.md about the C runtime (empty without one)."""
    c = report.get("c_runtime")
    if not c:
        return []
    lines = ["## C runtime (ahead-of-time, bit-exact with TFLM's reference kernels)", "",
             f"- static activation arena: {c['arena_bytes']:,} bytes; const model data "
             f"{c['weight_bytes']:,} bytes; {c['macs']:,} MACs per inference"]
    fb = c.get("flatbuffer")
    if fb:
        def pct(value):
            return "n/a" if value is None else f"{100 * value:.2f}%"

        head = " and a float32 head" if fb.get("head") == "float" else ""
        lines.append(
            f"- generated from a {fb['bytes']:,}-byte int8 flatbuffer with {fb['dense_quantization']} "
            f"dense layers{head}: top-1 agreement with float {pct(fb['top1_agreement'])} on "
            f"{fb['samples']} {fb['sample_source']} samples, accuracy float "
            f"{pct(fb['float_accuracy'])}, int8 {pct(fb['int8_accuracy'])}")
    m = c.get("measured")
    if m:
        ms, rs = m["model_sizes"], m["runtime_sizes"]
        lines += [
            f"- Cortex-M4 image, {MEASURED} (arm-none-eabi-gcc -Os): flash {m['flash_bytes']:,} "
            f"bytes (model {ms['text'] + ms['data']:,}, runtime {rs['text'] + rs['data']:,}), "
            f"static RAM {m['static_ram_bytes']:,} + stack high water {m['stack_used_bytes']:,}"
            f" = {m['ram_bytes']:,} bytes",
            f"- instructions per inference: {m['instructions_per_inference']:,} "
            f"({m['instructions_per_inference'] / max(1, c['macs']):.2f} per MAC); golden "
            f"check {m['golden']}",
        ]
    else:
        lines.append(f"- not measured ({c['not_measured']}); the fit check uses estimates")
    return lines + [""]
