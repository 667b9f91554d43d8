"""Clipped hidden ranges: one outlier no longer sets a hidden layer's int8 step, in the
exporter and in the int8 fine-tuning alike, and the clipped model still converts and runs."""
import numpy as np
import pytest

from dynhp_tf._keras import keras
from dynhp_tf.activation_range import clipped_range
from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf.int8_finetune import on_int8_grid


def test_clipped_range_leaves_out_the_rarest_values_and_holds_zero():
    values = np.concatenate([np.linspace(0.0, 10.0, 5000), [1000.0]])  # one outlier
    low, high = clipped_range(values)
    assert low == 0.0 and 9.9 < high < 10.0
    assert clipped_range(values, None) == (0.0, 1000.0)
    assert clipped_range(np.array([2.0, 3.0]), None) == (0.0, 3.0)  # widened to hold 0
    assert clipped_range(np.linspace(-4.0, -1.0, 1000)) == (pytest.approx(-3.997, abs=1e-3), 0.0)


def _outputs(interpreter, samples, ops):
    """(input as the int8 model sees it, raw int8 outputs of `ops`) of `interpreter` per float sample."""
    inp = interpreter.get_input_details()[0]
    scale, zero = inp["quantization"]
    result = []
    for sample in samples:
        q = np.clip(np.round(sample / scale) + zero, -128, 127)
        interpreter.set_tensor(inp["index"], q.astype(np.int8)[None])
        interpreter.invoke()
        result.append(((q - zero) * scale, [interpreter.get_tensor(op["outputs"][0]).astype(np.float64) for op in ops]))
    return result


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_hidden_ranges_follow_the_bulk_not_one_outlier(network):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if network == "mlp":
        x = rng.normal(size=(400, 10)).astype(np.float32)
        layers = [keras.Input((10,)), keras.layers.Dense(16, activation="relu")]
    else:
        x = rng.normal(size=(400, 8, 8, 1)).astype(np.float32)
        layers = [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.MaxPooling2D(),
                  keras.layers.Flatten()]
    x[7] *= 30  # one sample far outside the rest: the min/max range would be its
    model = keras.Sequential(layers + [keras.layers.Dense(3, activation="softmax")])
    for layer, per_tensor in ((model.layers[0], network == "mlp"), (model.layers[-1], True)):
        layer.kernel.assign(on_int8_grid(layer.kernel, per_tensor))  # the int8 model's own weights
    hidden = keras.Model(model.inputs, model.layers[0].output)
    want = clipped_range(np.asarray(hidden(x)))

    clipped = tflite_interpreter(quantize_int8(model, x, per_channel_dense=False), preserve_all_tensors=True)
    plain = tflite_interpreter(quantize_int8(model, x, per_channel_dense=False, activation_percentile=None))
    first = [op for op in clipped._get_ops_details() if op["op_name"] in ("FULLY_CONNECTED", "CONV_2D")][0]
    step = clipped.get_tensor_details()[first["outputs"][0]]["quantization"][0]
    plain_step = plain.get_tensor_details()[first["outputs"][0]]["quantization"][0]
    assert step == pytest.approx((want[1] - want[0]) / 255, rel=1e-5)
    assert step < 0.5 * plain_step
    # The int8 model runs: within a (finer) step of the float values, the outlier saturating at the
    # range's top (one step: the kernels' fixed-point rounding on top of the output's).
    ops = [first] + [op for op in clipped._get_ops_details() if op["op_name"] == "MAX_POOL_2D"]
    zero = clipped.get_tensor_details()[first["outputs"][0]]["quantization"][1]
    for sample, outputs in _outputs(clipped, x[:20], ops):
        float_values = np.asarray(hidden(sample[None].astype(np.float32)))[0]
        got = ((outputs[0] - zero) * step).reshape(float_values.shape)
        np.testing.assert_allclose(got, np.minimum(float_values, want[1]), atol=1.01 * step)
    if network == "cnn":  # pooling keeps its input's scale, as the int8 kernels require
        pool = clipped.get_tensor_details()[ops[1]["outputs"][0]]["quantization"]
        assert pool == clipped.get_tensor_details()[first["outputs"][0]]["quantization"]


def test_int8_finetune_grid_uses_the_exporters_hidden_ranges():
    from dynhp_tf.int8_finetune import _ActivationGrid, logits_function

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    x[3] *= 40
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    grid = _ActivationGrid(model, logits_function(model), x)
    try:
        grid.calibrate()
        low, high = np.asarray(grid.ranges[0])
    finally:
        grid.restore()
    interpreter = tflite_interpreter(quantize_int8(model, x, per_channel_dense=False))
    first = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"][0]
    scale, zero = interpreter.get_tensor_details()[first["outputs"][0]]["quantization"]
    assert (high - low) / 255 == pytest.approx(scale, rel=1e-5)
    assert high == pytest.approx(clipped_range(np.asarray(model.layers[0](x)))[1], rel=1e-5)
