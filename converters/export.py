"""`export_model`: from a saved Keras model to a checked int8 model for one board.

Stages: load the model -> rebuild the physically smaller model -> int8 TFLite (verified
dense quantization) -> TFLM host check -> fit check -> write everything into a temporary
directory beside the output, then rename it into place. Nothing is written when a stage
fails; an existing output directory is replaced only with `force=True`.

Example:
    >>> result = export_model("lenet.h5", "esp32", calibration="calib.npy")
    >>> result.out_dir
    PosixPath('lenet-esp32')
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import tempfile
import time
import zipfile
from typing import Callable

import numpy as np

from dynhp_tf.converters.boards import Board, load_board
from dynhp_tf.converters.budget_check import estimate_vs_measured, fit_hint
from dynhp_tf.converters.crossload import RUNNING, framework_hint, load_patched_h5, saved_by
from dynhp_tf.converters.errors import (
    AgreementError, CalibrationShapeError, CorruptedModelError, ExportError, MissingCalibrationError,
    ModelFileNotFoundError, NotAKerasModelError, OutputExistsError, WrongFrameworkError,
)
from dynhp_tf.converters.figures import REPORT_KEY
from dynhp_tf.converters.firmware_project import write_firmware_project
from dynhp_tf.converters.float_head import softmax_head
from dynhp_tf.converters.fit import check_fit, fit_table, require_fit
from dynhp_tf.converters.quantize import (
    MAX_CALIBRATION_SAMPLES, check_choices, check_dense_quantization, quantize_int8_in_child,
)
from dynhp_tf.converters.preprocessing import preprocessing_fate
from dynhp_tf.converters.rebuild import compact_model
from dynhp_tf.converters.report import build_report, write_reports
from dynhp_tf.converters.tflm_check import MAX_CHECK_SAMPLES, check_with_tflm
from dynhp_tf.converters.validate import (
    check_finite_weights, check_labels, check_output_writable, check_samples, training_range,
)
from dynhp_tf._keras import keras
from dynhp_tf.calibration import sidecar_path

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
STAGES = 6
# Default for `min_agreement`: top-1 agreement of int8 with float on held-out data.
MIN_AGREEMENT = 0.97


@dataclasses.dataclass
class ExportResult:
    """Where the export went and what it found (`report` is `report.json`'s content)."""

    out_dir: pathlib.Path
    report: dict
    files: list[str]


def _check_h5(path: pathlib.Path) -> None:
    import h5py

    with open(path, "rb") as f:
        if f.read(8) != _HDF5_SIGNATURE:
            raise NotAKerasModelError(f"{path}: not an HDF5 file; expected a Keras model saved as .h5")
    try:
        with h5py.File(path, "r") as f:
            has_config = "model_config" in f.attrs
    except OSError as e:
        raise CorruptedModelError(f"{path}: corrupted HDF5 file ({e})") from None
    if not has_config:
        raise NotAKerasModelError(
            f"{path}: HDF5 file without a Keras model config (weights only?); "
            f"save the whole model with model.save()"
        )


def _check_keras_archive(path: pathlib.Path) -> None:
    with open(path, "rb") as f:
        if f.read(4) != _ZIP_SIGNATURE:
            raise NotAKerasModelError(f"{path}: not a .keras archive (a zip file)")
    if not zipfile.is_zipfile(path):
        raise CorruptedModelError(f"{path}: corrupted .keras archive")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise NotAKerasModelError(f"{path}: zip file without a Keras config.json")


def load_keras_model(model_path) -> "keras.Model":
    """Load a saved model (.keras or .h5) with errors that say what is wrong with the file."""
    path = pathlib.Path(model_path)
    if not path.is_file():
        raise ModelFileNotFoundError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        _check_h5(path)
    elif suffix == ".keras":
        _check_keras_archive(path)
    else:
        raise NotAKerasModelError(
            f"{path}: expected a Keras model saved as .keras or .h5, not a '{suffix}' file"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for damaged files.
        first_line = (str(e).strip().splitlines() or [""])[0][:200]
        error = f"{type(e).__name__}: {first_line}"
    saver = saved_by(path)
    if saver is not None and saver[0] != RUNNING:
        try:
            model = load_patched_h5(path) if suffix != ".keras" else None
        except Exception:
            model = None
        if model is not None:
            return model
        raise WrongFrameworkError(
            f"{path}: saved by {saver[0]} {saver[1]}, which {RUNNING} cannot load: "
            f"{framework_hint(saver[0])} ({error[:120]})"
        )
    raise CorruptedModelError(f"{path}: cannot load the Keras model ({error})")


def load_samples(path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Read `x` (and `y`, if present) from a .npy (x only) or .npz (arrays `x`, `y`)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ModelFileNotFoundError(f"{what} file not found: {path}")
    try:  # an .npz member is read (and may fail: damaged, pickled) only when accessed
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data, None
        with data:
            if "x" in data.files:
                return data["x"], (data["y"] if "y" in data.files else None)
            if len(data.files) == 1:
                return data[data.files[0]], None
            found = ", ".join(data.files)
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CalibrationShapeError(
            f"{path}: cannot read {what} as .npy/.npz ({first_line})"
        ) from None
    raise CalibrationShapeError(f"{path}: {what} .npz needs an array named 'x' (found {found})")


def find_calibration(model_path, calibration=None) -> tuple[np.ndarray, str]:
    """Calibration samples: `calibration` if given, else the model's sidecar file."""
    if calibration is not None:
        x, _ = load_samples(calibration, "calibration")
        return x, str(calibration)
    sidecar = sidecar_path(model_path)
    if sidecar.is_file():
        x, _ = load_samples(sidecar, "calibration")
        return x, str(sidecar)
    raise MissingCalibrationError(
        f"no calibration data for {model_path}: pass --calibration FILE (.npy, or .npz with "
        f"array 'x', shape (n, *input_shape)), or train with "
        f"DynHPCallback(calibration_file='{sidecar.name}') so it is saved beside the model"
    )


def held_out_split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, held-out) halves of `x`, drawn at random with a fixed seed (a file
    sorted by class must not leave a class out of either half); the held-out half is
    capped at `MAX_CHECK_SAMPLES`. Agreement measured on the samples that set the int8
    ranges would flatter the model, as for 0-255 data calibrating its own wrong scale."""
    order = np.random.default_rng(0).permutation(len(x))
    held = min(len(x) // 2, MAX_CHECK_SAMPLES)
    return x[order[held:]], x[order[:held]]


def _write_firmware(out_dir, board, tflite_model, model_name, tflm) -> dict:
    """Writes `firmware/`; returns its host figures (`dynhp_host.json`) for report.json."""
    write_firmware_project(
        out_dir / "firmware", board=board, tflite_model=tflite_model, model_name=model_name,
        ops=tflm.ops, arena_bytes=tflm.arena_with_margin, golden_inputs=tflm.golden_inputs,
        golden_outputs=tflm.golden_outputs, host_arena_bytes=tflm.arena_bytes,
    )
    return json.loads((out_dir / "firmware" / "dynhp_host.json").read_text())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_dir(new: pathlib.Path, out: pathlib.Path) -> None:
    if out.exists():
        old = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.rename(old / out.name)
        new.rename(out)
        shutil.rmtree(old)
    else:
        new.rename(out)


def _agreement_text(tflm) -> str:
    return "n/a" if tflm.top1_agreement is None else f"{100 * tflm.top1_agreement:.1f}%"


def _require_agreement(tflm, min_agreement: float, what: str) -> None:
    """`AgreementError` when the checked flatbuffer agrees less than `min_agreement`."""
    if tflm.top1_agreement is not None and tflm.top1_agreement < min_agreement:
        raise AgreementError(
            f"{what} agrees with the float model on {_agreement_text(tflm)} of {tflm.samples} "
            f"{tflm.sample_source} samples (top-1), below --min-agreement {100 * min_agreement:g}%: "
            f"calibrate with data like the training inputs, or lower --min-agreement"
        )


def export_model(
    model_path,
    board: str | Board,
    *,
    out_dir=None,
    calibration=None,
    eval_data=None,
    io: str = "int8",
    head: str = "int8",
    force: bool = False,
    min_agreement: float = MIN_AGREEMENT,
    progress: Callable[[str], None] | None = None,
    runtime: str = "tflm",
    interrupted: Callable[[], bool] = lambda: False,
) -> ExportResult:
    """Export a saved Keras model for `board`.

    Args:
        model_path: A model saved with `model.save()` as .keras or .h5.
        board: Board name (see `dynhp_tf.converters.boards.list_boards()`) or a `Board`.
        out_dir: Output directory; default `<model stem>-<board>` in the working directory.
        calibration: .npy or .npz (array `x`) with float samples [n, *input_shape]; default:
            the sidecar `<model stem>.calibration.npz` written by `DynHPCallback`.
        eval_data: .npz with arrays `x` and integer labels `y`, for float vs int8 accuracy
            and agreement; without it, half of the calibration samples are held out of
            calibration to measure the agreement.
        io: "int8" or "float" input/output tensors.
        head: "int8", or "float" for a Dense+softmax classifier's last layer in float32
            (`dynhp_tf.converters.float_head`: finer logits, closer agreement with the float
            model, for about 3 bytes more per weight of that layer). The C runtime runs the
            same head in float32.
        force: Replace an existing `out_dir`.
        min_agreement: Least top-1 agreement (fraction) of the int8 model with the float
            model on eval or held-out samples; below it, `AgreementError`.
        progress: Called with one line per stage.
        runtime: "tflm" (default) or "c": also write the ahead-of-time C runtime
            (`firmware_c/`), measure it under QEMU mps2-an386 and fit-check the measurement.
            Its dense layers are quantized per output channel whatever the board's TFLM
            library needs (our kernels run both), checked by TFLM and `min_agreement` too.
        interrupted: Asked at each stage and just before the output is moved into place; True
            stops the export there (KeyboardInterrupt, nothing written). The CLI passes whether
            Ctrl-C was pressed, so that it stops at such a point, not wherever the signal lands.

    Returns:
        `ExportResult` with the output directory and the report.

    Raises:
        ExportError subclasses for bad input, a failed check, or a model that does not fit
        (`dynhp_tf.converters.fit.DoesNotFitError`); `dynhp_tf.groups.UnsupportedLayerError` for a
        layer the rebuild cannot handle.
    """
    progress = progress or (lambda line: None)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def stop_if_interrupted() -> None:
        if interrupted():
            raise KeyboardInterrupt

    def stage(number: int, text: str) -> None:
        stop_if_interrupted()
        progress(f"[{number}/{STAGES}] {text}")

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        seconds[name] = now - since
        return now

    check_choices(io, head)
    board = board if isinstance(board, Board) else load_board(board)
    model_path = pathlib.Path(model_path)
    out = pathlib.Path(out_dir) if out_dir is not None else pathlib.Path(
        f"{model_path.stem}-{board.name}"
    )
    if out.exists() and not force:
        raise OutputExistsError(f"output directory {out} exists; pass --force to replace it")

    stage(1, f"loading {model_path}")
    check_output_writable(out)
    model = load_keras_model(model_path)
    check_finite_weights(model)
    if head == "float" and softmax_head(model) is None:
        raise ExportError(f"--head float: {model_path} must end in a Dense layer with softmax activation "
                          f"(its last layer is {type(model.layers[-1]).__name__}); use --head int8")
    input_range = training_range(model_path, calibration)
    x_cal, cal_source = find_calibration(model_path, calibration)
    x_cal = check_samples(x_cal, model, f"calibration data ({cal_source})", input_range)
    if eval_data is not None:
        x_check, y_check = load_samples(eval_data, "eval data")
        x_check = check_samples(x_check, model, f"eval data ({eval_data})", input_range)
        classes = int(np.prod(model.outputs[0].shape[1:]))
        y_check = check_labels(y_check, len(x_check), classes, f"eval data ({eval_data})")
        source = "eval"
    else:
        x_cal, x_check = held_out_split(x_cal)
        y_check, source = None, "held-out calibration"
    t = lap("load", started)

    stage(2, "rebuilding the compact model")
    compact = compact_model(model)
    t = lap("rebuild", t)
    progress(
        f"      params {compact.params_dense:,} -> {compact.params_compact:,}, "
        f"MACs {compact.macs_dense:,} -> {compact.macs_compact:,}"
    )

    mode = "per-channel" if board.per_channel_dense else "per-tensor"
    used = min(len(x_cal), MAX_CALIBRATION_SAMPLES)
    stage(3, f"int8 TFLite ({io} I/O, {mode} dense layers, {head} head, {used} calibration samples)")
    tflite_model = quantize_int8_in_child(
        compact.model, x_cal, per_channel_dense=board.per_channel_dense, io=io, head=head
    )
    dense_weights = check_dense_quantization(tflite_model, per_channel_dense=board.per_channel_dense, head=head)
    t = lap("quantize", t)
    progress(f"      {len(tflite_model):,} bytes, {len(dense_weights)} dense layers verified {mode}"
             f"{', the last one float32' if head == 'float' else ''}")
    if runtime == "c":  # an op the C kernels lack is refused before any further work
        from dynhp_tf.converters.c_runtime import check_supported

        check_supported(tflite_model)
    preprocessing = preprocessing_fate(compact.model, tflite_model)
    if preprocessing is not None:
        progress(f"      {preprocessing['statement']}")

    stage(4, f"TFLM host check on {len(x_check)} {source} samples")
    tflm = check_with_tflm(
        tflite_model, compact.model, x_check,
        arena_margin=board.arena_margin, labels=y_check, sample_source=source,
    )
    t = lap("tflm", t)
    progress(
        f"      arena {tflm.arena_bytes:,} bytes ({tflm.arena_with_margin:,} with margin), "
        f"ops {', '.join(tflm.ops)}, top-1 agreement with float {_agreement_text(tflm)}, "
        f"TFLM vs TFLite: {tflm.tflm_vs_tflite_verdict}"
    )
    _require_agreement(tflm, min_agreement, "the int8 model")

    c_runtime = c_dir = c_scratch = None
    try:  # the scratch C project goes however the export ends (a failed check, a refused fit, Ctrl-C)
        if runtime == "c":  # generated and measured in a scratch dir, copied into the output
            from dynhp_tf.converters.c_export import build_c_runtime, measured_fit

            c_model, c_tflm = tflite_model, tflm
            if not board.per_channel_dense:
                # Our kernels take one multiplier per output unit on every board, so the C runtime
                # gets its own per-channel flatbuffer (same head); the TFLM firmware keeps the
                # board's grid.
                c_model = quantize_int8_in_child(compact.model, x_cal, per_channel_dense=True, io=io, head=head)
                check_dense_quantization(c_model, per_channel_dense=True, head=head)
                c_tflm = check_with_tflm(c_model, compact.model, x_check, arena_margin=board.arena_margin,
                                         labels=y_check, sample_source=source)
                progress(f"      C runtime flatbuffer: per-channel dense layers, top-1 agreement with "
                         f"float {_agreement_text(c_tflm)}")
                _require_agreement(c_tflm, min_agreement, "the per-channel int8 model of the C runtime")
            c_scratch = tempfile.TemporaryDirectory(prefix="dynhp-c-runtime-")
            c_dir = pathlib.Path(c_scratch.name)
            c_runtime = build_c_runtime(c_model, c_tflm, model_name=re.sub(r"\W", "_", model_path.stem),
                                        board=board, project_dir=c_dir)
            progress(f"      C runtime: {c_runtime.not_measured or 'measured under QEMU mps2-an386'}")
        stage(5, f"fit check for {board.name}")
        fit = check_fit(
            board, flatbuffer_bytes=len(tflite_model), arena_bytes=tflm.arena_with_margin,
            compression=compact.params_dense / max(1, compact.params_compact),
        )
        if c_runtime is not None and c_runtime.figures:
            fit = measured_fit(board, c_runtime, fit.compression)
        table = fit_table(fit)
        progress(table)
        estimate = estimate_vs_measured(model, board, head=head, flatbuffer_bytes=len(tflite_model),
                                        arena_bytes=tflm.arena_bytes, macs=compact.macs_compact)
        progress("      estimate vs measured: " + ", ".join(
            f"{k} {v['estimated']:,} vs {v['measured']:,} ({100 * v['error']:+.1f}%)" for k, v in estimate.items()))
        require_fit(fit, hint=lambda: fit_hint(model, board, head))
        t = lap("fit", t)

        stage(6, f"writing {out}")
        name = re.sub(r"\W", "_", model_path.stem) or "model"
        seconds["total_before_write"] = time.perf_counter() - started
        report = build_report(
            model_path=model_path, board=board, compact=compact, tflite_model=tflite_model,
            io=io, head=head, dense_weights=dense_weights, tflm=tflm, fit=fit,
            calibration_source=cal_source, seconds=seconds,
        )
        report["estimate"] = estimate
        if preprocessing is not None:
            report["tflite"]["preprocessing"] = preprocessing
        if c_runtime is not None:
            report["c_runtime"] = c_runtime.summary()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output should not be
        try:
            compact.model.save(tmp / f"{name}_compact{model_path.suffix.lower()}")
            (tmp / f"{name}.tflite").write_bytes(tflite_model)
            report[REPORT_KEY] = _write_firmware(tmp, board, tflite_model, name, tflm)
            report["firmware"] = "firmware"
            if c_dir is not None:
                shutil.copytree(c_dir, tmp / "firmware_c")
            write_reports(tmp, report, table)
            if out.exists() and not force:  # appeared while we worked
                raise OutputExistsError(f"output directory {out} exists; pass --force to replace it")
            stop_if_interrupted()
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        if c_scratch is not None:
            c_scratch.cleanup()
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    progress(f"done in {time.perf_counter() - started:.1f} s: {out}")
    return ExportResult(out_dir=out, report=report, files=files)
