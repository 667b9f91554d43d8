
import numpy as np
import pytest
import tensorflow as tf

from dynhp_tf import DynHPCallback, UnsupportedLayerError
from dynhp_tf._keras import keras
from dynhp_tf.halo import Halo, attached_halo, magnitude_threshold, strip
from tests.models import L, compiled, data_for, mlp
from tests.replicas import on_two_cpu_replicas

XI, PSI = 0.03, 0.02


def tiny():
    """3 -> 2 (relu) -> 2, with fixed weights: one pruning group of two neurons."""
    model = keras.Sequential([keras.Input((3,)), L.Dense(2, activation="relu"), L.Dense(2)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def state_with(scales):
    return {"scale": scales, "m": [np.zeros_like(s) for s in scales], "v": [np.zeros_like(s) for s in scales],
            "step": 0}


def penalty_and_grads(halo, model):
    kernels = [model.layers[0].kernel, model.layers[1].kernel]
    with tf.GradientTape() as tape:
        tape.watch(halo.scales)
        value = halo.penalty()
    grads = tape.gradient(value, kernels + halo.scales)
    return float(value), [np.asarray(g) for g in grads]


def test_weight_level_penalty_and_gradient_match_hand_computation():
    model = tiny()
    w1, w2 = np.asarray(model.layers[0].kernel), np.asarray(model.layers[1].kernel)
    s1, s2 = np.full(w1.shape, 0.5, "float32") + np.arange(6).reshape(3, 2) / 10, np.full(w2.shape, 2.0, "float32")
    halo = Halo(XI, PSI).attach(model, state=state_with([s1, s2]))
    value, (g1, g2, gs1, gs2) = penalty_and_grads(halo, model)
    expected = XI * (np.sum(np.abs(w1) / s1 ** 2) + np.sum(np.abs(w2) / s2 ** 2)) + PSI * (s1.sum() + s2.sum())
    assert value == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(g1, XI * np.sign(w1) / s1 ** 2, rtol=1e-5)
    np.testing.assert_allclose(g2, XI * np.sign(w2) / s2 ** 2, rtol=1e-5)
    np.testing.assert_allclose(gs1, -2 * XI * np.abs(w1) / s1 ** 3 + PSI, rtol=1e-5)
    np.testing.assert_allclose(gs2, -2 * XI * np.abs(w2) / s2 ** 3 + PSI, rtol=1e-5)


def test_neuron_level_penalty_and_gradient_match_hand_computation():
    model = tiny()
    w1, w2 = np.asarray(model.layers[0].kernel), np.asarray(model.layers[1].kernel)
    s = np.array([0.5, 1.5], "float32")
    halo = Halo(XI, PSI, level="neuron").attach(model, state=state_with([s]))
    value, (g1, g2, gs) = penalty_and_grads(halo, model)
    # Neuron j's weights: column j of the first kernel (incoming), row j of the second (outgoing).
    mass = np.abs(w1).sum(axis=0) + np.abs(w2).sum(axis=1)
    assert value == pytest.approx(XI * np.sum(mass / s ** 2) + PSI * s.sum(), rel=1e-5)
    np.testing.assert_allclose(g1, XI * np.sign(w1) / s[None, :] ** 2, rtol=1e-5)
    np.testing.assert_allclose(g2, XI * np.sign(w2) / s[:, None] ** 2, rtol=1e-5)
    np.testing.assert_allclose(gs, -2 * XI * mass / s ** 3 + PSI, rtol=1e-5)


def test_fit_trains_on_loss_plus_penalty_and_steps_the_scales():
    """One full-batch SGD step of model.fit moves the weights by the data and penalty gradients."""
    model = tiny()
    lr = 0.1
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss_fn)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    s1, s2 = np.full((3, 2), 0.7, "float32"), np.full((2, 2), 1.3, "float32")
    halo = Halo(XI, PSI, scale_rule="sgd").attach(model, state=state_with([s1, s2]))
    kernels = [model.layers[0].kernel, model.layers[1].kernel]
    before = [np.asarray(k) for k in kernels]
    with tf.GradientTape() as tape:
        data_loss = loss_fn(y, model(x))
    data_grads = [np.asarray(g) for g in tape.gradient(data_loss, kernels)]
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[halo])
    after = [np.asarray(k) for k in kernels]
    for b, a, gd, s in zip(before, after, data_grads, (s1, s2)):
        np.testing.assert_allclose(a, b - lr * (gd + XI * np.sign(b) / s ** 2), rtol=1e-4, atol=1e-6)
    # Then the scales take one SGD step on the penalty at the new weights, same learning rate.
    for scale, s, w in zip(halo.scales, (s1, s2), after):
        np.testing.assert_allclose(np.asarray(scale), s - lr * (-2 * XI * np.abs(w) / s ** 3 + PSI), rtol=1e-5)


@pytest.mark.parametrize("level", ["weight", "neuron"])
def test_scales_move_and_stay_positive(level):
    model = compiled(mlp(), optimizer=keras.optimizers.Adam(0.05))
    x, y = data_for(model)
    halo = Halo(xi=1e-2, psi=1e-2, level=level, min_scale=1e-3)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[halo])
    scales = np.concatenate([np.asarray(s).ravel() for s in halo.scales])
    assert np.all(scales >= 1e-3) and np.all(np.isfinite(scales))
    assert np.abs(scales - 1).max() > 0.05  # they learned something
    if level == "weight":
        assert np.any(scales < 0.5)  # small weights got small scales (a stronger penalty)
    penalty = history.history["halo/penalty"]
    assert penalty[-1] < penalty[0]


@pytest.mark.parametrize("fraction", [0.02, 0.05, 0.1, 1.0])
def test_threshold_keeps_exactly_the_requested_fraction(fraction):
    model = compiled(mlp())
    kernels = [model.layers[i].kernel for i in range(3)]
    total = sum(int(np.prod(k.shape)) for k in kernels)
    biases = [np.asarray(model.layers[i].bias) for i in range(3)]
    kept = magnitude_threshold(model, fraction)
    values = np.concatenate([np.asarray(k).ravel() for k in kernels])
    assert kept == round(fraction * total) == np.count_nonzero(values)
    # Only kernels count: biases are left alone.
    assert all(np.array_equal(b, np.asarray(model.layers[i].bias)) for i, b in enumerate(biases))


def test_threshold_is_exact_with_ties_and_refuses_bad_fractions():
    model = compiled(mlp())
    model.set_weights([np.ones_like(w) for w in model.get_weights()])
    total = sum(int(np.prod(model.layers[i].kernel.shape)) for i in range(3))
    assert magnitude_threshold(model, 0.05) == round(0.05 * total)
    assert sum(np.count_nonzero(np.asarray(model.layers[i].kernel)) for i in range(3)) == round(0.05 * total)
    for bad in (0, 1.5, "half"):
        with pytest.raises(ValueError, match="^keep_fraction:"):
            magnitude_threshold(model, bad)


def test_threshold_keeps_the_largest_magnitudes():
    model = compiled(mlp())
    before = np.concatenate([np.asarray(model.layers[i].kernel).ravel() for i in range(3)])
    magnitude_threshold(model, 0.1)
    after = np.concatenate([np.asarray(model.layers[i].kernel).ravel() for i in range(3)])
    removed, kept = np.abs(before[after == 0]), np.abs(after[after != 0])
    assert removed.max() <= kept.min()
    np.testing.assert_array_equal(after[after != 0], before[after != 0])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_strip_gives_a_plain_model_with_equal_outputs_that_saves_and_loads(tmp_path, suffix):
    model = compiled(mlp())
    x, y = data_for(model)
    halo = Halo(xi=1e-3, psi=1e-3)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[halo])
    magnitude_threshold(model, 0.2)
    expected = np.asarray(model(x))
    assert len(model.losses) == 1  # the penalty is on the loss
    attached_path = str(tmp_path / f"attached{suffix}")
    model.save(attached_path)  # a model with HALO attached saves as the plain model
    plain = strip(model)
    assert attached_halo(model) is None and model.losses == [] and plain.losses == []
    assert plain is not model and len(plain.weights) == len(model.weights)
    np.testing.assert_array_equal(np.asarray(plain(x)), expected)
    path = str(tmp_path / f"plain{suffix}")
    plain.save(path)
    for saved in (path, attached_path):
        loaded = keras.models.load_model(saved, compile=False)  # no custom objects needed
        assert loaded.losses == []
        np.testing.assert_allclose(np.asarray(loaded(x)), expected, rtol=1e-6, atol=1e-6)


def test_unsupported_layers_and_bad_settings_are_refused_by_name():
    model = keras.Sequential([keras.Input((5,)), L.Embedding(10, 4, name="words"), L.Flatten(), L.Dense(3)])
    with pytest.raises(UnsupportedLayerError, match="'words' \\(Embedding\\)"):
        Halo().attach(model)
    for kwargs, name in (({"xi": 0}, "xi"), ({"psi": -1}, "psi"), ({"level": "layer"}, "level"),
                         ({"scale_rule": "rmsprop"}, "scale_rule")):
        with pytest.raises(ValueError, match=f"^{name}:"):
            Halo(**kwargs)
    for options, name in (({"level": "weight"}, "halo"), ({"xi": -1}, "xi")):
        with pytest.raises(ValueError, match=f"^{name}:"):
            DynHPCallback(target_compression=4, criterion="halo", halo=options)
    assert Halo.from_config(Halo(2e-4, 3e-4, "neuron", "sgd").get_config()).get_config() == {
        "xi": 2e-4, "psi": 3e-4, "level": "neuron", "scale_rule": "sgd", "min_scale": 1e-2}


def test_dynhp_criterion_halo_prunes_and_trains_with_the_penalty_on_the_narrow_network():
    model = compiled(mlp())
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=4, end_epoch=1, criterion="halo", halo={"xi": 1e-3, "psi": 1e-3},
                       verbose=0)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            network = cb.trainer.network
            seen.append((network is not model, attached_halo(network) is cb.halo, len(network.losses)))

    history = model.fit(cb.batches(x, y, batch_size=16), epochs=3, callbacks=[cb, Probe()], verbose=0)
    assert history.history["dynhp/compression"][-1] >= 4
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert seen[-1] == (True, True, 1)  # after the shrink the narrow network carries the penalty
    state = cb.halo.state()
    assert [len(s) for s in state["scale"]] == [kept for _, kept in cb.widths().values()]
    assert state["step"] > 0 and all(np.all(s >= 1e-2) and np.abs(s - 1).max() > 0 for s in state["scale"])
    assert attached_halo(model) is None and model.losses == []  # only during DynHP training
    assert DynHPCallback.from_config(cb.get_config()).get_config()["halo"] == {"xi": 1e-3, "psi": 1e-3}


MIRRORED = """
from dynhp_tf import DynHPCallback
from dynhp_tf.halo import Halo
with strategy.scope():
    model = compiled(mlp())
x, y = data_for(model)
halo = Halo(xi=1e-2, psi=1e-2)
history = model.fit(x, y, batch_size=32, epochs=2, callbacks=[halo], verbose=0)
replicas_equal = all(np.array_equal(np.asarray(s.values[0]), np.asarray(s.values[1])) for s in halo.scales)
moved = max(float(np.abs(np.asarray(s) - 1).max()) for s in halo.scales)
with strategy.scope():
    model2 = compiled(mlp())
cb = DynHPCallback(target_compression=4, end_epoch=1, criterion="halo", verbose=0)
h2 = model2.fit(cb.batches(x, y, batch_size=16), epochs=3, callbacks=[cb], verbose=0)
print(json.dumps({"replicas": len(halo.scales[0].values), "equal": replicas_equal, "moved": moved,
                  "loss": history.history["loss"], "compression": h2.history["dynhp/compression"][-1],
                  "steps": cb.halo.state()["step"]}))
"""


def test_mirrored_strategy_with_two_cpu_replicas():
    result = on_two_cpu_replicas(MIRRORED)
    assert result["replicas"] == 2 and result["equal"] and result["moved"] > 0.01
    assert np.all(np.isfinite(result["loss"])) and result["compression"] >= 4 and result["steps"] > 0
