"""Starting the app (issue 17 item 1): Qt's missing system libraries are named, not a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.model import qt_check
from tests.tools import load_tool


def load_dev():
    return load_tool("dev")


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
    ],
)
def test_missing_libraries_are_named_by_their_apt_package(soname, package):
    assert qt_check.package_for(soname) == package


def test_the_problem_is_one_line_with_the_apt_command(monkeypatch):
    monkeypatch.setattr(qt_check.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(qt_check, "missing_libraries", lambda: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    line = qt_check.problem()
    assert line is not None and "\n" not in line
    assert line.endswith("sudo apt-get install libxcb-icccm4 libxcb-keysyms1")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # no window wanted: nothing to check
    assert qt_check.problem() is None


def test_ldd_output_is_read_for_not_found_libraries(monkeypatch, tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    output = (
        "\tlibxcb-icccm.so.4 => not found\n\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
    )
    monkeypatch.setattr(qt_check.shutil, "which", lambda name: "/usr/bin/ldd")
    monkeypatch.setattr(
        qt_check.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=output)
    )
    monkeypatch.setattr(qt_check.ctypes.util, "find_library", lambda name: "libxcb-cursor.so.0")
    assert qt_check.missing_libraries(plugin) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_dev_run_falls_back_to_the_offscreen_demo_when_qt_lacks_libraries(monkeypatch, capsys):
    dev = load_dev()
    commands: list[tuple[list[str], dict]] = []
    monkeypatch.setattr(dev, "setup", lambda extras: Path("/venv/bin/python"))
    monkeypatch.setattr(dev, "qt_problem", lambda python: "Qt cannot open a window: ... libxcb-icccm4")
    monkeypatch.setattr(dev, "run", lambda cmd, **kwargs: commands.append((cmd, kwargs)))
    monkeypatch.setattr(dev.os, "name", "posix")
    monkeypatch.setattr(dev.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    assert dev.main(["run"]) == 0
    out = capsys.readouterr().out
    assert "libxcb-icccm4" in out and "offscreen" in out
    (cmd, kwargs), = commands
    assert "--exit-when-done" in cmd and kwargs["env"]["QT_QPA_PLATFORM"] == "offscreen"


def test_dev_run_reports_a_failed_command_without_a_traceback(monkeypatch, capsys):
    dev = load_dev()

    def fail(cmd, **kwargs):
        raise subprocess.CalledProcessError(134, cmd)

    monkeypatch.setattr(dev, "setup", lambda extras: Path("/venv/bin/python"))
    monkeypatch.setattr(dev, "qt_problem", lambda python: None)
    monkeypatch.setattr(dev, "run", fail)
    monkeypatch.setenv("DISPLAY", ":0")
    assert dev.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "exit status 134" in err and "Traceback" not in err
