"""Levelling the top logit: the softmax does not change, the int8 logit range narrows."""
import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.converters.logit_range import argmax_range
from dynhp_tf.int8_finetune import narrow_logit_range
from dynhp_tf.logit_level import level_top_logit, logits_function
from tests.models import prune_first_hidden


def _trained(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 1600)
    x = (rng.normal(size=(1600, 8)) * rng.uniform(0.3, 2.0, (1600, 1)) + 2.5 * np.eye(4, 8)[y]).astype(np.float32)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    return model, x, y


def test_softmax_is_unchanged_and_the_argmax_range_narrows():
    model, x, _ = _trained()
    out = model.layers[-1]
    prune_first_hidden(model, 3)
    probabilities = model.predict(x, verbose=0)
    low, high = argmax_range(np.asarray(logits_function(model)(x[:500])))

    result = level_top_logit(model, x[:500])
    assert result["top_spread_after"] < 0.9 * result["top_spread_before"], result
    np.testing.assert_allclose(model.predict(x, verbose=0), probabilities, atol=1e-5)
    low2, high2 = argmax_range(np.asarray(logits_function(model)(x[:500])))
    assert high2 - low2 < high - low  # every int8 step of the logits is finer
    assert np.all(out.get_weights()[0][:3] == 0)


def test_the_fine_tuning_levels_when_asked_and_keeps_its_result():
    model, x, y = _trained(1)
    result = narrow_logit_range(model, x, y, epochs=1, weight=0.0, weight_grid="per-tensor",
                                activation_grid=True, level_logits=True)
    assert result["top_spread_after"] < result["top_spread_before"]


def test_a_model_without_logits_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    with pytest.raises(ValueError, match="last layer must be a Dense"):
        level_top_logit(model, np.zeros((8, 4), np.float32))


def test_a_pruned_unit_with_a_constant_nonzero_output_stays_pruned():
    """sigmoid(0) = 0.5: a pruned unit still outputs a constant, which a least-squares fit would
    share with the bias; its outgoing row must stay zero, and the softmax must not change."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="sigmoid"),
                              keras.layers.Dense(3, activation="softmax")])
    out = model.layers[-1]
    prune_first_hidden(model, 2)
    probabilities = model.predict(x, verbose=0)

    level_top_logit(model, x)
    assert np.all(out.get_weights()[0][:2] == 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), probabilities, atol=1e-5)
