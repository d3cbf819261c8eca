"""``siamtrack gui``: the command line's one door into the Qt app.

This module alone may import ``app.qt`` (pyproject.toml's import-linter contract names
``app.cli.gui -> app.qt.gui``), and only inside the command, so the rest of the
command line never loads Qt.
"""

from __future__ import annotations

import argparse


def cmd_gui(args: argparse.Namespace) -> int:
    # The CLI's one door into the Qt app, opened only here (pyproject.toml's contracts allow it).
    from app.qt.gui import cmd_gui as gui

    return gui(args)
