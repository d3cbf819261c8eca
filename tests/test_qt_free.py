"""The import layers: Qt stays in app/qt/; trackers/, training/, app/model/ and the CLI run headless.

The layers are import-linter contracts in pyproject.toml ([tool.importlinter]); ``tools/dev.py
test`` runs ``lint-imports`` before pytest, and these tests run the same contracts, check that
they catch a crossing, and import everything the contracts call Qt-free to see no Qt get loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import load_tool

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "qtpy")
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def importlinter_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def importlinter_section() -> str:
    """pyproject.toml's [tool.importlinter] tables, as text."""
    kept, keep = [], False
    for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            keep = line in ("[tool.importlinter]", "[[tool.importlinter.contracts]]")
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


def contract(kind: str) -> dict:
    (found,) = [c for c in importlinter_config()["contracts"] if c["type"] == kind]
    return found


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_contracts_name_the_layers():
    forbidden = contract("forbidden")
    assert {"trackers", "training", "app.model", "app.cli"} <= set(forbidden["source_modules"])
    assert {"PySide6", "pyqtgraph", "app.qt"} <= set(forbidden["forbidden_modules"])
    assert contract("layers")["layers"] == ["app.qt", "app.model", "training", "trackers"]


def test_lint_imports_keeps_the_contracts():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_a_qt_import_and_an_upward_import(tmp_path):
    """The same contracts on a small tree with one crossing of each kind: both break."""
    files = {
        "app/__init__.py": "",
        "app/cli/__init__.py": "",
        "app/cli/gui.py": "def gui():\n    from app.qt import gui\n",
        "app/gui_options.py": "",
        "app/model/__init__.py": "",
        "app/model/session.py": "from PySide6.QtCore import QObject\n",
        "app/qt/__init__.py": "",
        "app/qt/gui.py": "",
        "training/__init__.py": "",
        "trackers/__init__.py": "",
        "trackers/run.py": "from app.model import session\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "pyproject.toml").write_text(importlinter_section())
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 2 broken" in result.stdout
    assert "app.model.session -> PySide6" in result.stdout
    assert "trackers.run -> app.model" in result.stdout


def qt_free_modules() -> list[str]:
    """Every module the forbidden contract covers, found on disk (not listed by hand)."""
    modules = []
    for source in contract("forbidden")["source_modules"]:
        path = ROOT.joinpath(*source.split("."))
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        assert files and files[0].exists(), source
        modules += [
            ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for p in files
            if p.name != "__main__.py"
        ]
    return modules


def test_importing_the_whole_core_loads_no_qt():
    """lint-imports reads the source; this imports it, lazy imports of a module's body aside."""
    modules = qt_free_modules()
    assert len(modules) > 10 and "app.model.settings" in modules and "app.model.document" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r} or m.startswith('app.qt')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def load_dev():
    return load_tool("dev")


@pytest.mark.parametrize("lint_status, ruff_status", [(0, 0), (1, 0), (0, 1)])
def test_dev_test_runs_lint_imports_and_ruff_before_pytest(monkeypatch, lint_status, ruff_status):
    """`tools/dev.py test` (what .ci/run calls): broken contracts or lint rules stop it before pytest."""
    dev = load_dev()
    commands: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        joined = " ".join(cmd)
        status = lint_status if "importlinter" in joined else ruff_status if "ruff" in joined else 0
        assert kwargs["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(dev.ROOT)  # this checkout's code
        return subprocess.CompletedProcess(cmd, status)

    monkeypatch.setattr(dev, "setup", lambda extras: Path("/venv/bin/python"))
    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    monkeypatch.setenv("PYTHONPATH", str(dev.ROOT))
    assert dev.main(["test", "-q"]) == (lint_status or ruff_status)
    assert "importlinter" in " ".join(commands[0])
    ran = [c[1:3] for c in commands[1:]]
    if lint_status:
        assert ran == []
    elif ruff_status:
        assert ran == [["-m", "ruff"]]
    else:
        assert ran == [["-m", "ruff"], ["-m", "pytest"]]
