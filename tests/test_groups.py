import numpy as np
import pytest

from dynhp_tf import UnsupportedLayerError, pruning_groups
from dynhp_tf._keras import keras
from dynhp_tf.groups import zero_outgoing
from tests.models import L, cnn, mlp, residual


def test_mlp_groups_are_hidden_layers_only():
    model = mlp(hidden=(30, 10))
    graph = pruning_groups(model)
    assert [(g.name, g.size) for g in graph.groups] == [(model.layers[0].name, 30), (model.layers[1].name, 10)]
    assert graph.params() == model.count_params()
    out_layer = model.layers[-1].name
    assert all(a.layer != out_layer or a.role == "outgoing" for g in graph.groups for a in g.axes)


def test_cnn_group_couples_batchnorm_and_flatten_rows_in_nhwc_order():
    model = cnn()
    graph = pruning_groups(model)
    first, second, dense = graph.groups
    assert {a.layer for a in first.axes} == {model.layers[0].name, model.layers[1].name, model.layers[4].name}
    flatten_rows = [a for a in second.axes if a.role == "outgoing"]
    assert len(flatten_rows) == 1 and flatten_rows[0].tile == 3 * 3  # 12x12 -conv-> 10 -pool-> 5 -conv-> 3x3
    # Removing channel c of the second conv must remove rows p*C + c of the dense kernel.
    kernel = model.layers[7].kernel.numpy()
    kernel[np.arange(9) * 12 + 5] = 0.0
    model.layers[7].kernel.assign(kernel)
    dead = zero_outgoing(model, graph)
    assert np.flatnonzero(dead[1]).tolist() == [5]
    assert graph.params() == model.count_params()


def test_residual_add_joins_both_convolutions_into_one_group():
    model = residual()
    graph = pruning_groups(model)
    joined = graph.groups[0]
    assert len(joined.producers) == 2 and joined.size == 8
    assert any(a.layer.startswith("depthwise") for a in joined.axes)
    assert graph.params() == model.count_params()


def test_channels_reaching_an_output_through_add_are_frozen():
    inputs = keras.Input((6,))
    x = L.Dense(6, activation="relu")(inputs)
    out = L.Add()([x, inputs])
    graph = pruning_groups(keras.Model(inputs, out))
    assert graph.groups == ()


@pytest.mark.parametrize("layer, cls", [(L.Concatenate(), "Concatenate"), (L.LSTM(4), "LSTM")])
def test_unsupported_layer_is_refused_by_name_and_class(layer, cls):
    inputs = keras.Input((5, 4))
    x = L.Dense(4)(inputs)
    x = layer([x, x]) if cls == "Concatenate" else layer(x)
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(x) if cls == "Concatenate" else x))
    with pytest.raises(UnsupportedLayerError, match=f"'{layer.name}' \\({cls}\\)"):
        pruning_groups(model)


def test_grouped_convolution_is_refused():
    model = keras.Sequential([keras.Input((6, 6, 4)), L.Conv2D(4, 3, groups=2), L.Flatten(), L.Dense(2)])
    with pytest.raises(UnsupportedLayerError, match="groups=2"):
        pruning_groups(model)


def test_per_element_preprocessing_is_accepted_only_before_the_first_producer():
    model = keras.Sequential([keras.Input((6,)), L.Rescaling(1 / 255.0), L.Dense(5, activation="relu"), L.Dense(2)])
    graph = pruning_groups(model)
    assert [g.size for g in graph.groups] == [5]
    later = keras.Sequential([keras.Input((6,)), L.Dense(5, activation="relu"), L.Rescaling(2.0), L.Dense(2)])
    with pytest.raises(UnsupportedLayerError, match="acts per input element"):
        pruning_groups(later)


def test_a_registered_custom_layer_is_pruned_like_its_rule_says():
    from dynhp_tf import LayerRule, register_layer

    class WideDense(L.Dense):
        pass

    register_layer("WideDense", LayerRule("producer", width_key="units", channel_weights=(("bias", 0),),
                                          mac_weights=("kernel",)))
    model = keras.Sequential([keras.Input((4,)), WideDense(6, activation="relu"), L.Dense(2)])
    graph = pruning_groups(model)
    assert [g.size for g in graph.groups] == [6] and graph.macs() == 4 * 6 + 6 * 2
