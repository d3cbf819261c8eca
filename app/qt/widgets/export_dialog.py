"""Export: a trajectory format chooser (the GOT-10k training-set export runs in app/qt/dataset_export.py)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from app.model.files import follow_umask
from trackers.formats import FIELDS, FORMATS, dropped_fields, write_trajectory
from trackers.trajectory import Trajectory

FILE_SUFFIXES = {"coco": ".json", "cvat": ".xml", "labelstudio": ".json", "csv": ".csv"}
"""Suggested file name endings of the one-file formats (the others are text)."""


class ExportDialog(QDialog):
    """Pick a format and a destination; says what the format cannot hold before writing."""

    def __init__(self, trajectory: Trajectory, suggested: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export trajectory")
        self._trajectory = trajectory
        self._suggested = suggested
        self.format_box = QComboBox()
        for name, fmt in FORMATS.items():
            self.format_box.addItem(f"{name}: {fmt.title}", name)
        self.path_edit = QLineEdit()
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.loss_label = QLabel()
        self.loss_label.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_box)
        form.addRow("Destination", row)
        form.addRow(self.loss_label)
        form.addRow(buttons)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    @property
    def format(self) -> str:
        return str(self.format_box.currentData())

    @property
    def path(self) -> Path:
        return Path(self.path_edit.text())

    def _format_changed(self) -> None:
        fmt = FORMATS[self.format]
        suffix = "" if fmt.layout == "folder" else FILE_SUFFIXES.get(fmt.name, ".txt")
        self.path_edit.setText(str(self._suggested.with_name(f"{self._suggested.name}_{fmt.name}{suffix}")))
        lost = dropped_fields(self._trajectory, fmt)
        self.loss_label.setText(
            "This format cannot hold: " + "; ".join(FIELDS[name] for name in lost)
            if lost
            else "Nothing is lost."
        )

    def _browse(self) -> None:
        fmt = FORMATS[self.format]
        if fmt.layout == "folder":
            path = QFileDialog.getExistingDirectory(self, "Export into folder", str(self.path.parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to file", str(self.path))
        if path:
            self.path_edit.setText(path)

    def write(self) -> None:
        write_trajectory(self._trajectory, self.path, self.format)
        follow_umask(self.path)


def finetune_instructions(weights: Path | None) -> str:
    """How to fine-tune SiamFC on an exported training set (training runs outside the window)."""
    init = f" --init {weights}" if weights else ""
    return (
        "Fine-tune SiamFC on what you annotated:\n\n"
        "1. File › Export as training dataset (GOT-10k) into a folder, say DATA.\n"
        "2. In a terminal:\n\n"
        f"    siamtrack train DATA --out finetuned.pt{init} --epochs 10\n\n"
        "3. Choose finetuned.pt as the weights in the Tracker panel.\n\n"
        "Training runs outside this window; see `siamtrack train --help`."
    )
