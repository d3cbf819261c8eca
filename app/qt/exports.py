"""ExportCommands: the File menu's exports, as the window runs them.

A trajectory through the export dialog, every object to one file, and a GOT-10k training
set written by a background job (:class:`app.qt.dataset_export.DatasetExport`). Failures
end as a message (:meth:`MainWindow.report`); the window stays up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog

from app.qt.dataset_export import DatasetExport
from app.qt.widgets.export_dialog import ExportDialog

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow


class ExportCommands:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.job: DatasetExport | None = None
        """The training-set export running or last run (closing the document waits for it)."""

    def export_dialog(self) -> None:
        window, document = self.window, self.window.document
        if document is None:
            return
        dialog = ExportDialog(document.session.trajectory, document.default_export_base(), window)
        if dialog.exec():
            try:
                dialog.write()
            except (OSError, ValueError) as exc:
                window.report(f"Export failed: {exc}", title="Export failed")
                return
            window.statusBar().showMessage(f"Exported {dialog.format} to {dialog.path}", 5000)

    def export_objects(self, path: Path, format: str) -> None:
        """Every object, with its id and label, to ``path`` as ``format`` (``trackers.formats``'
        several-object writer); OSError or ValueError on failure."""
        from app.model.project_tracks import session_tracks
        from trackers.formats import write_tracks  # type: ignore[attr-defined]

        assert self.window.document is not None
        write_tracks(session_tracks(self.window.document.session), path, format)

    def export_objects_dialog(self) -> None:
        window, document = self.window, self.window.document
        if document is None:
            return
        try:
            from trackers.formats import FORMATS, write_tracks  # type: ignore[attr-defined]  # noqa: F401
        except ImportError:
            window.report("This siamtrack cannot write several objects to one file yet", title="Export")
            return
        name, ok = QInputDialog.getItem(window, "Export all objects", "Format:", list(FORMATS), 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(
            window, "Export all objects", str(document.default_project_path().with_name(document.path.stem))
        )
        if not path:
            return
        try:
            self.export_objects(Path(path), name)
        except (OSError, ValueError) as exc:
            window.report(f"Export failed: {exc}", title="Export failed")
            return
        count = len(document.session.objects)
        window.statusBar().showMessage(f"Exported {count} objects as {name} to {path}", 5000)

    def export_dataset_dialog(self) -> None:
        window, document = self.window, self.window.document
        if document is None or (self.job is not None and self.job.running):
            return
        folder = QFileDialog.getExistingDirectory(
            window, "Export a GOT-10k training set into", window.settings.last_dir
        )
        if folder:
            self.export_dataset(Path(folder))

    def export_dataset(self, folder: Path) -> DatasetExport | None:
        window, document = self.window, self.window.document
        if document is None:
            return None
        name = document.path.stem if document.path.is_file() else document.path.name
        job = DatasetExport(document.session.trajectory, document.path, folder, name, window)
        status = window.statusBar()
        job.progress.connect(lambda done, total: status.showMessage(f"Exporting frames {done}/{total}…"))
        job.finished.connect(lambda path: status.showMessage(f"Training set written to {path}", 10000))
        job.failed.connect(
            lambda message: window.report(f"Dataset export failed: {message}", title="Export failed")
        )
        self.job = job
        job.start()
        return job

    def join(self) -> None:
        """Wait for a training-set export to finish (its document is about to close)."""
        if self.job is not None:
            self.job.join()
            self.job = None
