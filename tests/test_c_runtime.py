"""The ahead-of-time C runtime gives TFLM's int8 outputs bit for bit (host gcc build).

Each case quantizes a small random model, runs it under TFLM (the `tflite-micro` wheel)
and through the generated C compiled with `gcc -std=c99 -Wall -Wextra -Werror`, on the same
inputs, and compares every output value.
"""
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from dynhp_tf.converters.c_runtime import UnsupportedOpError, generate_model_c
from dynhp_tf.converters.monitor import EXIT_GOLDEN_FAILED, EXIT_OK, parse_events
from dynhp_tf.converters.monitor import main as monitor_main
from dynhp_tf._keras import keras
from tests import models
from tests.c_runtime_support import HOST_FLAGS, quantized, run_c_host, write_project

L = keras.layers


def _random_weights(model, seed=0):
    """Random weights and biases, so zero biases or unit scales hide nothing."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = weights
            weights = [rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                       rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 1.5, var.shape)]
        else:
            weights = [rng.normal(0, 0.4, w.shape) for w in weights]
        layer.set_weights([w.astype("float32") for w in weights])
    return model


def _sequential(shape, *layers):
    return _random_weights(keras.Sequential([keras.Input(shape), *layers]))


def _scaled(model, factor):
    """Weights times `factor`: pre-activations far beyond the saturation radius."""
    for layer in model.layers:
        layer.set_weights([w * factor for w in layer.get_weights()])
    return model


def _two_branch_add(shape=(6, 7, 3)):
    inputs = keras.Input(shape)
    a = L.Conv2D(4, 3, padding="same")(inputs)
    b = L.Conv2D(4, 1, activation="relu")(inputs)
    return _random_weights(keras.Model(inputs, L.ReLU()(L.Add()([a, b]))))


# One small model per op variant: shapes, strides, padding, dilation, depth multipliers.
SWEEP = {
    "conv_same_stride1_relu": lambda: _sequential((9, 9, 3), L.Conv2D(5, 3, padding="same", activation="relu")),
    "conv_valid_stride2": lambda: _sequential((10, 11, 2), L.Conv2D(4, 3, strides=2)),
    "conv_dilation2_same": lambda: _sequential((9, 9, 2), L.Conv2D(4, 3, dilation_rate=2, padding="same")),
    "conv_k5_stride2_same_relu6": lambda: _sequential((11, 9, 3), L.Conv2D(6, 5, strides=2, padding="same", activation="relu6")),
    "depthwise_multiplier2_same": lambda: _sequential((8, 8, 3), L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")),
    "depthwise_stride2_valid_relu": lambda: _sequential((9, 9, 4), L.DepthwiseConv2D(3, strides=2, activation="relu")),
    "depthwise_dilation2_same": lambda: _sequential((9, 9, 3), L.DepthwiseConv2D(3, dilation_rate=2, padding="same")),
    "max_pool_same_and_valid": lambda: _sequential((9, 9, 3), L.Conv2D(4, 1), L.MaxPooling2D(3, strides=2, padding="same"), L.MaxPooling2D(2)),
    "avg_pool_same_and_valid": lambda: _sequential((9, 9, 3), L.Conv2D(4, 1), L.AveragePooling2D(3, strides=2, padding="same"), L.AveragePooling2D(2)),
    "mean_7x9": lambda: _sequential((7, 9, 3), L.Conv2D(5, 1), L.GlobalAveragePooling2D()),
    "add": _two_branch_add,
    "logistic_dense": lambda: _sequential((12,), L.Dense(16, activation="sigmoid")),
    "tanh_dense": lambda: _sequential((12,), L.Dense(16, activation="tanh")),
    "logistic_saturating": lambda: _scaled(_sequential((12,), L.Dense(16, activation="sigmoid")), 8.0),
    "tanh_saturating": lambda: _scaled(_sequential((12,), L.Dense(16, activation="tanh")), 8.0),
    "tanh_conv_then_logistic": lambda: _sequential((6, 6, 2), L.Conv2D(4, 3, activation="tanh"), L.Flatten(), L.Dense(5, activation="sigmoid")),
    # RESHAPE aliases its input in the plan; at the model's output it must still copy.
    "flatten_of_model_input": lambda: _sequential((4, 5, 2), L.Flatten(), L.Dense(6)),
    "flatten_to_model_output": lambda: _sequential((3, 4, 2), L.Conv2D(3, 1), L.Flatten()),
}


def _inputs(model, n=48, seed=1):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(0, 1.5, (n, *shape)).astype("float32")


@pytest.mark.parametrize("case", sorted(SWEEP))
def test_op_sweep_is_bit_exact(case):
    model = SWEEP[case]()
    tflite_model, inputs, want = quantized(model, _inputs(model))
    got = run_c_host(tflite_model, inputs, want)
    assert np.array_equal(got, want), f"{case}: {np.count_nonzero(got != want)} values differ"


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "residual"])
def test_suite_models_are_bit_exact(name, per_channel):
    model = _random_weights(getattr(models, name)(), seed=3)
    x, _ = models.data_for(model, 64)
    tflite_model, inputs, want = quantized(model, x, per_channel=per_channel)
    got = run_c_host(tflite_model, inputs, want)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} values differ"


def test_softmax_within_one_step_and_float_io_exact(capsys):
    model = _sequential((12,), L.Dense(16, activation="relu"), L.Dense(10, activation="softmax"))
    x = _inputs(model, n=200)
    tflite_model, inputs, want = quantized(model, x)
    got = run_c_host(tflite_model, inputs, want)
    diff = np.abs(got.astype(int) - want.astype(int))
    with capsys.disabled():
        print(f"\nSOFTMAX C runtime vs TFLM: max {diff.max()} LSB, "
              f"{np.count_nonzero(diff)} of {diff.size} values differ")
    assert diff.max() <= 1
    # float32 I/O: QUANTIZE at the input, DEQUANTIZE at the output, identical floats.
    tflite_model, inputs, want = quantized(models.mlp(inputs=12), x, io="float")
    assert inputs.dtype == np.float32
    assert np.array_equal(run_c_host(tflite_model, inputs, want), want)


@pytest.mark.parametrize("io", ["int8", "float"])
def test_float_head_is_exact(io):
    """`--head float` (converters.float_head) runs in float32 in the C runtime, in TFLM's order
    of float operations: every output equals TFLM's, float outputs (io float) included."""
    model = _sequential((12,), L.Dense(64, activation="relu"), L.Dense(10, activation="softmax"))
    tflite_model, inputs, want = quantized(model, _inputs(model, n=300), per_channel=True, io=io,
                                           head="float")
    generated = generate_model_c(tflite_model)
    head = ["DEQUANTIZE", "FULLY_CONNECTED", "SOFTMAX"] + (["QUANTIZE"] if io == "int8" else [])
    assert generated.ops[-len(head):] == head
    assert "dynhp_fully_connected_f32" in generated.files["dynhp_model.c"]
    # The arena counts bytes: at the DEQUANTIZE the 64 int8 hidden values and their 64 floats.
    assert generated.arena_bytes == 64 + 4 * 64
    got = run_c_host(tflite_model, inputs, want)
    assert got.dtype == want.dtype and np.array_equal(got, want), \
        f"{np.count_nonzero(got != want)} values differ"


def test_unsupported_op_is_refused_by_name():
    model = _sequential((6,), L.Dense(4, activation="swish"))  # x * sigmoid(x): MUL
    tflite_model, _, _ = quantized(model, _inputs(model, n=8))
    with pytest.raises(UnsupportedOpError, match="MUL"):
        generate_model_c(tflite_model)


def test_static_plan_reuses_memory():
    """The arena holds the live tensors only: less than the sum of all intermediates."""
    model = models.mlp(inputs=20, hidden=(64, 64, 64))
    tflite_model, _, _ = quantized(model, _inputs(model, n=8))
    generated = generate_model_c(tflite_model)
    assert generated.arena_bytes == 128  # two 64-byte tensors alive at a time


def test_flatten_costs_no_arena():
    """Flatten of the model input is read in place: the arena holds only the dense outputs."""
    model = _sequential((28, 28), L.Flatten(), L.Dense(30, activation="relu"), L.Dense(10))
    tflite_model, _, _ = quantized(model, _inputs(model, n=8))
    generated = generate_model_c(tflite_model)
    assert "RESHAPE" in generated.ops
    # fc1's 30 outputs, word aligned, are the only intermediate; no 784-byte copy.
    assert generated.arena_bytes == 32


@pytest.mark.parametrize("break_golden", [False, True])
def test_streamed_report_is_read_by_dynhp_monitor(tmp_path, break_golden):
    """The host build's JSON lines, streamed without a line buffer, give dynhp-monitor's verdict."""
    model = models.mlp()
    x, _ = models.data_for(model, 8)
    tflite_model, inputs, outputs = quantized(model, x)
    golden = outputs.copy()
    if break_golden:
        golden[1, 2] = np.int8(outputs[1, 2] + 3 if outputs[1, 2] < 100 else outputs[1, 2] - 3)
    write_project(tmp_path, tflite_model, inputs, golden, name="mlp")
    sources = ["src/dynhp_model.c", "src/dynhp_golden.c", "src/dynhp_kernels.c",
               "src/dynhp_c_runner.c", "host/platform_host.c", "host/main_host.c"]
    subprocess.run(["gcc", *HOST_FLAGS, "-Iinclude", "-Ihost", *sources, "-lm", "-o", "run"],
                   cwd=tmp_path, check=True, capture_output=True)
    device = subprocess.run([str(tmp_path / "run")], capture_output=True, text=True)
    assert device.returncode == (1 if break_golden else 0)
    events = parse_events(device.stdout.splitlines())
    assert [e["event"] for e in events] == ["boot", "summary"]
    summary = events[-1]
    assert summary["runtime"] == "c" and len(summary["inference_us"]) == 4
    mismatch = {"sample": 1, "index": 2, "expected": int(golden[1, 2]), "got": int(outputs[1, 2])}
    assert summary["first_mismatch"] == (mismatch if break_golden else None)
    result = CliRunner().invoke(monitor_main, ["--log", "-"], input=device.stdout)
    assert result.exit_code == (EXIT_GOLDEN_FAILED if break_golden else EXIT_OK), result.output


def test_residual_plan_reaches_the_live_bytes_bound():
    """At the Add, three 8x8x8 tensors are alive (the skip, the branch's input and its
    output): the arena is exactly those 1,536 bytes (largest-first placement alone took
    2,048 here)."""
    model = models.residual()
    tflite_model, inputs, outputs = quantized(model, _inputs(model, n=8))
    assert generate_model_c(tflite_model).arena_bytes == 3 * 8 * 8 * 8
    np.testing.assert_array_equal(run_c_host(tflite_model, inputs, outputs), outputs)
