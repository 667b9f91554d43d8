"""Calibration samples for int8 quantization, saved beside the model as a sidecar file."""
from __future__ import annotations

import os
import pathlib

import numpy as np

SUFFIX = ".calibration.npz"


def sidecar_path(model_path) -> pathlib.Path:
    """`dir/model.h5` or `dir/model.keras` -> `dir/model.calibration.npz`."""
    path = pathlib.Path(model_path)
    return path.with_name(path.stem + SUFFIX)


def save_calibration(path, x) -> pathlib.Path:
    """Writes samples `x` (float32, [n, *input_shape]) as array `x`, atomically."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, x=np.asarray(x, dtype="float32"))
    os.replace(tmp, path)
    return path
