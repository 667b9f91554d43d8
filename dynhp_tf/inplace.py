"""Writes into variables in place, so that keeping the user's full-width model costs no more.

During a DynHP fit the user's model keeps its full width while a narrow network trains. A
full-width weight of a 4096-wide layer is 64 MiB; assigning it a new value, computed in numpy,
costs two or three more buffers of that size, which is more memory than pruning freed. Yet
that model only changes in two ways: the kept neurons' entries take the narrow network's values
(`write_kept`, at each sync), and the neurons removed at an event become zero (`zero_removed`).
Both go through TensorFlow's in-place row scatter a block of rows at a time, so their
temporaries stay near `BLOCK_BYTES` whatever the weight's size (a scatter indexed by element
would need an index twice the size of the values). `take_kept` and `assign_kept` slice the
same way into a narrow buffer, and `free_variables` empties buffers that nothing will read again.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf.groups import kept_index


def _components(variable) -> list:
    """The tf.Variables that hold `variable`: one, or one per replica under a strategy."""
    inner = variable if isinstance(variable, tf.Variable) else variable.value
    return list(getattr(inner, "values", (inner,)))


BLOCK_BYTES = 4 << 20  # the largest temporary of a write: one block of leading rows


def _row_blocks(shape, itemsize: int, count: int, block_bytes: int) -> list[slice]:
    """Slices of `count` leading rows, each block of rows about `block_bytes` or less."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    rows = max(1, block_bytes // max(1, row_bytes))
    return [slice(start, start + rows) for start in range(0, count, rows)]


def _write_rows(variable, rows: np.ndarray, part) -> None:
    """`variable[rows] = part` in place (every replica)."""
    if len(rows) == 0:
        return
    for component in _components(variable):
        with tf.device(component.device):
            tf.raw_ops.ResourceScatterUpdate(resource=component.handle, indices=rows, updates=part)


def _read_rows(variable, rows: np.ndarray):
    """`variable[rows]`, read without reading the whole variable."""
    component = _components(variable)[0]
    return tf.raw_ops.ResourceGather(resource=component.handle, indices=rows, dtype=component.dtype)


def _end_row_access(variable) -> None:
    """Makes reads of `variable` share its buffer again after row reads or writes.

    A row scatter or gather puts a TensorFlow variable in copy-on-read mode: from then on every
    read, in every train step, copies the whole buffer, so a written 4096-wide kernel would
    cost a 64 MiB temporary per read for the rest of training.
    """
    for component in _components(variable):
        with tf.device(component.device):
            tf.raw_ops.DisableCopyOnRead(resource=component.handle)


def take_kept(variable, pruned_axes, keep: list[np.ndarray]) -> tf.Tensor:
    """The part of a weight that the kept neurons use (`groups.slice_weight`, in TensorFlow).

    Built in a buffer of its own a block of rows at a time (`assign_kept`): a whole-weight
    gather would first make an intermediate almost as large as the weight.
    """
    value = tf.convert_to_tensor(variable)
    shape = [len(i) for i in kept_index(pruned_axes, keep, tuple(value.shape))]
    buffer = tf.Variable(tf.zeros(shape, value.dtype), trainable=False)
    assign_kept(buffer, value, pruned_axes, keep)
    return buffer.read_value()  # shares the buffer, which outlives the variable


def assign_kept(target, source, pruned_axes, keep: list[np.ndarray], block_bytes: int = BLOCK_BYTES) -> None:
    """`target.assign(take_kept(source, ...))`, a block of leading rows at a time.

    At a pruning event the narrow network is built while the full-width weights and optimizer
    state still exist: whole-weight gathers there would set the event's memory peak.
    """
    value = tf.convert_to_tensor(source)  # reading a variable shares its buffer: no copy
    shape = tuple(value.shape)
    if not shape:
        target.assign(value)
        return
    index = kept_index(pruned_axes, keep, shape)
    for block in _row_blocks(shape, value.dtype.size, len(index[0]), block_bytes):
        part = tf.gather(value, index[0][block], axis=0)
        for axis in range(1, len(shape)):
            if len(index[axis]) < shape[axis]:
                part = tf.gather(part, index[axis], axis=axis)
        _write_rows(target, np.arange(len(index[0]))[block], part)
    _end_row_access(target)


def _widen(part, axis: int, index: np.ndarray, size: int):
    """`part` with its narrow `axis` spread to `size` positions: `index` gets its slices, others 0."""
    zero = tf.zeros_like(tf.gather(part, [0], axis=axis))
    source = np.full(size, len(index))  # every position reads the appended zero slice...
    source[index] = np.arange(len(index))  # ...except the kept ones
    return tf.gather(tf.concat([part, zero], axis=axis), source, axis=axis)


def write_kept(variable, value, pruned_axes, keep: list[np.ndarray], block_bytes: int = BLOCK_BYTES) -> None:
    """Writes a narrow `value` into the kept neurons' entries of the full-width `variable`.

    Written a block of leading rows at a time, each row whole: the removed neurons' entries in
    those rows get 0, which they hold already (`zero_removed` made them so).
    """
    value = tf.cast(tf.convert_to_tensor(value), variable.dtype)
    shape = tuple(variable.shape)
    if not pruned_axes:  # the narrow value has the full shape
        variable.assign(value)
        return
    index = kept_index(pruned_axes, keep, shape)
    for block in _row_blocks(shape, value.dtype.size, len(index[0]), block_bytes):
        part = value[block]
        for axis in range(1, len(shape)):
            if len(index[axis]) < shape[axis]:
                part = _widen(part, axis, index[axis], shape[axis])
        _write_rows(variable, index[0][block], part)
    _end_row_access(variable)


def zero_removed(variable, pruned_axes, old_keep: list[np.ndarray], new_keep: list[np.ndarray],
                 block_bytes: int = BLOCK_BYTES) -> None:
    """Sets to zero, in place, the entries of the neurons that `new_keep` removes from `old_keep`.

    Only the rows (leading axis) that lose a neuron are rewritten, or every row when a later
    axis loses one.
    """
    shape = tuple(variable.shape)
    old, new = kept_index(pruned_axes, old_keep, shape), kept_index(pruned_axes, new_keep, shape)
    if all(len(a) == len(b) for a, b in zip(old, new)):
        return
    later = any(len(a) != len(b) for a, b in zip(old[1:], new[1:]))
    factors = []  # per axis, 1 at the kept positions
    for axis, (kept, size) in enumerate(zip(new, shape)):
        mask = np.zeros(size, tf.as_dtype(variable.dtype).as_numpy_dtype)
        mask[kept] = 1
        factors.append((axis, mask))
    scale_rows(variable, factors, None if later else np.setdiff1d(old[0], new[0]), block_bytes)


def scale_rows(variable, factors, rows: np.ndarray | None = None, block_bytes: int = BLOCK_BYTES) -> None:
    """`variable *= factor` along each `(axis, factor)` of `factors`, in place, in the given
    `rows` (default: all), a block of rows at a time.

    In a traced function, give the factors as tensors (a mask's keep vector, read from its
    variable): TensorFlow's graph optimizer folds a product of constant masks into one constant
    per block of rows, as large as the weight, which the function keeps for as long as it lives.
    """
    shape = tuple(variable.shape)
    rank = len(shape)
    rows = np.arange(shape[0]) if rows is None else rows
    for block in _row_blocks(shape, tf.as_dtype(variable.dtype).size, len(rows), block_bytes):
        part = _read_rows(variable, rows[block])
        for axis, factor in factors:
            factor = tf.gather(factor, rows[block]) if axis == 0 else factor
            part = part * tf.reshape(tf.cast(factor, part.dtype), [-1 if i == axis else 1 for i in range(rank)])
        _write_rows(variable, rows[block], part)
    _end_row_access(variable)


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
