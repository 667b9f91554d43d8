"""dynhp-emulate without the toolchain: one line naming the Debian packages, non-zero exit."""
from click.testing import CliRunner

from dynhp_tf.converters.emulate import main


def test_missing_toolchain_names_the_debian_packages(tmp_path, monkeypatch):
    project = tmp_path / "export" / "firmware_c" / "src"
    project.mkdir(parents=True)
    (project / "dynhp_model.c").write_text("")
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler, no QEMU on this PATH
    result = CliRunner().invoke(main, [str(tmp_path / "export")])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    for package in ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm"):
        assert package in lines[0]


def test_not_an_export_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, [str(tmp_path / "missing")])
    assert result.exit_code == 4 and "no such directory" in result.output
