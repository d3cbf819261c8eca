"""DocumentController: the open document's lifecycle, as the window asks the user about it.

Open (a file, a folder, a recent entry, a project found beside the video), save, save as,
restore a crashed run's journal, and the "save changes?" question before anything closes
the document. The Qt-free rules (journal, lock, project file) are :class:`VideoDocument`'s;
what the widgets show of a document is the window's (:meth:`MainWindow.show_document`,
:meth:`MainWindow.forget_document`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.model.document import VideoDocument
from app.model.journal import discard, find_recoverable, read_info
from app.model.settings import AppSettings
from app.qt.widgets.restore_dialog import ask_restore
from trackers.sources import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow

VIDEO_FILTER = "Videos and projects ({});;All files (*)".format(
    " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES)) + " *.siamtrack.json"
)


class DocumentController:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.document: VideoDocument | None = None
        self.dirty = False
        """Changed since it was opened or saved: closing asks first, the title shows a star."""

    @property
    def settings(self) -> AppSettings:
        return self.window.settings

    # ================================================================== opening
    def open_path(self, path: Path) -> bool:
        """Open a video, image folder or project; False (and a message) when it cannot be opened."""
        path = Path(path)
        if not self.close():
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            document = VideoDocument.open(path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is a message, the app stays up
            text = str(exc).strip() or type(exc).__name__
            # sources and projects already say "Cannot open <path>: ..."
            self.window.report(
                text if text.startswith("Cannot") else f"Cannot open {path}: {text}", title="Open failed"
            )
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._set_document(document)
        self.settings.add_recent(path)
        self.settings.last_dir = str(path.parent)
        self.show_recent()
        project = document.find_project(self.settings.recent)
        if project is not None:
            self._offer_project(project)
        return True

    def _offer_project(self, project: Path) -> None:
        """This video has a saved project: offer it instead of an empty annotation."""
        question = f"This video has a saved project:\n{project}\n\nOpen the project instead?"
        if self.window.prompts:
            answer = QMessageBox.question(
                self.window, "Open the project?", question,
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Ignore,
                QMessageBox.StandardButton.Open,
            )
            if answer == QMessageBox.StandardButton.Open:
                self.open_path(project)
                return
        self.window.statusBar().showMessage(
            f"This video has a saved project: {project} (Ctrl+O to open it)", 15000
        )

    def _set_document(self, document: VideoDocument) -> None:
        self.document = document
        self.dirty = False
        self.window.show_document(document)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open video or project", self.settings.last_dir, VIDEO_FILTER
        )
        if path:
            self.open_path(Path(path))

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self.window, "Open a folder of frames", self.settings.last_dir
        )
        if path:
            self.open_path(Path(path))

    def open_recent(self, i: int) -> None:
        if i < len(self.settings.recent):
            self.open_path(Path(self.settings.recent[i]))

    def show_recent(self) -> None:
        self.window.menu_actions.show_recent(self.settings.recent)

    # ================================================================== closing
    def close(self) -> bool:
        """Close the open video (asking to save unsaved work); False if the user cancelled."""
        document = self.document
        if document is None:
            return True
        if not self.confirm_unsaved():
            return False
        self.window.forget_document(document)
        document.close()
        self.document = None
        self.window.show_no_document()
        return True

    def confirm_unsaved(self) -> bool:
        if not self.dirty or not self.window.prompts:
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved annotation",
            "Save the annotation before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return True

    # ================================================================== saving
    def save(self) -> bool:
        document = self.document
        if document is None:
            return False
        if document.project_path is None:
            return self.save_as()
        return self.save_to(None)

    def save_as(self) -> bool:
        document = self.document
        if document is None:
            return False
        start = str(document.project_path or document.default_project_path())
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save project", start, "siamtrack projects (*.siamtrack.json)"
        )
        return bool(path) and self.save_to(Path(path))

    def save_to(self, path: Path | None) -> bool:
        """Save to ``path`` (None: the project file it has); False (and a message) on failure."""
        assert self.document is not None
        try:
            saved = self.document.save(path)
        except (OSError, ValueError) as exc:
            self.window.report(f"Cannot save: {exc}", title="Save failed")
            return False
        self.dirty = False
        self.window.statusBar().showMessage(f"Saved {saved}", 5000)
        self.settings.add_recent(saved)  # Save As too: the project is where the work is now
        self.show_recent()
        self.window.update_title()
        return True

    # ================================================================== restoring
    def offer_restore(self) -> None:
        """Offer the work a crashed siamtrack left in its journals (newest first)."""
        if not self.window.prompts:
            return
        for path in find_recoverable():
            try:
                info = read_info(path)
            except (OSError, ValueError):
                continue
            answer = ask_restore(self.window, info)
            if answer == "restore":
                if self.close():
                    try:
                        self._set_document(VideoDocument.restore_journal(path))
                        self.dirty = True
                        self.window.update_title()
                    except Exception as exc:  # noqa: BLE001
                        self.window.report(f"Cannot restore {path}: {exc}", title="Restore failed")
                return  # one document at a time; the others are offered next start
            if answer == "discard":
                discard(path)
