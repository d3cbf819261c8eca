"""The core never imports Qt: trackers/, training/ and the CLI must run headless and in CI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ["trackers", "training"]
# The app's model layer is Qt-free too: the GUI and `siamtrack effort` share it.
QT_FREE_FILES = [ROOT / "app" / "__init__.py", ROOT / "app" / "cli.py", *sorted((ROOT / "app" / "model").glob("*.py"))]
QT_FREE_APP = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in QT_FREE_FILES]
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "qtpy")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_files() -> list[Path]:
    files = [p for pkg in CORE for p in (ROOT / pkg).rglob("*.py")]
    return files + QT_FREE_FILES


def test_core_sources_do_not_import_qt():
    files = core_files()
    assert len(files) > 10  # the check must look at something
    offenders = []
    for path in files:
        for name in imported_modules(path):
            top = name.split(".")[0]
            # app's Qt modules are off limits to the core too
            # app.qt.gui imports Qt only inside cmd_gui, so the CLI can offer `gui` without loading Qt
            allowed_app = {"app", "app.model", "app.qt.gui"} | set(QT_FREE_APP)
            if top in FORBIDDEN or (top == "app" and name not in allowed_app):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_detector_sees_a_qt_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from PySide6.QtCore import QObject\nimport os\n")
    assert "PySide6.QtCore" in imported_modules(bad)


def test_importing_the_whole_core_loads_no_qt():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in core_files()
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
