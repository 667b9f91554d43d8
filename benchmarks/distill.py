"""Self-distillation for DynHP (issue 16 attempt, a benchmark prototype, not a library option).

The network's own soft outputs on the training samples, taken just before a pruning event,
become an extra target for the rest of training:

    loss = (1 - a) * CE(y) + a * T^2 * KL(softmax(teacher / T) || softmax(student / T))

Only N x classes floats are kept, not a copy of the network. The cheapest fair way to carry a
sample's soft target with its batch through DynHP's stream (which knows each sample's index but
yields only (x, y)): the training label y is encoded as `label + classes * (index + 1)`; the loss
decodes the index and gathers the teacher row from a variable. Test labels (plain, < classes)
decode to "no teacher", so `evaluate` on the test set reads plain cross-entropy and accuracy. The
same loss and metric objects reach DynHP's narrow trainer through `compile_args`, so the narrow
network trains on the same objective.

`when`: "first" takes the teacher once, before the schedule's first event (the dense network);
"events" retakes it before every event (the network as it is just before it loses neurons).
Until the first teacher exists the loss is plain cross-entropy (a zero row has weight 0), so the
epochs before it train exactly as without distillation.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from dynhp_tf._keras import keras

WHEN = ("first", "events")


def encode_labels(y: np.ndarray, classes: int) -> np.ndarray:
    """Training labels that also carry each sample's index (see the module docstring)."""
    y = np.asarray(y).reshape(-1).astype(np.int64)
    return (y + classes * (np.arange(len(y)) + 1)).astype(np.float32)


class Distillation:
    """Holds the teacher's softened outputs; gives the loss, the metric and the capturing callback."""

    def __init__(self, samples: int, classes: int, alpha: float, temperature: float, when: str = "first"):
        if when not in WHEN:
            raise ValueError(f"when: expected one of {WHEN}, got {when!r}")
        self.classes, self.alpha, self.temperature, self.when = classes, float(alpha), float(temperature), when
        self.teacher = tf.Variable(tf.zeros((samples, classes)), trainable=False, name="distill_teacher")
        self.taken = []  # epochs at whose end the teacher was taken

    def _decode(self, y_true):
        y = tf.cast(tf.round(tf.reshape(y_true, [-1])), tf.int64)
        return y % self.classes, y // self.classes - 1

    def _soften(self, probabilities):
        # The networks end in softmax: log-probabilities are the logits up to a per-sample constant.
        return tf.nn.softmax(tf.math.log(tf.clip_by_value(probabilities, 1e-7, 1.0)) / self.temperature)

    def loss(self, y_true, y_pred):
        label, index = self._decode(y_true)
        ce = keras.losses.sparse_categorical_crossentropy(label, y_pred)
        target = tf.gather(self.teacher, tf.maximum(index, 0))
        has_teacher = tf.cast(index >= 0, y_pred.dtype) * tf.reduce_sum(target, axis=-1)  # 1 or 0
        student = tf.clip_by_value(self._soften(y_pred), 1e-7, 1.0)
        kl = tf.reduce_sum(target * (tf.math.log(tf.clip_by_value(target, 1e-7, 1.0)) - tf.math.log(student)), -1)
        weight = self.alpha * has_teacher
        return (1.0 - weight) * ce + weight * self.temperature ** 2 * kl

    def accuracy(self, y_true, y_pred):
        label, _ = self._decode(y_true)
        return keras.metrics.sparse_categorical_accuracy(label, y_pred)

    def callback(self, x: np.ndarray, schedule, epochs: int):
        """Takes the teacher at the end of an event epoch; must run before DynHPCallback prunes."""
        owner = self

        class TakeTeacher(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if schedule.progress(epoch, epochs) is None or (owner.when == "first" and owner.taken):
                    return
                # The user's model holds the narrow network's weights (removed neurons zero) here.
                owner.teacher.assign(owner._soften(self.model.predict(x, batch_size=1000, verbose=0)))
                owner.taken.append(epoch)

        return TakeTeacher()
