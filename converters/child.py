"""Run a worker module in a child Python process, so that a native crash (a segfault in
the TFLite converter, an abort in TFLM) becomes a one-line error instead of killing the
exporter with no message.

Example:
    >>> run_worker("dynhp_tf.converters._tflm_worker", [model, inputs, outputs, result],
    ...            what="TFLM host run", error=TFLMCheckError)
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

_ERROR_LINE = re.compile(r"\berror\b", re.IGNORECASE)


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"crashed with {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _reason(stderr: str) -> str:
    """The most telling line of a child's stderr: the last one that says "error", else the
    last non-empty one. Native code often prints its error just before it crashes."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    return (errors or lines or ["no output"])[-1][:300]


def run_worker(module: str, args: list[str], *, what: str, error: type[Exception]) -> None:
    """Run `python -m module *args`; raise `error` naming `what` if it fails or crashes.

    On KeyboardInterrupt `subprocess.run` kills the child before re-raising, so nothing
    keeps running after the exporter stops.
    """
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise error(f"{what} {_how_it_ended(proc.returncode)}: {_reason(proc.stderr)}")
