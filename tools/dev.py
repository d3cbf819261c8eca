#!/usr/bin/env python3
"""Set up the project in .venv and run it, or its tests. Needs nothing but Python 3.10+.

    python3 tools/dev.py run     # set up, then open the app on the bundled demo clip
    python3 tools/dev.py test    # set up with the test extras, check the import layers
                                 # (lint-imports) and the lint rules (ruff), then run the
                                 # whole suite

torch is installed first and pinned to 2.13.0: an unpinned resolve would pull several
GB of CUDA wheels. Set-up is skipped when pyproject.toml has not changed since the
last one (a stamp file in .venv records its hash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
TORCH = "torch==2.13.0"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)


def setup(extras: str) -> Path:
    python = venv_python()
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".siamtrack-setup-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + TORCH.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return python
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    if probe.returncode != 0:
        run(pip + [TORCH])
    target = f".[{extras}]" if extras else "."
    run(pip + ["-e", target])
    stamp.write_text(digest)
    return python


def demo_box() -> str:
    """The demo's first ground-truth box, converted from its 1-based file to our 0-based box."""
    first = (ROOT / "resources" / "demo" / "demo.txt").read_text().splitlines()[0]
    x, y, w, h = (float(v) for v in first.split(","))
    return f"{x - 1:g},{y - 1:g},{w:g},{h:g}"


def qt_problem(python: Path) -> str | None:
    """One line naming the system packages Qt still needs for a window, or None (app/model/qt_check.py)."""
    probe = subprocess.run(
        [str(python), "-m", "app.model.qt_check"], cwd=ROOT, capture_output=True, text=True
    )
    return probe.stdout.strip() or None if probe.returncode == 1 else None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    try:
        return _main(argv)
    except subprocess.CalledProcessError as exc:
        # the command has said what went wrong on its own output; no traceback on top
        print(f"dev.py: {' '.join(map(str, exc.cmd[:4]))}... failed (exit status {exc.returncode})",
              file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv[0] == "run":
        python = setup("")
        out = ROOT / "out"
        out.mkdir(exist_ok=True)
        demo = ROOT / "resources" / "demo" / "demo.mp4"
        gui = [str(python), "-m", "app.cli", "gui", str(demo), "--tracker", "siamfc"]
        has_display = os.name == "nt" or sys.platform == "darwin" or bool(
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        problem = qt_problem(python) if has_display else None
        if problem:
            print(problem, flush=True)  # e.g. libxcb-icccm4 libxcb-keysyms1 on a plain Debian
            has_display = False
        if has_display:
            # the window opens on the demo clip with SiamFC ready: draw a box (or use the
            # one below with --box), press Track
            run(gui + argv[1:])
        else:
            # no screen: drive the same window offscreen, track the demo and keep a screenshot
            print("no usable display: running the app offscreen on the demo clip", flush=True)
            run(gui + ["--box", demo_box(), "--track", "--screenshot", str(out / "demo_gui.png"),
                       "--exit-when-done"] + argv[1:], env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
            print(f"screenshot: {out / 'demo_gui.png'}")
        return 0
    python = setup("test")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    # The import layers first (pyproject.toml's [tool.importlinter]): no Qt below app.qt.
    lint_imports = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    path = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # this checkout, not another
    lint = subprocess.run([str(python), "-c", lint_imports], cwd=ROOT, env=dict(env, PYTHONPATH=path))
    if lint.returncode != 0:
        print("lint-imports: an import crosses the layers (see above)", file=sys.stderr)
        return lint.returncode
    # The project's own lint rules (pyproject.toml's [tool.ruff]) over the whole tree.
    ruff = subprocess.run([str(python), "-m", "ruff", "check", "."], cwd=ROOT, env=env)
    if ruff.returncode != 0:
        print("ruff: the code breaks the project's lint rules (see above; `ruff check --fix .`)",
              file=sys.stderr)
        return ruff.returncode
    result = subprocess.run([str(python), "-m", "pytest", *argv[1:]], cwd=ROOT, env=env)
    if result.returncode == 5:
        print("pytest collected no tests: that is a failure", file=sys.stderr)
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
