"""Board profiles and the fit check."""
import dataclasses
import math

import pytest

from dynhp_tf.converters.boards import UnknownBoardError, arena_with_margin, list_boards, load_board
from dynhp_tf.converters.fit import DoesNotFitError, check_fit, fit_table, require_fit


def test_board_profiles_ship_and_load():
    assert set(list_boards()) >= {"esp32", "esp32s3", "nano33ble"}
    for name in list_boards():
        board = load_board(name)
        assert board.name == name
        assert 0 < board.base_flash_bytes < board.flash_bytes
        assert 0 < board.base_ram_bytes < board.ram_bytes
        assert 0 < board.arena_budget_bytes < board.ram_bytes
        assert isinstance(board.per_channel_dense, bool)


def test_firmware_tables_are_kept_for_the_generator():
    assert all("tflm" in load_board(n).tables for n in list_boards())


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UnknownBoardError) as info:
        load_board("arduino-uno")
    assert "arduino-uno" in str(info.value)
    assert all(name in str(info.value) for name in list_boards())


def test_margin_rounds_up_to_16():
    assert arena_with_margin(1000, 0.25) == 1264  # 1250 -> 1264
    assert arena_with_margin(1600, 0.0) == 1600
    assert load_board("nano33ble").arena_with_margin(1000) == 1104  # 1100 -> 1104


def test_small_model_fits_with_headroom():
    board = load_board("esp32")
    report = require_fit(check_fit(board, flatbuffer_bytes=10_000, arena_bytes=3_000))
    flash, ram, arena = report.rows
    assert flash.used == 10_000 + board.base_flash_bytes
    assert flash.headroom == board.flash_bytes - flash.used
    assert ram.used == 3_000 + board.base_ram_bytes
    assert arena.limit == board.arena_budget_bytes
    assert report.compression_to_fit is None
    assert "| flash | 10,000 |" in fit_table(report)


def test_too_large_model_reports_the_compression_that_fits():
    board = load_board("nano33ble")
    available = board.flash_bytes - board.base_flash_bytes
    report = check_fit(board, flatbuffer_bytes=3 * available, arena_bytes=1_000, compression=2.0)
    assert not report.fits
    assert report.compression_to_fit == pytest.approx(6.0)
    with pytest.raises(DoesNotFitError, match=r"flash .* > 983,040 bytes; about 6\.0x"):
        require_fit(report)


def test_arena_over_budget_is_caught_even_when_flash_fits():
    board = load_board("esp32")
    report = check_fit(board, flatbuffer_bytes=1_000, arena_bytes=2 * board.arena_budget_bytes)
    assert [row.fits for row in report.rows] == [True, True, False]
    assert report.compression_to_fit == pytest.approx(2.0)


def test_board_whose_firmware_alone_is_too_big_cannot_be_fixed_by_compression():
    board = dataclasses.replace(load_board("esp32"), base_flash_bytes=2_000_000)
    report = check_fit(board, flatbuffer_bytes=1_000, arena_bytes=1_000)
    assert math.isinf(report.compression_to_fit)
    with pytest.raises(DoesNotFitError, match="no compression can fit"):
        require_fit(report)


def test_readme_documents_every_exit_code():
    import pathlib

    from dynhp_tf.converters.cli import EXIT_CODES

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, code, meaning in EXIT_CODES:
        assert f"| {code} | `{name}` | {meaning} |" in readme
