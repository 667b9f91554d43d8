"""Datasets: Fashion-MNIST from Debian's `dataset-fashion-mnist` when present, else Keras's download."""
from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: pathlib.Path, header_bytes: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header_bytes)


def _load_split(directory: pathlib.Path, split: str):
    images, labels = (directory / name for name in _FILES[split])
    y = _read_idx(labels, 8).astype("int64")
    x = _read_idx(images, 16).reshape(len(y), 28, 28)
    return x, y


def fashion_mnist(directory=None):
    """Fashion-MNIST as ((x_train, y_train), (x_test, y_test)).

    x is float32 in [0, 1] with shape (n, 28, 28); y holds int64 class ids 0-9.

    Args:
        directory: folder with the four idx .gz files; default $FASHION_MNIST_DIR, then the
            Debian package's /usr/share/datasets/fashion-mnist, then Keras's download.
    """
    directory = directory or os.environ.get("FASHION_MNIST_DIR") or DEBIAN_FASHION_MNIST
    directory = pathlib.Path(directory)
    if all((directory / name).exists() for pair in _FILES.values() for name in pair):
        splits = [_load_split(directory, s) for s in ("train", "test")]
    else:
        from dynhp_tf._keras import keras

        splits = keras.datasets.fashion_mnist.load_data()
    return tuple((x.astype("float32") / 255.0, y.astype("int64")) for x, y in splits)
