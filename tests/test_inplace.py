"""In-place writes into full-width weights agree exactly with the numpy slice/expand reference."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.groups import expand_weight, slice_weight
from dynhp_tf.inplace import assign_kept, free_variables, take_kept, write_kept, zero_removed

# (shape, pruned_axes): a Dense kernel after Flatten (input channels tiled 3 times), a conv
# kernel pruned on its input and output channels, a bias.
CASES = [((12, 5), [(0, 0, 3), (1, 1, 1)]), ((3, 3, 4, 6), [(0, 2, 1), (1, 3, 1)]), ((6,), [(1, 0, 1)])]



def variable(value):
    """A weight as the framework makes it: a Keras 3 variable, or a tf.Variable under tf_keras."""
    return keras.Variable(value) if hasattr(keras, "Variable") else tf.Variable(value)


@pytest.mark.parametrize("shape,axes", CASES, ids=["dense-after-flatten", "conv", "bias"])
def test_take_write_and_zero_match_numpy(shape, axes):
    sizes = {g: shape[a] // t for g, a, t in axes}  # neurons per group
    rng = np.random.default_rng(0)
    old = [np.ones(sizes.get(g, 1), bool) for g in range(2)]
    new = [rng.random(sizes.get(g, 1)) < 0.6 for g in range(2)]
    for k in new:
        k[0] = True
    full = rng.normal(size=shape).astype("float32")
    v = variable(full)

    np.testing.assert_array_equal(np.asarray(take_kept(v, axes, new)), slice_weight(full, axes, new))
    for block_bytes in (1, 4 << 20):  # one leading row per block, and every row in one block
        target = variable(np.full(slice_weight(full, axes, new).shape, np.nan, "float32"))
        assign_kept(target, v, axes, new, block_bytes=block_bytes)
        np.testing.assert_array_equal(np.asarray(target), slice_weight(full, axes, new))
    zero_removed(v, axes, old, new, block_bytes=1)  # removed now: zero; kept: unchanged
    np.testing.assert_array_equal(np.asarray(v), expand_weight(slice_weight(full, axes, new), axes, new, shape))
    narrow = rng.normal(size=slice_weight(full, axes, new).shape).astype("float32")
    write_kept(v, narrow, axes, new, block_bytes=1)  # one leading row per block
    np.testing.assert_array_equal(np.asarray(v), expand_weight(narrow, axes, new, shape))

    fewer = [k & (rng.random(len(k)) < 0.7) for k in new]  # a second event removes more
    zero_removed(v, axes, new, fewer)
    np.testing.assert_array_equal(np.asarray(v), expand_weight(slice_weight(np.asarray(v), axes, fewer), axes,
                                                               fewer, shape))
    np.testing.assert_array_equal(slice_weight(np.asarray(v), axes, fewer),
                                  slice_weight(expand_weight(narrow, axes, new, shape), axes, fewer))


def test_free_variables_empties_the_buffer():
    v = variable(np.ones((64, 64), "float32"))
    free_variables([v])
    inner = v if isinstance(v, tf.Variable) else v.value
    assert tf.size(inner.read_value()).numpy() == 0


READS_AFTER_WRITES = """
import numpy as np, tensorflow as tf
from dynhp_tf.inplace import assign_kept, write_kept, zero_removed
axes, keep, old = [(0, 0, 1), (1, 1, 1)], [np.arange(512) % 2 == 0] * 2, [np.ones(512, bool)] * 2
full = tf.Variable(tf.ones([512, 512]))
narrow = tf.Variable(tf.zeros([256, 256]))
def read_cost(v):  # allocator bytes that two reads of `v` take
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    a, b = v.read_value(), v.read_value()
    return tf.config.experimental.get_memory_info("CPU:0")["current"] - before
zero_removed(full, axes, old, keep)
assign_kept(narrow, full, axes, keep)
print(read_cost(full), read_cost(narrow))
write_kept(full, narrow, axes, keep)
print(read_cost(full))
"""


def test_reads_share_the_buffer_after_in_place_writes():
    """A row scatter leaves a TensorFlow variable copying its whole buffer at every read, which
    in a train step would cost a weight-sized temporary per read: the writes switch it back."""
    env = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", READS_AFTER_WRITES], capture_output=True, text=True, check=True,
                          env=env, cwd=Path(__file__).parents[1])
    assert done.stdout.split() == ["0", "0", "0"], done.stdout


ZEROING_MEMORY = """
import gc, numpy as np, tensorflow as tf
from dynhp_tf._keras import keras
from dynhp_tf.groups import pruning_groups
from dynhp_tf.masks import NeuronMasks
def current():
    gc.collect()
    return tf.config.experimental.get_memory_info("CPU:0")["current"]
def zeroing(revive):
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(512), keras.layers.Dense(10)])
    graph = pruning_groups(model)
    masks, kernel = NeuronMasks(model, graph), model.layers[1].kernel
    for fraction in (2, 3):
        masks.update([np.arange(g.size) % fraction != 1 for g in graph.groups])
        for _ in range(3):
            if revive:  # as a step traced without the constraint would
                kernel.assign(tf.ones(kernel.shape))
            masks.zero_in_place()
        full = np.asarray(kernel)
        removed = np.abs(full[~masks.keep[0]]).sum() + np.abs(full[:, ~masks.keep[1]]).sum()
        print(float(removed), float(full[masks.keep[0]][:, masks.keep[1]].min() if revive else 1))
    return model, masks
model, masks = zeroing(revive=True)
del model, masks
model, masks = zeroing(revive=False)
live = current()
masks._zeroing = None  # drops the traced function (the model's weight constraints hold the masks)
print(live - current())  # what the traced zeroing held
"""


def test_zeroing_in_place_holds_no_copy_of_the_weights_and_follows_every_update():
    """The traced zeroing sets removed neurons back to 0 after each step of a masked model. Traced
    with its masks as numpy constants, TensorFlow's graph optimizer folded them into a constant as
    large as the weight, which the function held (28 MiB on a 4096-wide layer; 1 MiB here): the
    masks are read from their variables, so one trace serves every later keep and holds next to
    nothing."""
    env = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", ZEROING_MEMORY], capture_output=True, text=True, check=True,
                          env=env, cwd=Path(__file__).parents[1])
    lines = done.stdout.split("\n")
    assert [line.split() for line in lines[:4]] == [["0.0", "1.0"]] * 4, done.stdout
    assert abs(int(lines[4])) < 512 * 512 * 4 // 16, done.stdout
