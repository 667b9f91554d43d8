"""Bad and unusual inputs through `dynhp-export`: each gets its own exit code, one line on
stderr naming the problem, no traceback, and leaves nothing behind (no output directory, no
temporary file), or it gives a correct model. Runs on Keras 3 and tf_keras alike."""
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from click.testing import CliRunner

from dynhp_tf.converters.cli import EXIT_CODES, EXIT_INTERRUPTED, main
from dynhp_tf.converters.errors import ConversionError
from dynhp_tf.converters.export import held_out_split
from dynhp_tf.converters.quantize import quantize_int8_in_child
from dynhp_tf._keras import LEGACY, keras
from dynhp_tf.calibration import save_calibration, sidecar_path
from tests.export_models import TINY_MIN_AGREEMENT, samples, save_tiny, tiny_mlp

CODES = {name: code for name, code, _ in EXIT_CODES}
ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory plus a private temp directory, to see what is left behind."""
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    save_tiny(work)
    return work


def left_in_temp() -> list[str]:
    """Our files in the temp directory (TensorFlow's autograph keeps its own cache there)."""
    return [p.name for p in pathlib.Path(tempfile.gettempdir()).iterdir()
            if not p.name.startswith("__autograph_generated_file")]


def export(*args):
    return CliRunner().invoke(
        main, ["tiny.h5", "--board", "esp32", "--min-agreement", str(TINY_MIN_AGREEMENT)]
        + [str(a) for a in args])


def assert_refused(result, code, *needles):
    """Exit code, one stderr line naming the problem, no traceback, nothing left behind."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dynhp-export: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output
    work = pathlib.Path.cwd()
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == [], "output written"
    assert not [p for p in work.iterdir() if p.name.startswith(".")], "temp dir left behind"
    assert left_in_temp() == [], "temp files left behind"


@pytest.mark.parametrize("content, needle", [
    (b"", "cannot read calibration"),                                  # empty file
    (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'sh", "cannot read"),
    (b"0.1, 0.2, 0.3\n", "cannot read"),                               # text, not .npy
])
def test_unreadable_calibration_file(workdir, content, needle):
    (workdir / "bad.npy").write_bytes(content)
    assert_refused(export("--calibration", "bad.npy"), CODES["CalibrationShapeError"],
                   "bad.npy", needle)


def test_truncated_calibration_npz(workdir):
    np.savez_compressed(workdir / "c.npz", x=samples())
    data = (workdir / "c.npz").read_bytes()
    (workdir / "c.npz").write_bytes(data[: len(data) * 2 // 3])
    assert_refused(export("--calibration", "c.npz"), CODES["CalibrationShapeError"], "c.npz")


@pytest.mark.parametrize("arrays", [
    {"x": np.array([{"a": 1}] * 64, dtype=object)},  # pickled objects are never loaded
    {"images": samples(), "labels": np.zeros(64)},    # no array named x
])
def test_npz_without_a_readable_x(workdir, arrays):
    np.savez(workdir / "c.npz", **arrays)
    assert_refused(export("--calibration", "c.npz"), CODES["CalibrationShapeError"], "c.npz")


def test_empty_and_too_few_samples(workdir):
    np.save(workdir / "none.npy", samples(0))
    assert_refused(export("--calibration", "none.npy"), CODES["CalibrationShapeError"], "none.npy")
    np.save(workdir / "few.npy", samples(31))
    assert_refused(export("--calibration", "few.npy"), CODES["CalibrationShapeError"],
                   "few.npy", "31 samples", "at least 32")


@pytest.mark.parametrize("values, needle", [
    (np.full((64, 4, 4), "a"), "dtype <U1"),
    (samples().astype(np.complex64), "dtype complex64"),
])
def test_calibration_of_wrong_type(workdir, values, needle):
    np.save(workdir / "bad.npy", values)
    assert_refused(export("--calibration", "bad.npy"), CODES["CalibrationValueError"],
                   "bad.npy", needle, "float")


def test_integer_calibration_is_refused_with_the_conversion_to_make(workdir):
    np.save(workdir / "pixels.npy", (samples() * 255).astype(np.uint8))
    assert_refused(export("--calibration", "pixels.npy"), CODES["CalibrationValueError"],
                   "pixels.npy", "uint8", "/ 255")


@pytest.mark.parametrize("bad, needle", [
    (np.nan, "1 NaN"), (np.inf, "1 infinite"), (-np.inf, "1 infinite"),
    (1e300, "beyond float32"),  # float64 data too large for float32
])
def test_non_finite_calibration(workdir, bad, needle):
    x = samples().astype(np.float64)
    x[5, 1, 2] = bad
    np.save(workdir / "c.npy", x)
    assert_refused(export("--calibration", "c.npy"), CODES["CalibrationValueError"],
                   "c.npy", needle, "sample 5")


def test_all_nan_calibration(workdir):
    np.save(workdir / "c.npy", np.full((64, 4, 4), np.nan, np.float32))
    assert_refused(export("--calibration", "c.npy"), CODES["CalibrationValueError"],
                   "1024 NaN")


def test_non_finite_eval_data(workdir):
    x = samples(40, seed=1)
    x[0, 0, 0] = np.inf
    np.savez(workdir / "ev.npz", x=x, y=np.arange(40) % 3)
    assert_refused(export("--calibration", "cal.npy", "--eval-data", "ev.npz"),
                   CODES["CalibrationValueError"], "ev.npz", "infinite")


@pytest.mark.parametrize("labels, needle", [
    (np.arange(40) % 5, "[0, 2]"), (np.full(40, 0.5), "integer class indices"),
])
def test_bad_eval_labels(workdir, labels, needle):
    np.savez(workdir / "ev.npz", x=samples(40, seed=1), y=labels)
    assert_refused(export("--calibration", "cal.npy", "--eval-data", "ev.npz"),
                   CODES["CalibrationValueError"], "ev.npz", needle)


def test_data_outside_the_recorded_training_range(workdir):
    # The sidecar records the training inputs' range (0-1); 0-255 floats are refused,
    # as calibration and as eval data.
    save_calibration(sidecar_path(workdir / "tiny.h5"), samples(), training_inputs=samples(500))
    np.save(workdir / "c255.npy", samples() * 255)
    assert_refused(export("--calibration", "c255.npy"), CODES["CalibrationValueError"],
                   "c255.npy", "trained on inputs in [", "tiny.calibration.npz")
    np.savez(workdir / "ev.npz", x=samples(40, seed=1) * 255, y=np.arange(40) % 3)
    assert_refused(export("--eval-data", "ev.npz"), CODES["CalibrationValueError"], "ev.npz")


def test_model_with_nan_weights_names_the_layer(workdir):
    model = tiny_mlp()
    kernel, bias = model.get_layer("d2").get_weights()
    kernel[3, 2] = np.nan
    model.get_layer("d2").set_weights([kernel, bias])
    model.save(workdir / "tiny.h5")
    assert_refused(export("--calibration", "cal.npy"), CODES["NonFiniteWeightsError"],
                   "'d2'", "Dense", "NaN")


def test_empty_model_file(workdir):
    (workdir / "tiny.h5").write_bytes(b"")
    assert_refused(export("--calibration", "cal.npy"), CODES["NotAKerasModelError"], "tiny.h5")


def test_unwritable_output_is_refused_before_any_work(workdir):
    result = export("--calibration", "cal.npy", "--out", "cal.npy/out")
    assert_refused(result, CODES["OutputNotWritableError"], "cal.npy", "not a directory")
    assert "[2/6]" not in result.output
    # /proc refuses new entries even to root (for whom permission bits mean nothing).
    result = export("--calibration", "cal.npy", "--out", "/proc/dynhp-out/model")
    assert_refused(result, CODES["OutputNotWritableError"], "/proc/dynhp-out/model", "cannot write")
    assert "[2/6]" not in result.output


def test_quantization_judged_on_held_out_samples(workdir):
    # Calibrated on 0-255, checked on 0-1 eval data: the calibration looks self-consistent,
    # the eval data shows the model is wrong.
    np.save(workdir / "c255.npy", samples() * 255)
    np.savez(workdir / "ev.npz", x=samples(64, seed=2), y=np.arange(64) % 3)
    result = export("--calibration", "c255.npy", "--eval-data", "ev.npz")
    assert_refused(result, CODES["AgreementError"], "of 64 eval samples", "below --min-agreement")
    agreement = float(result.stderr.split("float model on ")[1].split("%")[0])
    assert agreement < TINY_MIN_AGREEMENT  # the figure in the message is the one judged
    # Without eval data, half the calibration samples are held out of calibration: a held-out
    # half that the calibrated half does not cover (0-255 vs 0-1) is caught.
    x = samples()
    _, held = held_out_split(np.arange(len(x)))
    x[held] *= 255
    np.save(workdir / "mixed.npy", x)
    result = export("--calibration", "mixed.npy", "--min-agreement", "100")
    assert_refused(result, CODES["AgreementError"], "of 32 held-out calibration samples",
                   "below --min-agreement 100%")


def test_converter_crash_becomes_an_error():
    # Validation keeps inf away from the converter; fed one directly, it segfaults.
    x = samples()
    x[3, 1, 1] = np.inf
    with pytest.raises(ConversionError, match="scale out of expressed type range") as caught:
        quantize_int8_in_child(tiny_mlp(), x, per_channel_dense=False)
    assert len(str(caught.value).splitlines()) == 1


def _other_keras_saves(path: pathlib.Path) -> None:
    """Save a DepthwiseConv2D model with the Keras this process does not run."""
    code = ("from tests.models import residual; import sys; residual().save(sys.argv[1])")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="0" if LEGACY else "1", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT, env=env,
                   capture_output=True)


def test_h5_from_the_other_keras(workdir):
    _other_keras_saves(workdir / "other.h5")
    np.save(workdir / "c.npy", np.random.default_rng(0).random((64, 8, 8, 3), dtype=np.float32))
    runner = CliRunner().invoke(main, ["other.h5", "--board", "esp32", "--calibration", "c.npy",
                                       "--min-agreement", "0"])
    if LEGACY:  # tf_keras cannot read Keras 3 files: the error says what to run
        assert_refused(runner, CODES["WrongFrameworkError"], "saved by Keras 3",
                       "without TF_USE_LEGACY_KERAS")
    else:  # Keras 3 reads tf_keras's DepthwiseConv2D (its config has an extra `groups`)
        assert runner.exit_code == 0, runner.output
        assert "DEPTHWISE_CONV_2D" in (workdir / "other-esp32" / "report.json").read_text()


def test_ctrl_c_mid_export_leaves_nothing(workdir):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynhp_tf.converters.cli", "tiny.h5", "--board", "esp32",
         "--calibration", "cal.npy", "--min-agreement", str(TINY_MIN_AGREEMENT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = ""
    while "[3/6]" not in seen:  # the converter child is running
        line = proc.stdout.readline()
        assert line, f"export ended before stage 3: {proc.communicate()}"
        seen += line
    proc.send_signal(signal.SIGINT)  # inside stage 3 (the converter child takes seconds)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, seen + out + err
    lines = err.strip().splitlines()
    assert lines == ["dynhp-export: interrupted; nothing written"], err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in workdir.iterdir()) == ["cal.npy", "tiny.h5"]
    assert left_in_temp() == []


def test_failed_c_runtime_check_leaves_nothing(workdir, monkeypatch):
    """The C runtime's scratch project is removed when its golden check fails under QEMU."""
    import dynhp_tf.converters.c_export as c_export

    failed = {"golden": "failed", "qemu_exit_status": 1, "max_abs_diff": 3}
    monkeypatch.setattr(c_export, "emulate_project", lambda project_dir: failed)
    assert_refused(export("--calibration", "cal.npy", "--runtime", "c"), CODES["ExportError"], "golden check failed")


def test_ctrl_c_stops_the_export_at_its_next_stage(workdir, monkeypatch):
    """Ctrl-C pressed while the converter runs: the export stops before stage 4, writes
    nothing and leaves no temp directory (a KeyboardInterrupt raised where the signal lands,
    e.g. inside `mkdtemp`, would leave one)."""
    import dynhp_tf.converters.export as export_module

    real = export_module.quantize_int8_in_child

    def pressed_meanwhile(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the handler runs here
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "quantize_int8_in_child", pressed_meanwhile)
    result = export("--calibration", "cal.npy")
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert result.stderr.strip().splitlines() == ["dynhp-export: interrupted; nothing written"]
    assert "[3/6]" in result.output and "[4/6]" not in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["cal.npy", "tiny.h5"]
    assert left_in_temp() == []
