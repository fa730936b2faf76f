"""``emotions-data doctor`` and ``emotions-data setup`` on real states of the machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from emotions_data.annotation.server_setup import (
    READY_MARK,
    label_studio_home,
    requirements_hash,
)
from emotions_data.cli import main

LS_INSTALLED = label_studio_home().joinpath(READY_MARK).is_file()


def _doctor(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["doctor", *args])
    return result.exit_code, result.output


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [name])


@pytest.mark.skipif(
    not LS_INSTALLED and not os.environ.get("CI"), reason="Label Studio not set up here"
)
def test_doctor_on_the_set_up_machine_exits_0(tmp_path: Path) -> None:
    code, out = _doctor("--root", str(tmp_path / "not-yet"))
    assert code == 0, out
    for name in ("ffmpeg", "ffprobe", "label-studio", "disk"):
        assert _line(out, name).startswith("ok "), out
    assert "torch" in out and "MISSING" not in out


def test_doctor_names_each_missing_piece_and_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a PATH with apt-get but no ffmpeg, and an empty cache: no Label Studio
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = shutil.which("apt-get")
    if apt:
        (bin_dir / "apt-get").symlink_to(apt)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("EMOTIONS_DATA_CACHE", str(tmp_path / "cache"))
    code, out = _doctor("--root", str(tmp_path), "--min-free-gb", "1e9")
    assert code == 1
    assert "Error: missing: ffmpeg, ffprobe, label-studio, disk" in out
    assert _line(out, "ffmpeg").startswith("MISSING  ffmpeg        not found on PATH")
    if apt:
        assert "apt-get install -y ffmpeg" in out
    assert f"not installed at {tmp_path / 'cache' / 'labelstudio' / requirements_hash()}" in out
    assert "fix: emotions-data setup" in out
    assert "below 1e+09 GiB" in out
    assert not _line(out, "torch").startswith("MISSING")  # no CUDA is a note, not a failure


def test_setup_reuses_a_finished_install_and_points_current_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMOTIONS_DATA_CACHE", str(tmp_path))
    home = label_studio_home()
    home.mkdir(parents=True)
    (home / READY_MARK).touch()
    old = tmp_path / "labelstudio" / "0000000000000000"
    old.mkdir()
    (tmp_path / "labelstudio" / "current").symlink_to(old)
    result = CliRunner().invoke(main, ["setup"])
    assert result.exit_code == 0, result.output
    assert "Label Studio already installed" in result.output
    assert (tmp_path / "labelstudio" / "current").resolve() == home.resolve()


def test_setup_reports_a_failed_install_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMOTIONS_DATA_CACHE", str(tmp_path))
    result = CliRunner().invoke(main, ["setup", "--python", shutil.which("false") or "/bin/false"])
    assert result.exit_code == 1
    assert "Error: python -m venv failed (exit 1)" in result.output
    assert not label_studio_home().joinpath(READY_MARK).exists()
