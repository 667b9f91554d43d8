import numpy as np
import pytest

from dynhp_tf.converters.rebuild import compact_model, count_macs
from dynhp_tf import DynHPCallback, UnsupportedLayerError, pruning_groups
from dynhp_tf._keras import keras
from dynhp_tf.groups import layer_weight
from tests.models import L, cnn, compiled, data_for, mlp, residual


def zero_neurons(model, group_index, neurons, role):
    """Zeroes one role's slices ("outgoing": consumers' rows, "incoming": its kernel column) of some neurons."""
    group = pruning_groups(model).groups[group_index]
    for a in group.axes_with_role(role):
        w = np.moveaxis(np.asarray(layer_weight(model, a.layer, a.attr)), a.axis, 0).copy()
        rows = (np.arange(a.tile)[:, None] * group.size + np.asarray(neurons)[None]).ravel()
        w[rows] = 0.0
        layer_weight(model, a.layer, a.attr).assign(np.moveaxis(w, 0, a.axis))


def assert_same_outputs(original, compact, seed=5):
    x = np.random.default_rng(seed).normal(size=(32,) + tuple(int(d) for d in original.inputs[0].shape[1:]))
    np.testing.assert_allclose(compact(x.astype("float32")), original(x.astype("float32")), atol=1e-5)


@pytest.mark.parametrize("build, group, neurons, widths", [
    (mlp, 1, [0, 5, 9], {"dense_1": (32, 29)}),
    (cnn, 1, [2, 3], {"conv2d_1": (12, 10)}),
    (residual, 0, [1, 6], {"conv2d": (8, 6), "conv2d_1": (8, 6)}),
], ids=["mlp", "cnn-batchnorm-flatten", "residual-add"])
def test_neurons_without_outgoing_weights_are_removed_and_outputs_stay_equal(build, group, neurons, widths):
    keras.backend.clear_session()
    model = build()
    zero_neurons(model, group, neurons, "outgoing")
    result = compact_model(model)
    for name, expected in widths.items():
        assert result.widths[name] == expected
    producers = set(pruning_groups(model).groups[group].producers)
    for name in producers:
        assert result.model.get_layer(name).get_weights()[0].shape[-1] == widths[name][1]
    assert result.params_compact == result.model.count_params() < model.count_params() == result.params_dense
    assert result.macs_compact == count_macs(result.model) < result.macs_dense
    assert_same_outputs(model, result.model)


def test_dead_relu_units_of_a_model_never_trained_with_dynhp_are_removed():
    keras.backend.clear_session()
    model = mlp(hidden=(16, 8))
    zero_neurons(model, 0, [3, 4], "incoming")  # zero incoming kernel...
    bias = model.layers[0].bias.numpy()
    bias[[3, 4]] = [0.0, -2.0]  # ...and a bias that ReLU maps to 0
    bias[7] = 0.5  # a neuron with zero incoming weights but a constant non-zero output must stay
    model.layers[0].bias.assign(bias)
    zero_neurons(model, 0, [7], "incoming")
    result = compact_model(model)
    assert result.widths["dense"] == (16, 14)
    assert_same_outputs(model, result.model)


def test_sigmoid_unit_with_zero_incoming_weights_is_kept():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((5,)), L.Dense(6, activation="sigmoid"), L.Dense(2)])
    zero_neurons(model, 0, [1], "incoming")
    model.layers[0].bias.assign(np.zeros(6, "float32"))
    assert compact_model(model).widths["dense"] == (6, 6)  # sigmoid(0) = 0.5 still feeds the output


def test_model_trained_with_the_callback_rebuilds_to_the_reported_size():
    keras.backend.clear_session()
    model = compiled(cnn())
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=3, end_epoch=0, verbose=0)
    history = model.fit(cb.batches(x, y), epochs=2, callbacks=[cb], verbose=0)
    result = compact_model(model)
    assert result.params_compact == history.history["dynhp/params"][-1]
    assert {name: kept for name, (_, kept) in cb.widths().items()} == \
        {name: result.widths[name][1] for name in cb.widths()}
    assert_same_outputs(model, result.model)


def test_unsupported_layer_names_the_layer():
    inputs = keras.Input((4, 3))
    x = L.Conv1D(4, 2)(inputs)
    x = L.Reshape((12,), name="flatten_by_hand")(x)
    model = keras.Model(inputs, L.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError, match="'flatten_by_hand' \\(Reshape\\)"):
        compact_model(model)


@pytest.mark.parametrize("relative_error, refused", [(3e-7, False), (1e-3, True)])
def test_rebuild_check_allows_float32_rounding_at_the_outputs_scale_only(monkeypatch, relative_error, refused):
    # Outputs near 100: float32 rounding of a rebuilt model differs by ~1e-5 there (more than a
    # fixed 1e-5 allows), while a real mismatch of 0.1% must still be refused.
    from dynhp_tf.converters import rebuild
    from dynhp_tf.converters.errors import RebuildMismatchError

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu", name="d1"),
                              L.Dense(3, name="out")])
    kernel, bias = model.get_layer("out").get_weights()
    model.get_layer("out").set_weights([kernel * 100.0, bias])
    exact = rebuild.narrow_model

    def perturbed(*args):
        compact = exact(*args)
        layer = compact.get_layer("out")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * (1 + relative_error), bias])
        return compact

    monkeypatch.setattr(rebuild, "narrow_model", perturbed)
    if refused:
        with pytest.raises(RebuildMismatchError, match="of the outputs' scale"):
            compact_model(model)
    else:
        result = compact_model(model)
        assert 1e-5 < result.max_abs_difference <= result.allowed_difference
