"""A batch stream whose batch size can grow between epochs of one `model.fit` call.

Keras fixes the number of steps per epoch when fit starts (tf_keras stops with "Your input
ran out of data" when a later epoch has fewer batches; Keras 3 warns every epoch). So the
stream declares the step count of its first, smallest batch size, yields only as many real
batches as the current size needs (every sample exactly once per epoch), and the callback
turns the surplus steps of an epoch into no-ops that neither read data nor update weights.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import tensorflow as tf


class BatchStream:
    """Shuffled batches over (x, y[, sample_weight]); `batch_size` may grow between epochs."""

    def __init__(self, x, y, batch_size: int, sample_weight=None, shuffle: bool = True, seed: int | None = None):
        arrays = [np.asarray(x), np.asarray(y)] + ([] if sample_weight is None else [np.asarray(sample_weight)])
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        n = len(arrays[0])
        if n == 0 or any(len(a) != n for a in arrays):
            raise ValueError(f"x, y: expected the same non-zero number of samples, got {[len(a) for a in arrays]}")
        self.arrays, self.num_samples = arrays, n
        self.batch_size = self.initial_batch_size = int(batch_size)
        # Without a seed, one from NumPy's global generator: `keras.utils.set_random_seed` then
        # makes the order reproducible, as it does for Keras's own shuffling.
        self.shuffle = shuffle
        self.seed = int(np.random.randint(0, 2**31 - 1)) if seed is None else seed
        self._starts = itertools.count()

    @property
    def max_steps(self) -> int:
        """Steps per epoch that Keras schedules: those of the initial batch size."""
        return math.ceil(self.num_samples / self.initial_batch_size)

    @property
    def steps(self) -> int:
        """Real batches in an epoch at the current batch size."""
        return math.ceil(self.num_samples / self.batch_size)

    def sample(self, count: int, seed: int = 0) -> tuple:
        """A fixed random subset of the data (e.g. for data-driven importance, calibration)."""
        index = np.random.default_rng(seed).permutation(self.num_samples)[:count]
        return tuple(a[index] for a in self.arrays)

    def _epoch(self) -> tuple[np.ndarray, np.int64]:
        """The next epoch's sample order and batch size, read once: the size is fixed for the epoch."""
        rng = np.random.default_rng((self.seed, next(self._starts)))
        order = rng.permutation(self.num_samples) if self.shuffle else np.arange(self.num_samples)
        return order.astype(np.int64), np.int64(self.batch_size)

    def dataset(self) -> tf.data.Dataset:
        # Python runs once per epoch (the order and the size), when an epoch's iterator asks
        # for its first batch, after the previous epoch's end, so a grown batch applies from the
        # next epoch on. Batching and gathering run in TensorFlow, prefetched. The epoch comes
        # from a one-element dataset through `tf.numpy_function`: `Dataset.from_generator` there
        # cost about 3 ms of CPU per step (LeNet-300-100 at batch 64 took 1.5x a plain fit's
        # CPU time; `benchmarks/physical.py --overhead`).
        tensors = tuple(tf.convert_to_tensor(a) for a in self.arrays)

        def epoch(_):
            order, size = tf.numpy_function(self._epoch, [], (tf.int64, tf.int64), stateful=True)
            return tf.ensure_shape(order, (self.num_samples,)), tf.ensure_shape(size, ())

        data = tf.data.Dataset.range(1).map(epoch)
        data = data.flat_map(lambda order, size: tf.data.Dataset.from_tensor_slices(order).batch(size))
        data = data.map(lambda index: tuple(tf.gather(t, index) for t in tensors),
                        num_parallel_calls=tf.data.AUTOTUNE)
        return data.apply(tf.data.experimental.assert_cardinality(self.max_steps)).prefetch(tf.data.AUTOTUNE)
