"""The keyboard help: every action of the window with its shortcut, read from the actions
themselves so the list cannot drift from what the keys really do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

MOUSE_HELP = (
    "Mouse: left-drag on the frame draws a new box (a keyframe); drag the box to move it and its "
    "handles to resize it; middle-drag pans; the wheel or a right-drag zooms. Click the confidence "
    "plot to jump to a frame; drag its red threshold line to change which frames are suggested."
)


def shortcut_rows(groups: Sequence[tuple[str, Sequence[QAction]]]) -> list[tuple[str, str, str]]:
    """(keys, action, group) for every action that has a shortcut.

    Keys come first: a long action text (a recent file's path) must not push them out of
    view; recent files are named by their file name only, the full path is the tooltip.
    """
    rows = []
    for group, actions in groups:
        for action in actions:
            keys = ", ".join(
                s.toString(QKeySequence.SequenceFormat.NativeText)
                for s in action.shortcuts()
                if not s.isEmpty()
            )
            if not keys:
                continue
            text = action.text().replace("&", "")
            if "recent" in group.lower():
                number, _, path = text.partition(" ")
                text = f"{number} {Path(path).name}"
            rows.append((keys, text, group))
    return rows


class HelpDialog(QDialog):
    def __init__(
        self, groups: Sequence[tuple[str, Sequence[QAction]]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("siamtrack: keyboard and mouse")
        rows = shortcut_rows(groups)
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Keys", "Action", "Menu"])
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                table.setItem(r, c, QTableWidgetItem(value))
        table.resizeColumnsToContents()
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        mouse = QLabel(MOUSE_HELP)
        mouse.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table, 1)
        layout.addWidget(mouse)
        layout.addWidget(buttons)
        self.resize(620, 640)
        self.rows = rows
