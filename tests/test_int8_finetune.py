"""Logit-range fine-tuning: the logits' range shrinks, accuracy holds, pruned neurons stay pruned."""
import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.int8_finetune import narrow_logit_range
from tests.models import prune_first_hidden


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 1200)
    x = (rng.normal(size=(1200, 8)) + 3 * np.eye(3, 8)[y]).astype(np.float32)
    return x, y


def test_logit_range_shrinks_and_pruned_neurons_stay_zero():
    keras.utils.set_random_seed(0)
    x, y = _blobs()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)  # large lr: confident, wide logits
    hidden, out = model.layers[0], model.layers[1]
    prune_first_hidden(model, 4)
    accuracy = lambda: np.mean(model.predict(x, verbose=0).argmax(1) == y)  # noqa: E731
    before = accuracy()

    result = narrow_logit_range(model, x, y, epochs=5, learning_rate=3e-3, quantile=90)
    width = lambda r: r[1] - r[0]  # noqa: E731
    assert width(result["range_after"]) < 0.8 * width(result["range_before"])
    assert np.all(hidden.get_weights()[0][:, :4] == 0) and np.all(out.get_weights()[0][:4] == 0)
    assert accuracy() > before - 0.02


def test_a_model_without_logits_is_refused():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="relu")])
    with pytest.raises(ValueError, match="last layer must be a Dense"):
        narrow_logit_range(model, *_blobs())


def test_dynhp_callback_fine_tunes_after_the_last_event_and_pruned_neurons_stay_zero():
    from dynhp_tf import DynHPCallback
    from dynhp_tf.converters.rebuild import compact_model
    from tests.models import compiled, data_for, mlp

    keras.utils.set_random_seed(0)
    model = compiled(mlp(), optimizer=keras.optimizers.Adam(0.02))  # large lr: wide logits
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=4, end_epoch=1, int8_finetune_epochs=2, verbose=0)
    last = {}  # the weights when DynHP training ended, before the fine-tuning
    recorder = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: last.update(
        weights=[np.array(w) for w in model.get_weights()]))
    history = model.fit(cb.batches(x, y, batch_size=16), epochs=3, callbacks=[cb, recorder], verbose=0)

    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(last["weights"], after))  # it trained
    assert all(np.all(w[before == 0] == 0) for before, w in zip(last["weights"], after))
    assert compact_model(model).params_compact == history.history["dynhp/params"][-1]
    np.testing.assert_allclose(cb.compact_model().predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    for layer in model.layers:  # on the per-tensor int8 grid (no board: per-tensor, as all boards)
        steps = np.asarray(layer.kernel) / (np.abs(np.asarray(layer.kernel)).max() / 127)
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


def test_under_a_float_head_the_fine_tuning_leaves_the_last_layer_and_the_logits_in_float():
    # dynhp-export --head float computes the last Dense in float32 from the Keras weights: rounding
    # that kernel to an int8 grid, or the logits, would only train for a network that never runs.
    from dynhp_tf import DynHPCallback
    from tests.models import compiled, data_for

    def on_grid(kernel):
        steps = np.asarray(kernel) / (np.abs(np.asarray(kernel)).max() / 127)
        return np.allclose(steps, np.round(steps), atol=1e-3)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])  # a float head is a softmax
    model = compiled(model, optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=4, end_epoch=1, int8_finetune_epochs=2, head="float", verbose=0)
    model.fit(cb.batches(x, y, batch_size=16), epochs=3, callbacks=[cb], verbose=0)
    *hidden, last = [layer for layer in model.layers if hasattr(layer, "kernel")]
    assert all(on_grid(layer.kernel) for layer in hidden)
    assert not on_grid(last.kernel)
    assert "top_spread_before" not in cb.int8_finetune  # no int8 logits to level


def test_dynhp_int8_finetune_is_refused_at_train_begin_without_logits_or_batches():
    from dynhp_tf import DynHPCallback
    from tests.models import compiled, data_for

    model = compiled(keras.Sequential([keras.Input((20,)), keras.layers.Dense(8, activation="relu"),
                                       keras.layers.Dense(3, activation="relu")]))
    x, y = data_for(model)
    cb = DynHPCallback(target_compression=2, int8_finetune_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="last layer must be a Dense"):
        model.fit(cb.batches(x, y), epochs=1, callbacks=[cb], verbose=0)
    with pytest.raises(ValueError, match="int8_finetune_epochs: the fine-tuning needs training data"):
        model.fit(x, y, epochs=1, callbacks=[DynHPCallback(target_compression=2, int8_finetune_epochs=1,
                                                            verbose=0)], verbose=0)
    with pytest.raises(ValueError, match="int8_finetune_epochs: expected an integer >= 0"):
        DynHPCallback(target_compression=2, int8_finetune_epochs=-1)


@pytest.mark.parametrize("grid", ["per-tensor", "per-channel"])
def test_weight_grid_fine_tuning_leaves_the_weights_the_int8_model_holds(grid):
    from dynhp_tf.converters.flatbuffer import fully_connected_weight_tensors
    from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter

    keras.utils.set_random_seed(0)
    x, y = _blobs()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    narrow_logit_range(model, x, y, epochs=1, weight=0.0, weight_grid=grid)
    flatbuffer = quantize_int8(model, x, per_channel_dense=grid == "per-channel")
    interpreter = tflite_interpreter(flatbuffer)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    int8_weights = []
    for index in fully_connected_weight_tensors(flatbuffer):
        scales = details[index]["quantization_parameters"]["scales"]
        int8_weights.append(interpreter.get_tensor(index).astype(np.float64) * scales[:, None])
    assert len(int8_weights) == 2
    for layer, weights in zip(model.layers, int8_weights):  # the float model computes with the int8 weights
        np.testing.assert_allclose(weights.T, np.asarray(layer.kernel), rtol=1e-6, atol=1e-9)


def test_activation_grid_forward_matches_the_int8_model_logits():
    # The fine-tuning's fake-quant forward is the int8 network: its logits equal the TFLite
    # int8 model's (dequantized) SOFTMAX input, most exactly, the rest within one or two steps (the
    # kernels' fixed-point rounding, which hidden layers pass on), far closer
    # than the float logits are.
    from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
    from dynhp_tf.int8_finetune import _ActivationGrid
    from dynhp_tf.logit_level import logits_function

    keras.utils.set_random_seed(0)
    x, y = _blobs()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    narrow_logit_range(model, x, y, epochs=1, weight=0.0, weight_grid="per-tensor", activation_grid=True)
    calibration = x[:200]
    interpreter = tflite_interpreter(quantize_int8(model, calibration, per_channel_dense=False),
                                     preserve_all_tensors=True)
    softmax = [op for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    detail = interpreter.get_tensor_details()[softmax[0]["inputs"][0]]
    scale, zero = detail["quantization"]
    inp = interpreter.get_input_details()[0]
    int8_logits = []
    for sample in x[:300]:
        interpreter.set_tensor(inp["index"], np.clip(np.round(sample / inp["quantization"][0]) + inp["quantization"][1],
                                                     -128, 127).astype(np.int8)[None])
        interpreter.invoke()
        int8_logits.append((interpreter.get_tensor(detail["index"])[0].astype(np.float64) - zero) * scale)
    int8_logits = np.array(int8_logits)

    logits = logits_function(model)
    grid = _ActivationGrid(model, logits, calibration)
    try:
        grid.calibrate()
        fake = np.asarray(grid.quantize_logits(logits(x[:300])))
    finally:
        grid.restore()
    floats = np.asarray(logits(x[:300]))
    fake_error, float_error = np.abs(fake - int8_logits) / scale, np.abs(floats - int8_logits) / scale
    assert np.mean(fake_error < 0.01) > 0.8 and fake_error.max() < 2.01, (fake_error.mean(), fake_error.max())
    assert fake_error.mean() < 0.5 * float_error.mean(), (fake_error.mean(), float_error.mean())
