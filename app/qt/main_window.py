"""MainWindow: assembles the widgets and actions and wires them to the session and the worker.

No tracking logic lives here: the session (:mod:`app.model.session`) decides what a run
covers and what it may overwrite, the controller (:mod:`app.qt.tracking_worker`)
runs it off the GUI thread, the annotator (:mod:`app.qt.annotator`) turns
commands into edits and runs, and the widgets draw. The menus are a table
(:mod:`app.qt.actions`); opening and saving (:mod:`app.qt.document_controller`), exports
(:mod:`app.qt.exports`), the Tools menu (:mod:`app.qt.tool_commands`), a run's display
(:mod:`app.qt.run_display`), the objects' docks (:mod:`app.qt.object_docks`) and the
layout (:mod:`app.qt.window_layout`) have their own modules. What is left is wiring,
and one rule of display: results stream in per frame but the window repaints on a
timer, showing only the latest state, so a fast tracker never builds a backlog of paints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox

from app.model.document import VideoDocument
from app.model.session import ChangeEvent, TrackerSettings
from app.model.settings import AppSettings, load_settings, save_settings
from app.qt.actions import MenuActions
from app.qt.annotator import Annotator
from app.qt.dataset_export import DatasetExport
from app.qt.document_controller import DocumentController
from app.qt.exports import ExportCommands
from app.qt.object_docks import ObjectDocks
from app.qt.run_display import RunDisplay
from app.qt.tool_commands import ToolCommands
from app.qt.tracking_worker import TrackerFactory, TrackingController
from app.qt.widgets.finetune_dialog import FinetuneDialog
from app.qt.widgets.frame_view import FrameView
from app.qt.widgets.help_dialog import HelpDialog
from app.qt.widgets.object_list import ObjectLanes, ObjectList
from app.qt.widgets.score_map_view import ScoreMapView
from app.qt.widgets.timeline import ConfidencePlot, Transport, format_time
from app.qt.widgets.tracker_panel import TrackerPanel
from app.qt.window_layout import add_docks, first_size, remember_geometry, restore_geometry, size_docks
from trackers.sources import IMAGE_SUFFIXES
from trackers.trajectory import Origin
from trackers.types import Box

REPAINT_MS = 40
"""At most 25 repaints a second, however fast results arrive."""
EMPTY_HINT = (
    "Open a video or image folder (Ctrl+O, File › Open recent), or drop one here.\n"
    "Then drag a box around the object and press T to track it."
)
DRAW_HINT = "Drag a box around the object on this frame, then press T (Track forward)."
TRAIL_FRAMES = 60


class MainWindow(QMainWindow):
    run_started = Signal(int)  # run_id
    run_ended = Signal(int, str)  # run_id, "completed" | "cancelled" | "rejoined" | "failed"
    document_changed = Signal()
    # the actions reached by name (tests, tools/walkthrough.py); app.qt.actions.ACTIONS names them
    save_action: QAction
    close_action: QAction
    undo_action: QAction
    redo_action: QAction
    forward_action: QAction
    track_all_action: QAction
    blend_action: QAction
    trail_action: QAction

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        make_tracker: TrackerFactory | None = None,
        prompts: bool = True,
        persist_settings: bool = True,
    ) -> None:
        """``prompts=False`` (tests, ``--exit-when-done``) skips every modal question:
        no journal-restore offer, no "save changes?" on close."""
        super().__init__()
        self.settings = settings if settings is not None else load_settings()
        VideoDocument.cache_limit_bytes = max(0, self.settings.cache_limit_mb) * 1024**2
        self.prompts = prompts
        self.persist_settings = persist_settings
        self.documents = DocumentController(self)
        self.exports = ExportCommands(self)
        self.tools = ToolCommands(self)
        self.index = 0
        self.last_error: str | None = None
        self.last_notice: str | None = None
        self.runs = RunDisplay(self)
        self.objects = ObjectDocks(self)
        self._plot_dirty = True
        self._message_box: QMessageBox | None = None
        self._running_shown = False

        self.setWindowTitle("siamtrack")
        self.setAcceptDrops(True)
        self.controller = TrackingController(make_tracker, self)
        self._build_widgets()
        self.annotator = Annotator(
            self.controller, self.panel.settings, self.panel.retrack_box.isChecked, self
        )
        self.menu_actions = MenuActions(self)
        for name, action in self.menu_actions.named.items():
            setattr(self, name, action)
        self.documents.show_recent()
        self._connect()
        weights = Path(self.settings.weights) if self.settings.weights else None
        self.panel.set_settings(TrackerSettings(self.settings.tracker, weights, self.settings.device))
        self.transport.step_box.setValue(self.settings.step)
        self.blend_action.setChecked(self.settings.blend)
        self.trail_action.setChecked(self.settings.trail)
        restore_geometry(self, self.settings)
        self.update_actions()

    # ================================================================== building
    def _build_widgets(self) -> None:
        self.view = FrameView()
        self.setCentralWidget(self.view)
        self.panel = TrackerPanel()
        self.score_view = ScoreMapView()
        self.transport = Transport()
        self.plot = ConfidencePlot()
        self.lanes = ObjectLanes()  # one lane per object: its suggestions and absent spans
        self.object_list = ObjectList()
        self.tracker_dock, self.score_dock, self.timeline_dock, self.objects_dock = add_docks(
            self, self.panel, self.score_view, [self.transport, self.plot, self.lanes], self.object_list
        )
        self.autosave_label = QLabel()
        self.statusBar().addPermanentWidget(self.autosave_label)
        self._repaint_timer = QTimer(self)
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(REPAINT_MS)
        self._repaint_timer.timeout.connect(self.repaint_now)
        first_size(self)
        self._docks_sized = False

    def shortcut_groups(self) -> list[tuple[str, list[QAction]]]:
        """Every action with a shortcut, by menu: what the help dialog lists."""
        return self.menu_actions.shortcut_groups()

    def _connect(self) -> None:
        self.view.box_drawn.connect(lambda box: self.annotator.set_keyframe(self.index, box))
        self.view.box_edited.connect(lambda box: self.annotator.set_keyframe(self.index, box))
        self.transport.frame_requested.connect(self.go_to)
        self.plot.frame_requested.connect(self.go_to)
        self.plot.threshold_changed.connect(lambda _: self._mark_plot_dirty())
        self.score_view.blend_toggled.connect(self.blend_action.setChecked)
        self.score_view.blend_toggled.connect(lambda _: self.blend_changed())
        self.panel.track_requested.connect(self.track)
        self.panel.stop_requested.connect(self.stop)
        self.annotator.changed.connect(self._on_changed)
        self.annotator.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.runs.connect()
        self.objects.connect()

    # ================================================================== documents
    @property
    def document(self) -> VideoDocument | None:
        return self.documents.document

    @document.setter
    def document(self, document: VideoDocument | None) -> None:
        self.documents.document = document

    def open_path(self, path: Path) -> bool:
        """Open a video, image folder or project; False (and a message) when it cannot be opened."""
        return self.documents.open_path(path)

    def close_document(self) -> bool:
        """Close the open video (asking to save unsaved work); False if the user cancelled."""
        return self.documents.close()

    def save(self) -> bool:
        return self.documents.save()

    def offer_restore(self) -> None:
        """Offer the work a crashed siamtrack left in its journals (newest first)."""
        self.documents.offer_restore()

    def show_document(self, document: VideoDocument) -> None:
        """Show a document just opened (the controller holds it already)."""
        self.index = 0
        self.runs.latest_tracked = None
        session = document.session
        session.add_listener(self._on_session_changed)
        self.annotator.set_document(document)
        self.object_list.set_session(session)
        if document.project_path is not None:
            self.panel.set_settings(session.settings)  # a project remembers its tracker
        self.score_view.forget()
        self.panel.clear_status()  # the last video's "Tracking finished" is not about this one
        self.transport.set_frame_count(document.frame_count, document.fps)
        self.autosave_label.setText(document.journal_problem or "autosave on")
        if document.note:
            self.notice(document.note, title="About this video")
        self._mark_plot_dirty()
        self.view.set_frame(document.frame(0))
        self.view.fit()
        self.repaint_now()
        self.update_title()
        self.document_changed.emit()

    def forget_document(self, document: VideoDocument) -> None:
        """Let go of a document about to close: no run, export or widget holds it after this."""
        self.annotator.set_document(None)
        self.exports.join()
        document.session.remove_listener(self._on_session_changed)
        self.object_list.set_session(None)
        self.view.set_others([])

    def show_no_document(self) -> None:
        self.view.set_frame(None)
        self.view.set_entry(None)
        self.score_view.forget()
        self.panel.clear_status()
        self.plot.clear_data()
        self.transport.set_frame_count(0, 30.0)
        self.repaint_now()
        self.update_title()
        self.update_actions()
        self.document_changed.emit()

    # ================================================================== drawing
    def schedule_repaint(self) -> None:
        if not self._repaint_timer.isActive():
            self._repaint_timer.start()

    def _mark_plot_dirty(self) -> None:
        self._plot_dirty = True
        self.schedule_repaint()

    def repaint_now(self) -> None:
        """Draw the current state once: the frame, its box and maps, the timeline."""
        self._repaint_timer.stop()
        document = self.document
        if document is None:
            self.view.set_info("no video")
            self.view.set_hint(EMPTY_HINT)
            return
        following = self.runs.frame_to_show()
        if following is not None:
            self.index = following
        index = self.index
        trajectory = document.session.trajectory
        maps_now, plot_now = self.runs.tick()
        try:
            self.view.set_frame(document.frame(index))
        except Exception as exc:  # noqa: BLE001 - a damaged frame must not take the window down
            self.statusBar().showMessage(f"Cannot decode frame {index}: {exc}", 5000)
        entry = trajectory[index]
        self.view.set_entry(entry)
        self.objects.show_others(index)
        if not trajectory.keyframes():
            self.view.set_hint(DRAW_HINT, centred=False)  # what to do first on a new video
        else:
            self.view.set_hint(None)
        # only the maps of the run that made this frame's box (not an undone or older run's)
        tracked_box = entry.box if entry is not None and entry.origin is Origin.TRACKED else None
        about = self.score_view.about(index, tracked_box) if tracked_box is not None else None
        maps = about.maps if about is not None else ()
        if maps_now:
            self.score_view.show_maps(maps, about)
        self.view.set_score_map(maps[0] if maps else None)
        self.view.set_info(self._info_text(index))
        self.transport.set_frame(index)
        if plot_now:
            self.plot.set_cursor(index)
        if self.trail_action.isChecked():
            boxes = trajectory.to_arrays().boxes[max(0, index - TRAIL_FRAMES) : index + 1]
            self.view.set_trail(boxes[:, :2] + boxes[:, 2:] / 2)
        else:
            self.view.set_trail(None)
        if self._plot_dirty and plot_now:
            self._plot_dirty = False
            arrays = trajectory.to_arrays()
            self.plot.set_data(arrays.scores, trajectory.keyframes(), arrays.absent)
            self.plot.set_suggestions(self.suggestions())
            self.objects.show_lanes()
        self.update_actions()

    def _info_text(self, index: int) -> str:
        assert self.document is not None
        document = self.document
        text = f"frame {index} / {document.frame_count - 1}   {format_time(index, document.fps)}"
        entry = document.session.trajectory[index]
        if entry is None:
            return text + "   no box"
        if entry.box is None:
            return text + "   ABSENT"
        text += f"   {entry.origin.value}"
        if entry.score is not None:
            text += f"   confidence {entry.score:.2f}"
            about = self.score_view.about(index, entry.box)
            if about is not None and about.score is not None:
                text += f" (raw {about.tracker} score {about.score:.3g})"
        return text

    def go_to(self, index: int) -> None:
        if self.document is None:
            return
        self.index = min(max(int(index), 0), self.document.frame_count - 1)
        # The slider now, the frame at the repaint: steps taken before it count from here.
        self.transport.set_frame(self.index)
        # Navigating by hand while a run goes on stops following it.
        self.runs.following = False
        self.schedule_repaint()

    def blend_changed(self) -> None:
        on = self.blend_action.isChecked()
        self.view.set_blend(on)
        self.score_view.blend_box.blockSignals(True)
        self.score_view.blend_box.setChecked(on)
        self.score_view.blend_box.blockSignals(False)

    def update_title(self) -> None:
        name = self.document.title if self.document is not None else ""
        star = " *" if self.documents.dirty else ""
        self.setWindowTitle(f"siamtrack — {name}{star}" if name else "siamtrack")

    def update_actions(self) -> None:
        running = self.controller.running
        self.menu_actions.update(self.document.session if self.document is not None else None, running)
        self.panel.set_available(self.document is not None)
        if running != self._running_shown:
            self._running_shown = running
            self.panel.set_running(running)

    # ================================================================== commands
    def _on_session_changed(self, event: ChangeEvent) -> None:
        if event.frames or event.kind in ("run_ended", "objects"):
            self.documents.dirty = True
        self._plot_dirty = True
        if event.kind == "select":
            self.score_view.forget()  # the maps shown are the selected object's
        if event.kind in ("select", "objects"):
            self.update_title()
            self.schedule_repaint()

    def _on_changed(self) -> None:
        self.update_title()
        self.update_actions()  # now, not at the repaint: the next key may be Redo
        self.schedule_repaint()

    def travel(self, step: Callable[[], None]) -> None:
        """Undo or redo; the last run's "Tracking finished" no longer describes what is shown."""
        step()
        self.panel.clear_status()

    def set_keyframe(self, index: int, box: Box) -> None:
        self.annotator.set_keyframe(index, box)

    def nudge(self, dx: float, dy: float, dw: float, dh: float) -> None:
        self.annotator.nudge(self.index, dx, dy, dw, dh)

    def track(self, direction: int) -> bool:
        return self.annotator.track(self.index, direction)

    def stop(self) -> None:
        self.annotator.stop()

    def jump_keyframe(self, direction: int) -> None:
        if self.document is None:
            return
        keys = self.document.session.trajectory.keyframes()
        targets = [k for k in keys if (k - self.index) * direction > 0]
        if targets:
            self.go_to(targets[0] if direction > 0 else targets[-1])

    def suggestions(self) -> list[int]:
        """Low-confidence frames not yet looked at: tracked, under the plot's threshold, not rejected."""
        return self.annotator.suggestions(self.plot.threshold)

    def jump_suggestion(self, direction: int) -> None:
        """To the next low-confidence frame of any object; its object becomes the selected one."""
        per_object = self.objects.suggestions()
        ahead = {i for found in per_object.values() for i in found if (i - self.index) * direction > 0}
        frames = sorted(ahead)
        if frames:
            target = frames[0] if direction > 0 else frames[-1]
            session = self.document.session if self.document is not None else None
            if session is not None and target not in per_object.get(session.selected_id, []):
                self.annotator.select_object(next(k for k, found in per_object.items() if target in found))
            self.go_to(target)
        else:
            self.statusBar().showMessage("No more low-confidence frames that way", 3000)

    def confirm_suggestion(self) -> None:
        """The target really is absent or lost here: mark the frame absent, go to the next."""
        if self.index in self.suggestions():
            self.annotator.mark_absent(self.index)
            self.jump_suggestion(1)

    def reject_suggestion(self) -> None:
        """The box is right despite the low score: stop suggesting this frame, go to the next."""
        if self.index in self.suggestions():
            self.annotator.reject(self.index)
            self._mark_plot_dirty()  # its red circle goes
            self.jump_suggestion(1)

    # ================================================================== menus: export, tools, help
    def export_dialog(self) -> None:
        self.exports.export_dialog()

    def export_objects(self, path: Path, format: str) -> None:
        """Every object to ``path`` as ``format``; OSError or ValueError on failure."""
        self.exports.export_objects(path, format)

    def export_dataset(self, folder: Path) -> DatasetExport | None:
        return self.exports.export_dataset(folder)

    def show_finetune_dialog(self) -> FinetuneDialog | None:
        """Fine-tune on the open video's annotation in the background; None without a video."""
        return self.tools.show_finetune_dialog()

    def clear_frame_cache(self) -> int:
        """Delete the cached frames of every video but the open one; returns the bytes freed."""
        return self.tools.clear_frame_cache()

    def show_help(self) -> None:
        HelpDialog(self.shortcut_groups(), self).exec()

    def notice(self, message: str, title: str = "siamtrack") -> None:
        """Something went differently than asked but nothing failed (a lying header, a CPU fallback)."""
        self.last_notice = message
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        self.panel.set_status(message.splitlines()[0])
        self.message(QMessageBox.Icon.Information, title, message)

    def report(self, message: str, title: str = "siamtrack") -> None:
        """An error for the user: status bar always, and a dialog that does not block the caller."""
        self.last_error = message
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        self.message(QMessageBox.Icon.Warning, title, message)

    def message(self, icon: QMessageBox.Icon, title: str, text: str) -> None:
        if not self.prompts:
            return  # tests and unattended runs: the status bar and last_error carry it
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but asynchronous: tracking and repaints go on
        self._message_box = box

    # ================================================================== window
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            path = Path(urls[0].toLocalFile())
            # drop a single frame file: open its folder
            self.open_path(path.parent if path.suffix.lower() in IMAGE_SUFFIXES else path)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._docks_sized and not self.settings.window_state:
            self._docks_sized = True
            docks = (self.tracker_dock, self.score_dock, self.timeline_dock, self.objects_dock)
            size_docks(self, *docks, form_height=self.panel.sizeHint().height())

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.documents.confirm_unsaved():
            event.ignore()
            return
        # Cancel + quit + wait: no thread outlives the window, and the frames already
        # tracked are delivered to the session before it is closed.
        self.controller.shutdown()
        self.tools.shutdown()
        self._repaint_timer.stop()
        self.documents.dirty = False  # asked above
        self.close_document()
        self.settings.step = self.transport.big_step
        self.settings.blend = self.blend_action.isChecked()
        self.settings.trail = self.trail_action.isChecked()
        remember_geometry(self, self.settings)
        if self.persist_settings:
            save_settings(self.settings)
        event.accept()
