"""Packaging metadata (issue 18.10-18.11): --version, an SPDX licence with its file, py.typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_version_flag(capsys):
    from app.cli import main, version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("siamtrack ") and version() in out


def test_version_from_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0 and result.stdout.startswith("siamtrack ")


def test_licence_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"  # the table form is deprecated
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(c.startswith("Topic ::") for c in project["classifiers"])
    assert not any(
        c.startswith("License ::") for c in project["classifiers"]
    )  # PEP 639: not with an SPDX string


def test_trackers_ship_py_typed():
    assert (ROOT / "trackers" / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["trackers"]
