"""The logits' int8 range for the argmax: finer steps, same flatbuffer size, right values."""
import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.converters.logit_range import argmax_range
from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf.logit_level import logits_function


def test_argmax_range_reaches_below_every_winner_by_what_softmax_can_see():
    logits = np.array([[-40.0, 2.0, 5.0], [-30.0, -3.0, 1.0], [-9.0, -7.0, -1.0]])
    low, high = argmax_range(logits)
    assert high == 5.0 and low == pytest.approx(-1.0 - np.log(512))  # 2 losers below it: < 1/256
    assert argmax_range(np.array([[10.0, 12.0, 20.0]])) == (0.0, 20.0)


def _classifier(activation):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    x = (rng.normal(size=(600, 6)) + 4 * np.eye(4, 6)[y]).astype(np.float32)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(12, activation="relu"),
                              keras.layers.Dense(4, activation=activation)])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(
        from_logits=activation == "linear"))
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)  # confident: far-off losing logits
    return model, x


def test_softmax_logits_get_a_finer_step_with_values_still_right():
    model, x = _classifier("softmax")
    wide = quantize_int8(model, x, per_channel_dense=False, argmax_logits=False)
    narrow = quantize_int8(model, x, per_channel_dense=False)
    assert len(narrow) == len(wide)
    low, high = argmax_range(np.asarray(logits_function(model)(x[:500])))
    step = (high - low) / 255
    interpreter = tflite_interpreter(narrow, preserve_all_tensors=True)
    logits = [d for d in interpreter.get_tensor_details() if np.isclose(d["quantization"][0], step, rtol=1e-6)]
    assert len(logits) == 1
    wide_steps = [d["quantization"][0] for d in tflite_interpreter(wide).get_tensor_details()
                  if d["index"] == logits[0]["index"]]
    assert step < 0.8 * wide_steps[0]
    inp = interpreter.get_input_details()[0]
    s, z = inp["quantization"]
    float_logits = np.asarray(logits_function(model)(x[:50]))
    for sample, want in zip(x[:50], float_logits):
        interpreter.set_tensor(inp["index"], np.clip(np.round(sample / s) + z, -128, 127).astype(np.int8)[None])
        interpreter.invoke()
        scale, zero = logits[0]["quantization"]
        got = (interpreter.get_tensor(logits[0]["index"])[0].astype(np.float64) - zero) * scale
        seen = want >= low  # inside the range: near the float values (hidden layers add their error)
        np.testing.assert_allclose(got[seen], want[seen], atol=4 * step + 0.05 * np.abs(want).max())
        assert np.all(got[~seen] <= low + step)


def test_a_linear_output_keeps_its_min_max_range():
    model, x = _classifier("linear")
    assert quantize_int8(model, x, per_channel_dense=False) == quantize_int8(
        model, x, per_channel_dense=False, argmax_logits=False)
