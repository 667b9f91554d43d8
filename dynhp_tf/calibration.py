"""Calibration samples for int8 quantization, saved beside the model as a sidecar file.

The sidecar may also record the smallest and largest value of the training inputs
(`input_min`, `input_max`), so the exporter can refuse data on another scale (0-255
pixels for a model trained on 0-1 inputs).
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

SUFFIX = ".calibration.npz"


def sidecar_path(model_path) -> pathlib.Path:
    """`dir/model.h5` or `dir/model.keras` -> `dir/model.calibration.npz`."""
    path = pathlib.Path(model_path)
    return path.with_name(path.stem + SUFFIX)


def balanced_indices(labels, count: int, seed: int = 0) -> np.ndarray:
    """`count` indices with every class as equally represented as the data allows.

    int8 ranges are set by the calibration samples: a random draw can leave a rare class's
    activations (and so its logits' range) out, which costs agreement on exactly that class.
    Labels that are not one integer class per sample (regression, one-hot) fall back to a
    random draw.

    Example:
        >>> balanced_indices(np.array([0, 0, 0, 1]), 2)   # one of each class
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return rng.permutation(len(labels))[:count]
    rank = np.empty(len(labels), dtype=np.int64)  # position within its class, shuffled
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    # Every class's first sample, then every class's second, ...: a rare class runs out last.
    return np.lexsort((rng.random(len(labels)), rank))[:count]


def save_calibration(path, x, training_inputs=None) -> pathlib.Path:
    """Writes samples `x` (float32, [n, *input_shape]) as array `x`, atomically.

    Args:
        path: Where to write (`.npz`).
        x: The calibration samples.
        training_inputs: The training inputs (or any array covering their range); their
            min and max are recorded as `input_min` / `input_max` when finite.

    Example:
        >>> save_calibration("lenet.calibration.npz", x_train[:256], training_inputs=x_train)
    """
    path = pathlib.Path(path)
    arrays = {"x": np.asarray(x, dtype="float32")}
    if training_inputs is not None:
        low, high = float(np.min(training_inputs)), float(np.max(training_inputs))
        if np.isfinite(low) and np.isfinite(high):
            arrays.update(input_min=np.float32(low), input_max=np.float32(high))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path
