"""Shared helpers of the C-runtime tests: quantize a model, run TFLM and the generated C."""
import pathlib
import subprocess
import tempfile

import numpy as np

from dynhp_tf.converters.c_project import write_c_project
from dynhp_tf.converters.quantize import quantize_int8, tflite_interpreter
from dynhp_tf.converters.tflm_check import _quantize, run_tflm

HOST_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


def quantized(model, x, per_channel=False, io="int8", head="int8"):
    """(flatbuffer, inputs in the model's input dtype, TFLM outputs)."""
    tflite_model = quantize_int8(model, x, per_channel_dense=per_channel, io=io, head=head)
    inputs = _quantize(x, tflite_interpreter(tflite_model).get_input_details()[0])
    outputs, _ = run_tflm(tflite_model, inputs)
    return tflite_model, inputs, outputs


def write_project(directory, tflite_model, inputs, outputs, tolerance=0.0, name="model"):
    return write_c_project(directory, tflite_model, model_name=name, board_name="nano33ble",
                           golden_inputs=inputs[:4], golden_outputs=outputs[:4],
                           tolerance=tolerance)


def run_c_host(tflite_model, inputs, outputs):
    """Compile the generated C with the host gcc (warnings as errors), run every input
    through it in one process, return its outputs shaped like TFLM's."""
    with tempfile.TemporaryDirectory(prefix="dynhp-c-") as tmp:
        tmp = pathlib.Path(tmp)
        write_project(tmp, tflite_model, inputs, outputs)
        exe = tmp / "batch"
        sources = ["src/dynhp_model.c", "src/dynhp_kernels.c", "host/batch_main.c"]
        subprocess.run(["gcc", *HOST_FLAGS, "-Iinclude", *sources, "-lm", "-o", str(exe)],
                       cwd=tmp, check=True, capture_output=True, text=True)
        proc = subprocess.run([str(exe)], input=np.ascontiguousarray(inputs).tobytes(),
                              capture_output=True, check=True)
    return np.frombuffer(proc.stdout, outputs.dtype).reshape(outputs.shape)
