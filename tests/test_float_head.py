"""The float classifier head: the float model's own last layer on the int8 hidden layers."""
import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.converters.errors import QuantizationCheckError
from dynhp_tf.converters.flatbuffer import op_names
from dynhp_tf.converters.quantize import check_dense_quantization, quantize_int8, tflite_interpreter
from dynhp_tf.converters.tflm_check import check_with_tflm

L = keras.layers


def _classifier(head_activation="softmax"):
    """A trained 6-16-4 classifier whose top two classes are often close (overlapping blobs)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 800)
    x = (rng.normal(size=(800, 6)) + 1.2 * np.eye(4, 6)[y]).astype(np.float32)
    model = keras.Sequential([keras.Input((6,)), L.Dense(16, activation="relu", name="hidden"),
                              L.Dense(4, activation=head_activation, name="out")])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(
        from_logits=head_activation == "linear"))
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    return model, x


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_head_is_the_float_layer_on_the_int8_hidden_activations():
    model, x = _classifier()
    flat = quantize_int8(model, x, per_channel_dense=False, head="float")
    assert op_names(flat) == ["DEQUANTIZE", "FULLY_CONNECTED", "QUANTIZE", "SOFTMAX"]
    found = check_dense_quantization(flat, per_channel_dense=False, head="float")
    assert [w["int8"] for w in found] == [True, False]
    interpreter = tflite_interpreter(flat, preserve_all_tensors=True)
    details = interpreter.get_tensor_details()
    float_weights = [d for d in details if d["dtype"] == np.float32 and tuple(d["shape"]) == (4, 16)]
    assert len(float_weights) == 1
    np.testing.assert_array_equal(interpreter.get_tensor(float_weights[0]["index"]),
                                  model.get_layer("out").kernel.numpy().T)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    hidden = next(d for d in details if d["dtype"] == np.int8 and tuple(d["shape"]) == (1, 16))
    scale, zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    assert (out_scale, out_zero) == (1 / 256, -128) and out["dtype"] == np.int8
    kernel, bias = model.get_layer("out").get_weights()
    for sample in x[:50]:
        interpreter.set_tensor(inp["index"], np.clip(np.round(sample / scale + zero), -128, 127).astype(np.int8)[None])
        interpreter.invoke()
        h_scale, h_zero = hidden["quantization"]
        h = (interpreter.get_tensor(hidden["index"]).astype(np.float32) - h_zero) * h_scale
        expected = np.round(_softmax(h @ kernel + bias) / out_scale) + out_zero
        got = interpreter.get_tensor(out["index"]).astype(np.float32)
        assert np.abs(got - np.clip(expected, -128, 127)).max() <= 1  # float rounding at a .5 step


def _one_layer_on_grid_inputs(n=2000):
    """A softmax layer (random weights, close top logits) on inputs that int8 holds exactly
    (k/255, calibration spanning 0..1): only the head can make int8 differ from float."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 12)).astype(np.float32) / 255
    x[0], x[1] = 0, 1
    model = keras.Sequential([keras.Input((12,)), L.Flatten(), L.Dense(10, activation="softmax")])
    model.layers[-1].set_weights([rng.normal(scale=3, size=(12, 10)).astype(np.float32),
                                  np.full(10, 0.1, np.float32)])
    return model, x


def test_tflm_runs_it_and_only_int8_logits_cost_agreement():
    model, x = _one_layer_on_grid_inputs()
    agreement = {(io, head): check_with_tflm(
        quantize_int8(model, x[:500], per_channel_dense=False, io=io, head=head), model, x,
        arena_margin=0.1, sample_source="grid").top1_agreement
        for io in ("int8", "float") for head in ("int8", "float")}
    assert agreement["float", "float"] == 1.0  # the float model's own arithmetic on exact inputs
    assert agreement["int8", "float"] >= 0.998  # only ties at the int8 output's 1/256 step
    assert agreement["int8", "int8"] < 0.997 and agreement["float", "int8"] < 0.997  # int8 logits tie
    flat = quantize_int8(model, x[:500], per_channel_dense=False, io="float", head="float")
    (out,) = tflite_interpreter(flat).get_output_details()
    assert out["dtype"] == np.float32 and op_names(flat).count("DEQUANTIZE") == 1  # SOFTMAX writes it


def test_a_model_without_a_softmax_dense_head_is_refused():
    model, x = _classifier("linear")
    with pytest.raises(QuantizationCheckError, match="must end in a Dense layer with softmax"):
        quantize_int8(model, x, per_channel_dense=False, head="float")
    with pytest.raises(ValueError, match="head must be one of"):
        quantize_int8(model, x, per_channel_dense=False, head="int16")


def test_the_check_refuses_an_int8_head_where_a_float_one_was_asked_for():
    model, x = _classifier()
    with pytest.raises(QuantizationCheckError, match="float head"):
        check_dense_quantization(quantize_int8(model, x, per_channel_dense=False), per_channel_dense=False,
                                 head="float")
