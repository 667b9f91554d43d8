"""`dynhp-monitor` on saved logs: right verdict, right exit code, boot noise ignored."""

from __future__ import annotations

import json
import pathlib

from click.testing import CliRunner

from dynhp_tf.converters.figures import HOST_FIELDS, host_figures_json, read_host_figures

from dynhp_tf.converters.monitor import (
    EXIT_GOLDEN_FAILED,
    EXIT_HASH_MISMATCH,
    EXIT_NO_RESULT,
    EXIT_OK,
    main,
    parse_events,
)

DATA = pathlib.Path(__file__).parent / "data"
PASS_LOG = str(DATA / "monitor_pass.log")
FAIL_LOG = str(DATA / "monitor_fail.log")
HOST = str(DATA / "monitor_host.json")


def _run(*args, stdin=None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_passing_run_exits_zero_and_shows_device_next_to_host():
    result = _run("--log", PASS_LOG, "--report", HOST)
    assert result.exit_code == EXIT_OK, result.output
    assert "golden check passed" in result.output
    assert "afd47be14185  match" in result.output
    assert "120,000" in result.output  # arena, device and host columns


def test_failing_run_exits_nonzero_and_names_the_first_mismatch():
    result = _run("--log", FAIL_LOG, "--report", HOST)
    assert result.exit_code == EXIT_GOLDEN_FAILED, result.output
    assert "golden check FAILED" in result.output
    assert "sample 3 index 0: got -117" in result.output


def test_other_model_on_the_board_is_reported_even_if_its_check_passed(tmp_path):
    host = json.loads(pathlib.Path(HOST).read_text())
    report = tmp_path / "dynhp_host.json"
    report.write_text(json.dumps({**host, "model_hash": "0123456789ab"}))
    result = _run("--log", PASS_LOG, "--report", str(report))
    assert result.exit_code == EXIT_HASH_MISMATCH
    assert "DIFFERS" in result.output


def test_boot_noise_and_broken_lines_are_skipped():
    lines = pathlib.Path(PASS_LOG).read_text().splitlines()
    events = parse_events(lines)
    assert [e["event"] for e in events] == ["boot", "summary", "summary"]
    assert any(line.startswith("I (") for line in lines)  # the log does contain noise


def test_no_result_line_exits_three():
    result = _run("--log", "-", stdin="ets Jun  8 2016\nI (31) boot: ESP-IDF\n{\"event\":\"bo\n")
    assert result.exit_code == EXIT_NO_RESULT
    assert "no summary line" in result.output


def test_export_report_is_read_at_its_host_figures_record(tmp_path):
    host = json.loads(pathlib.Path(HOST).read_text())
    # report.json: the TFLM check's section names the host measurement arena_bytes; the
    # monitor reads only the host_figures record, where arena_bytes is the allocated arena.
    report = {"tflm": {"arena_bytes": 2400, "arena_with_margin": 120000},
              "host_figures": {**host, "model_hash": "AFD47BE14185"}}
    figures = read_host_figures(report, "report.json")
    assert figures["model_hash"] == "afd47be14185"
    assert (figures["arena_bytes"], figures["host_arena_bytes"]) == (120000, 2400)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert _run("--log", PASS_LOG, "--report", str(path)).exit_code == EXIT_OK


def test_fields_are_read_at_exact_places_only(tmp_path):
    # A record nested anywhere else (the old breadth-first search found it) is not host figures.
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"firmware": json.loads(pathlib.Path(HOST).read_text())}))
    _assert_one_line_error(_run("--log", PASS_LOG, "--report", str(report)), 5,
                           "no board, model, model_hash, arena_bytes", "report.json")
    report.write_text(json.dumps({"tflm": {"arena_bytes": 2400}, "model": {}, "board": {}}))
    _assert_one_line_error(_run("--log", PASS_LOG, "--report", str(report)), 5,
                           "without 'host_figures'", "dynhp_host.json")


def test_generator_record_round_trips_in_schema_order():
    values = {"board": "esp32", "model": "m", "model_hash": "ABCDEF012345", "arena_bytes": 4112,
              "golden_count": 3, "tolerance": 1.0, "host_arena_bytes": None}
    text = host_figures_json(**dict(reversed(values.items())))
    assert list(json.loads(text)) == [f.name for f in HOST_FIELDS if f.name in values]
    assert read_host_figures(json.loads(text), "x")["model_hash"] == "abcdef012345"


def test_port_and_log_are_mutually_exclusive():
    assert _run().exit_code == 2
    assert _run("--port", "/dev/null", "--log", PASS_LOG).exit_code == 2


def _assert_one_line_error(result, code, *needles):
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0]


def test_help_with_h():
    result = _run("-h")
    assert result.exit_code == 0 and "--log" in result.output


def test_missing_log_file_is_an_input_error(tmp_path):
    _assert_one_line_error(_run("--log", str(tmp_path / "nope.log")), 5, "nope.log")


def test_summary_field_of_wrong_type_is_an_input_error():
    line = '{"event":"summary","golden":"passed","inference_us":"fast","arena_bytes":7}\n'
    _assert_one_line_error(_run("--log", "-", stdin=line), 5, "inference_us", "list of numbers")
    line = '{"event":"summary","golden":"passed","arena_used_bytes":"7"}\n'
    _assert_one_line_error(_run("--log", "-", stdin=line, ), 5, "arena_used_bytes", "integer")


def test_report_with_wrong_arena_type_is_an_input_error(tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({**json.loads(pathlib.Path(HOST).read_text()), "arena_bytes": "big"}))
    _assert_one_line_error(_run("--log", PASS_LOG, "--report", str(report)), 5, "arena_bytes",
                           "expected an integer")
    report.write_text(json.dumps({**json.loads(pathlib.Path(HOST).read_text()), "ops": ["A", 1]}))
    _assert_one_line_error(_run("--log", PASS_LOG, "--report", str(report)), 5, "ops",
                           "list of strings")
