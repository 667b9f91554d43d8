"""Checks of the exporter's inputs, run at stage 1 before any slow work.

Each check raises an `ExportError` subclass with a one-line message naming the file or
argument and what was expected, so a bad input never yields a quietly wrong model:

- the output directory can be written (tried for real: permissions, read-only file
  systems and running as root all behave differently);
- every weight of the model is finite (a diverged training run), naming the layer;
- calibration and eval data: a float dtype (integers are refused with the conversion to
  make, since 0-255 pixels fed to a 0-1 model calibrate a wrong input scale), finite,
  at least `MIN_SAMPLES`, inside the training inputs' range when the sidecar records it,
  and giving finite float outputs; eval labels are class indices.

Example:
    >>> check_output_writable(pathlib.Path("lenet-esp32"))
    >>> x = check_samples(x, model, "calibration data (cal.npy)", input_range=(0.0, 1.0, "cal.npy"))
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import numpy as np

from dynhp_tf.converters.errors import (
    CalibrationShapeError, CalibrationValueError, NonFiniteWeightsError, OutputNotWritableError,
)
from dynhp_tf.converters.quantize import check_sample_shape
from dynhp_tf.calibration import sidecar_path

# Fewer samples give neither a stable int8 range nor a meaningful agreement figure.
MIN_SAMPLES = 32
# Data may leave the recorded training range by this fraction of its span (eval data
# legitimately reaches a little beyond what the training set held); a wrong scale such as
# 0-255 for 0-1 is far outside.
RANGE_MARGIN = 0.25


def check_output_writable(out: pathlib.Path) -> None:
    """Refuse an output directory whose parent cannot be created or written.

    The export writes a temporary directory beside `out` and renames it, so what must be
    writable is the nearest existing ancestor of `out.parent`; a directory is created and
    removed there to find out (as root, permission bits alone say nothing).
    """
    parent = pathlib.Path(os.path.abspath(out)).parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputNotWritableError(f"--out {out}: {existing} is a file, not a directory")
    try:
        probe = tempfile.mkdtemp(dir=existing, prefix=".dynhp-write-test-")
        os.rmdir(probe)
    except OSError as e:
        raise OutputNotWritableError(
            f"--out {out}: cannot write in {existing} ({e.strerror or e})"
        ) from None
    if out.exists() and not out.is_dir():
        raise OutputNotWritableError(f"--out {out}: exists and is not a directory")


def check_finite_weights(model) -> None:
    """Refuse a model with a NaN or infinite weight, naming the first such layer."""
    for layer in model.layers:
        for weight in layer.weights:
            values = np.asarray(weight.numpy())
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                bad = int(values.size - np.count_nonzero(np.isfinite(values)))
                raise NonFiniteWeightsError(
                    f"layer '{layer.name}' ({type(layer).__name__}) has {bad} NaN or infinite "
                    f"values in '{weight.name}'; the training diverged or the file was altered"
                )


def training_range(model_path, calibration=None) -> tuple[float, float, str] | None:
    """(min, max, file) of the training inputs as recorded by `save_calibration`, from the
    given calibration `.npz` or else the model's sidecar; None when neither records it."""
    for path in ([calibration] if calibration is not None else []) + [sidecar_path(model_path)]:
        path = pathlib.Path(path)
        if path.suffix != ".npz" or not path.is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                if {"input_min", "input_max"} <= set(data.files):
                    return float(data["input_min"]), float(data["input_max"]), str(path)
        except Exception:  # unreadable files are reported by the loader that needs them
            continue
    return None


def check_samples(x, model, what: str, input_range=None) -> np.ndarray:
    """`x` as float32 [n, *input_shape] if usable; an `ExportError` naming `what` otherwise.

    Args:
        x: The array read from the file.
        model: The Keras model (for the input shape and a float forward pass).
        what: Names the data in messages, e.g. "calibration data (cal.npy)".
        input_range: `(min, max, source)` of the training inputs, or None.
    """
    x = np.asarray(x)
    kind = x.dtype.kind
    if kind in "iub":
        raise CalibrationValueError(
            f"{what} has dtype {x.dtype}; expected floats on the scale the model was trained "
            f"on: convert it first, e.g. x.astype('float32') / 255 for 0-255 pixels of a model "
            f"trained on 0-1 inputs"
        )
    if kind != "f":
        raise CalibrationValueError(f"{what} has dtype {x.dtype}; expected a float array")
    with np.errstate(over="ignore"):
        x = check_sample_shape(x, model, what)  # float32 from here on
    if len(x) < MIN_SAMPLES:
        raise CalibrationShapeError(
            f"{what} has {len(x)} samples; at least {MIN_SAMPLES} are needed to calibrate "
            f"and check the int8 model"
        )
    finite = np.isfinite(x)
    if not finite.all():
        nans, infs = int(np.isnan(x).sum()), int(np.isinf(x).sum())
        first = int(np.argmin(finite.reshape(len(x), -1).all(axis=1)))
        raise CalibrationValueError(
            f"{what} has {nans} NaN and {infs} infinite (or beyond float32) values, first in "
            f"sample {first}; expected finite numbers"
        )
    if input_range is not None:
        low, high, source = input_range
        slack = RANGE_MARGIN * max(high - low, 1e-6)
        if x.min() < low - slack or x.max() > high + slack:
            raise CalibrationValueError(
                f"{what} spans [{x.min():g}, {x.max():g}] but the model was trained on inputs "
                f"in [{low:g}, {high:g}] (recorded in {source}); scale it like the training data"
            )
    outputs = np.asarray(model.predict(x[:1000], batch_size=256, verbose=0))
    if not np.isfinite(outputs).all():
        first = int(np.argmin(np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)))
        raise CalibrationValueError(
            f"{what}: the float model gives NaN or infinite outputs (first for sample {first}); "
            f"expected inputs on the scale the model was trained on"
        )
    return x


def check_labels(y, n: int, classes: int, what: str) -> np.ndarray:
    """Eval labels as int64: one integer class index in [0, classes) per sample."""
    if y is None or np.ndim(y) == 0 or len(y) != n:
        raise CalibrationShapeError(
            f"{what} needs integer labels 'y', one per sample in 'x' ({n})"
        )
    y = np.asarray(y).reshape(n, -1)
    if y.shape[1] != 1:
        raise CalibrationShapeError(
            f"{what}: labels 'y' have shape {np.shape(y)}; expected one class index per sample"
        )
    y = y[:, 0]
    if y.dtype.kind not in "iu" and not (
        y.dtype.kind == "f" and np.isfinite(y).all() and np.array_equal(y, np.round(y))
    ):
        raise CalibrationValueError(f"{what}: labels 'y' ({y.dtype}) must be integer class indices")
    if classes > 1 and (y.min() < 0 or y.max() >= classes):
        raise CalibrationValueError(
            f"{what}: labels 'y' span [{y.min()}, {y.max()}]; expected class indices in "
            f"[0, {classes - 1}] for the model's {classes} outputs"
        )
    return y.astype(np.int64)
