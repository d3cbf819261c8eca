"""Where the window's parts sit: the docks around the frame view, the first-run size and
proportions, and the geometry remembered between runs (in the app's settings)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QVBoxLayout, QWidget

from app.model.settings import AppSettings

Area = Qt.DockWidgetArea


def add_docks(
    window: QMainWindow, panel: QWidget, score_view: QWidget, timeline: list[QWidget], objects: QWidget
) -> tuple[QDockWidget, QDockWidget, QDockWidget, QDockWidget]:
    """The tracker panel and score maps on the right, the timeline (its widgets stacked, the
    second one stretching) at the bottom, the object list on the left."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(timeline):
        layout.addWidget(widget, 1 if i == 1 else 0)
    return (
        _dock(window, "Tracker", panel, Area.RightDockWidgetArea),
        _dock(window, "Score maps", score_view, Area.RightDockWidgetArea),
        _dock(window, "Timeline and confidence", box, Area.BottomDockWidgetArea),
        _dock(window, "Objects", objects, Area.LeftDockWidgetArea),
    )


def _dock(window: QMainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title)  # saveState needs names
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock


def first_size(window: QMainWindow) -> None:
    screen = QApplication.primaryScreen()
    room = screen.availableGeometry() if screen is not None else None
    width, height = 1440, 900
    # the offscreen platform's pretend screen is 800x600; screenshots want the real size
    if room is not None and room.width() > 0 and QApplication.platformName() != "offscreen":
        width, height = min(width, room.width()), min(height, room.height())
    window.resize(width, height)


def size_docks(window: QMainWindow, tracker: QDockWidget, score: QDockWidget, timeline: QDockWidget,
               objects: QDockWidget, form_height: int) -> None:
    """First-run proportions (a saved window state replaces them): the frame gets
    most of the room, the score maps more than the tracker form, the confidence
    plot enough to read."""
    window.resizeDocks([tracker], [480], Qt.Orientation.Horizontal)
    window.resizeDocks([timeline], [230], Qt.Orientation.Vertical)
    form = form_height + 30  # + the dock's title bar
    window.resizeDocks([tracker, score], [form, 2000], Qt.Orientation.Vertical)
    window.resizeDocks([objects], [220], Qt.Orientation.Horizontal)


def restore_geometry(window: QMainWindow, settings: AppSettings) -> None:
    try:
        if settings.geometry:
            window.restoreGeometry(QByteArray.fromHex(settings.geometry.encode()))
        if settings.window_state:
            window.restoreState(QByteArray.fromHex(settings.window_state.encode()))
    except ValueError:
        pass


def remember_geometry(window: QMainWindow, settings: AppSettings) -> None:
    settings.geometry = bytes(window.saveGeometry().toHex()).decode()
    settings.window_state = bytes(window.saveState().toHex()).decode()
