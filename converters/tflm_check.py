"""Host check of a .tflite model with the real TFLM kernels (the `tflite-micro` wheel).

TFLM runs in a child process (`dynhp_tf.converters._tflm_worker`): it runs every sample with a
generous arena, reads the allocator's report, and bisects the smallest arena that still
runs (the report alone undercounts: TFLM keeps its allocator objects in the arena too). The outputs are compared
with `tf.lite.Interpreter` (same flatbuffer, TFLite's kernels) and with the float Keras
model.

Example:
    >>> result = check_with_tflm(tflite_model, model, x_calibration, board=board)
    >>> result.arena_bytes, result.ops
"""

from __future__ import annotations

import dataclasses
import pathlib
import json
import tempfile

import numpy as np

from dynhp_tf.converters.boards import arena_with_margin
from dynhp_tf.converters.child import run_worker
from dynhp_tf.converters.errors import TFLMCheckError
from dynhp_tf.converters.flatbuffer import op_names, op_output_models
from dynhp_tf.converters.quantize import tflite_interpreter

GOLDEN_SAMPLES = 4
# Without eval data, agreement is measured on this many calibration samples.
MAX_CHECK_SAMPLES = 1000


@dataclasses.dataclass
class TFLMResult:
    """What the TFLM host run established about a flatbuffer.

    Attributes:
        arena_bytes: Smallest arena (multiple of 16) with which TFLM ran and gave the
            same output; `arena_reported` is the recording allocator's total, which leaves
            out the allocator's own objects.
        arena_with_margin: `arena_bytes` plus the board margin, rounded up to 16.
        ops: Sorted names of the ops in the flatbuffer (what the op resolver needs).
        samples: How many samples were compared; `sample_source` says which ones.
        tflm_vs_tflite_differing: Output values where TFLM and tf.lite differ.
        tflm_vs_tflite_max_abs_diff: Largest such difference (in output-dtype units).
        tflm_vs_tflite_verdict: What the difference means, in words (`tflm_verdict`).
        quantization_max_abs_error / quantization_mean_abs_error: |dequantized TFLM output
            - float Keras output|.
        top1_agreement: Fraction of samples where TFLM and the float model pick the same
            class (None for outputs with a single value).
        float_accuracy / int8_accuracy: With labels (eval data) only.
        golden_inputs / golden_outputs: The first samples exactly as TFLM got and returned
            them (model I/O dtype), for the firmware's self-test.
    """

    arena_bytes: int
    arena_reported: int
    arena_with_margin: int
    ops: list[str]
    samples: int
    sample_source: str
    tflm_vs_tflite_differing: int
    tflm_vs_tflite_max_abs_diff: float
    tflm_vs_tflite_verdict: str
    quantization_max_abs_error: float
    quantization_mean_abs_error: float
    top1_agreement: float | None
    float_accuracy: float | None
    int8_accuracy: float | None
    golden_inputs: np.ndarray
    golden_outputs: np.ndarray

    def summary(self) -> dict:
        """JSON-ready figures (without the golden arrays)."""
        return {
            k: v for k, v in dataclasses.asdict(self).items()
            if k not in ("golden_inputs", "golden_outputs")
        }


def _quantize(x: np.ndarray, details: dict) -> np.ndarray:
    if details["dtype"] == np.float32:
        return x.astype(np.float32)
    scale = details["quantization_parameters"]["scales"][0]
    zero_point = details["quantization_parameters"]["zero_points"][0]
    info = np.iinfo(details["dtype"])
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(details["dtype"])


def _dequantize(y: np.ndarray, details: dict) -> np.ndarray:
    if details["dtype"] == np.float32:
        return y.astype(np.float32)
    scale = details["quantization_parameters"]["scales"][0]
    zero_point = details["quantization_parameters"]["zero_points"][0]
    return (y.astype(np.float32) - zero_point) * scale


def tflm_verdict(diff: np.ndarray, *, integer: bool, culprit) -> str:
    """One phrase for |TFLM - TFLite| output differences.

    One quantization step is rounding: the reference kernels of TFLM and TFLite may round
    a requantization differently, and the firmware's golden check allows one step. More
    than that means the two runtimes implement an op differently; `culprit()` names it.
    The board runs TFLM, and the golden vectors come from TFLM, so it is reported, not
    refused.
    """
    differing, largest = int(np.count_nonzero(diff)), float(diff.max(initial=0.0))
    if differing == 0:
        return "identical"
    if integer and largest <= 1:
        return f"{differing} values differ by 1 step: rounding, within the firmware's tolerance"
    return (f"{differing} values differ, by up to {largest:g}"
            f"{' steps' if integer else ''}: {culprit()}; the board runs TFLM, whose outputs "
            f"are the golden vectors")


def first_differing_op(tflite_model: bytes, sample: np.ndarray) -> str:
    """Which op makes TFLM and TFLite diverge on `sample` (model input dtype).

    Runs TFLM on copies of the flatbuffer whose output is each op's output in turn, and
    compares with TFLite's intermediate tensors; the first op whose output differs by more
    than one step is named.
    """
    interpreter = tflite_interpreter(tflite_model, preserve_all_tensors=True)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample[None, ...])
    interpreter.invoke()
    for index, op_name, tensor, variant in op_output_models(tflite_model):
        try:
            tflm_out, _ = run_tflm(variant, sample[None, ...])
        except TFLMCheckError:
            continue
        expected = interpreter.get_tensor(tensor)
        step = np.abs(tflm_out[0].astype(np.float64) - expected[0].astype(np.float64)).max()
        if step > (1 if expected.dtype != np.float32 else 0):
            return f"they first diverge at op {index} ({op_name}), by {step:g}"
    return "no single op could be blamed"


def run_tflm(tflite_model: bytes, inputs: np.ndarray) -> tuple[np.ndarray, dict]:
    """Run `inputs` (model dtype, [n, ...]) through TFLM in a child process.

    Returns the outputs [n, ...] and the worker's arena figures (`arena_reported`: the
    allocator's total; `arena_min`: the smallest arena that ran, found by bisection).
    Raises `TFLMCheckError` if the child fails or crashes.
    """
    with tempfile.TemporaryDirectory(prefix="dynhp-tflm-") as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "model.tflite").write_bytes(tflite_model)
        np.save(tmp / "inputs.npy", inputs)
        run_worker(
            "dynhp_tf.converters._tflm_worker",
            [str(tmp / name) for name in ("model.tflite", "inputs.npy", "outputs.npy", "result.json")],
            what="TFLM host run", error=TFLMCheckError,
        )
        return np.load(tmp / "outputs.npy"), json.loads((tmp / "result.json").read_text())


def check_with_tflm(
    tflite_model: bytes,
    float_model,
    samples: np.ndarray,
    *,
    arena_margin: float,
    labels: np.ndarray | None = None,
    sample_source: str = "calibration",
) -> TFLMResult:
    """Run the flatbuffer under TFLM and compare it with TFLite and the float model.

    Args:
        tflite_model: The int8 flatbuffer.
        float_model: The Keras model it came from (compact or dense: same outputs).
        samples: Float inputs [n, *input_shape] (eval data, or calibration data; without
            labels only the first `MAX_CHECK_SAMPLES` are used).
        arena_margin: Fraction added to the minimum arena (the board's `arena_margin`).
        labels: Integer class labels for `samples`, to report accuracies.
        sample_source: Label for the report ("eval" or "calibration").
    """
    if labels is None:
        samples = samples[:MAX_CHECK_SAMPLES]
    interpreter = tflite_interpreter(tflite_model)
    in_details = interpreter.get_input_details()[0]
    out_details = interpreter.get_output_details()[0]
    inputs = _quantize(samples, in_details)

    tflm_out, arena = run_tflm(tflite_model, inputs)
    arena_bytes = arena["arena_min"]

    tflite_out = []
    for sample in inputs:
        interpreter.set_tensor(in_details["index"], sample[None, ...])
        interpreter.invoke()
        tflite_out.append(interpreter.get_tensor(out_details["index"])[0])
    tflite_out = np.stack(tflite_out)
    diff = np.abs(tflm_out.astype(np.float64) - tflite_out.astype(np.float64))

    float_out = np.asarray(float_model.predict(samples, batch_size=256, verbose=0))
    float_out = float_out.reshape(tflm_out.shape)
    dequantized = _dequantize(tflm_out, out_details)
    qerr = np.abs(dequantized - float_out)

    classes = tflm_out.reshape(len(tflm_out), -1).shape[1]
    top1 = float_acc = int8_acc = None
    if classes > 1:
        float_pred = float_out.reshape(len(float_out), -1).argmax(axis=1)
        int8_pred = dequantized.reshape(len(dequantized), -1).argmax(axis=1)
        top1 = float(np.mean(float_pred == int8_pred))
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            float_acc = float(np.mean(float_pred == labels))
            int8_acc = float(np.mean(int8_pred == labels))

    return TFLMResult(
        arena_bytes=arena_bytes,
        arena_reported=arena["arena_reported"],
        arena_with_margin=arena_with_margin(arena_bytes, arena_margin),
        ops=op_names(tflite_model),
        samples=len(samples),
        sample_source=sample_source,
        tflm_vs_tflite_differing=int(np.count_nonzero(diff)),
        tflm_vs_tflite_max_abs_diff=float(diff.max()),
        tflm_vs_tflite_verdict=tflm_verdict(
            diff, integer=out_details["dtype"] != np.float32,
            culprit=lambda: first_differing_op(tflite_model, inputs[int(np.argmax(
                diff.reshape(len(diff), -1).max(axis=1)))]),
        ),
        quantization_max_abs_error=float(qerr.max()),
        quantization_mean_abs_error=float(qerr.mean()),
        top1_agreement=top1,
        float_accuracy=float_acc,
        int8_accuracy=int8_acc,
        golden_inputs=inputs[:GOLDEN_SAMPLES],
        golden_outputs=tflm_out[:GOLDEN_SAMPLES],
    )

