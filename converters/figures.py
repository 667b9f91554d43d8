"""The two JSON records dynhp-monitor compares, each field defined once: name, type, meaning.

Host figures (`HOST_FIELDS`): what the exporter knows about a firmware build. The project
generators write them as `dynhp_host.json` (`host_figures_json`) and the exporter copies the
TFLM project's record into `report.json` under `host_figures`; `dynhp-monitor --report`
reads either file at exactly that place (`read_host_figures`), never by searching.
Device summary (`SUMMARY_FIELDS`): the firmware's `{"event": "summary", ...}` line.

One name per meaning across both records and the firmware's lines: `arena_bytes` is always
the arena the firmware allocates (margin included), `host_arena_bytes` the arena TFLM
needed on the host, `arena_used_bytes` what the device used. (In `report.json` the TFLM
check's own section keeps its names: `tflm.arena_bytes` there is the host measurement,
`tflm.arena_with_margin` the allocation; the monitor does not read that section.)

Example:
    >>> text = host_figures_json(board="esp32", model="lenet", model_hash="afd47be14185",
    ...                          arena_bytes=7328, golden_count=8, tolerance=1.0)
    >>> read_host_figures(json.loads(text), "dynhp_host.json")["arena_bytes"]
    7328
"""
from __future__ import annotations

import dataclasses
import json

NUMBER = (int, float)


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    types: tuple[type, ...]
    meaning: str
    items: tuple[type, ...] | None = None  # element types of a list


class FiguresError(ValueError):
    """A record with a field of the wrong type, or missing a required field (one line)."""


HOST_FIELDS = (
    Field("board", (str,), "board profile name (boards/<board>.toml)"),
    Field("model", (str,), "model name, as a C identifier"),
    Field("model_hash", (str,), "first 12 hex digits of the flatbuffer's SHA-256, as the firmware prints it"),
    Field("model_sha256", (str,), "the flatbuffer's full SHA-256"),
    Field("model_bytes", (int,), "model data compiled into flash: the flatbuffer (TFLM) or the constant "
                                 "weights (C runtime)"),
    Field("arena_bytes", (int,), "the arena the firmware allocates (and prints as arena_bytes): the TFLM "
                                 "host measurement plus the board's margin, or the C runtime's static plan"),
    Field("arena_static", (bool,), "true: the arena is a static array; false: heap, allocated once at boot"),
    Field("host_arena_bytes", (int,), "the arena TFLM needed on the host, without margin (null: not measured)"),
    Field("ops", (list,), "builtin op names of the flatbuffer", items=(str,)),
    Field("golden_count", (int,), "golden samples the firmware checks"),
    Field("tolerance", NUMBER, "largest accepted |device - host| per output value"),
    Field("library", (str,), "TFLM library and version"),
    Field("runtime", (str,), "'c' for the ahead-of-time C runtime; absent for TFLM"),
)
HOST_REQUIRED = ("board", "model", "model_hash", "arena_bytes", "golden_count", "tolerance")
REPORT_KEY = "host_figures"  # where report.json holds the TFLM project's record

SUMMARY_FIELDS = (
    Field("board", (str,), "board the firmware was built for"),
    Field("model_hash", (str,), "first 12 hex digits of the embedded flatbuffer's SHA-256"),
    Field("golden", (str,), "passed, failed or error"),
    Field("error", (str,), "what failed (golden = error)"),
    Field("error_stage", (str,), "model, resolver, arena, allocate, tensors or invoke"),
    Field("arena_bytes", (int,), "the arena the firmware allocated"),
    Field("arena_used_bytes", (int,), "of which the interpreter used"),
    Field("arena_static", (bool,), "static array (true) or heap (false)"),
    Field("heap_free_bytes", (int,), "free heap after setup"),
    Field("heap_min_free_bytes", (int,), "lowest free heap seen"),
    Field("heap_largest_block_bytes", (int,), "largest free heap block"),
    Field("stack_free_min_bytes", (int,), "stack never used"),
    Field("samples_run", (int,), "golden samples run"),
    Field("golden_count", (int,), "golden samples embedded"),
    Field("max_abs_diff", NUMBER, "largest |device - host| over all outputs"),
    Field("tolerance", NUMBER, "largest accepted difference"),
    Field("inference_us", (list,), "microseconds per inference", items=NUMBER),
    Field("first_mismatch", (dict,), "sample, index, expected, got of the first failure"),
)

_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
               list: "a list", dict: "an object"}


def _is(value, types) -> bool:
    # JSON true/false are Python bools, which are ints too: only a bool field accepts them.
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def check_fields(record: dict, fields, where: str) -> None:
    """Refuse a field of `record` whose value (not null) has the wrong JSON type.

    Raises:
        FiguresError: "<where>: field 'x' is <value>; expected <type>".
    """
    for field in fields:
        value = record.get(field.name)
        if value is None:
            continue
        if not _is(value, field.types) or (field.items and not all(_is(v, field.items) for v in value)):
            expected = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in field.types))
            if field.items:
                expected = "a list of " + ("numbers" if field.items == NUMBER else "strings")
            raise FiguresError(f"{where}: field '{field.name}' is {json.dumps(value)[:40]}; "
                               f"expected {expected}")


def host_figures_json(**values) -> str:
    """The `dynhp_host.json` text: the given fields in schema order, checked.

    Raises:
        KeyError: a name that is not a host field (a generator bug).
        FiguresError: a wrong type, or a required field missing.
    """
    names = [field.name for field in HOST_FIELDS]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise KeyError(f"not host figures: {', '.join(unknown)}")
    record = {name: values[name] for name in names if name in values}
    _check_host(record, "host figures")
    return json.dumps(record, indent=2) + "\n"


def _check_host(record: dict, where: str) -> None:
    missing = [name for name in HOST_REQUIRED if record.get(name) is None]
    if missing:
        raise FiguresError(f"{where}: no {', '.join(missing)} (expected a project's "
                           f"dynhp_host.json or an export's report.json)")
    check_fields(record, HOST_FIELDS, where)


def read_host_figures(document, where: str) -> dict:
    """Host figures from a parsed `dynhp_host.json`, or `report.json`'s `host_figures`.

    Returns every host field (None where absent), `model_hash` in lower case.

    Raises:
        FiguresError: not such a document, a required field missing or of the wrong type.
    """
    if not isinstance(document, dict):
        raise FiguresError(f"{where}: expected a JSON object, got {type(document).__name__}")
    if REPORT_KEY not in document and "tflm" in document:
        raise FiguresError(f"{where}: an export report without '{REPORT_KEY}' (older dynhp-export); "
                           f"pass the project's dynhp_host.json")
    record = document.get(REPORT_KEY, document)
    if not isinstance(record, dict):
        raise FiguresError(f"{where}: '{REPORT_KEY}' is not an object")
    _check_host(record, where)
    figures = {field.name: record.get(field.name) for field in HOST_FIELDS}
    figures["model_hash"] = figures["model_hash"].lower()
    return figures
