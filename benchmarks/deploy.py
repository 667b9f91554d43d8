"""What a trained model costs on the device: int8 flatbuffer, TFLM arena, accuracies.

A thin layer over the exporter's own functions (`converters.quantize.quantize_int8`,
`converters.tflm_check.check_with_tflm`): the benchmark measures exactly what `dynhp-export`
ships. The only addition is the int8 accuracy under `tf.lite.Interpreter`, which
`check_with_tflm` compares value by value with TFLM but does not report as an accuracy.
"""
from __future__ import annotations

import numpy as np

from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf.converters.rebuild import count_macs
from dynhp_tf.layers import rule_for
from dynhp_tf.converters.tflm_check import check_with_tflm

CALIBRATION_SAMPLES = 500
# Per-tensor FULLY_CONNECTED weights: what the ESP32 boards' TFLM library needs (boards/esp32.toml),
# and it runs on every TFLM build.
PER_CHANNEL_DENSE = False


def tflite_accuracy(tflite_model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the flatbuffer under `tf.lite.Interpreter` (TFLite's int8 kernels)."""
    interpreter = tflite_interpreter(tflite_model)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    q = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(inp["dtype"]) if scale else x.astype(inp["dtype"])
    predictions = np.empty(len(x), dtype=np.int64)
    for i, sample in enumerate(q):
        interpreter.set_tensor(inp["index"], sample[None, ...])
        interpreter.invoke()
        predictions[i] = int(np.argmax(interpreter.get_tensor(out["index"])[0]))
    return float(np.mean(predictions == np.asarray(y)))


def widths(model) -> dict[str, int]:
    """Width of every Dense/Conv layer but the output layer, by layer name."""
    result = {}
    for layer in model.layers[:-1]:
        rule = rule_for(type(layer).__name__)
        if rule is not None and rule.width_key is not None:
            result[layer.name] = int(getattr(layer, rule.width_key))
    return result


def deploy(model, data, compact=None, macs=None) -> dict:
    """Export `model` to int8, run it on TFLM and TFLite over the test set; the figures as a dict.

    Args:
        model: the Keras model to ship (for DynHP: the compact rebuild).
        data: ((x_train, y_train), (x_test, y_test)); calibration uses the first training samples.
        compact: the `CompactModel` when `model` is a rebuild (its MAC count is reused).
        macs: MACs per inference when the caller knows them (tfmot's stripped functional model
            has its layers called twice, which pruning_groups refuses to count).
    """
    (x, _), (x_test, y_test) = data
    macs = macs if macs is not None else compact.macs_compact if compact else count_macs(model)
    flatbuffer = quantize_int8(model, x[:CALIBRATION_SAMPLES], per_channel_dense=PER_CHANNEL_DENSE)
    tflm = check_with_tflm(flatbuffer, model, x_test, arena_margin=0.0, labels=y_test, sample_source="eval")
    return {
        "float_accuracy": tflm.float_accuracy,
        "int8_tflite_accuracy": tflite_accuracy(flatbuffer, x_test, y_test),
        "int8_tflm_accuracy": tflm.int8_accuracy,
        "tflm_vs_tflite_differing_values": tflm.tflm_vs_tflite_differing,
        "int8_float_top1_agreement": tflm.top1_agreement,
        "params": int(model.count_params()),
        "nonzero_params": int(sum(np.count_nonzero(w) for w in model.get_weights())),
        "macs": macs,
        "flatbuffer_bytes": len(flatbuffer),
        "arena_bytes": tflm.arena_bytes,
        "widths": widths(model),
        "ops": tflm.ops,
    }
