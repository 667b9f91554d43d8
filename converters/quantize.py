"""Full-integer int8 TFLite export of a Keras model, and a check of the result.

The model is traced as a `tf.function` with a fixed batch-1 input signature and converted
with `tf.lite.TFLiteConverter.from_concrete_functions`. That path works the same for a
Keras 3 model and a tf_keras model (TF_USE_LEGACY_KERAS=1), and the static batch of 1
gives a smaller flatbuffer than `from_keras_model` (no SHAPE/STRIDED_SLICE/PACK ops to
compute a dynamic batch), which is what a microcontroller runs anyway.

Example:
    >>> tflite_model = quantize_int8(model, x_calibration, per_channel_dense=False)
    >>> check_dense_quantization(tflite_model, per_channel_dense=False)
"""

from __future__ import annotations

import pathlib
import tempfile
import warnings
from typing import Iterator

import numpy as np
import tensorflow as tf

from dynhp_tf.converters.child import run_worker
from dynhp_tf.converters.errors import (
    CalibrationShapeError, ConversionError, ExportError, QuantizationCheckError,
)
from dynhp_tf.budget import HEADS
from dynhp_tf.converters.flatbuffer import fully_connected_weight_tensors
from dynhp_tf.converters.float_head import float_head
from dynhp_tf.converters.logit_range import argmax_logit_range

IO_TYPES = {"int8": tf.int8, "float": tf.float32}

# The converter's documentation suggests a few hundred representative samples; more only
# costs time (each one is a full float inference inside the calibrator).
MAX_CALIBRATION_SAMPLES = 500


def model_input_shape(model) -> tuple[int, ...]:
    """Shape of one input sample (without batch); refuses multi-input/output models."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"model '{model.name}' has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; the exporter expects exactly one of each"
        )
    shape = tuple(model.inputs[0].shape[1:])
    if any(dim is None for dim in shape):
        raise ExportError(f"model '{model.name}' input shape {shape} is not fully defined")
    return tuple(int(dim) for dim in shape)


def check_sample_shape(x: np.ndarray, model, what: str) -> np.ndarray:
    """`x` as float32 of shape [n, *input_shape]; `CalibrationShapeError` otherwise."""
    expected = model_input_shape(model)
    x = np.asarray(x)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected or len(x) == 0:
        raise CalibrationShapeError(
            f"{what} has shape {tuple(x.shape)}; expected (n, {', '.join(map(str, expected))}) "
            f"with n >= 1 to match the model input"
        )
    return x.astype(np.float32, copy=False)


def quantize_int8(
    model,
    calibration: np.ndarray,
    *,
    per_channel_dense: bool,
    io: str = "int8",
    max_samples: int = MAX_CALIBRATION_SAMPLES,
    argmax_logits: bool = True,
    head: str = "int8",
) -> bytes:
    """Convert `model` to a full-integer int8 TFLite flatbuffer.

    Args:
        model: A single-input, single-output Keras (3 or tf_keras) model.
        calibration: Float samples, shape [n, *input_shape]; the first `max_samples`
            are the representative dataset that fixes activation ranges.
        per_channel_dense: Quantize FULLY_CONNECTED weights per output channel (True) or
            with one scale per tensor (False), as the board's TFLM library requires.
        io: "int8" (int8 input and output tensors) or "float" (float32 I/O with
            QUANTIZE/DEQUANTIZE ops at the ends; every other op is int8).
        max_samples: Cap on representative samples.
        argmax_logits: For a model ending in Dense+softmax, give the logits the int8 range
            that matters for the argmax (`dynhp_tf.converters.logit_range`), not min/max.
        head: "int8", or "float" to compute a Dense+softmax classifier's last layer in float32
            (`dynhp_tf.converters.float_head`; the logit range then does not apply).

    Returns:
        The flatbuffer bytes. Only TFLITE_BUILTINS_INT8 ops are allowed, so conversion fails
        rather than silently keeping a float op; the float head is the one float part, made
        after conversion.
    """
    check_choices(io, head)
    samples = check_sample_shape(calibration, model, "calibration data")[:max_samples]
    shape = model_input_shape(model)

    @tf.function(input_signature=[tf.TensorSpec((1, *shape), tf.float32)])
    def serve(x):
        return model(x, training=False)

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None, ...]]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = IO_TYPES[io]
    converter.inference_output_type = IO_TYPES[io]
    # Private but documented by TFLM (tensorflow/tflite-micro PR #2602) as the switch for
    # libraries without per-channel FULLY_CONNECTED; `check_dense_quantization` verifies it.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = (
        not per_channel_dense
    )
    tflite_model = converter.convert()
    if head == "float":
        return float_head(model, tflite_model)
    return argmax_logit_range(model, tflite_model, samples) if argmax_logits else tflite_model


def check_choices(io: str, head: str) -> None:
    """ValueError unless `io` and `head` are choices the converter takes."""
    if io not in IO_TYPES:
        raise ValueError(f"io must be one of {sorted(IO_TYPES)}, got {io!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {list(HEADS)}, got {head!r}")


def quantize_int8_in_child(
    model,
    calibration: np.ndarray,
    *,
    per_channel_dense: bool,
    io: str = "int8",
    max_samples: int = MAX_CALIBRATION_SAMPLES,
    head: str = "int8",
) -> bytes:
    """`quantize_int8` in a child process (`dynhp_tf.converters._convert_worker`).

    Same arguments and result; the model is passed as a saved `.keras` file. A converter
    failure or native crash raises `ConversionError` with the converter's error line
    instead of killing this process.
    """
    check_choices(io, head)
    samples = check_sample_shape(calibration, model, "calibration data")[:max_samples]
    with tempfile.TemporaryDirectory(prefix="dynhp-convert-") as tmp:
        tmp = pathlib.Path(tmp)
        model.save(tmp / "model.keras")
        np.save(tmp / "calibration.npy", samples)
        run_worker(
            "dynhp_tf.converters._convert_worker",
            [str(tmp / "model.keras"), str(tmp / "calibration.npy"), str(tmp / "model.tflite"),
             "per-channel" if per_channel_dense else "per-tensor", io, head],
            what="the TFLite converter", error=ConversionError,
        )
        return (tmp / "model.tflite").read_bytes()


def tflite_interpreter(tflite_model: bytes, preserve_all_tensors: bool = False) -> tf.lite.Interpreter:
    """A `tf.lite.Interpreter` with TFLite's builtin kernels and no default delegate.

    The default XNNPACK delegate rounds some int8 results differently from TFLite's (and
    TFLM's) builtin kernels, by one quantization step; without it, the two interpreters can
    be compared exactly. Its TF 2.20+ deprecation warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_content=tflite_model,
            experimental_preserve_all_tensors=preserve_all_tensors,
            experimental_op_resolver_type=(
                tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    interpreter.allocate_tensors()
    return interpreter


def check_dense_quantization(tflite_model: bytes, *, per_channel_dense: bool, head: str = "int8") -> list[dict]:
    """Verify every FULLY_CONNECTED weight tensor is quantized as requested.

    Reads the flatbuffer for the weight tensor of each FULLY_CONNECTED op and counts its
    scales as `tf.lite.Interpreter` reports them: one scale means per-tensor, one per
    output unit means per-channel. With `head="float"` the last one must be float32 instead.

    Returns:
        One dict per dense weight tensor: `tensor`, `shape`, `scales`, `int8`.

    Raises:
        QuantizationCheckError: naming the first tensor that differs from the request.
    """
    details = {d["index"]: d for d in tflite_interpreter(tflite_model).get_tensor_details()}
    weights = fully_connected_weight_tensors(tflite_model)
    found = []
    for position, index in enumerate(weights):
        d = details[index]
        scales = len(d["quantization_parameters"]["scales"])
        units = int(d["shape"][0])
        found.append(
            {"tensor": d["name"], "shape": [int(s) for s in d["shape"]], "scales": scales,
             "int8": d["dtype"] == np.int8}
        )
        if head == "float" and position == len(weights) - 1:
            if d["dtype"] != np.float32:
                raise QuantizationCheckError(f"dense weights '{d['name']}' of the float head are "
                                             f"{np.dtype(d['dtype']).name}, not float32")
            continue
        want = units if per_channel_dense else 1
        if d["dtype"] != np.int8 or scales != want:
            mode = "per-channel" if per_channel_dense else "per-tensor"
            raise QuantizationCheckError(
                f"dense weights '{d['name']}' ({np.dtype(d['dtype']).name}, {scales} scales) "
                f"are not int8 {mode} ({want} scale(s)) as the board requires"
            )
    return found
