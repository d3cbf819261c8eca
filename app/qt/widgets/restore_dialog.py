"""The question asked at start when a crashed siamtrack left autosaved work behind."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from PySide6.QtWidgets import QMessageBox, QWidget

from app.model.journal import JournalInfo

Answer = Literal["restore", "discard", "later"]


def ask_restore(parent: QWidget | None, info: JournalInfo) -> Answer:
    """Restore the journal's work, discard it, or ask again next time."""
    when = datetime.fromtimestamp(info.modified).strftime("%Y-%m-%d %H:%M")
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Restore unsaved work?")
    box.setText(
        f"siamtrack did not close cleanly while annotating\n{info.video}\n"
        f"({info.edits} autosaved edit(s), last at {when})."
    )
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    drop = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else "discard" if clicked is drop else "later"
