"""Bias correction: the int8 model's mean output error per channel shrinks, weights are untouched."""
import numpy as np

from dynhp_tf.converters.bias_correction import correct_biases, fake_quantize, quantize_weights
from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf._keras import keras


def test_weights_round_to_tflites_symmetric_grid():
    kernel = np.array([[1.0, 0.5], [-0.26, 0.01]])
    per_tensor = quantize_weights(kernel, per_channel=False)
    assert np.allclose(per_tensor / (1 / 127), np.round(kernel * 127))
    per_channel = quantize_weights(kernel, per_channel=True)  # column 2's scale is 0.5 / 127
    assert np.allclose(per_channel[:, 1], np.round(kernel[:, 1] / 0.5 * 127) * 0.5 / 127)
    assert np.allclose(fake_quantize(np.array([0.0, 1.0, 2.0]), 0.5, 1.0), [0.0, 1.0, 1.0])


def _int8_outputs(model, x, calibration):
    interpreter = tflite_interpreter(quantize_int8(model, calibration, per_channel_dense=False))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
    result = []
    for sample in x:
        interpreter.set_tensor(inp["index"], np.clip(np.round(sample / s_in) + z_in, -128, 127).astype(np.int8)[None])
        interpreter.invoke()
        result.append((interpreter.get_tensor(out["index"])[0].astype(np.float32) - z_out) * s_out)
    return np.array(result)


def test_mean_int8_error_per_channel_shrinks():
    # One large weight sets the per-tensor scale; the small ones all round the same way
    # (0.3 of a step down), and positive inputs turn that into a mean shift of each output.
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(4)])
    step = 1.0 / 127
    kernel = np.full((32, 4), 3.3 * step, dtype=np.float32)
    kernel[0, 0] = 1.0
    model.layers[-1].set_weights([kernel, np.zeros(4, np.float32)])
    x = rng.uniform(0.5, 1.0, (200, 32)).astype(np.float32)
    corrected, shifts = correct_biases(model, x, per_channel_dense=False)
    assert np.array_equal(corrected.layers[-1].get_weights()[0], kernel)
    assert shifts[model.layers[-1].name] > 0.04  # 32 inputs x 0.3 step x mean 0.75
    reference = np.asarray(model.predict(x, verbose=0))
    before = np.abs((_int8_outputs(model, x, x) - reference).mean(axis=0))
    after = np.abs((_int8_outputs(corrected, x, x) - reference).mean(axis=0))
    assert before.max() > 0.04 and after.max() < before.max() / 4
