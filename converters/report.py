"""The export report: `report.json` (machine-readable) and `report.md` (for people).

`build_report` gathers the figures of every stage into one JSON-ready dict; the Markdown is
rendered from that dict only, so the two files always agree.
"""

from __future__ import annotations

import hashlib
import json
import pathlib


def build_report(
    *, model_path, board, compact, tflite_model: bytes, io: str, head: str = "int8", dense_weights: list[dict],
    tflm, fit, calibration_source: str, seconds: dict[str, float],
) -> dict:
    """One dict with every figure of an export (see `render_markdown` for the layout)."""
    layers = [
        {"name": name, "dense_width": int(dense), "compact_width": int(compact_width),
         "multiple_of_board_width": int(compact_width) % board.width_multiple == 0}
        for name, (dense, compact_width) in compact.widths.items()
    ]
    return {
        "model": {
            "source": str(model_path),
            "params_dense": int(compact.params_dense),
            "params_compact": int(compact.params_compact),
            "compression": compact.params_dense / max(1, compact.params_compact),
            "macs_dense": int(compact.macs_dense),
            "macs_compact": int(compact.macs_compact),
            "rebuild_max_abs_difference": float(compact.max_abs_difference),
            "rebuild_allowed_difference": float(compact.allowed_difference),
            "layers": layers,
        },
        "board": {
            "name": board.name, "title": board.title, "tflm_library": board.tflm_library,
            "per_channel_dense": board.per_channel_dense,
            "width_multiple": board.width_multiple, "arena_margin": board.arena_margin,
            "arena_budget_bytes": board.arena_budget_bytes,
            "static_arena_max_bytes": board.static_arena_max_bytes,
            "base_flash_bytes": board.base_flash_bytes, "base_ram_bytes": board.base_ram_bytes,
        },
        "tflite": {
            "bytes": len(tflite_model),
            "sha256": hashlib.sha256(tflite_model).hexdigest(),
            "io": io,
            "head": head,
            "dense_quantization": "per-channel" if board.per_channel_dense else "per-tensor",
            "dense_weights": dense_weights,
            "calibration": calibration_source,
        },
        "tflm": tflm.summary(),
        "fit": fit.as_dict(),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }


def _percent(value) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f}%"


def _c_runtime_lines(report: dict) -> list[str]:
    from dynhp_tf.converters.c_export import markdown_section  # only reports with a C runtime

    return markdown_section(report) if "c_runtime" in report else []


def _estimate_lines(report: dict) -> list[str]:
    """The training side's estimate (dynhp_tf.budget) beside the measured figures."""
    if "estimate" not in report:
        return []
    rows = [f"| {k} | {v['estimated']:,} | {v['measured']:,} | {100 * v['error']:+.1f}% |"
            for k, v in report["estimate"].items()]
    return ["## Estimate (DynHPCallback's device budget) vs measured", "",
            "| figure | estimated | measured | error |", "|---|---:|---:|---:|", *rows, ""]


def render_markdown(report: dict, fit_table: str) -> str:
    """`report.md`: summary, layer widths, TFLM figures and the fit table."""
    m, b, t, q = report["model"], report["board"], report["tflite"], report["tflm"]
    lines = [
        f"# dynhp-export report: {pathlib.Path(m['source']).name} for {b['title']}",
        "",
        "## Model",
        "",
        "| | dense | compact |",
        "|---|---:|---:|",
        f"| parameters | {m['params_dense']:,} | {m['params_compact']:,} |",
        f"| MACs per inference | {m['macs_dense']:,} | {m['macs_compact']:,} |",
        "",
        f"Compression: {m['compression']:.2f}x. Compact vs original outputs: max abs "
        f"difference {m['rebuild_max_abs_difference']:.2g} on random inputs (allowed: "
        f"{m['rebuild_allowed_difference']:.2g}, float32 rounding at the outputs' scale).",
        "",
        "| layer | dense width | compact width |",
        "|---|---:|---:|",
        *[
            f"| {layer['name']} | {layer['dense_width']} | {layer['compact_width']}"
            f"{'' if layer['multiple_of_board_width'] else ' (not a multiple of ' + str(b['width_multiple']) + ')'} |"
            for layer in m["layers"]
        ],
        "",
        "## int8 TFLite",
        "",
        f"- flatbuffer: {t['bytes']:,} bytes, {t['io']} input/output, "
        f"dense layers {t['dense_quantization']} (verified in the flatbuffer)"
        f"{', float32 classifier head' if t.get('head') == 'float' else ''}",
        f"- calibration: {t['calibration']}",
        f"- ops: {', '.join(q['ops'])}",
        *([f"- {t['preprocessing']['statement']}"] if "preprocessing" in t else []),
        "",
        f"## TFLM host check ({q['samples']} {q['sample_source']} samples)",
        "",
        f"- arena: {q['arena_bytes']:,} bytes minimum (allocator report {q['arena_reported']:,}"
        f" + TFLM's own objects), {q['arena_with_margin']:,} bytes with the board's "
        f"{b['arena_margin']:.0%} margin",
        f"- TFLM vs TFLite interpreter (builtin kernels): {q['tflm_vs_tflite_verdict']} "
        f"({q['tflm_vs_tflite_differing']} differing output values, max abs difference "
        f"{q['tflm_vs_tflite_max_abs_diff']:g})",
        f"- quantization error vs float model: max {q['quantization_max_abs_error']:.4g}, "
        f"mean {q['quantization_mean_abs_error']:.4g}",
        f"- top-1 agreement int8 vs float: {_percent(q['top1_agreement'])}",
        f"- accuracy float: {_percent(q['float_accuracy'])}, int8 (TFLM): "
        f"{_percent(q['int8_accuracy'])}",
        "",
        *_estimate_lines(report),
        *_c_runtime_lines(report),
        f"## Fit on {b['name']}",
        "",
        fit_table,
        "",
        f"Estimates, not measurements (from boards/{b['name']}.toml): the base firmware's "
        f"{b['base_flash_bytes']:,} bytes of flash and {b['base_ram_bytes']:,} bytes of RAM "
        f"(a bare build with TFLM linked, from typical size reports) and the arena margin of "
        f"{b['arena_margin']:.0%} (for device kernels' scratch buffers). The arena limit is "
        f"{b['arena_budget_bytes']:,} bytes; an arena of at most "
        f"{b['static_arena_max_bytes']:,} bytes is placed statically, a larger one on the heap.",
        "",
        f"TFLM library: {b['tflm_library']}.",
        "",
    ]
    return "\n".join(lines)


def write_reports(out_dir: pathlib.Path, report: dict, fit_table: str) -> None:
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(render_markdown(report, fit_table))
