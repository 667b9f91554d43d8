"""The generated PlatformIO projects: valid config, compilable sources, the exact model.

Fixture: a tiny Keras MLP converted by `dynhp_tf.converters.quantize` and run under the real TFLM
kernels by `dynhp_tf.converters.tflm_check.run_tflm` (the exporter's own code paths). No TFLM C++
tree is available here, so the C++ is compiled against the stand-in headers in
tests/data/tflm_stub (same API names and signatures as upstream TFLM).
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dynhp_tf.converters.boards import load_board
from dynhp_tf.converters.firmware_project import FirmwareError, model_hash, write_firmware_project
from dynhp_tf.converters.op_resolver import OP_RESOLVER_METHODS, generated_ops, resolver_methods
from dynhp_tf.converters.flatbuffer import op_names
from dynhp_tf._keras import keras

DATA = pathlib.Path(__file__).parent / "data"
STUB = DATA / "tflm_stub"
BOARDS = ["esp32", "esp32s3", "nano33ble"]
GXX = shutil.which("g++")
PIO = pathlib.Path(sys.executable).with_name("pio")
CXXFLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]

needs_gxx = pytest.mark.skipif(GXX is None, reason="no host g++")


def _tiny_model(io: str):
    from dynhp_tf.converters.quantize import quantize_int8
    from dynhp_tf.converters.tflm_check import run_tflm

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(4),
        keras.layers.Softmax(),
    ])
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    tflite_model = quantize_int8(model, x, per_channel_dense=False, io=io)
    if io == "float":
        golden_in = x[:3]
    else:
        golden_in = np.clip(np.round(x[:3] / 0.03), -128, 127).astype(np.int8)
    golden_out, _ = run_tflm(tflite_model, golden_in)
    return tflite_model, golden_in, np.asarray(golden_out)


@pytest.fixture(scope="module")
def int8_model():
    return _tiny_model("int8")


@pytest.fixture(scope="module")
def float_model():
    return _tiny_model("float")


def _write(tmp_path, board, model, arena_bytes=2048, name="tiny-mlp"):
    tflite_model, golden_in, golden_out = model
    out = tmp_path / board
    write_firmware_project(
        out, board=load_board(board), tflite_model=tflite_model, model_name=name,
        ops=op_names(tflite_model), arena_bytes=arena_bytes, golden_inputs=golden_in,
        golden_outputs=golden_out, host_arena_bytes=1500,
    )
    return out


def _define(project: pathlib.Path, macro: str) -> str:
    text = (project / "include/model_config.h").read_text()
    return re.search(rf"#define {macro} (.+)", text).group(1).strip()


@pytest.mark.parametrize("board", BOARDS)
def test_generated_project_passes_pio_project_config(tmp_path, int8_model, board):
    if not PIO.exists():
        pytest.skip("PlatformIO is not installed in this environment")
    project = _write(tmp_path, board, int8_model)
    proc = subprocess.run([str(PIO), "project", "config", "-d", str(project), "--lint"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ini = (project / "platformio.ini").read_text()
    firmware = load_board(board).tables["firmware"]
    assert f"board = {firmware['board']}" in ini
    assert f"framework = {firmware['framework']}" in ini


def test_project_embeds_the_exact_model_ops_and_arena(tmp_path, int8_model):
    tflite_model = int8_model[0]
    project = _write(tmp_path, "esp32", int8_model, arena_bytes=4112)
    source = (project / "src/model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data" in source
    body = source.split("{", 1)[1].split("}", 1)[0]
    embedded = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body))
    assert embedded == tflite_model
    assert generated_ops(project) == op_names(tflite_model) == ["FULLY_CONNECTED", "SOFTMAX"]
    assert _define(project, "DYNHP_ARENA_BYTES") == "4112"
    assert _define(project, "DYNHP_MODEL_HASH") == f'"{model_hash(tflite_model)}"'
    host = json.loads((project / "dynhp_host.json").read_text())
    assert host["arena_bytes"] == 4112 and host["host_arena_bytes"] == 1500


def test_arena_is_static_up_to_the_board_limit_and_heap_above(tmp_path, int8_model):
    limit = load_board("esp32").static_arena_max_bytes
    assert _define(_write(tmp_path / "a", "esp32", int8_model, limit), "DYNHP_ARENA_STATIC") == "1"
    assert _define(_write(tmp_path / "b", "esp32", int8_model, limit + 16),
                   "DYNHP_ARENA_STATIC") == "0"


def test_esp_idf_project_declares_the_component_and_arduino_the_library(tmp_path, int8_model):
    esp = _write(tmp_path, "esp32", int8_model)
    manifest = (esp / "src/idf_component.yml").read_text()
    assert "espressif/esp-tflite-micro:" in manifest
    assert (esp / "CMakeLists.txt").exists() and (esp / "src/platform_esp_idf.cc").exists()
    nano = _write(tmp_path, "nano33ble", int8_model)
    assert "lib_deps = spaziochirale/Chirale_TensorFLowLite" in (nano / "platformio.ini").read_text()
    assert not (nano / "src/idf_component.yml").exists()
    assert (nano / "src/platform_arduino_mbed.cpp").exists()
    for project in (esp, nano):
        readme = (project / "README.md").read_text()
        assert "pio run -t upload" in readme and "dynhp-monitor --port" in readme


def test_unknown_or_inconsistent_ops_are_refused(tmp_path, int8_model):
    tflite_model, golden_in, golden_out = int8_model
    kwargs = dict(board=load_board("esp32"), tflite_model=tflite_model, model_name="m",
                  arena_bytes=2048, golden_inputs=golden_in, golden_outputs=golden_out)
    with pytest.raises(FirmwareError, match="differ from the ops in the flatbuffer"):
        write_firmware_project(tmp_path, ops=["FULLY_CONNECTED"], **kwargs)
    with pytest.raises(FirmwareError, match="golden_outputs"):
        write_firmware_project(tmp_path, ops=op_names(tflite_model),
                               **{**kwargs, "golden_outputs": golden_out[:, :2]})
    assert "LSTM" not in OP_RESOLVER_METHODS
    with pytest.raises(FirmwareError, match="UNIDIRECTIONAL_SEQUENCE_LSTM"):
        resolver_methods(["FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM"])


_OPCHECK = r"""
#include <stdio.h>
#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
int main() {
  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) return 1;
  for (unsigned i = 0; i < resolver.count; ++i) printf("op %s\n", resolver.names[i]);
  printf("len %u\nalign %u\narena %d\n", g_model_data_len,
         (unsigned)((unsigned long)g_model_data % 16), DYNHP_ARENA_BYTES);
  return 0;
}
"""


@needs_gxx
@pytest.mark.parametrize("io", ["int8", "float"])
def test_generated_sources_compile_with_werror_and_register_the_flatbuffer_ops(
        tmp_path, int8_model, float_model, io):
    model = int8_model if io == "int8" else float_model
    project = _write(tmp_path, "nano33ble", model, arena_bytes=3008)
    (tmp_path / "opcheck.cc").write_text(_OPCHECK)
    exe = tmp_path / "opcheck"
    subprocess.run([GXX, *CXXFLAGS, f"-I{project / 'include'}", f"-I{STUB}",
                    str(tmp_path / "opcheck.cc"), str(project / "src/model_data.cc"),
                    str(project / "src/golden_data.cc"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert sorted(re.findall(r"^op (\w+)$", out, re.M)) == op_names(model[0])
    assert f"len {len(model[0])}\n" in out and "align 0\n" in out and "arena 3008\n" in out
    if io == "float":
        assert {"QUANTIZE", "DEQUANTIZE"} <= set(op_names(model[0]))
        # One int8 LSB of the output, expressed in float: the output scale.
        assert 0 < float(_define(project, "DYNHP_TOLERANCE")) < 0.1


@needs_gxx
@pytest.mark.parametrize("placement", ["static", "heap"])
def test_portable_core_builds_on_the_host_and_reports_pass_and_fail(tmp_path, int8_model,
                                                                    placement):
    from dynhp_tf.converters.figures import read_host_figures
    from dynhp_tf.converters.monitor import judge, last_event, parse_events

    limit = load_board("esp32").static_arena_max_bytes
    project = _write(tmp_path, "esp32", int8_model,
                     arena_bytes=2048 if placement == "static" else limit + 16)
    exe = tmp_path / "dynhp_host"
    sources = [project / "src" / f for f in ("dynhp_runner.cc", "model_data.cc", "golden_data.cc")]
    sources += [project / "host" / f for f in ("platform_host.cc", "main_host.cc")]
    subprocess.run([GXX, *CXXFLAGS, f"-I{project / 'include'}", f"-I{STUB}", *map(str, sources),
                    "-o", str(exe)], check=True)
    host = read_host_figures(json.loads((project / "dynhp_host.json").read_text()), "dynhp_host.json")

    good = subprocess.run([str(exe)], capture_output=True, text=True)
    assert good.returncode == 0
    summary = last_event(parse_events(good.stdout.splitlines()), "summary")
    assert summary["golden"] == "passed" and summary["max_abs_diff"] == 0
    assert summary["arena_static"] == (placement == "static")
    assert judge(summary, host).exit_code == 0

    bad = subprocess.run([str(exe)], capture_output=True, text=True,
                         env={"DYNHP_STUB_CORRUPT": "1"})
    assert bad.returncode == 1
    summary = last_event(parse_events(bad.stdout.splitlines()), "summary")
    assert summary["golden"] == "failed"
    assert summary["first_mismatch"]["sample"] == len(int8_model[1]) - 1
    assert judge(summary, host).exit_code == 1

