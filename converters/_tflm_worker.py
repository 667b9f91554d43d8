"""Runs a .tflite model under the TFLM kernels; meant to run in its own process.

    python -m dynhp_tf.converters._tflm_worker MODEL.tflite INPUTS.npy OUTPUTS.npy RESULT.json

1. Feeds every input sample (batch of 1, already in the model's input dtype) through an
   interpreter with a generous arena and writes the stacked outputs.
2. Reads the RecordingMicroAllocator report ("Arena allocation total N bytes").
3. Searches the smallest arena that still allocates and gives the same output for the first
   sample. That is more than N: TFLM also places its allocator objects in the arena, which
   the report leaves out (about 512 bytes on a 64-bit host).

Running this in a child process means a TFLM abort cannot take the exporter down.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

import numpy as np
from tflite_micro.python.tflite_micro import runtime

GENEROUS_ARENA = 16 * 1024 * 1024
SEARCH_SPAN = 64 * 1024


def _allocator_report(interpreter) -> str:
    """`print_allocations()` writes to the C stderr: capture that file descriptor."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


def _invoke(interpreter, sample: np.ndarray) -> np.ndarray:
    interpreter.set_input(sample[None, ...], 0)
    interpreter.invoke()
    return np.array(interpreter.get_output(0))[0]


def _works(model: bytes, sample: np.ndarray, expected: np.ndarray, arena: int) -> bool:
    """Whether `arena` bytes run the model, probed in a forked child: with per-channel
    FULLY_CONNECTED, an arena a few bytes short makes TFLM's Prepare fail while holding a
    temporary tensor, and TFLM then kills the process ("All temp buffers must be freed
    before calling ResetTempAllocations()", SIGSEGV) instead of reporting the failure."""
    pid = os.fork()
    if pid == 0:  # child: answer through the exit status only
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        try:
            interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
            ok = bool(np.array_equal(_invoke(interpreter, sample), expected))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def run(model_path: str, inputs_path: str, outputs_path: str, result_path: str) -> None:
    with open(model_path, "rb") as f:
        model = f.read()
    inputs = np.load(inputs_path)
    interpreter = runtime.Interpreter.from_bytes(
        model, arena_size=max(GENEROUS_ARENA, 4 * len(model))
    )
    outputs = np.stack([_invoke(interpreter, sample) for sample in inputs])
    np.save(outputs_path, outputs)

    report = _allocator_report(interpreter)
    match = re.search(r"Arena allocation total (\d+) bytes", report)
    if match is None:
        raise RuntimeError(f"no arena total in the allocator report: {report[:200]!r}")
    reported = int(match.group(1))

    # Smallest working arena in (reported, reported + SEARCH_SPAN], 16-byte steps.
    low, high = reported // 16, (reported + SEARCH_SPAN + 15) // 16
    if not _works(model, inputs[0], outputs[0], high * 16):
        raise RuntimeError(f"model does not run in {high * 16} bytes of arena")
    while high - low > 1:
        middle = (low + high) // 2
        if _works(model, inputs[0], outputs[0], middle * 16):
            high = middle
        else:
            low = middle
    with open(result_path, "w") as f:
        json.dump({"arena_reported": reported, "arena_min": high * 16, "report": report}, f)


if __name__ == "__main__":
    run(*sys.argv[1:5])
