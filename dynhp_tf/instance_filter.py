"""Early instance filtering: a tiny network skips the samples the main network would learn little from.

After Wu, Wang, Shi, Hu, "Enabling On-Device CNN Training by Self-Supervised Instance
Filtering and Error Map Pruning" (TCAD 2020). Before each batch a filter network predicts,
per sample, whether the main network's loss on it would be high. Only predicted-high samples,
plus some the filter is unsure about (largest binary entropy of its prediction), go through
the main network's train step; the others cost no main forward or backward pass.

The filter learns from the main network itself: a sample is labelled "high" when the main
network's loss on it is at least a threshold T. T adapts so that the high samples found make
up the kept ratio R of the data: if the rate of high samples (labelled high among the kept
rows, over all samples seen) in the recent batches reaches R, T grows by `raise_factor`, else
it shrinks by `lower_factor`. An explored row counts for all the rows not predicted high of
its batch (it is their sample): counting it once made a weak filter drive T far below the
loss quantile it should track (on Fashion-MNIST T fell to 0.03 while the top 20% of losses
started at 0.45), and the filter then learned "not confidently right" instead of "high loss".
The filter's cross-entropy weighs high samples by 1/R and low ones by 1/(1-R), so the rarer
class is not ignored.

Choices the paper leaves open are ours: T0 = 0.2, factors 1.01 / 0.99 (per step, so T can
follow the loss within an epoch), a window of 10 steps for the rate, the default filter
networks (`default_filter`), Adam(1e-3) for the filter. Labels are the main network's
per-sample losses in the train step's own forward (`dynhp_tf.sample_losses`), before its
update as in the paper: no extra forward. They label the rows right after their step, before
the next batch is chosen. (A separate inference forward of the kept rows for the labels, as
first built, cost a third of the main network's FLOPs in filtered runs.)

One deviation: "predicted high" is the ceil(R*n) samples of a batch of n with the highest
filter output, and "uncertain" the ceil(explore_ratio*n) of the rest with the largest entropy,
instead of fixed cuts (p >= 0.5, entropy >= a threshold). With fixed cuts a filter that is not
yet sure lets most samples through: measured on Fashion-MNIST (small CNN, 4 epochs), 60% of
the samples were kept at R = 0.2 and at R = 0.4 alike, so R did not set the cost. Ranking
keeps R + explore_ratio of every batch, whatever the filter's calibration.

`explore="random"` (our option) explores uniformly instead of by entropy. A tiny filter
learns mostly which classes are hard; its entropy-chosen rows are hard ones too, so whole
easy classes (sandals, sneakers, boots on Fashion-MNIST) never reached the main network and
it forgot them.
"""
from __future__ import annotations

import collections
import math

import numpy as np
import tensorflow as tf

from dynhp_tf import sample_losses
from dynhp_tf._keras import keras
from dynhp_tf.flops import AnyRowsFunction, TrainingFlops, per_sample_flops, rows, take_rows


class ThresholdRule:
    """The adaptive loss threshold that labels samples high (loss >= T) or low.

    Args:
        keep_ratio: R, the fraction of samples that should be true-high.
        threshold: T0, the initial threshold (in units of the loss).
        raise_factor, lower_factor: a > 1 and b < 1; T becomes T*a when the recent rate of
            true-high samples reaches R, else T*b.
        window: how many recent updates the rate is taken over.

    Example:
        >>> rule = ThresholdRule(0.3)
        >>> high = rule.label(losses)            # losses of the samples that ran
        >>> rule.update(int(high.sum()), seen)   # seen: all samples of the step, kept or not
    """

    def __init__(self, keep_ratio, threshold=0.2, raise_factor=1.01, lower_factor=0.99, window=10):
        checks = {"keep_ratio": 0 < keep_ratio < 1, "threshold": threshold > 0, "raise_factor": raise_factor > 1,
                  "lower_factor": 0 < lower_factor < 1, "window": int(window) == window and window >= 1}
        expected = {"keep_ratio": "in (0, 1)", "threshold": "> 0", "raise_factor": "> 1",
                    "lower_factor": "in (0, 1)", "window": "an integer >= 1"}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}: expected a number {expected[name]}, got {locals()[name]!r}")
        self.keep_ratio, self.threshold = float(keep_ratio), float(threshold)
        self.raise_factor, self.lower_factor = float(raise_factor), float(lower_factor)
        self.recent = collections.deque(maxlen=int(window))

    def label(self, losses) -> np.ndarray:
        return np.asarray(losses) >= self.threshold

    def update(self, true_high: int, seen: int) -> None:
        self.recent.append((true_high, seen))
        rate = sum(h for h, _ in self.recent) / max(1, sum(s for _, s in self.recent))
        self.threshold *= self.raise_factor if rate >= self.keep_ratio else self.lower_factor


def default_filter(input_shape, channels=(8, 16)) -> keras.Model:
    """A tiny filter network for inputs of `input_shape` (no batch axis); outputs one logit.

    Images (H, W, C): two stride-2 3x3 convolutions (`channels`, default 8 and 16 filters)
    and a linear read-out (on 28x28x1 about 71k MACs, a few percent of a small CNN; (4, 8)
    about 22k). Sequences (T, C): one stride-2 convolution of channels[0] filters. Anything
    else: a hidden layer of channels[1] units.

    Args:
        input_shape: one sample's shape.
        channels: (first, second) widths; the filter's forward runs on every sample and its
            training on the kept ones, so its size is paid every epoch.

    Example:
        >>> filt = InstanceFilter(0.2, filter_model=default_filter((28, 28, 1), channels=(4, 8)))
    """
    layers = keras.layers
    shape = tuple(int(d) for d in input_shape)
    if len(channels) != 2 or not all(int(c) == c and c >= 1 for c in channels):
        raise ValueError(f"channels: expected two integers >= 1, got {channels!r}")
    first, second = (int(c) for c in channels)
    if len(shape) == 3:
        body = [layers.Conv2D(first, 3, strides=2, padding="same", activation="relu"),
                layers.Conv2D(second, 3, strides=2, padding="same", activation="relu"), layers.Flatten()]
    elif len(shape) == 2:
        body = [layers.Conv1D(first, 3, strides=2, padding="same", activation="relu"), layers.Flatten()]
    else:
        body = [layers.Flatten(), layers.Dense(second, activation="relu")]
    return keras.Sequential([keras.Input(shape)] + body + [layers.Dense(1)], name="instance_filter")


def per_sample_loss(loss):
    """The per-sample form of a compiled loss (a name, a Loss object or a function)."""
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        return loss.call
    if callable(loss):
        return loss
    raise ValueError(f"loss: InstanceFilter needs the model compiled with one loss (a name, Loss or function), "
                     f"got {type(loss).__name__}")


def binary_entropy(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


# How the explore share is picked among the rows not predicted high: the paper's largest
# prediction entropy, or uniformly at random (np.random's global state: keras.utils.set_random_seed).
EXPLORE = {"entropy": binary_entropy, "random": lambda p: np.random.random_sample(len(p))}


class InstanceFilter(TrainingFlops):
    """Trains the main network only on the samples a tiny filter predicts to have a high loss.

    A callback for `model.fit` on Keras 3 and tf_keras; it composes with `DynHPCallback` (feed
    fit with `cb.batches(...)` then, and list both callbacks). Each input batch's kept
    samples make one train step (or, with `refill=True`, full batches); an epoch is still one
    pass of every sample through the filter.
    Logs per epoch, besides `train_flops*`: `filter/kept_fraction` (samples that reached the
    main network) and `filter/threshold` (T).

    Args:
        keep_ratio: R, the fraction of samples the filter aims to keep (e.g. 0.2-0.4).
        filter_model: a Keras model from the input to one logit (high loss); default
            `default_filter(input shape)`.
        explore_ratio: the share of each batch, among the samples not predicted high, that goes
            through because the filter is least sure about them (largest prediction entropy),
            so the filter keeps getting labels for samples it calls low.
        threshold, raise_factor, lower_factor, window: see `ThresholdRule`.
        learning_rate: Adam's learning rate for the filter.
        refill: False (default) trains one step on each input batch's kept samples: as many
            optimizer steps as plain training, each on fewer rows. True collects kept samples
            into full batches of the input's size: fewer steps per epoch, less per-step
            overhead. On Fashion-MNIST (small CNN, 4 epochs, R = 0.2) sub-batches were 2 to 4
            points more accurate at equal FLOPs: in short training the number of updates
            matters more than their batch size. See `TrainingFlops._feed`.
        warmup_epochs: the first epochs train the main network on every sample (no filter
            forward) while the filter already learns from their labels, so it is not trusted
            before it has seen any.
        explore: how the explore share is picked: "entropy" (the paper's uncertainty rule)
            or "random" (uniformly among the rows not predicted high). See the module notes.

    Example:
        >>> filt = InstanceFilter(keep_ratio=0.3)
        >>> model.fit(x_train, y_train, batch_size=64, epochs=5, callbacks=[filt])
    """

    def __init__(self, keep_ratio=0.3, filter_model=None, explore_ratio=0.1, threshold=0.2,
                 raise_factor=1.01, lower_factor=0.99, window=10, learning_rate=1e-3, refill=False,
                 warmup_epochs=0, explore="entropy"):
        super().__init__()
        self.rule = ThresholdRule(keep_ratio, threshold, raise_factor, lower_factor, window)
        if not 0 <= explore_ratio <= 1 - keep_ratio:
            raise ValueError(f"explore_ratio: expected a number in [0, 1 - keep_ratio], got {explore_ratio!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate: expected a number > 0, got {learning_rate!r}")
        if int(warmup_epochs) != warmup_epochs or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs: expected an integer >= 0, got {warmup_epochs!r}")
        self.keep_ratio, self.explore_ratio = float(keep_ratio), float(explore_ratio)
        self.warmup_epochs = int(warmup_epochs)
        if explore not in EXPLORE:
            raise ValueError(f"explore: expected one of {sorted(EXPLORE)}, got {explore!r}")
        self.explore = explore
        self.filter_model, self.learning_rate, self.refill = filter_model, float(learning_rate), bool(refill)
        self.config = {"keep_ratio": keep_ratio, "explore_ratio": explore_ratio, "threshold": threshold,
                       "raise_factor": raise_factor, "lower_factor": lower_factor, "window": window,
                       "learning_rate": learning_rate, "refill": refill, "warmup_epochs": warmup_epochs,
                       "explore": explore}

    def get_config(self) -> dict:
        return dict(self.config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        model = self.model
        self.loss = per_sample_loss(model.loss)
        if self.filter_model is None:
            self.filter_model = default_filter(model.inputs[0].shape[1:])
        self.optimizer = keras.optimizers.Adam(self.learning_rate)
        self.optimizer.build(self.filter_model.trainable_variables)
        self.filter_cost = per_sample_flops(self.filter_model)
        self._predict = AnyRowsFunction(lambda x: tf.sigmoid(tf.reshape(self.filter_model(x, training=False), [-1])))
        self._train = AnyRowsFunction(self._train_filter)
        self._attached = []  # networks whose train step returns per-sample losses (dynhp_tf.sample_losses)
        self._seen_since_update = 0

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._attach(self.driver.network())
        self._epoch_seen = self._epoch_kept = 0
        self._warming = epoch < self.warmup_epochs
        self._stands_for = np.zeros(0)  # per kept row in feed order: how many rows of its batch it stands for

    def epoch_logs(self) -> dict:
        logs = super().epoch_logs()
        logs["filter/kept_fraction"] = self._epoch_kept / max(1, self._epoch_seen)
        logs["filter/threshold"] = self.rule.threshold
        return logs

    def choose(self, batch):
        x = tf.nest.flatten(batch)[0]
        n = rows(batch)
        self._epoch_seen += n
        self._seen_since_update += n
        if self._warming:  # every row trains; the filter learns from their labels, costs no forward
            self._stands_for = np.concatenate([self._stands_for, np.ones(n)])
            return batch
        p = self._predict(x).numpy()
        order = np.argsort(-p, kind="stable")
        high = order[:math.ceil(self.keep_ratio * n)]
        rest = order[len(high):]
        unsure = rest[np.argsort(-EXPLORE[self.explore](p[rest]), kind="stable")[:math.ceil(self.explore_ratio * n)]]
        index = np.sort(np.concatenate([high, unsure]))
        # An explored row stands for all the rows not predicted high, so that the rule's count of
        # high samples estimates the whole batch's (unbiased when exploring at random).
        weight = np.ones(n)
        weight[unsure] = len(rest) / max(1, len(unsure))
        self._stands_for = np.concatenate([self._stands_for, weight[index]])
        self.epoch_flops["train_flops/filter"] += n * self.filter_cost["forward"]
        return take_rows(batch, index)

    def _attach(self, network) -> None:
        """Labels from the losses of the step's own forward (before its update, as in the paper)."""
        if sample_losses.attach(network, self.loss):
            self._attached.append(network)
            if network is self.model:  # at an epoch's start: the driver passes its step to the feed
                self.driver.remake_own_step()
            else:  # DynHP's narrow copy: its step calls network.train_function
                network.make_train_function(force=True)

    def run_step(self, step, batch, network):
        self._attach(network)
        logs = super().run_step(step, batch, network)
        logs = dict(logs)
        losses = logs.pop(sample_losses.KEY).numpy()
        self.label(batch, losses)
        return logs

    def label(self, batch, losses) -> None:
        """Labels the rows of a main step from their losses; updates T and trains the filter."""
        high = self.rule.label(losses)
        count = len(losses)
        weight, self._stands_for = self._stands_for[:count], self._stands_for[count:]
        self.rule.update(float(np.dot(high, weight)), self._seen_since_update)
        self._seen_since_update = 0
        self._epoch_kept += count
        if self.filter_model.trainable_variables:  # a fixed filter is allowed
            self._train(batch[0], tf.constant(high, tf.float32))
            cost = self.filter_cost
            self.epoch_flops["train_flops/filter"] += count * (cost["forward"] + cost["backward"])

    def release(self) -> None:
        super().release()
        for network in self._attached:
            sample_losses.detach(network)
            if network is not self.model:  # the user's model gets a fresh one when the driver goes
                network.train_function = None
        self._attached = []

    def _train_filter(self, x, high):
        weights = high / self.keep_ratio + (1 - high) / (1 - self.keep_ratio)
        variables = self.filter_model.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.reshape(self.filter_model(x, training=True), [-1])
            losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=high, logits=logits)
            loss = tf.reduce_sum(weights * losses) / tf.reduce_sum(weights)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss
