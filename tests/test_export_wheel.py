"""A wheel built from the repo, installed in a fresh venv outside the checkout, exports.

The fresh venv has no system site-packages and gets the wheel with `--no-deps`. Its heavy
dependencies (TensorFlow, tflite-micro, ...) are reused from the development venv through a
`.pth` file that appends that venv's site-packages to `sys.path` (no network, no 1 GB
re-download). Appended paths are not scanned for `.pth` files, so the development venv's
editable install of this project stays inactive, and the test checks that
`dynhp_tf.converters` really comes from the fresh venv.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

from tests.export_models import TINY_MIN_AGREEMENT, save_tiny

REPO = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "dynhp_tf", "converters", "boards", "firmware")


def _bin(env_dir: pathlib.Path, name: str) -> str:
    return str(env_dir / ("Scripts" if os.name == "nt" else "bin") / name)


@pytest.mark.slow
def test_wheel_in_fresh_venv_exports_end_to_end(tmp_path):
    # Build from a copy so the checkout gets no build/ or egg-info debris.
    src = tmp_path / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), str(src)],
                           check=True, capture_output=True, text=True)
    assert "Warning" not in built.stdout + built.stderr  # setuptools' packaging warnings
    (wheel,) = wheels.glob("dynhp_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # One top-level package: converters/, boards/, firmware/ install inside dynhp_tf.
    assert {name.split("/")[0] for name in names} == {"dynhp_tf", "dynhp_tf-0.1.0.dist-info"}
    for path in ("boards/esp32.toml", "firmware/core/dynhp_runner.cc",
                 "firmware/layers/esp_idf/src/CMakeLists.txt", "firmware/layers/esp_idf/sdkconfig.defaults",
                 "firmware/layers/arduino_mbed/src/main.cpp", "firmware/host/Makefile",
                 "firmware/c_runtime/dynhp_kernels.c"):
        assert f"dynhp_tf/{path}" in names, path
    templates = sorted((REPO / "converters" / "templates").glob("*.tmpl"))  # converters.render
    assert templates and all(f"dynhp_tf/converters/templates/{t.name}" in names for t in templates)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]

    env_dir = tmp_path / "fresh-venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    purelib = subprocess.run(
        [_bin(env_dir, "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    (pathlib.Path(purelib) / "reuse_dev_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([_bin(env_dir, "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                   check=True)

    work = tmp_path / "work"  # outside the checkout
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    origin = subprocess.run([_bin(env_dir, "python"), "-c", "import dynhp_tf.converters as c; print(c.__file__)"],
                            cwd=work, env=env, check=True, capture_output=True, text=True).stdout
    assert origin.startswith(str(env_dir)), origin

    listed = subprocess.run([_bin(env_dir, "dynhp-export"), "--list-boards"], cwd=work, env=env,
                            check=True, capture_output=True, text=True).stdout
    assert {"esp32", "esp32s3", "nano33ble"} <= {line.split()[0] for line in listed.splitlines()}

    model_path = save_tiny(work)
    done = subprocess.run([_bin(env_dir, "dynhp-export"), model_path.name, "--board", "nano33ble",
                           "--calibration", "cal.npy", "--min-agreement", str(TINY_MIN_AGREEMENT)],
                          cwd=work, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    out = work / "tiny-nano33ble"
    report = json.loads((out / "report.json").read_text())
    assert report["fit"]["fits"] and report["tflm"]["arena_bytes"] > 0
    assert (out / "tiny.tflite").stat().st_size == report["tflite"]["bytes"]
    assert report["firmware"] == "firmware" and (out / "firmware" / "platformio.ini").is_file()
