"""The objects of the open video: a list to add, select, relabel, recolour, hide, delete and
jump through them, and a compact lane per object under the confidence plot.

Both only show the session (``app.model.session``) and send commands to it; the session owns
the objects, their order and the selection, and every change is one undo step there.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QGridLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.model.session import AnnotationSession, ChangeEvent, TrackerSettings

LANE_HEIGHT = 7


def _swatch(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class ObjectList(QWidget):
    """Add, select, relabel, rename, recolour, hide, delete; jump to an object's first or last frame."""

    frame_requested = Signal(int)
    new_object_requested = Signal()
    editing_done = Signal()
    """Enter in the label or name field: the keys are the window's again (T, N, arrows)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: AnnotationSession | None = None
        self.list = QListWidget()
        self.list.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.label_box = QComboBox()
        self.label_box.setEditable(True)
        self.label_box.setToolTip("The selected object's label (pick one or type a new one, then Enter)")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (optional)")
        self.hidden_box = QCheckBox("Hide")
        self.own_settings_box = QCheckBox("Own tracker")
        self.own_settings_box.setToolTip(
            "Track this object with the tracker settings chosen now, whatever the panel says later"
        )
        self.settings_source: Callable[[], TrackerSettings] | None = None
        """The tracker panel's current settings (what "Own tracker" keeps for the object)."""
        self.add_button = QPushButton("New")
        self.add_button.setToolTip("A new object: draw its box next")
        self.delete_button = QPushButton("Delete")
        self.colour_button = QPushButton("Colour…")
        self.first_button = QPushButton("First frame")
        self.last_button = QPushButton("Last frame")
        grid = QGridLayout()
        grid.addWidget(self.label_box, 0, 0, 1, 2)
        grid.addWidget(self.name_edit, 1, 0, 1, 2)
        grid.addWidget(self.add_button, 2, 0)
        grid.addWidget(self.delete_button, 2, 1)
        grid.addWidget(self.colour_button, 3, 0)
        grid.addWidget(self.hidden_box, 3, 1)
        grid.addWidget(self.first_button, 4, 0)
        grid.addWidget(self.last_button, 4, 1)
        grid.addWidget(self.own_settings_box, 5, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(grid)
        self.list.currentRowChanged.connect(self._on_row)
        self.add_button.clicked.connect(self.new_object_requested)
        self.delete_button.clicked.connect(self.delete_selected)
        self.colour_button.clicked.connect(self._pick_colour)
        self.hidden_box.toggled.connect(lambda on: self._update(hidden=on))
        self.own_settings_box.toggled.connect(self._own_settings)
        self.label_box.lineEdit().returnPressed.connect(self._relabel)
        self.label_box.activated.connect(lambda _: self._relabel())
        self.name_edit.editingFinished.connect(lambda: self._update(name=self.name_edit.text().strip()))
        self.label_box.lineEdit().returnPressed.connect(self.editing_done)
        self.name_edit.returnPressed.connect(self.editing_done)
        self.first_button.clicked.connect(lambda: self._jump(first=True))
        self.last_button.clicked.connect(lambda: self._jump(first=False))
        self.colour_dialog: Callable[[QColor], QColor] = lambda c: QColorDialog.getColor(
            c, self, "Object colour"
        )
        self.setEnabled(False)

    def set_session(self, session: AnnotationSession | None) -> None:
        if self.session is not None:
            self.session.remove_listener(self._on_event)
        self.session = session
        if session is not None:
            session.add_listener(self._on_event)
        self.setEnabled(session is not None)
        self.refresh()

    def _on_event(self, event: ChangeEvent) -> None:
        if event.kind in ("objects", "select", "undo", "redo", "restore"):
            self.refresh()

    def refresh(self) -> None:
        session = self.session
        with ExitStack() as stack:
            for widget in (self.list, self.label_box, self.hidden_box, self.own_settings_box):
                stack.enter_context(QSignalBlocker(widget))
            self.list.clear()
            self.label_box.clear()
            if session is None:
                return
            for obj in session.objects:
                item = QListWidgetItem(_swatch(obj.colour), obj.title + ("  (hidden)" if obj.hidden else ""))
                item.setData(Qt.ItemDataRole.UserRole, obj.id)
                self.list.addItem(item)
            self.list.setCurrentRow(session.object_ids.index(session.selected_id))
            selected = session.object()
            self.label_box.addItems(list(session.labels))
            self.label_box.setCurrentText(selected.label)
            self.name_edit.setText(selected.name)
            self.hidden_box.setChecked(selected.hidden)
            self.own_settings_box.setChecked(selected.settings is not None)
            if selected.settings is not None:
                self.own_settings_box.setToolTip(f"This object is tracked with {selected.settings.tracker}")
            self.delete_button.setEnabled(len(session.objects) > 1)

    def _on_row(self, row: int) -> None:
        if self.session is not None and 0 <= row < len(self.session.objects):
            self.session.select(self.session.object_ids[row])

    def _update(self, **changes: object) -> None:
        if self.session is not None:
            self.session.update_object(**changes)  # type: ignore[arg-type]

    def _own_settings(self, on: bool) -> None:
        if self.session is None:
            return
        if on and self.settings_source is not None:
            self._update(settings=self.settings_source())
        elif not on:
            self._update(clear_settings=True)

    def _relabel(self) -> None:
        text = self.label_box.currentText().strip()
        if text and self.session is not None and text != self.session.object().label:
            self._update(label=text)

    def _pick_colour(self) -> None:
        if self.session is None:
            return
        colour = self.colour_dialog(QColor(self.session.object().colour))
        if colour.isValid():
            self._update(colour=colour.name())

    def delete_selected(self) -> None:
        if self.session is not None and len(self.session.objects) > 1:
            self.session.delete_object()

    def _jump(self, first: bool) -> None:
        if self.session is None:
            return
        annotated = [i for i, e in self.session.trajectory.annotated() if e.box is not None]
        if annotated:
            self.frame_requested.emit(annotated[0] if first else annotated[-1])


class ObjectLanes(QWidget):
    """One thin lane per object: its absent spans in grey, its suggestions as ticks in its
    colour; the selected object's lane is outlined. A click selects the object and the frame."""

    frame_requested = Signal(int)
    object_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lanes: list[tuple[int, str, list[tuple[int, int]], list[int]]] = []
        self._selected: int | None = None
        self._frames = 1
        self.frame_x: Callable[[float], float] | None = None
        """Where a frame is, in this widget's x: set to the plot's, so that a lane's tick sits
        under that frame's point on the confidence plot (default: the full width)."""
        self.setMinimumHeight(LANE_HEIGHT)

    def set_lanes(
        self,
        frame_count: int,
        lanes: list[tuple[int, str, list[tuple[int, int]], list[int]]],
        selected: int | None,
    ) -> None:
        """``lanes``: per object ``(id, colour, absent spans, suggested frames)``."""
        self._frames = max(1, frame_count)
        self._lanes = lanes
        self._selected = selected
        self.setFixedHeight(max(LANE_HEIGHT, LANE_HEIGHT * len(lanes) + 2))
        self.update()

    def lanes(self) -> list[tuple[int, str, list[tuple[int, int]], list[int]]]:
        return list(self._lanes)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        for row, (object_id, colour, absent, suggested) in enumerate(self._lanes):
            top = 1 + row * LANE_HEIGHT
            for start, stop in absent:
                left = self._x(start)
                painter.fillRect(
                    QRectF(left, top, max(1.0, self._x(stop) - left), LANE_HEIGHT - 2),
                    QColor("#707070"),
                )
            painter.setPen(QColor(colour))
            for frame in suggested:
                x = round(self._x(frame))
                painter.drawLine(x, top, x, top + LANE_HEIGHT - 2)
            if object_id == self._selected:
                painter.setPen(QColor("#ffffff"))
                painter.drawRect(QRectF(0, top - 1, self.width() - 1, LANE_HEIGHT))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        row = int((event.position().y() - 1) // LANE_HEIGHT)
        if 0 <= row < len(self._lanes):
            self.object_requested.emit(self._lanes[row][0])
        first, last = self._x(0), self._x(self._frames)
        frame = (event.position().x() - first) / max(1e-9, last - first) * self._frames
        self.frame_requested.emit(int(min(max(round(frame), 0), self._frames - 1)))

    def _x(self, frame: float) -> float:
        return self.frame_x(frame) if self.frame_x is not None else frame * self.width() / self._frames
