"""Build a C-runtime project for a Cortex-M4 and run it under QEMU `mps2-an386`.

`emulate_project` compiles the project written by `dynhp_tf.converters.c_project` with Debian's
arm-none-eabi gcc (`-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os`), runs it
under `qemu-system-arm -M mps2-an386 -icount shift=0` with a timeout, and reads the
firmware's JSON lines: the golden check, the stack high-water mark (painted stack) and the
SysTick ticks of one inference. With `-icount shift=0` QEMU's virtual clock advances one
nanosecond per instruction, so ticks convert to instructions; the firmware also times a
loop of known length, and that calibration is what the conversion uses.
`arm-none-eabi-size` on the objects splits flash and RAM into runtime and model.

`dynhp-emulate OUT_DIR` is the command-line shell: OUT_DIR is a `dynhp-export --runtime c`
output (or a C-runtime project directory).

Example:
    >>> figures = emulate_project(pathlib.Path("lenet-nano33ble/firmware_c"))
    >>> figures["instructions_per_inference"], figures["flash_bytes"]
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import click

from dynhp_tf.converters.errors import EmulationError, ExportError, ToolchainMissingError

DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
MACHINE = "mps2-an386"
QEMU_TIMEOUT_SECONDS = 120
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
             "-ffunction-sections", "-fdata-sections"]
COMMON_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
RUNTIME_SOURCES = ["src/dynhp_kernels.c", "src/dynhp_c_runner.c", "mps2/startup_mps2.c",
                   "mps2/platform_mps2.c", "mps2/main_mps2.c"]
MODEL_SOURCES = ["src/dynhp_model.c"]
GOLDEN_SOURCES = ["src/dynhp_golden.c"]






def missing_tools() -> list[str]:
    """Names of the programs/libraries the emulation needs and cannot find."""
    missing = [tool for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
               if shutil.which(tool) is None]
    if not missing:
        probe = subprocess.run(["arm-none-eabi-gcc", "-print-file-name=libc_nano.a"],
                               capture_output=True, text=True)
        if probe.returncode != 0 or not pathlib.Path(probe.stdout.strip()).is_file():
            missing.append("newlib (libc_nano.a)")
    return missing


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise ToolchainMissingError(
            f"{', '.join(missing)} not found; install the Debian packages "
            f"{' '.join(DEBIAN_PACKAGES)} (apt-get install {' '.join(DEBIAN_PACKAGES)})"
        )


def _run(cmd: list[str], cwd: pathlib.Path, what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise EmulationError(f"{what} failed: {first}")
    return proc.stdout


def _sizes(objects: list[pathlib.Path], cwd: pathlib.Path) -> dict[str, int]:
    out = _run(["arm-none-eabi-size", "-t", *map(str, objects)], cwd, "arm-none-eabi-size")
    text, data, bss = (int(v) for v in out.strip().splitlines()[-1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def build_mps2(project: pathlib.Path, build: pathlib.Path) -> dict:
    """Compile and link the project for the Cortex-M4; returns the ELF and the sizes.

    Sizes: `elf` (the linked image), `model` (generated model object), `golden` (test
    vectors, only in this test firmware) and `runtime` = elf - model - golden, i.e.
    kernels, runner, platform layer and the C library parts they pull in.
    """
    require_tools()
    build.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{project / 'include'}", f"-I{project / 'mps2'}"]
    objects = {}
    for rel in RUNTIME_SOURCES + MODEL_SOURCES + GOLDEN_SOURCES:
        obj = build / (pathlib.Path(rel).stem + ".o")
        _run(["arm-none-eabi-gcc", *COMMON_FLAGS, *ARM_FLAGS, *includes, "-c",
              str(project / rel), "-o", str(obj)], project, f"arm-none-eabi-gcc {rel}")
        objects[rel] = obj
    elf = build / "dynhp_mps2.elf"
    _run(["arm-none-eabi-gcc", *ARM_FLAGS, "-nostartfiles", "--specs=nano.specs",
          "--specs=nosys.specs", "-Wl,--gc-sections", "-T",
          str(project / "mps2/mps2_an386.ld"), *map(str, objects.values()), "-lm", "-o",
          str(elf)], project, "linking for mps2-an386")
    # Section sizes after --gc-sections: what the image really holds.
    elf_sizes = _sizes([elf], project)
    model = _sizes([objects[r] for r in MODEL_SOURCES], project)
    golden = _sizes([objects[r] for r in GOLDEN_SOURCES], project)
    runtime = {k: elf_sizes[k] - model[k] - golden[k] for k in elf_sizes}
    return {"elf": elf, "elf_sizes": elf_sizes, "model": model, "golden": golden,
            "runtime": runtime}


def run_qemu(elf: pathlib.Path, timeout: float = QEMU_TIMEOUT_SECONDS) -> tuple[int, list[dict]]:
    """Run `elf` under QEMU; returns (exit status, the JSON events it printed)."""
    require_tools()
    cmd = ["qemu-system-arm", "-M", MACHINE, "-icount", "shift=0", "-nographic",
           "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"QEMU {MACHINE} did not finish within {timeout:g} s") from None
    events = []
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        start = line.find("{")
        if start >= 0:
            try:
                events.append(json.loads(line[start:]))
            except json.JSONDecodeError:
                pass
    return proc.returncode, events


def emulate_project(project, *, timeout: float = QEMU_TIMEOUT_SECONDS) -> dict:
    """Build `project` for the Cortex-M4, run it under QEMU and gather the device figures.

    Returns a JSON-ready dict: golden (passed/failed), max_abs_diff, the size split,
    `flash_bytes` (text + data of the image without golden vectors), `static_ram_bytes`
    (data + bss), `stack_used_bytes`, `ram_bytes` (static + stack high water),
    `instructions_per_inference` and the QEMU exit status.

    Raises:
        ToolchainMissingError, EmulationError.
    """
    project = pathlib.Path(project).resolve()
    with tempfile.TemporaryDirectory(prefix="dynhp-mps2-") as tmp:
        built = build_mps2(project, pathlib.Path(tmp))
        status, events = run_qemu(built["elf"], timeout)
    summary = next((e for e in reversed(events) if e.get("event") == "summary"), None)
    emu = next((e for e in reversed(events) if e.get("event") == "emulator"), None)
    if summary is None or emu is None:
        raise EmulationError(f"QEMU {MACHINE} exited with {status} without a summary line")
    per_tick = emu["calibration_instructions"] / max(1, emu["calibration_ticks"])
    no_golden = {k: built["elf_sizes"][k] - built["golden"][k] for k in built["elf_sizes"]}
    static_ram = no_golden["data"] + no_golden["bss"] - emu["stack_bytes"]
    return {
        "machine": MACHINE,
        "measured_under": f"QEMU {MACHINE} (Cortex-M4F), -icount shift=0",
        "golden": summary.get("golden"),
        "max_abs_diff": summary.get("max_abs_diff"),
        "qemu_exit_status": status,
        "elf_sizes": built["elf_sizes"],
        "model_sizes": built["model"],
        "runtime_sizes": built["runtime"],
        "golden_sizes": built["golden"],
        "flash_bytes": no_golden["text"] + no_golden["data"],
        "static_ram_bytes": static_ram,
        "stack_used_bytes": emu["stack_used_bytes"],
        "ram_bytes": static_ram + emu["stack_used_bytes"],
        "instructions_per_inference": round(emu["inference_ticks"] * per_tick),
        "instructions_per_tick": per_tick,
        "events": events,
    }


def figures_table(figures: dict, macs: int | None = None) -> str:
    """Markdown table of the device figures."""
    m, r = figures["model_sizes"], figures["runtime_sizes"]
    rows = [
        ("golden check", figures["golden"]),
        ("flash (text + data)", f"{figures['flash_bytes']:,} (model {m['text'] + m['data']:,}, "
                                f"runtime {r['text'] + r['data']:,})"),
        ("static RAM (data + bss)", f"{figures['static_ram_bytes']:,}"),
        ("stack high water", f"{figures['stack_used_bytes']:,}"),
        ("RAM (static + stack)", f"{figures['ram_bytes']:,}"),
        ("instructions per inference", f"{figures['instructions_per_inference']:,}"),
    ]
    if macs:
        rows.append(("instructions per MAC", f"{figures['instructions_per_inference'] / macs:.2f}"))
    lines = [f"Measured under {figures['measured_under']}:", "", "| figure | value |",
             "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def find_project(out_dir: pathlib.Path) -> pathlib.Path:
    for candidate in (out_dir, out_dir / "firmware_c", out_dir / "firmware"):
        if (candidate / "src/dynhp_model.c").is_file():
            return candidate
    raise EmulationError(f"{out_dir}: no C-runtime project found (export with --runtime c)")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--timeout", type=float, default=QEMU_TIMEOUT_SECONDS, show_default=True,
              help="Seconds QEMU may run.")
def main(out_dir, timeout):
    """Build OUT_DIR's C runtime for a Cortex-M4, run it under QEMU mps2-an386 and print
    the device figures next to the host report."""
    try:
        if not out_dir.is_dir():
            raise EmulationError(f"{out_dir}: no such directory (a dynhp-export output)")
        project = find_project(out_dir)
        figures = emulate_project(project, timeout=timeout)
    except ToolchainMissingError as e:
        click.echo(f"dynhp-emulate: error: {e}", err=True)
        raise SystemExit(3)
    except ExportError as e:
        click.echo(f"dynhp-emulate: error: {e}", err=True)
        raise SystemExit(4)
    report = out_dir / "report.json"
    macs = None
    if report.is_file():
        data = json.loads(report.read_text())
        macs = data.get("model", {}).get("macs_compact")
        tflm = data.get("tflm", {})
        click.echo(f"host (TFLM): flatbuffer {data.get('tflite', {}).get('bytes', 0):,} bytes, "
                   f"arena {tflm.get('arena_bytes', 0):,} bytes")
    click.echo(figures_table(figures, macs))
    (out_dir / "emulation.json").write_text(
        json.dumps({k: v for k, v in figures.items() if k != "events"}, indent=2) + "\n")
    raise SystemExit(0 if figures["golden"] == "passed" and figures["qemu_exit_status"] == 0
                     else 1)


if __name__ == "__main__":
    sys.exit(main())
