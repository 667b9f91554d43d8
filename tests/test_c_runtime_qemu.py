"""The C runtime built for a Cortex-M4 passes its golden check under QEMU mps2-an386.

Needs Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm, which
scripts/setup installs when run as root. Skipped (one line) only where they are missing and
cannot be installed (not root, or no apt); where root and apt exist, a missing toolchain
fails the tests, so CI cannot pass by skipping them.
"""
import os
import shutil

import numpy as np
import pytest

from dynhp_tf.converters.c_runtime import generate_model_c
from dynhp_tf.converters.emulate import DEBIAN_PACKAGES, emulate_project, missing_tools
from dynhp_tf._keras import keras
from tests import models
from tests.c_runtime_support import quantized, write_project

L = keras.layers


@pytest.fixture(scope="module", autouse=True)
def toolchain():
    missing = missing_tools()
    if not missing:
        return
    installable = os.geteuid() == 0 and shutil.which("apt-get") is not None
    message = f"{', '.join(missing)} missing; Debian packages: {' '.join(DEBIAN_PACKAGES)}"
    if installable:
        pytest.fail(f"{message} (root and apt exist: run scripts/setup)")
    pytest.skip(f"{message} (cannot install: not root or no apt)")


def _depthwise(size=10):
    return keras.Sequential([
        keras.Input((size, size, 2)), L.Conv2D(6, 3, activation="relu"),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
        L.MaxPooling2D(), L.Flatten(), L.Dense(3),
    ])


MODELS = {
    "mlp": lambda: models.mlp(inputs=784, hidden=(64, 32), classes=10),
    "cnn_batchnorm": models.cnn,
    "depthwise": _depthwise,
    "residual_add": models.residual,
}


def _softmax_mlp():
    return keras.Sequential([keras.Input((784,)), L.Dense(64, activation="relu"),
                             L.Dense(32, activation="relu"), L.Dense(10, activation="softmax")])


# (model, quantization options): --runtime c quantizes dense layers per channel. The float
# head's float32 FULLY_CONNECTED and SOFTMAX run on the M4's FPU with newlib's expf: its int8
# output must still equal TFLM's host run to the bit, its float output (io float) within 1e-5.
CASES = {**{name: (build, {}) for name, build in MODELS.items()},
         "mlp_per_channel": (MODELS["mlp"], {"per_channel": True}),
         "mlp_float_head": (_softmax_mlp, {"per_channel": True, "head": "float"}),
         "mlp_float_head_float_io": (_softmax_mlp, {"per_channel": True, "head": "float", "io": "float"})}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_check_passes_on_cortex_m4(name, tmp_path, capsys):
    build, options = CASES[name]
    model = build()
    x, _ = models.data_for(model, 32)
    tflite_model, inputs, outputs = quantized(model, x, **options)
    tolerance = generate_model_c(tflite_model).tolerance
    generated = write_project(tmp_path, tflite_model, inputs, outputs, name=name, tolerance=tolerance)
    figures = emulate_project(tmp_path)
    assert figures["golden"] == "passed" and figures["qemu_exit_status"] == 0
    # Bit-exact, except float probabilities out of expf (newlib's, not glibc's): within 1e-5.
    assert tolerance == (1e-5 if options.get("io") == "float" else 0)
    assert figures["max_abs_diff"] <= tolerance
    instructions = figures["instructions_per_inference"]
    # Every MAC costs at least one instruction; the stack paint was really overwritten.
    assert instructions > generated.macs / 2
    assert 0 < figures["stack_used_bytes"] < 16384
    model_flash = figures["model_sizes"]["text"] + figures["model_sizes"]["data"]
    assert model_flash >= generated.weight_bytes
    with capsys.disabled():
        print(f"\n{name}: {instructions:,} instructions ({instructions / generated.macs:.2f}/MAC), "
              f"flash {figures['flash_bytes']:,} (model {model_flash:,}), RAM static "
              f"{figures['static_ram_bytes']:,} + stack {figures['stack_used_bytes']:,}")


def test_broken_golden_vector_fails_under_qemu(tmp_path):
    """A wrong expected output must make the emulated firmware report failure."""
    model = models.mlp()
    x, _ = models.data_for(model, 8)
    tflite_model, inputs, outputs = quantized(model, x)
    wrong = outputs.copy()
    wrong[0, 0] = np.int8(wrong[0, 0] + 5 if wrong[0, 0] < 100 else wrong[0, 0] - 5)
    write_project(tmp_path, tflite_model, inputs, wrong)
    figures = emulate_project(tmp_path)
    assert figures["golden"] == "failed" and figures["qemu_exit_status"] != 0


@pytest.mark.parametrize("head", ["int8", "float"])
def test_export_runtime_c_reports_measured_figures(tmp_path, head):
    from dynhp_tf.converters.export import export_model
    from tests.export_models import TINY_MIN_AGREEMENT, save_tiny

    model_path = save_tiny(tmp_path)
    out = tmp_path / "out"
    result = export_model(model_path, "nano33ble", out_dir=out, head=head,
                          calibration=tmp_path / "cal.npy", runtime="c", min_agreement=TINY_MIN_AGREEMENT / 100)
    measured = result.report["c_runtime"]["measured"]
    assert measured["golden"] == "passed"  # bit-exact with TFLM on the per-channel flatbuffer
    # The board's TFLM library stays per-tensor; the C runtime's own flatbuffer is per-channel.
    assert result.report["tflite"]["dense_quantization"] == "per-tensor"
    c_flatbuffer = result.report["c_runtime"]["flatbuffer"]
    assert c_flatbuffer["dense_quantization"] == "per-channel"
    assert c_flatbuffer["sha256"] != result.report["tflite"]["sha256"]
    assert c_flatbuffer["top1_agreement"] >= TINY_MIN_AGREEMENT / 100
    model_c = (out / "firmware_c/src/dynhp_model.c").read_text()
    assert ".per_channel = 1" in model_c and ".per_channel = 0" not in model_c
    assert (out / "firmware_c/src/dynhp_model.c").is_file()
    assert "lib_deps" not in (out / "firmware_c/platformio.ini").read_text()  # no TFLM
    assert (out / "firmware/platformio.ini").is_file()  # the TFLM project stays
    rows = {row["resource"]: row for row in result.report["fit"]["rows"]}
    flash = rows["flash (measured under QEMU mps2-an386)"]
    assert flash["used"] == measured["flash_bytes"]
    assert "measured under QEMU mps2-an386" in (out / "report.md").read_text()
    # The C runtime runs the head the user chose (here on its own per-channel flatbuffer).
    assert c_flatbuffer["head"] == head
    assert ("dynhp_fully_connected_f32" in model_c) == (head == "float")
    described = "dense layers and a float32 head" if head == "float" else "dense layers: top-1"
    assert f"with per-channel {described}" in (out / "report.md").read_text()


def test_export_runtime_c_refuses_an_op_by_name(tmp_path):
    from dynhp_tf.converters.c_runtime import UnsupportedOpError
    from dynhp_tf.converters.export import export_model

    model = keras.Sequential([keras.Input((6,)), L.Dense(4, activation="swish")])  # MUL
    model.save(tmp_path / "sig.h5")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).normal(size=(64, 6)).astype("float32"))
    with pytest.raises(UnsupportedOpError, match="MUL"):
        export_model(tmp_path / "sig.h5", "nano33ble", out_dir=tmp_path / "out",
                     calibration=tmp_path / "cal.npy", runtime="c")
    assert not (tmp_path / "out").exists()
