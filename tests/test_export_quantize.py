"""int8 export: full-integer flatbuffer, dense-layer quantization as the board asks, checked."""
import numpy as np
import pytest

from dynhp_tf.converters.errors import CalibrationShapeError, QuantizationCheckError
from dynhp_tf.converters.flatbuffer import op_names
from dynhp_tf.converters.quantize import check_dense_quantization, quantize_int8, tflite_interpreter
from tests.export_models import samples, tiny_mlp

DENSE_UNITS = [16, 8, 3]


@pytest.fixture(scope="module")
def model():
    return tiny_mlp()


@pytest.fixture(scope="module")
def per_tensor(model):
    return quantize_int8(model, samples(), per_channel_dense=False)


@pytest.fixture(scope="module")
def per_channel(model):
    return quantize_int8(model, samples(), per_channel_dense=True)


def test_per_tensor_dense_weights_have_one_scale(per_tensor):
    found = check_dense_quantization(per_tensor, per_channel_dense=False)
    assert [w["scales"] for w in found] == [1, 1, 1]
    assert all(w["int8"] for w in found)


def test_per_channel_dense_weights_have_one_scale_per_unit(per_channel):
    found = check_dense_quantization(per_channel, per_channel_dense=True)
    assert sorted(w["scales"] for w in found) == sorted(DENSE_UNITS)


def test_check_refuses_the_other_mode(per_tensor, per_channel):
    with pytest.raises(QuantizationCheckError, match="per-channel"):
        check_dense_quantization(per_tensor, per_channel_dense=True)
    with pytest.raises(QuantizationCheckError, match="per-tensor"):
        check_dense_quantization(per_channel, per_channel_dense=False)


def test_int8_io_and_only_integer_tensors(per_tensor):
    interpreter = tflite_interpreter(per_tensor)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 4, 4]
    dtypes = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert dtypes <= {np.int8, np.int32}  # int32: biases and shapes
    assert op_names(per_tensor) == ["FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]


def test_float_io_keeps_int8_inside(model):
    flat = quantize_int8(model, samples(), per_channel_dense=False, io="float")
    interpreter = tflite_interpreter(flat)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert op_names(flat) == ["DEQUANTIZE", "FULLY_CONNECTED", "QUANTIZE", "RESHAPE", "SOFTMAX"]
    check_dense_quantization(flat, per_channel_dense=False)


def test_calibration_of_the_wrong_shape_is_refused(model):
    with pytest.raises(CalibrationShapeError, match=r"\(10, 5, 4\).*\(n, 4, 4\)"):
        quantize_int8(model, samples(10, shape=(5, 4)), per_channel_dense=False)
