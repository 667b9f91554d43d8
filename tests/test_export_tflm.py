"""TFLM host check: arena, ops, TFLM vs TFLite, int8 vs float."""
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from dynhp_tf.converters.quantize import quantize_int8
from dynhp_tf.converters.tflm_check import check_with_tflm
from tests.export_models import samples, tiny_mlp


@pytest.fixture(scope="module")
def checked():
    model = tiny_mlp()
    flatbuffer = quantize_int8(model, samples(), per_channel_dense=False)
    x = samples(40, seed=3)
    labels = model.predict(x, verbose=0).argmax(axis=1)
    labels[:4] = (labels[:4] + 1) % 3  # the float model is now wrong on exactly 4 of 40
    return flatbuffer, check_with_tflm(flatbuffer, model, x, arena_margin=0.25, labels=labels)


def test_arena_is_measured_and_padded(checked):
    _, result = checked
    assert 0 < result.arena_reported < result.arena_bytes
    assert result.arena_bytes % 16 == 0
    assert result.arena_with_margin >= 1.25 * result.arena_bytes
    assert result.arena_with_margin % 16 == 0


def _runs(flatbuffer, arena, shape):
    """Whether TFLM allocates and invokes the model in `arena` bytes (own process)."""
    script = (
        "import sys, numpy as np\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        "i = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))\n"
        f"i.set_input(np.zeros((1, *{tuple(shape)}), np.int8), 0); i.invoke()\n"
    )
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(flatbuffer)
        f.flush()
        return subprocess.run([sys.executable, "-c", script, f.name, str(arena)],
                              capture_output=True).returncode == 0


def test_minimum_arena_is_tight(checked):
    """The reported minimum runs under TFLM, 16 bytes less does not (each in its own process)."""
    flatbuffer, result = checked
    assert _runs(flatbuffer, result.arena_bytes, (4, 4))
    assert not _runs(flatbuffer, result.arena_bytes - 16, (4, 4))


def test_per_channel_dense_arena_search_survives_tflm_abort():
    """Per-channel FULLY_CONNECTED: at some arena sizes just short of the minimum (1232 of
    1248 bytes here) TFLM kills the process in Prepare; the search must count that as too
    small and still find the tight minimum."""
    from dynhp_tf._keras import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    x = samples(64, shape=(6,))
    flatbuffer = quantize_int8(model, x, per_channel_dense=True)
    result = check_with_tflm(flatbuffer, model, x, arena_margin=0.0)
    assert result.tflm_vs_tflite_differing == 0
    assert _runs(flatbuffer, result.arena_bytes, (6,))
    assert not _runs(flatbuffer, result.arena_bytes - 16, (6,))


def test_ops_are_exactly_those_in_the_model(checked):
    assert checked[1].ops == ["FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]


def test_tflm_matches_tflite_and_float(checked):
    result = checked[1]
    assert result.samples == 40 and result.sample_source == "calibration"
    assert result.tflm_vs_tflite_differing == 0
    assert result.tflm_vs_tflite_max_abs_diff == 0.0
    assert result.top1_agreement >= 0.9
    assert result.quantization_max_abs_error < 0.05  # softmax outputs, int8 steps of 1/256
    assert result.float_accuracy == pytest.approx(36 / 40)
    assert abs(result.int8_accuracy - result.float_accuracy) <= 1 - result.top1_agreement


def test_golden_vectors_are_what_tflm_saw(checked):
    result = checked[1]
    assert result.golden_inputs.dtype == np.int8 and result.golden_inputs.shape == (4, 4, 4)
    assert result.golden_outputs.dtype == np.int8 and result.golden_outputs.shape == (4, 3)


def test_tflm_vs_tflite_verdict_says_what_a_difference_means():
    from dynhp_tf.converters.tflm_check import tflm_verdict

    def blame():
        return "they first diverge at op 3 (SOFTMAX), by 5"

    assert tflm_verdict(np.zeros((4, 3)), integer=True, culprit=blame) == "identical"
    one_step = tflm_verdict(np.array([[0, 1, 0], [1, 0, 0]]), integer=True, culprit=blame)
    assert one_step.startswith("2 values differ by 1 step: rounding")
    larger = tflm_verdict(np.array([[0, 5, 0], [1, 0, 0]]), integer=True, culprit=blame)
    assert "by up to 5 steps" in larger and "op 3 (SOFTMAX)" in larger
