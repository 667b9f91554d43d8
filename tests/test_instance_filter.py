"""Early instance filter: the threshold rule, rows that reach the main train step, FLOPs, DynHP in the same fit."""
import numpy as np
import pytest

from dynhp_tf import DynHPCallback
from dynhp_tf._keras import keras
from dynhp_tf.flops import TrainingFlops, per_sample_flops
from dynhp_tf.instance_filter import InstanceFilter, ThresholdRule
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


def marked_data(n=240, seed=0):
    """x[:, 0] = +1 marks samples the fixed filter below keeps, -1 those it skips; y = sample id."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    keep = rng.random(n) < 0.35
    x[:, 0] = np.where(keep, 1.0, -1.0)
    return x, np.arange(n, dtype="float32")[:, None], keep


def fixed_filter():
    """A filter that is sure: logit 50 * x[:, 0] (its learning rate is negligible)."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    kernel = np.zeros((8, 1), "float32")
    kernel[0, 0] = 50.0
    model.set_weights([kernel, np.zeros(1, "float32")])
    return model


def id_model():
    model = mlp(inputs=8, hidden=(48, 24), classes=1)
    model.compile("adam", "mse", metrics=[PowerSum(0), PowerSum(1)])
    return model


def test_skipped_samples_never_reach_the_main_train_step():
    x, ids, keep = marked_data()
    model = id_model()
    flops = per_sample_flops(model)
    filt = InstanceFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12)
    history = model.fit(x, ids, batch_size=16, epochs=3, callbacks=[filt], verbose=0).history
    # The main step's own metrics count the rows it trained on and sum their ids.
    assert history["ids_pow0"] == pytest.approx([keep.sum()] * 3)
    assert history["ids_pow1"] == pytest.approx([ids[keep].sum()] * 3)
    assert history["filter/kept_fraction"] == pytest.approx([keep.mean()] * 3)
    main = keep.sum() * (flops["forward"] + flops["backward"])
    assert history["train_flops/main"] == pytest.approx([main] * 3)
    assert history["train_flops/labels"] == pytest.approx([keep.sum() * flops["forward"]] * 3)
    filter_forward = per_sample_flops(filt.filter_model)["forward"]
    assert history["train_flops/filter"] == pytest.approx([len(x) * filter_forward + keep.sum() * 3 * filter_forward] * 3)
    assert history["train_flops"] == pytest.approx(
        [sum(history[k][0] for k in ("train_flops/main", "train_flops/labels", "train_flops/filter"))] * 3)


def test_plain_flops_count_every_row_once_per_epoch():
    x, ids, _ = marked_data()
    model = id_model()
    history = model.fit(x, ids, batch_size=16, epochs=2, callbacks=[TrainingFlops()], verbose=0).history
    flops = per_sample_flops(model)
    assert history["ids_pow0"] == pytest.approx([len(x)] * 2)
    assert history["train_flops"] == pytest.approx([len(x) * (flops["forward"] + flops["backward"])] * 2)


@pytest.mark.parametrize("filter_first", [True, False], ids=["filter-first", "dynhp-first"])
def test_composes_with_dynhp_in_one_fit(filter_first):
    x, ids, keep = marked_data()
    model = id_model()
    cb = DynHPCallback(target_compression=4, end_epoch=1, verbose=0)
    filt = InstanceFilter(keep_ratio=0.3, filter_model=fixed_filter(), learning_rate=1e-12)
    callbacks = [filt, cb] if filter_first else [cb, filt]
    history = model.fit(cb.batches(x, ids, batch_size=16), epochs=4, callbacks=callbacks, verbose=0).history
    assert len(history["loss"]) == 4
    assert history["dynhp/compression"][-1] >= 3.5
    assert history["dynhp/batch_size"][-1] > 16
    # Every epoch, on the full and on the narrow network: only the kept rows trained, each once.
    assert history["ids_pow0"] == pytest.approx([keep.sum()] * 4)
    assert history["ids_pow1"] == pytest.approx([ids[keep].sum()] * 4)
    main = history["train_flops/main"]
    assert main[-1] < 0.5 * main[0]  # counted on the narrow network that ran
    assert cb.compact_model().count_params() < model.count_params() / 3.5


@pytest.mark.parametrize("kwargs,argument", [({"keep_ratio": 0}, "keep_ratio"), ({"keep_ratio": 1}, "keep_ratio"),
                                             ({"raise_factor": 0.9}, "raise_factor"),
                                             ({"lower_factor": 1.1}, "lower_factor"),
                                             ({"entropy_threshold": 0}, "entropy_threshold"),
                                             ({"threshold": -1}, "threshold")])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        InstanceFilter(**kwargs)


def test_get_config_round_trips():
    filt = InstanceFilter(keep_ratio=0.25, entropy_threshold=0.8, window=5)
    assert InstanceFilter.from_config(filt.get_config()).get_config() == filt.get_config()
