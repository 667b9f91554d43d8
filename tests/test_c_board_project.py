"""`dynhp-export --runtime c --board X`: the C-runtime directory is also a PlatformIO project
for the board, with no TFLM library: the board's own platform layer, the C runtime's main.

`pio project config` validates each project offline. The Nano 33 BLE's sources that need no
board SDK (kernels, model, golden vectors, runner, and the main against a two-line Arduino.h
stand-in) are compiled for its Cortex-M4F with arm-none-eabi-gcc; the platform layer and the
ESP32 build need the board SDKs, which are not on this machine (never claimed built).
"""
import importlib.resources
import pathlib
import shutil
import subprocess
import sys

import pytest

from dynhp_tf.converters.boards import load_board
from dynhp_tf.converters.c_project import write_c_project
from tests import models
from tests.c_runtime_support import quantized

PIO = pathlib.Path(sys.executable).with_name("pio")
BOARDS = ("esp32", "nano33ble")
FIRMWARE = importlib.resources.files("dynhp_tf.firmware")


@pytest.fixture(scope="module")
def mlp():
    model = models.mlp()
    x, _ = models.data_for(model, 32)
    return quantized(model, x)


def _project(directory, board, mlp):
    tflite_model, inputs, outputs = mlp
    write_c_project(directory, tflite_model, model_name="mlp", board_name=board,
                    golden_inputs=inputs[:4], golden_outputs=outputs[:4], tolerance=0.0,
                    board=load_board(board))
    return directory


def _sources(project: pathlib.Path) -> str:
    return "\n".join(p.read_text() for p in sorted(project.rglob("*"))
                     if p.is_file() and p.suffix in (".c", ".cc", ".cpp", ".h", ".txt", ".ini"))


@pytest.mark.parametrize("board", BOARDS)
def test_board_project_has_no_tflm_and_passes_pio_project_config(tmp_path, mlp, board):
    project = _project(tmp_path, board, mlp)
    firmware = load_board(board).tables["firmware"]
    layer = firmware["layer"]
    ini = (project / "platformio.ini").read_text()
    assert f"board = {firmware['board']}" in ini and f"framework = {firmware['framework']}" in ini
    assert "lib_deps" not in ini and not (project / "src/idf_component.yml").exists()
    assert "-ffp-contract=off" in ini  # the float head's kernels round as on the host
    text = _sources(project)
    for tflm in ('#include "tensorflow', "#include <Chirale", "REQUIRES esp-tflite-micro",
                 '#include "dynhp_runner.h"'):
        assert tflm not in text, tflm
    # One board layer for both runtimes: the platform file is the TFLM project's, byte for byte.
    (platform,) = [p for p in FIRMWARE.joinpath(f"layers/{layer}/src").iterdir()
                   if p.name.startswith("platform_")]
    assert (project / "src" / platform.name).read_bytes() == platform.read_bytes()
    main = next(p for p in (project / "src").iterdir() if p.stem == "main")
    assert "dynhp_c_run_and_report()" in main.read_text()
    if not PIO.exists():
        pytest.skip("PlatformIO is not installed in this environment")
    proc = subprocess.run([str(PIO), "project", "config", "-d", str(project), "--lint"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nano33ble_sources_compile_for_cortex_m4(tmp_path, mlp):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc missing (Debian gcc-arm-none-eabi; scripts/setup installs it)")
    project = _project(tmp_path / "p", "nano33ble", mlp)
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "Arduino.h").write_text("#pragma once\nvoid delay(unsigned long ms);\n")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
             "-Wall", "-Wextra", "-Werror", f"-I{project / 'include'}", f"-I{stub}", "-c"]
    sources = sorted((project / "src").glob("*.c")) + [project / "src/main.cpp"]
    assert {p.name for p in sources} >= {"dynhp_kernels.c", "dynhp_model.c", "dynhp_c_runner.c",
                                         "dynhp_golden.c", "main.cpp"}
    for source in sources:
        compiler = "arm-none-eabi-g++" if source.suffix == ".cpp" else "arm-none-eabi-gcc"
        std = ["-std=c++17", "-fno-exceptions", "-fno-rtti"] if source.suffix == ".cpp" else ["-std=c99"]
        proc = subprocess.run([compiler, *std, *flags, str(source), "-o",
                               str(tmp_path / (source.name + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
