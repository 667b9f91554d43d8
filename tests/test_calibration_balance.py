"""Class-balanced calibration samples: a rare class is not left out of the int8 ranges."""
import numpy as np

from dynhp_tf.calibration import balanced_indices


def test_every_class_is_as_equally_represented_as_the_data_allows():
    labels = np.array([0] * 90 + [1] * 8 + [2] * 2)
    picked = labels[balanced_indices(labels, 12, seed=1)]
    assert np.bincount(picked, minlength=3).tolist() == [5, 5, 2]
    assert len(set(balanced_indices(labels, 12, seed=1))) == 12


def test_non_class_labels_fall_back_to_a_random_draw():
    picked = balanced_indices(np.linspace(0, 1, 50), 10)
    assert len(set(picked)) == 10 and picked.max() < 50
