"""Runs a test script under MirroredStrategy on two logical CPU replicas, in a fresh process.

Logical devices must be configured before TensorFlow initialises them, which the test
process has already done; so the script runs in its own interpreter. It gets `strategy`,
`np`, `tf`, `json` and `compiled`, `data_for`, `mlp` from tests.models, and prints one JSON
line last, which is returned.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREAMBLE = """
import json, numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.models import compiled, data_for, mlp
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
"""


def on_two_cpu_replicas(body: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PREAMBLE + body], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
