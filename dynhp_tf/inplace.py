"""Writes into variables in place, so that keeping the user's full-width model costs no more.

During a DynHP fit the user's model keeps its full width while a narrow network trains. A
full-width weight of a 4096-wide layer is 64 MiB; assigning it a new value, computed in numpy,
costs two or three more buffers of that size, which is more memory than pruning freed. Yet
that model only changes in two ways: the kept neurons' entries take the narrow network's values
(`write_kept`, at each sync), and the neurons removed at an event become zero (`zero_removed`).
Both go through TensorFlow's in-place scatter, so their temporaries are the size of what
changes; `take_kept` slices with gathers instead of a numpy copy of the whole weight,
`assign_kept` fills a narrow variable a block of rows at a time, and `free_variables` empties
buffers that nothing will read again.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf.groups import kept_index


def _components(variable) -> list:
    """The tf.Variables that hold `variable`: one, or one per replica under a strategy."""
    inner = variable if isinstance(variable, tf.Variable) else variable.value
    return list(getattr(inner, "values", (inner,)))


def _scatter(variable, index: list[np.ndarray], updates) -> None:
    """`variable[np.ix_(*index)] = updates` in place; `index` covers the leading axes."""
    if min(len(i) for i in index) == 0:
        return
    grid = np.stack(np.meshgrid(*index, indexing="ij"), axis=-1)
    grid = grid.astype("int32" if max(variable.shape) < 2**31 else "int64")
    for component in _components(variable):
        with tf.device(component.device):
            tf.raw_ops.ResourceScatterNdUpdate(ref=component.handle, indices=grid, updates=updates)


def _leading(pruned_axes) -> int:
    """How many leading axes a scatter must index to reach every pruned axis."""
    return max((axis for _, axis, _ in pruned_axes), default=-1) + 1


def take_kept(variable, pruned_axes, keep: list[np.ndarray]) -> tf.Tensor:
    """The part of a weight that the kept neurons use (`groups.slice_weight`, in TensorFlow)."""
    value = tf.convert_to_tensor(variable)
    index = kept_index(pruned_axes, keep, tuple(value.shape))
    # The most selective axis first: the intermediate result is then the smallest.
    for axis in sorted({a for _, a, _ in pruned_axes}, key=lambda a: len(index[a]) / value.shape[a]):
        value = tf.gather(value, index[axis], axis=axis)
    return value


def assign_kept(target, source, pruned_axes, keep: list[np.ndarray], block_bytes: int = 4 << 20) -> None:
    """`target.assign(take_kept(source, ...))` with temporaries of at most about `block_bytes`.

    At a pruning event the narrow network is built while the full-width weights and optimizer
    state still exist: whole-weight gathers there (an intermediate as large as a full kernel
    row block times the kept columns, then the result) set the event's memory peak. Here each
    block of leading rows is gathered and scattered into place.
    """
    value = tf.convert_to_tensor(source)  # reading a variable shares its buffer: no copy
    shape = tuple(value.shape)
    if not shape:
        target.assign(value)
        return
    index = kept_index(pruned_axes, keep, shape)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * value.dtype.size
    rows = max(1, block_bytes // max(1, row_bytes))
    for start in range(0, len(index[0]), rows):
        part = tf.gather(value, index[0][start:start + rows], axis=0)
        for axis in range(1, len(shape)):
            if len(index[axis]) < shape[axis]:
                part = tf.gather(part, index[axis], axis=axis)
        position = np.arange(start, start + int(part.shape[0]))
        for component in _components(target):
            with tf.device(component.device):
                tf.raw_ops.ResourceScatterUpdate(resource=component.handle, indices=position, updates=part)


def write_kept(variable, value, pruned_axes, keep: list[np.ndarray]) -> None:
    """Writes a narrow `value` into the kept neurons' entries of the full-width `variable`.

    Entries of removed neurons are left as they are: zero, since `zero_removed` made them so.
    """
    value = tf.cast(value, variable.dtype)
    lead = _leading(pruned_axes)
    if lead == 0:  # no pruned axis: the narrow value has the full shape
        variable.assign(value)
        return
    _scatter(variable, kept_index(pruned_axes, keep, tuple(variable.shape))[:lead], value)


def zero_removed(variable, pruned_axes, old_keep: list[np.ndarray], new_keep: list[np.ndarray]) -> None:
    """Sets to zero, in place, the entries of the neurons that `new_keep` removes from `old_keep`.

    Entries of neurons removed before are zero already and are not written. The entries to
    zero are split by their first pruned axis whose neuron goes now: earlier pruned axes kept,
    that axis gone, later axes whole; each part is one scatter.
    """
    shape = tuple(variable.shape)
    kept = kept_index(pruned_axes, new_keep, shape)
    for g, axis, tile in sorted(pruned_axes, key=lambda a: a[1]):
        index = kept[:axis] + [np.flatnonzero(np.tile(old_keep[g] & ~new_keep[g], tile))]
        updates = tf.zeros([len(i) for i in index] + list(shape[axis + 1:]), variable.dtype)
        _scatter(variable, index, updates)


def free_variables(variables) -> None:
    """Drops the buffers of variables that will never be read again.

    TensorFlow keeps every traced train function alive after its model is gone, and with it
    the variable handles it captured, which own the buffers: deleting a replaced network or
    optimizer would free nothing, and each shrink would leak the previous network's weights
    and slots. Emptying each variable in place frees its buffer now.
    """
    for variable in variables:
        for component in _components(variable):
            tf.raw_ops.AssignVariableOp(resource=component.handle, value=tf.zeros([0], component.dtype),
                                        validate_shape=False)
