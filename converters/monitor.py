"""`dynhp-monitor`: read the firmware's JSON lines and compare them with the host figures.

The firmware prints one JSON object per line (`{"event": "boot", ...}`, then
`{"event": "summary", ...}` repeated every few seconds). Everything else on the serial
line (ROM boot messages, ESP-IDF logs, TFLM error text) is skipped.

Exit status: 0 when the golden check passed and the model hash matches the host's;
1 when the golden check failed or the firmware reported an error; 2 for a command-line
error; 3 when no summary arrived; 4 when the model hash differs from the host's (the board
runs another model, so its golden check means nothing); 5 when the port or a file cannot
be read, or the summary line or the host figures have a field of the wrong type (or the
host figures lack a required one; their fields: `dynhp_tf.converters.figures`).

Example:
    dynhp-monitor --port /dev/ttyUSB0 --report dynhp_host.json
    dynhp-monitor --log run.log --report out/report.json
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from typing import Any, Iterable, Iterator

import click

from dynhp_tf.converters.figures import (SUMMARY_FIELDS, FiguresError, check_fields,
                                          read_host_figures)

EXIT_OK = 0
EXIT_GOLDEN_FAILED = 1
EXIT_USAGE = 2  # click's own code for command-line errors
EXIT_NO_RESULT = 3
EXIT_HASH_MISMATCH = 4
EXIT_INPUT_ERROR = 5


class InputError(click.ClickException):
    """The serial port, log or report cannot be read."""

    exit_code = EXIT_INPUT_ERROR


def parse_events(lines: Iterable[str]) -> list[dict]:
    """The JSON objects with an "event" key among `lines`; all other lines are skipped."""
    events = []
    for line in lines:
        line = line.strip()
        start = line.find("{")
        if start < 0:
            continue
        try:
            obj = json.loads(line[start:])  # tolerate a prefix such as a timestamp
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("event"), str):
            events.append(obj)
    return events


def check_summary(summary: dict) -> None:
    """Refuse a summary whose fields have the wrong JSON type (`InputError`, one line)."""
    try:
        check_fields(summary, SUMMARY_FIELDS, "summary line")
    except FiguresError as err:
        raise InputError(str(err))


def last_event(events: list[dict], kind: str) -> dict | None:
    """The last event of `kind` ("boot" or "summary"), or None."""
    for event in reversed(events):
        if event["event"] == kind:
            return event
    return None


def hashes_match(device: str | None, host: str | None) -> bool:
    """Same model: one hash is a prefix of the other (short and full SHA-256 forms mix)."""
    if not device or not host:
        return False
    device, host = device.lower(), host.lower()
    n = min(len(device), len(host))
    return n >= 8 and device[:n] == host[:n]


@dataclasses.dataclass
class Verdict:
    """Outcome of comparing one summary with the host figures."""

    exit_code: int
    message: str
    rows: list[tuple[str, str, str, str]]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def judge(summary: dict | None, host: dict | None) -> Verdict:
    """Compare a device summary with host figures (either may be None)."""
    if summary is None:
        return Verdict(EXIT_NO_RESULT, "no summary line from the firmware", [])
    host = host or {}
    rows: list[tuple[str, str, str, str]] = []

    def row(name, device, host_value=None, note=""):
        rows.append((name, _fmt(device), _fmt(host_value), note))

    same_model = None
    if host.get("model_hash"):
        same_model = hashes_match(summary.get("model_hash"), host["model_hash"])
    row("board", summary.get("board"), host.get("board"))
    row("model hash", summary.get("model_hash"), host.get("model_hash"),
        "" if same_model is None else ("match" if same_model else "DIFFERS"))
    arena_note = ""
    if host.get("arena_bytes") is not None and summary.get("arena_bytes") is not None:
        arena_note = "match" if summary["arena_bytes"] == host["arena_bytes"] else "DIFFERS"
    row("arena bytes (configured)", summary.get("arena_bytes"), host.get("arena_bytes"),
        arena_note)
    used, measured = summary.get("arena_used_bytes"), host.get("host_arena_bytes")
    used_note = ""
    if used and measured:
        used_note = f"device/host {used / measured:.2f}"
    row("arena used bytes", used, measured, used_note)
    placement = {True: "static", False: "heap"}
    row("arena placement", placement.get(summary.get("arena_static")),
        placement.get(host.get("arena_static")))
    row("heap free bytes", summary.get("heap_free_bytes"))
    row("heap min free bytes", summary.get("heap_min_free_bytes"))
    row("heap largest block bytes", summary.get("heap_largest_block_bytes"))
    row("stack min free bytes", summary.get("stack_free_min_bytes"))
    times = [t for t in summary.get("inference_us") or [] if isinstance(t, (int, float))]
    if times:
        row("inference us (min/mean/max)",
            f"{min(times)}/{sum(times) / len(times):.0f}/{max(times)}", None,
            f"{len(times)} runs")
    golden = summary.get("golden")
    note = (f"{_fmt(summary.get('samples_run'))}/{_fmt(summary.get('golden_count'))} samples, "
            f"max diff {_fmt(summary.get('max_abs_diff'))}, "
            f"tolerance {_fmt(summary.get('tolerance'))}")
    row("golden check", golden, None, note)
    mismatch = summary.get("first_mismatch")
    if isinstance(mismatch, dict):
        row("first mismatch",
            f"sample {mismatch.get('sample')} index {mismatch.get('index')}: "
            f"got {_fmt(mismatch.get('got'))}", mismatch.get("expected"), "expected on host")
    if golden == "error":
        row("error", f"{summary.get('error_stage')}: {summary.get('error')}")

    if same_model is False:
        return Verdict(EXIT_HASH_MISMATCH,
                       "model hash differs from the host's: the board runs another model", rows)
    if golden == "passed":
        unchecked = "" if same_model else " (no host model hash given: model not compared)"
        return Verdict(EXIT_OK, "golden check passed" + unchecked, rows)
    if golden == "failed":
        return Verdict(EXIT_GOLDEN_FAILED, "golden check FAILED", rows)
    return Verdict(EXIT_GOLDEN_FAILED,
                   f"firmware error at {summary.get('error_stage', '?')}: "
                   f"{summary.get('error', golden)}", rows)


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    """Plain-text table with the columns figure / device / host / note."""
    header = ("figure", "device", "host", "note")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
             for r in [header, tuple("-" * w for w in widths), *rows]]
    return "\n".join(lines)


def serial_lines(port: str, baud: int, timeout_s: float) -> Iterator[str]:
    """Lines from a serial port until a summary line arrives or `timeout_s` passes."""
    import serial  # pyserial; imported here so --log works without a serial stack

    deadline = time.monotonic() + timeout_s
    with serial.Serial(port, baud, timeout=0.5) as conn:
        while time.monotonic() < deadline:
            raw = conn.readline()
            if not raw:
                continue
            line = raw.decode("utf-8", errors="replace")
            yield line
            if parse_events([line]) and parse_events([line])[0]["event"] == "summary":
                return


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--port", help="Serial port of the board, e.g. /dev/ttyUSB0 or COM3.")
@click.option("--baud", default=115200, show_default=True, help="Serial baud rate.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read a saved serial log instead of a port ('-' for stdin).")
@click.option("--report", "report_file", type=click.Path(exists=True, dir_okay=False),
              help="Host figures: the project's dynhp_host.json or the export's report.json "
                   "(its host_figures).")
@click.option("--timeout", default=30.0, show_default=True,
              help="Seconds to wait for the result line on a serial port.")
@click.option("--echo/--no-echo", default=False, help="Also print every line read.")
def main(port, baud, log_file, report_file, timeout, echo):
    """Compare a board's self-test with the host figures.

    Exit status: 0 passed, 1 golden check failed or firmware error, 2 usage error, 3 no
    result line, 4 model hash differs from the host's, 5 port or file unreadable, or a
    malformed summary line or host figures.
    """
    if bool(port) == bool(log_file):
        raise click.UsageError("give exactly one of --port and --log")
    host = None
    if report_file:
        try:
            host = read_host_figures(json.loads(pathlib.Path(report_file).read_text()), report_file)
        except FiguresError as err:
            raise InputError(str(err))
        except ValueError as err:
            raise InputError(f"{report_file} is not JSON: {err}")
        except OSError as err:
            raise InputError(f"cannot read {report_file}: {err.strerror or err}")
    if log_file:
        try:
            with click.open_file(log_file, encoding="utf-8", errors="replace") as f:
                lines = list(f)
        except OSError as err:
            raise InputError(f"cannot read {log_file}: {err.strerror or err}")
    else:
        try:
            lines = list(serial_lines(port, baud, timeout))
        except Exception as err:  # pyserial raises SerialException (an OSError) and others
            raise InputError(f"cannot read {port}: {err}")
    if echo:
        for line in lines:
            click.echo(line.rstrip("\n"), err=True)
    summary = last_event(parse_events(lines), "summary")
    if summary is not None:
        check_summary(summary)
    verdict = judge(summary, host)
    if verdict.rows:
        click.echo(format_table(verdict.rows))
    click.echo(verdict.message)
    sys.exit(verdict.exit_code)


if __name__ == "__main__":
    main()
