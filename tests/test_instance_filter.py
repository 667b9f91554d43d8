"""Early instance filter: the threshold rule, rows that reach the main train step, FLOPs, DynHP in the same fit."""
import numpy as np
import pytest
import tensorflow as tf

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.flops import TrainingFlops, per_sample_flops
from dynhp_tf.instance_filter import InstanceFilter, ThresholdRule, default_filter
from tests.models import mlp
from tests.test_callback import PowerSum


@pytest.mark.parametrize("ratio", [0.2, 0.4])
@pytest.mark.parametrize("start", [0.05, 5.0])
def test_threshold_rule_moves_the_high_fraction_to_the_kept_ratio(ratio, start):
    """Every sample of a batch is labelled (a filter that keeps all): the high share should reach R."""
    rng = np.random.default_rng(1)
    rule = ThresholdRule(ratio, threshold=start)
    fractions = []
    for _ in range(1500):
        losses = rng.exponential(1.0, size=64)  # known losses: P(loss >= T) = exp(-T)
        high = rule.label(losses)
        rule.update(int(high.sum()), len(losses))
        fractions.append(high.mean())
    assert abs(np.mean(fractions[:20]) - ratio) > 0.15  # it started far off
    assert np.mean(fractions[-500:]) == pytest.approx(ratio, abs=0.03)
    assert np.exp(-rule.threshold) == pytest.approx(ratio, abs=0.06)  # T sits at the (1-R) quantile


def id_data(n=240, seed=0):
    """Features whose first column decides the fixed filter's ranking; y = sample id."""
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype("float32")
    return x, np.arange(n, dtype="float32")[:, None]


def fixed_filter():
    """A filter that ranks by x[:, 0]: logit 5 * x[:, 0] (its learning rate is negligible)."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    kernel = np.zeros((8, 1), "float32")
    kernel[0, 0] = 5.0
    model.set_weights([kernel, np.zeros(1, "float32")])
    return model


class RecordingFilter(InstanceFilter):
    """Remembers, per epoch, the ids of the rows it let through."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.chosen = []

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.chosen.append([])

    def choose(self, batch):
        kept = super().choose(batch)
        if self._warming:
            return kept
        x, ids = (np.asarray(t) for t in batch[:2])
        chosen = np.asarray(kept[1]).ravel()
        self.chosen[-1].extend(chosen)
        # The ranking: the ceil(R n) rows with the largest x[:, 0] are in, whatever the rest.
        top = ids.ravel()[np.argsort(-x[:, 0], kind="stable")[:int(np.ceil(self.keep_ratio * len(x)))]]
        assert set(top) <= set(chosen)
        assert len(chosen) == np.ceil(self.keep_ratio * len(x)) + np.ceil(self.explore_ratio * len(x))
        return kept


def id_model():
    model = mlp(inputs=8, hidden=(48, 24), classes=1)
    model.compile("adam", "mse", metrics=[PowerSum(0), PowerSum(1)])
    return model


def assert_only_chosen_rows_trained(history, filt, n):
    for epoch, chosen in enumerate(filt.chosen):
        assert len(set(chosen)) == len(chosen) < n / 2  # each at most once, most skipped
        # The main step's own metrics count the rows it trained on and sum their ids.
        assert history["ids_pow0"][epoch] == pytest.approx(len(chosen))
        assert history["ids_pow1"][epoch] == pytest.approx(sum(chosen))
        assert history["filter/kept_fraction"][epoch] == pytest.approx(len(chosen) / n)


@pytest.mark.parametrize("refill", [False, True], ids=["sub-batches", "refill"])
def test_skipped_samples_never_reach_the_main_train_step(refill):
    x, ids = id_data()
    model = id_model()
    flops = per_sample_flops(model)
    filt = RecordingFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12, refill=refill)
    history = model.fit(x, ids, batch_size=16, epochs=3, callbacks=[filt], verbose=0).history
    assert_only_chosen_rows_trained(history, filt, len(x))
    kept = np.array([len(c) for c in filt.chosen])
    assert history["train_flops/main"] == pytest.approx(kept * (flops["forward"] + flops["backward"]))
    cost = per_sample_flops(filt.filter_model)
    assert history["train_flops/filter"] == pytest.approx(
        len(x) * cost["forward"] + kept * (cost["forward"] + cost["backward"]))
    assert history["train_flops"] == pytest.approx(
        [sum(history[k][e] for k in ("train_flops/main", "train_flops/filter"))
         for e in range(3)])


class LabelRecorder(InstanceFilter):
    """Records, per main step, the weights and T before it, the losses it labels from and the filter's labels."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.steps = []
        train = self._train
        self._train = lambda x, high: (self.steps[-1].update(x=np.asarray(x), high=np.asarray(high)), train(x, high))[1]

    def run_step(self, step, batch, network):
        self.steps.append({"weights": network.get_weights(), "threshold": self.rule.threshold,
                           "batch": [np.asarray(t) for t in batch]})
        return super().run_step(step, batch, network)

    def label(self, batch, losses):
        self.steps[-1]["losses"] = np.asarray(losses)
        super().label(batch, losses)


def test_labels_are_the_train_steps_own_losses_before_its_update_thresholded():
    """Linear model, MSE: the loss of each kept row by hand from the weights the step started from."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = rng.normal(size=(96, 2)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.2), "mse")
    filt = LabelRecorder(keep_ratio=0.3, filter_model=fixed_filter(), threshold=1.5, learning_rate=1e-12)
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[filt], verbose=0)
    assert len(filt.steps) == 12
    moved = 0
    for before, after in zip(filt.steps, filt.steps[1:] + [None]):
        xb, yb = before["batch"][:2]
        kernel, bias = before["weights"]
        losses = ((xb @ kernel + bias - yb) ** 2).mean(axis=1)
        np.testing.assert_allclose(before["losses"], losses, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(before["high"], losses >= before["threshold"])
        np.testing.assert_array_equal(before["x"], xb)  # the filter learns on the rows that were labelled
        if after is not None:  # the update changed the losses: labels after it would differ
            kernel, bias = after["weights"]
            moved += not np.allclose(((xb @ kernel + bias - yb) ** 2).mean(axis=1), losses, rtol=1e-3)
    assert moved == 11
    assert 0 < np.mean(np.concatenate([s["high"] for s in filt.steps])) < 1  # both labels occur


class RowCounter(keras.layers.Layer):
    """Counts the rows of every forward pass through it (a non-trainable weight)."""

    def build(self, input_shape):
        self.rows = self.add_weight(name="rows", shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        self.rows.assign_add(tf.cast(tf.shape(x)[0], self.rows.dtype))
        return x


class ForwardCounter(InstanceFilter):
    """Checks around every main step that the network's forward passes saw exactly the step's rows."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.checked = 0

    def run_step(self, step, batch, network):
        counter = next(layer for layer in network.layers if isinstance(layer, RowCounter))
        start = float(counter.rows.numpy())
        logs = super().run_step(step, batch, network)
        assert float(counter.rows.numpy()) - start == len(np.asarray(batch[0]))
        self.checked += 1
        return logs


@pytest.mark.parametrize("refill", [False, True], ids=["sub-batches", "refill"])
def test_the_main_network_runs_one_forward_per_kept_row_per_step(refill):
    x, ids = id_data()
    counter = RowCounter()
    model = keras.Sequential([keras.Input((8,)), counter, keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=[PowerSum(0)])
    filt = ForwardCounter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12, refill=refill)
    history = model.fit(x, ids, batch_size=16, epochs=2, callbacks=[filt], verbose=0).history
    assert filt.checked >= 2 * (4 if refill else 15)
    kept = sum(history["ids_pow0"])
    assert kept == filt.main_rows < len(x)  # 0.3 + 0.1 of each batch of 16: 7 rows
    assert float(counter.rows.numpy()) == kept  # no other forward of the main network in the whole fit


def test_per_sample_flops_by_hand():
    """Kernel MACs 8x48, 48x24, 24x1: the first layer's backward has no input error to compute."""
    flops = per_sample_flops(id_model())
    assert flops == {"forward": 2.0 * (384 + 1152 + 24), "backward": 2.0 * 384 + 4.0 * (1152 + 24)}


def test_plain_flops_count_every_row_once_per_epoch():
    x, ids = id_data()
    model = id_model()
    history = model.fit(x, ids, batch_size=16, epochs=2, callbacks=[TrainingFlops()], verbose=0).history
    flops = per_sample_flops(model)
    assert history["ids_pow0"] == pytest.approx([len(x)] * 2)
    assert history["train_flops"] == pytest.approx([len(x) * (flops["forward"] + flops["backward"])] * 2)


@pytest.mark.parametrize("filter_first", [True, False], ids=["filter-first", "dynhp-first"])
def test_composes_with_dynhp_in_one_fit(filter_first):
    x, ids = id_data()
    model = id_model()
    cb = DynHPCallback(target_compression=4, end_epoch=1, verbose=0)
    filt = RecordingFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12)
    callbacks = [filt, cb] if filter_first else [cb, filt]
    history = model.fit(cb.batches(x, ids, batch_size=16), epochs=4, callbacks=callbacks, verbose=0).history
    assert len(history["loss"]) == 4
    assert history["dynhp/compression"][-1] >= 3.5
    assert history["dynhp/batch_size"][-1] > 16
    # Every epoch, on the full and on the narrow network: only the chosen rows trained, each once.
    assert_only_chosen_rows_trained(history, filt, len(x))
    main = history["train_flops/main"]
    assert main[-1] < 0.5 * main[0]  # counted on the narrow network that ran
    assert cb.compact_model().count_params() < model.count_params() / 3.5


def test_threshold_tracks_the_loss_quantile_of_all_rows_though_only_kept_rows_are_labelled():
    """Fixed main network (lr 0) and ranking: T settles near the (1-R) quantile of every row's loss.

    The ranking (x[:, 0]) is unrelated to the loss, as for a filter that has not learned: counted once,
    the few explored rows would leave the high count short and T would sink towards the smallest losses.
    """
    x, ids = id_data()
    model = mlp(inputs=8, hidden=(48, 24), classes=1)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    losses = ((model.predict(x, verbose=0) - ids) ** 2).ravel()
    start = float(np.quantile(losses, 0.3))
    filt = InstanceFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12, explore="random",
                          threshold=start, raise_factor=1.05, lower_factor=0.95)
    keras.utils.set_random_seed(0)
    history = model.fit(x, ids, batch_size=16, epochs=30, callbacks=[filt], verbose=0).history
    late = np.array(history["filter/threshold"][10:])
    assert np.quantile(losses, 0.55) < np.median(late) < np.quantile(losses, 0.85)  # the 0.7 quantile: R = 0.3


def test_warmup_epochs_train_on_every_sample_then_filter():
    x, ids = id_data()
    model = id_model()
    filt = RecordingFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12, warmup_epochs=1)
    history = model.fit(x, ids, batch_size=16, epochs=2, callbacks=[filt], verbose=0).history
    assert history["ids_pow0"] == pytest.approx([len(x), len(filt.chosen[1])])
    assert history["filter/kept_fraction"][0] == 1.0 and history["filter/kept_fraction"][1] < 0.5
    assert filt.chosen[0] == []  # no ranking in the warm-up epoch
    cost = per_sample_flops(filt.filter_model)
    assert history["train_flops/filter"][0] == pytest.approx(len(x) * (cost["forward"] + cost["backward"]))


@pytest.mark.parametrize("channels,macs", [((8, 16), 14 * 14 * 8 * 9 + 7 * 7 * 16 * 72 + 7 * 7 * 16),
                                           ((4, 8), 14 * 14 * 4 * 9 + 7 * 7 * 8 * 36 + 7 * 7 * 8)])
def test_default_filter_widths_set_its_cost(channels, macs):
    # 28x28x1 -> stride 2 -> 14x14 -> stride 2 -> 7x7, a 3x3 kernel each, one read-out logit.
    model = default_filter((28, 28, 1), channels)
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == list(channels)
    assert per_sample_flops(model)["forward"] == 2 * macs
    for bad in [(0, 8), (4,), (4.5, 8)]:
        with pytest.raises(ValueError, match="channels"):
            default_filter((28, 28, 1), bad)


@pytest.mark.parametrize("kwargs,argument", [({"keep_ratio": 0}, "keep_ratio"), ({"keep_ratio": 1}, "keep_ratio"),
                                             ({"raise_factor": 0.9}, "raise_factor"),
                                             ({"lower_factor": 1.1}, "lower_factor"),
                                             ({"explore_ratio": 0.9}, "explore_ratio"),
                                             ({"threshold": -1}, "threshold"),
                                             ({"warmup_epochs": 0.5}, "warmup_epochs"),
                                             ({"explore": "loss"}, "explore")])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        InstanceFilter(**kwargs)


def test_get_config_round_trips():
    filt = InstanceFilter(keep_ratio=0.25, explore_ratio=0.05, window=5)
    assert InstanceFilter.from_config(filt.get_config()).get_config() == filt.get_config()


def test_a_train_step_without_compute_loss_is_refused_clearly():
    class OwnStep(keras.Model):
        def train_step(self, data):  # trains nothing and computes no per-sample loss
            return {"loss": tf.constant(0.0)}

    x, ids = id_data()
    inner = id_model()
    model = OwnStep(inputs=inner.inputs, outputs=inner.outputs)
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="compute_loss"):
        model.fit(x, ids, batch_size=16, epochs=1, callbacks=[InstanceFilter(keep_ratio=0.3)], verbose=0)


class TraceCounter(keras.layers.Layer):
    """Counts its Python calls: in a traced train step, one per trace."""

    calls = 0

    def call(self, x):
        TraceCounter.calls += 1
        return x


def traces_of_the_main_step(n, callbacks):
    model = keras.Sequential([keras.Input((8,)), TraceCounter(), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=[PowerSum(0)])
    TraceCounter.calls = 0
    x, ids = id_data(n=n)
    history = model.fit(x, ids, batch_size=16, epochs=2, callbacks=callbacks, verbose=0).history
    return TraceCounter.calls, history


def test_steps_on_sub_batches_of_every_size_are_traced_once():
    """Kept rows come in several sizes (7 of 16, 4 of the last 10): each traced step traces once."""
    plain, _ = traces_of_the_main_step(240, [])  # one batch size: the framework's own count
    filt = InstanceFilter(keep_ratio=0.3)
    traces, history = traces_of_the_main_step(250, [filt])
    assert history["ids_pow0"] == [15 * 7 + 4] * 2  # both sizes ran, every epoch
    assert traces == plain
    assert filt._predict.traced.experimental_get_tracing_count() == 1  # batches of 16 and 10
    assert filt._train.traced.experimental_get_tracing_count() == 1  # kept rows: 7 and 4
