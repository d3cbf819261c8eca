"""ObjectDocks: the objects as the window shows them beside the selected one.

The Objects dock (the list), the lanes under the confidence plot (each object's absent
spans and low-confidence frames), and the other visible objects' boxes on the frame,
each in its object's colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow


class ObjectDocks:
    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def connect(self) -> None:
        window = self.window
        annotator, object_list, lanes, plot = window.annotator, window.object_list, window.lanes, window.plot
        object_list.settings_source = window.panel.settings
        object_list.frame_requested.connect(window.go_to)
        object_list.new_object_requested.connect(annotator.new_object)
        # a text field keeps letters and arrows: after Enter they navigate and track again
        object_list.editing_done.connect(lambda: window.view.setFocus(Qt.FocusReason.OtherFocusReason))
        lanes.frame_requested.connect(window.go_to)
        lanes.frame_x = self._plot_x
        plot.getViewBox().sigRangeChanged.connect(lambda *_: lanes.update())
        plot.getViewBox().sigResized.connect(lambda *_: lanes.update())
        lanes.object_requested.connect(annotator.select_object)
        window.view.object_clicked.connect(annotator.select_object)

    def suggestions(self) -> dict[int, list[int]]:
        """Per object, its low-confidence frames not yet rejected."""
        document, threshold = self.window.document, self.window.plot.threshold
        if document is None or threshold is None:
            return {}
        session = document.session
        return {
            obj.id: [
                i for i in session.low_confidence_frames(threshold, obj.id) if i not in document.rejected
            ]
            for obj in session.objects
        }

    def show_others(self, index: int) -> None:
        """The boxes of the visible objects other than the selected one, in their colours."""
        document, view = self.window.document, self.window.view
        if document is None:
            view.set_others([])
            return
        session = document.session
        others = []
        for obj in session.objects:
            entry = obj.trajectory[index]
            shown = obj.id != session.selected_id and not obj.hidden
            if shown and entry is not None and entry.box is not None:
                others.append((obj.id, entry.box, obj.colour))
        view.set_others(others)

    def _plot_x(self, frame: float) -> float:
        """The x of ``frame`` on the confidence plot, in the lanes' coordinates (they lie under it)."""
        plot, lanes = self.window.plot, self.window.lanes
        scene = plot.getViewBox().mapViewToScene(QPointF(frame, 0.0))
        return lanes.mapFromGlobal(plot.mapToGlobal(plot.mapFromScene(scene))).x()

    def show_lanes(self) -> None:
        document = self.window.document
        if document is None:
            return
        session = document.session
        suggestions = self.suggestions()
        lanes = [
            (obj.id, obj.colour, obj.trajectory.absent_spans(), suggestions.get(obj.id, []))
            for obj in session.objects
        ]
        self.window.lanes.set_lanes(document.frame_count, lanes, session.selected_id)
