"""Error map pruning: exactly the non-selected channels lose their gradients; the layer saves and strips."""
import numpy as np
import pytest
import tensorflow as tf

from dynhp_tf._keras import keras
from dynhp_tf.error_maps import ErrorMapConv2D, error_map_pruning, kept_channels, strip_error_map_pruning
from dynhp_tf.flops import per_sample_flops
from tests.models import cnn, compiled, data_for


def gradients(layer, x, upstream, training=True):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * upstream)
    dx, dkernel, dbias = tape.gradient(loss, [x, layer.kernel, layer.bias])
    return dx.numpy(), dkernel.numpy(), dbias.numpy()


@pytest.mark.parametrize("strides,padding,alpha,g1,g2", [(1, "valid", 0.5, 1.0, 1.0), (2, "same", 0.3, 0.0, 1.0),
                                                        (1, "same", 0.7, 2.0, 0.5)])
def test_pruned_backward_equals_a_hand_masked_gradient(strides, padding, alpha, g1, g2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 9, 3)).astype("float32")
    pruned = ErrorMapConv2D(10, 3, strides=strides, padding=padding, error_map_alpha=alpha,
                            error_map_g1=g1, error_map_g2=g2)
    plain = keras.layers.Conv2D(10, 3, strides=strides, padding=padding)
    pruned.build(x.shape)
    plain.build(x.shape)
    kernel = rng.normal(size=pruned.kernel.shape).astype("float32")
    bias = rng.normal(size=10).astype("float32")
    for layer in (pruned, plain):
        layer.set_weights([kernel, bias])
    upstream = rng.normal(size=plain(x).shape).astype("float32") * rng.uniform(0.1, 3, size=10).astype("float32")

    # The score by hand: kernel L1 and error-map L1 per channel, each over its channel mean.
    w = np.abs(kernel).sum(axis=(0, 1, 2))
    e = np.abs(upstream).sum(axis=(0, 1, 2))
    score = g1 * w / w.mean() + g2 * e / e.mean()
    keep = np.zeros(10, bool)
    keep[np.argsort(-score)[:kept_channels(10, alpha)]] = True
    expected = gradients(plain, x, upstream * keep)
    got = gradients(pruned, x, upstream)

    for name, a, b in zip(("input", "kernel", "bias"), got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)
    assert np.all(got[1][..., ~keep] == 0) and np.all(got[2][~keep] == 0)
    assert np.all(np.abs(got[1][..., keep]).sum(axis=(0, 1, 2)) > 0)
    # Inference and alpha=1 are plain Conv2D.
    np.testing.assert_allclose(pruned(x).numpy(), plain(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gradients(pruned, x, upstream, training=False)[1], gradients(plain, x, upstream)[1],
                               rtol=1e-4, atol=1e-4)


def test_switch_is_per_layer_counts_in_flops_saves_and_strips(tmp_path):
    model = cnn()
    first = model.layers[0].name
    switched = error_map_pruning(model, alpha=0.25, layers=[first])
    kinds = [type(l).__name__ for l in switched.layers]
    assert kinds.count("ErrorMapConv2D") == 1 and type(switched.layers[0]).__name__ == "ErrorMapConv2D"
    x, y = data_for(model, n=64)
    np.testing.assert_allclose(switched.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    dense, pruned = per_sample_flops(model), per_sample_flops(switched)
    assert pruned["forward"] == dense["forward"] and pruned["backward"] < dense["backward"]

    compiled(switched).fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    switched.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].error_map_alpha == 0.25
    np.testing.assert_allclose(loaded.predict(x, verbose=0), switched.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    plain = strip_error_map_pruning(loaded)
    assert all(type(l).__name__ != "ErrorMapConv2D" for l in plain.layers)
    np.testing.assert_allclose(plain.predict(x, verbose=0), switched.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_skip_first_leaves_the_first_conv_plain_and_switches_the_rest():
    model = cnn()
    switched = error_map_pruning(model, alpha=0.5, skip_first=True)
    kinds = [type(l).__name__ for l in switched.layers if "Conv2D" in type(l).__name__]
    assert kinds == ["Conv2D", "ErrorMapConv2D"]
    # The first conv's backward is only its weight gradient: sparing it costs that share of the saving.
    dense, every, spared = (per_sample_flops(m)["backward"] for m in (model, error_map_pruning(model, 0.5), switched))
    assert every < spared < dense


@pytest.mark.parametrize("kwargs,argument", [({"error_map_alpha": 0}, "error_map_alpha"),
                                             ({"error_map_alpha": 1.5}, "error_map_alpha"),
                                             ({"error_map_g1": 0, "error_map_g2": 0}, "error_map_g1")])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ErrorMapConv2D(4, 3, **kwargs)


def test_unknown_layer_names_are_refused():
    with pytest.raises(ValueError, match="layers"):
        error_map_pruning(cnn(), 0.5, layers=["nope"])


def test_dynhp_narrows_an_error_map_model_and_keeps_the_switch():
    from dynhp_tf import DynHPCallback

    model = compiled(error_map_pruning(cnn(), alpha=0.5))
    x, y = data_for(model, n=128)
    cb = DynHPCallback(target_compression=3, end_epoch=1, verbose=0)
    history = model.fit(cb.batches(x, y, batch_size=16), epochs=2, callbacks=[cb], verbose=0).history
    assert history["dynhp/compression"][-1] >= 2.7
    narrow = cb.compact_model()
    convs = [l for l in narrow.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs and all(isinstance(l, ErrorMapConv2D) and l.error_map_alpha == 0.5 for l in convs)
    assert convs[0].filters < model.layers[0].filters
