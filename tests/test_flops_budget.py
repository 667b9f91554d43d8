import math

import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.flops import TrainingFlops, per_sample_flops
from dynhp_tf.flops_budget import FlopsBudget
from dynhp_tf.instance_filter import InstanceFilter
from tests.models import compiled, data_for, mlp

ROWS, BATCH = 64, 16  # 4 steps per epoch


class RateLog(keras.callbacks.Callback):
    """The learning rate each step runs with (read after FlopsBudget set it)."""

    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def fit(budget_epochs, decay, counter=None, lr=0.1, seed=0):
    keras.utils.set_random_seed(seed)
    model = compiled(mlp(), keras.optimizers.SGD(lr))
    x, y = data_for(model, ROWS)
    epoch = ROWS * sum(per_sample_flops(model).values())
    counter = counter or TrainingFlops()
    log = RateLog()
    budget = FlopsBudget(counter, budget_epochs * epoch, decay)
    history = model.fit(x, y, batch_size=BATCH, epochs=50, shuffle=False, verbose=0,
                        callbacks=[counter, budget, log]).history
    return model, history, log.rates, budget.budget


@pytest.mark.parametrize("budget_epochs, epochs", [(2.0, 2), (2.5, 2), (3.0, 3)])
def test_stops_after_the_last_whole_epoch_that_fits(budget_epochs, epochs):
    _, history, _, _ = fit(budget_epochs, None)
    assert len(history["loss"]) == epochs


@pytest.mark.parametrize("decay, curve", [("cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
                                          ("linear", lambda p: 1 - p)])
def test_the_learning_rate_follows_the_share_of_the_budget_spent(decay, curve):
    # Plain training spends the same FLOPs every step: 8 steps in a budget of 2 epochs.
    _, history, rates, _ = fit(2.0, decay)
    assert len(history["loss"]) == 2
    assert rates == pytest.approx([0.1 * curve(k / 8) for k in range(8)], rel=1e-5)


def test_the_decayed_rate_is_the_one_the_steps_use():
    constant, *_ = fit(2.0, None)
    decayed, *_ = fit(2.0, "cosine")
    again, *_ = fit(2.0, "cosine")
    same = [np.array_equal(a, b) for a, b in zip(decayed.get_weights(), again.get_weights())]
    differ = [not np.allclose(a, b) for a, b in zip(decayed.get_weights(), constant.get_weights())]
    assert all(same) and all(differ)


def test_a_filtered_run_trains_more_epochs_in_the_same_budget_and_decays_by_its_own_flops():
    filt = InstanceFilter(keep_ratio=0.25, explore_ratio=0.0)
    _, history, rates, budget = fit(2.0, "cosine", counter=filt)
    flops = history["train_flops"]
    assert len(flops) > 2  # a quarter of the rows per step, plus the filter's cost
    assert sum(flops) <= budget < sum(flops) + flops[-1]  # stopped before the epoch that would not fit
    assert rates[0] == pytest.approx(0.1)
    assert all(b < a for a, b in zip(rates, rates[1:]))  # every step spends FLOPs: the rate falls
    # The last step starts after all but the last epoch's FLOPs at least.
    assert rates[-1] <= 0.1 * 0.5 * (1 + math.cos(math.pi * (sum(flops) - flops[-1]) / budget)) + 1e-9


@pytest.mark.parametrize("kwargs, argument", [
    ({"counter": object(), "budget": 1e6}, "counter"), ({"budget": 0}, "budget"), ({"budget": float("nan")}, "budget"),
    ({"budget": 1e6, "decay": "step"}, "decay")])
def test_bad_arguments_name_the_argument(kwargs, argument):
    kwargs = {"counter": TrainingFlops(), **kwargs}
    with pytest.raises(ValueError, match=f"^{argument}:"):
        FlopsBudget(**kwargs)


def test_a_schedule_object_learning_rate_is_refused_with_decay():
    model = compiled(mlp(), keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)))
    x, y = data_for(model, ROWS)
    counter = TrainingFlops()
    with pytest.raises(ValueError, match="^decay:"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[counter, FlopsBudget(counter, 1e9, "cosine")])
