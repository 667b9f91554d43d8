import gzip
import struct

import numpy as np
import pytest

from dynhp_tf.datasets import DEBIAN_FASHION_MNIST, fashion_mnist


def write_idx(directory, images_name, labels_name, images, labels):
    with gzip.open(directory / images_name, "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(directory / labels_name, "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def test_reads_idx_files_scaled_to_unit_floats(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", train,
              np.array([0, 1, 2, 3, 9], np.uint8))
    write_idx(tmp_path, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", test, np.array([4, 5, 6], np.uint8))
    (x, y), (x_test, y_test) = fashion_mnist(tmp_path)
    assert x.shape == (5, 28, 28) and x.dtype == np.float32 and y.tolist() == [0, 1, 2, 3, 9]
    np.testing.assert_allclose(x * 255, train)
    assert x_test.shape == (3, 28, 28) and y_test.tolist() == [4, 5, 6]


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_copy_is_the_full_dataset():
    (x, y), (x_test, y_test) = fashion_mnist()
    assert x.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and 0.0 <= x.min() < x.max() <= 1.0
