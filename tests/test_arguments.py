"""DynHPCallback's arguments: numpy scalars are accepted as the numbers they are; NaN,
infinity, strings and non-integer sizes are refused at once, naming the argument."""
import numpy as np
import pytest

from dynhp_tf import DynHPCallback


@pytest.mark.parametrize("kwargs, attribute, expected", [
    ({"target_compression": np.float32(4)}, "target_compression", 4.0),
    ({"target_compression": np.int64(4)}, "target_compression", 4.0),
    ({"target_compression": 4, "batch_size": np.int64(16), "max_batch_size": np.int32(64)}, "batch_size", 16),
    ({"target_compression": 4, "memory_budget": np.float64(1e6)}, "memory_budget", 1_000_000),
])
def test_numpy_scalars_are_accepted_as_plain_numbers(kwargs, attribute, expected):
    cb = DynHPCallback(verbose=0, **kwargs)
    value = getattr(cb, attribute)
    assert value == expected and type(value) is type(expected)  # config stays plain Python


def test_numpy_epochs_are_accepted():
    cb = DynHPCallback(target_compression=4, start_epoch=np.int64(1), end_epoch=np.int64(3), verbose=0)
    assert (cb.schedule.start_epoch, cb.schedule.end_epoch) == (1, 3)


@pytest.mark.parametrize("kwargs, argument", [
    ({"target_compression": float("nan")}, "target_compression"),
    ({"target_compression": float("inf")}, "target_compression"),
    ({"target_compression": np.float32("nan")}, "target_compression"),
    ({"target_compression": "4"}, "target_compression"),
    ({"arena_bytes": float("nan")}, "arena_bytes"),
    ({"target_compression": 4, "batch_size": "32"}, "batch_size"),
    ({"target_compression": 4, "batch_size": 32.5}, "batch_size"),
    ({"target_compression": 4, "min_neurons": float("nan")}, "min_neurons"),
    ({"target_compression": 4, "memory_budget": float("inf")}, "memory_budget"),
    ({"target_compression": 4, "start_epoch": float("nan")}, "start_epoch"),
    ({"target_compression": 4, "frequency": 1.5}, "frequency"),
])
def test_non_finite_or_non_integer_arguments_are_refused_by_name(kwargs, argument):
    with pytest.raises(ValueError, match=f"^{argument}: expected"):
        DynHPCallback(verbose=0, **kwargs)
