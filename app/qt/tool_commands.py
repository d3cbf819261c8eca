"""ToolCommands: the Tools menu (fine-tuning, the frame cache), as the window runs them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.model.frame_cache import cache_usage, clear_cache, default_cache_dir
from app.qt.widgets.export_dialog import finetune_instructions
from app.qt.widgets.finetune_dialog import FinetuneDialog

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow


class ToolCommands:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.finetune: FinetuneDialog | None = None
        """The fine-tune dialog while it is open (one at a time)."""

    def show_finetune_help(self) -> None:
        """How to fine-tune from the command line (also a button in the fine-tune dialog)."""
        text = finetune_instructions(self.window.panel.settings().weights)
        self.window.message(QMessageBox.Icon.Information, "Fine-tune a tracker", text)

    def show_finetune_dialog(self) -> FinetuneDialog | None:
        """Fine-tune on the open video's annotation in the background; None without a video."""
        window, document = self.window, self.window.document
        if document is None:
            self.show_finetune_help()
            return None
        try:
            if self.finetune is not None and self.finetune.isVisible():
                self.finetune.raise_()
                return self.finetune
        except RuntimeError:  # closed and deleted, its destroyed signal still queued
            self.finetune = None
        dialog = FinetuneDialog(document.session, window.panel.settings(), document.project_path, window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.weights_accepted.connect(self._use_finetuned_weights)
        dialog.destroyed.connect(lambda *_: setattr(self, "finetune", None))
        self.finetune = dialog
        dialog.open()  # window-modal but asynchronous: repaints go on
        return dialog

    def _use_finetuned_weights(self, tracker: str, weights: Path) -> None:
        panel = self.window.panel
        panel.set_settings(replace(panel.settings(), tracker=tracker, weights=Path(weights)))
        self.window.statusBar().showMessage(f"{tracker} now uses {weights}", 10000)

    def shutdown(self) -> None:
        """The window closes: a fine-tune stops at its next step, its checkpoint kept."""
        if self.finetune is not None:
            try:
                self.finetune.shutdown()
            except RuntimeError:  # already closed and deleted: its thread was shut down then
                self.finetune = None

    def clear_frame_cache(self) -> int:
        """Delete the cached frames of every video but the open one; returns the bytes freed."""
        window = self.window
        keep = window.document.cache.dir if window.document is not None else None
        freed = clear_cache(keep=keep)
        left = cache_usage()
        window.statusBar().showMessage(
            f"Frame cache cleared: {freed / 1e6:.0f} MB freed, {left / 1e6:.0f} MB kept for the open video "
            f"(limit {window.settings.cache_limit_mb} MB, in {default_cache_dir()})",
            10000,
        )
        return freed
