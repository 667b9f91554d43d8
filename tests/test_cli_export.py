"""dynhp-export through the CLI: a full export, --force, --list-boards, and every bad input."""
import hashlib
import json
import pathlib
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from dynhp_tf.converters.boards import list_boards
from dynhp_tf.converters.cli import EXIT_CODES, main
from dynhp_tf._keras import keras
from dynhp_tf.calibration import save_calibration, sidecar_path
from tests.export_models import (
    TINY_MIN_AGREEMENT, samples, save_too_large, save_tiny, tiny_mlp,
)

CODES = {name: code for name, code, _ in EXIT_CODES}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    """dynhp-export ARGS with the tiny model's --min-agreement (a later one overrides it)."""
    return CliRunner().invoke(main, ["--min-agreement", str(TINY_MIN_AGREEMENT)]
                              + [str(a) for a in args])


def assert_refused(result, code, *needles, workdir=None):
    """Exit code from the table, one line naming the problem, no traceback, nothing written."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("dynhp-export: error: ")
    for needle in needles:
        assert needle in message[0]
    assert "Traceback" not in result.output
    if workdir is not None:
        assert not [p for p in workdir.iterdir() if p.is_dir()], "nothing may be written"


def test_exit_codes_are_distinct():
    codes = [code for _, code, _ in EXIT_CODES]
    assert len(codes) == len(set(codes)) and 0 not in codes and 2 not in codes


def test_full_export_writes_model_tflite_reports(workdir):
    model_path = save_tiny(workdir, eval_data="eval.npz")
    result = run(model_path, "--board", "esp32", "--calibration", "cal.npy",
                 "--eval-data", "eval.npz")
    assert result.exit_code == 0, result.output
    out = workdir / "tiny-esp32"
    for stage in range(1, 7):
        assert f"[{stage}/6]" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["params_dense"] == 16 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    assert {l["name"]: (l["dense_width"], l["compact_width"]) for l in report["model"]["layers"]} \
        == {"d1": (16, 10), "d2": (8, 8)}
    assert report["tflite"]["bytes"] == (out / "tiny.tflite").stat().st_size
    assert report["tflite"]["dense_quantization"] == "per-tensor"
    assert report["tflm"]["ops"] == ["FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
    assert report["tflm"]["sample_source"] == "eval" and report["tflm"]["samples"] == 48
    assert report["tflm"]["int8_accuracy"] is not None
    assert report["fit"]["fits"] is True
    assert "| flash |" in (out / "report.md").read_text()
    compact = keras.models.load_model(out / "tiny_compact.h5", compile=False)
    assert compact.get_layer("d1").units == 10
    x = samples(16, seed=5)
    np.testing.assert_allclose(compact.predict(x, verbose=0), tiny_mlp().predict(x, verbose=0),
                               atol=1e-5)
    assert (out / "firmware" / "platformio.ini").is_file()
    # dynhp-monitor can tell from report.json which model the board must be running.
    from dynhp_tf.converters.figures import read_host_figures

    digest = hashlib.sha256((out / "tiny.tflite").read_bytes()).hexdigest()
    host = read_host_figures(report, "report.json")
    assert host["model_hash"] == digest[:12] and host["model_sha256"] == digest
    # The firmware's own record, and the arena it allocates vs the one TFLM measured.
    assert report["host_figures"] == json.loads((out / "firmware" / "dynhp_host.json").read_text())
    assert (host["arena_bytes"], host["host_arena_bytes"]) == (report["tflm"]["arena_with_margin"],
                                                               report["tflm"]["arena_bytes"])
    assert not [p for p in workdir.iterdir() if p.name.startswith(".")], "temp dir left behind"


def test_keras_archive_with_calibration_sidecar_and_float_io(workdir):
    model_path = save_tiny(workdir, name="tiny.keras", calibration=None)
    save_calibration(sidecar_path(model_path), samples())
    result = run(model_path, "--board", "nano33ble", "--out", "o", "--io", "float")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "o" / "report.json").read_text())
    assert report["tflite"]["calibration"].endswith("tiny.calibration.npz")
    assert report["tflite"]["io"] == "float"
    assert "QUANTIZE" in report["tflm"]["ops"]
    assert (workdir / "o" / "tiny_compact.keras").is_file()


def test_existing_output_needs_force(workdir):
    model_path = save_tiny(workdir)
    out = workdir / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    assert_refused(run(model_path, "--board", "esp32", "--calibration", "cal.npy", "--out", out),
                   CODES["OutputExistsError"], "out", "--force")
    assert (out / "keep.txt").read_text() == "user data"
    result = run(model_path, "--board", "esp32", "--calibration", "cal.npy", "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists() and (out / "report.json").is_file()


def test_list_boards():
    result = run("--list-boards")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_boards()


def test_missing_model_file(workdir):
    assert_refused(run("nope.h5", "--board", "esp32"), CODES["ModelFileNotFoundError"],
                   "nope.h5", workdir=workdir)


def test_missing_calibration_file(workdir):
    model_path = save_tiny(workdir)
    assert_refused(run(model_path, "--board", "esp32", "--calibration", "nope.npy"),
                   CODES["ModelFileNotFoundError"], "calibration", "nope.npy", workdir=workdir)


@pytest.mark.parametrize("name", ["notes.h5", "notes.txt", "notes.keras"])
def test_text_file_is_not_a_keras_model(workdir, name):
    (workdir / name).write_text("just some text, not a model\n")
    assert_refused(run(name, "--board", "esp32"), CODES["NotAKerasModelError"], name,
                   workdir=workdir)


def test_weights_only_h5_is_not_a_keras_model(workdir):
    with h5py.File(workdir / "weights.h5", "w") as f:
        f.create_dataset("kernel", data=np.zeros((3, 3)))
    assert_refused(run("weights.h5", "--board", "esp32"), CODES["NotAKerasModelError"],
                   "weights.h5", "model config", workdir=workdir)


def test_zip_without_config_is_not_a_keras_model(workdir):
    with zipfile.ZipFile(workdir / "m.keras", "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert_refused(run("m.keras", "--board", "esp32"), CODES["NotAKerasModelError"], "m.keras",
                   workdir=workdir)


def test_truncated_h5_is_corrupted(workdir):
    model_path = save_tiny(workdir)
    data = model_path.read_bytes()
    model_path.write_bytes(data[: len(data) // 2])
    assert_refused(run(model_path, "--board", "esp32", "--calibration", "cal.npy"),
                   CODES["CorruptedModelError"], "tiny.h5", workdir=workdir)


def test_unsupported_layer_is_named(workdir):
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(),
                              keras.layers.Dense(8, name="d1"),
                              keras.layers.LayerNormalization(name="norm"),
                              keras.layers.Dense(3, name="out")])
    model.save(workdir / "ln.h5")
    np.save(workdir / "cal.npy", samples())
    assert_refused(run("ln.h5", "--board", "esp32", "--calibration", "cal.npy"),
                   CODES["UnsupportedLayerError"], "norm", "LayerNormalization", workdir=workdir)


def test_float_head_export_and_its_refusal(workdir):
    model_path = save_tiny(workdir)
    result = run(model_path, "--board", "esp32", "--calibration", "cal.npy", "--head", "float")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "tiny-esp32" / "report.json").read_text())
    assert report["tflite"]["head"] == "float" and "DEQUANTIZE" in report["tflm"]["ops"]
    assert "float32 classifier head" in (workdir / "tiny-esp32" / "report.md").read_text()
    assert abs(report["estimate"]["flatbuffer_bytes"]["error"]) <= 0.05
    keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.Dense(3, name="logits")]).save(
        workdir / "linear.h5")
    assert_refused(run("linear.h5", "--board", "esp32", "--calibration", "cal.npy", "--head", "float"),
                   CODES["ExportError"], "--head float", "softmax")
    assert not (workdir / "linear-esp32").exists()


def test_unknown_board_lists_known_boards(workdir):
    model_path = save_tiny(workdir)
    assert_refused(run(model_path, "--board", "uno"), CODES["UnknownBoardError"], "uno",
                   *list_boards(), workdir=workdir)


def test_calibration_of_wrong_shape(workdir):
    model_path = save_tiny(workdir)
    np.save(workdir / "bad.npy", samples(8, shape=(28, 28)))
    assert_refused(run(model_path, "--board", "esp32", "--calibration", "bad.npy"),
                   CODES["CalibrationShapeError"], "bad.npy", "(8, 28, 28)", "(n, 4, 4)",
                   workdir=workdir)


def test_eval_data_without_labels(workdir):
    model_path = save_tiny(workdir)
    np.savez(workdir / "ev.npz", x=samples(40))
    assert_refused(run(model_path, "--board", "esp32", "--calibration", "cal.npy",
                       "--eval-data", "ev.npz"),
                   CODES["CalibrationShapeError"], "ev.npz", "'y'", workdir=workdir)


def test_missing_calibration_says_how_to_supply_it(workdir):
    model_path = save_tiny(workdir, calibration=None)
    assert_refused(run(model_path, "--board", "esp32"), CODES["MissingCalibrationError"],
                   "--calibration", "calibration_file", workdir=workdir)


def test_model_too_large_for_the_board(workdir):
    model_path = save_too_large(workdir)
    result = run(model_path, "--board", "nano33ble", "--calibration", "big_cal.npy")
    assert_refused(result, CODES["DoesNotFitError"], "nano33ble", "flash", "compression would fit",
                   workdir=workdir)
    assert "| flash |" in result.output  # the fit table is printed before the refusal
