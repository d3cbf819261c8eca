"""FrameView: one frame, its box, and optionally the score map blended over it.

Mouse: left-drag on the frame draws a new box; dragging the box moves it and its
handles resize it; middle-drag pans, right-drag or the wheel zooms.

Coordinates: the frame is an ``ImageItem`` in row-major order whose pixel ``(i, j)``
covers ``[i, i + 1) x [j, j + 1)`` in view coordinates, which is exactly the box
convention of :mod:`trackers.types`, so boxes need no conversion.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QWidget

from trackers.trajectory import Entry, Origin
from trackers.types import Box, Frame, ScoreMap

ORIGIN_COLOURS: dict[Origin, str] = {
    Origin.KEYFRAME: "#3ddc60",
    Origin.TRACKED: "#35a7ff",
    Origin.INTERPOLATED: "#ffc933",
    Origin.IMPORTED: "#e0e0e0",
}
MIN_BOX_SIDE = 2.0
"""A drag shorter than this (in frame pixels) is a click, not a box."""
SCORE_COLOURMAP = "inferno"
BLEND_ALPHA = 190
HANDLE_RADIUS = 5.0
"""pyqtgraph's handle radius in screen pixels: right for a box of 40 screen pixels or more."""
EDGE_HANDLES_FROM = 48.0
"""The four edge handles show only when the box's shorter side is at least this many screen
pixels: on a small box eight handles hide its outline (issue 17 item 9)."""
"""Opacity (of 255) of the highest score when blended; lower scores fade out."""


def _fading_lut() -> NDArray[np.uint8]:
    """The score colour map with alpha rising with the score: a blended map shows
    where the score map is high and leaves the rest of the search region visible."""
    lut = pg.colormap.get(SCORE_COLOURMAP).getLookupTable(nPts=256, alpha=True)
    lut[:, 3] = np.linspace(0, BLEND_ALPHA, 256).astype(np.uint8)
    return lut


class _DrawingViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a rectangle instead of panning."""

    rect_drawn = Signal(object)  # QRectF in view (frame) coordinates

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.drawing_enabled = True
        self._band = QGraphicsRectItem()
        pen = QPen(QColor("#ffffff"), 0, Qt.PenStyle.DashLine)  # width 0: one screen pixel at any zoom
        self._band.setPen(pen)
        self._band.setZValue(100)
        self._band.hide()
        self.addItem(self._band, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001 - pyqtgraph's event type
        if ev.button() != Qt.MouseButton.LeftButton or axis is not None or not self.drawing_enabled:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos(Qt.MouseButton.LeftButton))
        end = self.mapSceneToView(ev.scenePos())
        rect = QRectF(start, end).normalized()
        if ev.isFinish():
            self._band.hide()
            self.rect_drawn.emit(rect)
        else:
            self._band.setRect(rect)
            self._band.show()


class FrameView(pg.GraphicsView):
    """Shows a frame with the box of the current entry; emits the boxes the user draws or edits."""

    box_drawn = Signal(object)  # Box: a new box drawn with the mouse
    box_edited = Signal(object)  # Box: the shown box moved or resized with the mouse
    object_clicked = Signal(int)  # another object's id: a click inside its box

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="#202020")
        self._view = _DrawingViewBox()
        self.setCentralItem(self._view)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._view.addItem(self._image)

        self._overlay = pg.ImageItem(axisOrder="row-major")
        self._overlay.setLookupTable(_fading_lut())
        self._overlay.setZValue(5)
        self._overlay.hide()
        self._view.addItem(self._overlay, ignoreBounds=True)
        self._blend = False
        self._score_map: ScoreMap | None = None

        self._trail = pg.PlotDataItem(pen=pg.mkPen("#35a7ff", width=1.5), symbol=None)
        self._trail.setZValue(8)
        self._view.addItem(self._trail, ignoreBounds=True)

        # Moves and resizes snap to whole pixels: box edges then fall on pixel edges.
        self._roi = pg.ROI(
            (0, 0),
            (10, 10),
            movable=True,
            rotatable=False,
            resizable=True,
            removable=False,
            translateSnap=True,
            scaleSnap=True,
            snapSize=1.0,
        )
        # a handle on every corner and edge, each scaling about the opposite one
        for handle, anchor in (
            ((0, 0), (1, 1)),
            ((1, 0), (0, 1)),
            ((0, 1), (1, 0)),
            ((1, 1), (0, 0)),
            ((0.5, 0), (0.5, 1)),
            ((0.5, 1), (0.5, 0)),
            ((0, 0.5), (1, 0.5)),
            ((1, 0.5), (0, 0.5)),
        ):
            self._roi.addScaleHandle(handle, anchor)
        self._roi.setZValue(10)
        self._roi.hide()
        self._roi.sigRegionChangeFinished.connect(self._on_roi_finished)
        self._view.addItem(self._roi, ignoreBounds=True)
        self._view.rect_drawn.connect(self._on_rect_drawn)
        self._view.sigRangeChanged.connect(lambda *_: self._update_handles())
        self._roi.sigRegionChanged.connect(lambda *_: self._update_handles())

        self._hint = QLabel(self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        self._hint.setStyleSheet(
            "QLabel { background: rgba(0, 0, 0, 170); color: white; padding: 10px 16px;"
            " border-radius: 6px; font-size: 15px; }"
        )
        self._hint.hide()
        self._hint_centred = True

        self._info = QLabel(self)
        self._info.setStyleSheet(
            "QLabel { background: rgba(0, 0, 0, 150); color: white; padding: 3px 6px;"
            " font-family: monospace; }"
        )
        self._info.move(6, 6)
        self._frame_size: tuple[int, int] | None = None
        self._entry: Entry | None = None

    # --- what is shown --------------------------------------------------------------
    def set_frame(self, frame: Frame | None) -> None:
        if frame is None:
            self._image.clear()
            self._frame_size = None
            return
        size = (frame.shape[1], frame.shape[0])
        self._image.setImage(frame, autoLevels=False, levels=(0, 255))
        if size != self._frame_size:
            self._frame_size = size
            self._roi.maxBounds = QRectF(0, 0, size[0], size[1])
            self.fit()

    def set_entry(self, entry: Entry | None) -> None:
        """The box of the shown frame, coloured by where it came from; None hides it."""
        self._entry = entry
        if entry is None or entry.box is None:
            self._roi.hide()
            return
        box = entry.box
        colour = ORIGIN_COLOURS.get(entry.origin, "#ffffff")
        self._roi.setPen(pg.mkPen(colour, width=2))
        # finish=False: a box set from the model is not an edit, so no box_edited
        self._roi.setPos((box.x, box.y), update=False, finish=False)
        self._roi.setSize((box.w, box.h), update=True, finish=False)
        for handle in self._roi.getHandles():
            handle.pen = pg.mkPen(colour)
            handle.currentPen = handle.pen
            handle.update()
        self._roi.show()
        self._update_handles()

    def set_hint(self, text: str | None, centred: bool = True) -> None:
        """A what-to-do-next line over the view (centred, or at the top); None hides it."""
        if not text:
            self._hint.hide()
            return
        self._hint.setText(text)
        self._hint_centred = centred
        self._place_hint()
        self._hint.show()
        self._hint.raise_()

    def hint_text(self) -> str:
        return self._hint.text() if not self._hint.isHidden() else ""

    def _place_hint(self) -> None:
        width = min(self.width() - 40, 560)
        self._hint.setFixedWidth(max(200, width))
        self._hint.adjustSize()
        x = (self.width() - self._hint.width()) // 2
        y = (self.height() - self._hint.height()) // 2 if self._hint_centred else 44
        self._hint.move(max(0, x), max(0, y))

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        hint = getattr(self, "_hint", None)  # pyqtgraph resizes before __init__ is done
        if hint is not None and not hint.isHidden():
            self._place_hint()

    def _update_handles(self) -> None:
        """Handles sized to the box as it appears on screen: smaller on a small box,
        the edge ones hidden, so the outline stays visible (issue 17 item 9)."""
        if not self._roi.isVisible():
            return
        try:
            px, py = self._view.viewPixelSize()
        except Exception:  # noqa: BLE001 - not laid out yet
            return
        if not (px > 0 and py > 0):
            return
        size = self._roi.size()
        side = min(size.x() / px, size.y() / py)
        radius = max(2.0, min(HANDLE_RADIUS, side / 8.0))
        for info in self._roi.handles:
            handle, pos = info["item"], info["pos"]
            edge = 0.5 in (pos.x(), pos.y())
            handle.setVisible(side >= EDGE_HANDLES_FROM or not edge)
            if handle.radius != radius:
                handle.prepareGeometryChange()
                handle.radius = radius
                handle.buildPath()
                handle._shape = None
                handle.update()

    def handle_sizes(self) -> list[tuple[float, bool]]:
        """(radius, visible) of each handle, for tests."""
        return [(info["item"].radius, info["item"].isVisible()) for info in self._roi.handles]

    def set_info(self, text: str) -> None:
        self._info.setText(text)
        self._info.adjustSize()

    def info_text(self) -> str:
        return self._info.text()

    def set_trail(self, centres: NDArray[np.float64] | None) -> None:
        """Box centres (N x 2, NaN rows break the line) drawn as a trail; None hides it."""
        if centres is None or len(centres) == 0:
            self._trail.setData([], [])
        else:
            self._trail.setData(centres[:, 0], centres[:, 1], connect="finite")

    def set_score_map(self, score_map: ScoreMap | None) -> None:
        """The map to blend over the frame where it lies (shown only while blending is on)."""
        self._score_map = score_map
        self._update_overlay()

    def set_blend(self, on: bool) -> None:
        self._blend = on
        self._update_overlay()

    @property
    def blend(self) -> bool:
        return self._blend

    def _update_overlay(self) -> None:
        score_map = self._score_map
        if not self._blend or score_map is None or score_map.values.size == 0:
            self._overlay.hide()
            return
        values = np.asarray(score_map.values, dtype=np.float32)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        self._overlay.setImage(values, levels=(low, high if high > low else low + 1e-6))
        region = score_map.region
        self._overlay.setRect(QRectF(region.x, region.y, region.w, region.h))
        self._overlay.show()

    def overlay_visible(self) -> bool:
        return self._overlay.isVisible()

    # --- view -----------------------------------------------------------------------
    def fit(self) -> None:
        if self._frame_size is not None:
            width, height = self._frame_size
            self._view.setRange(QRectF(0, 0, width, height), padding=0.02)

    def zoom(self, factor: float) -> None:
        """Zoom about the centre of the view; factor > 1 zooms in."""
        self._view.scaleBy((1 / factor, 1 / factor))

    def shown_box(self) -> Box | None:
        """The box as the ROI shows it now (after any drag), or None."""
        if not self._roi.isVisible():
            return None
        pos, size = self._roi.pos(), self._roi.size()
        return Box(pos.x(), pos.y(), size.x(), size.y())

    def map_to_widget(self, x: float, y: float) -> QPointF:
        """Widget coordinates of a frame point; tests use it to drive the mouse."""
        scene = self._view.mapViewToScene(QPointF(x, y))
        return QPointF(self.mapFromScene(scene))

    # --- mouse -----------------------------------------------------------------------
    def _clip(self, box: Box) -> Box:
        if self._frame_size is None:
            return box
        return box.clipped(*self._frame_size)

    def _on_rect_drawn(self, rect: QRectF) -> None:
        # corners rounded to pixel edges, like the handles snap
        x0, y0 = round(rect.left()), round(rect.top())
        box = self._clip(Box.from_corners(x0, y0, round(rect.right()), round(rect.bottom())))
        if box.w >= MIN_BOX_SIDE and box.h >= MIN_BOX_SIDE:
            self.box_drawn.emit(box)

    def _on_roi_finished(self) -> None:
        box = self.shown_box()
        # Clip first, then check the size: a box dragged (nearly) off the frame clips to
        # nothing, and a zero-size keyframe is not a box anyone meant.
        box = self._clip(box) if box is not None else None
        if box is not None and box.w >= MIN_BOX_SIDE and box.h >= MIN_BOX_SIDE:
            if self._entry is None or box != self._entry.box:
                self.box_edited.emit(box)
        else:
            self.set_entry(self._entry)  # back to the box the model holds

    # --- the other objects (issue 21) ---------------------------------------------------
    def set_others(self, others: list[tuple[int, Box, str]]) -> None:
        """The boxes of the objects that are not selected, ``(id, box, colour)``: thin, dashed,
        not editable. A click inside one emits ``object_clicked`` with its id."""
        # (set up here, not in __init__, to keep this addition in one place)
        items: list[QGraphicsRectItem] = getattr(self, "_other_items", [])
        self._other_items = items
        while len(items) < len(others):
            item = QGraphicsRectItem()
            item.setZValue(9)
            self._view.addItem(item, ignoreBounds=True)
            items.append(item)
        for item, (_, box, colour) in zip(items, others):
            pen = QPen(QColor(colour))
            pen.setWidthF(1.5)
            pen.setCosmetic(True)
            pen.setStyle(Qt.PenStyle.DashLine)
            item.setPen(pen)
            item.setRect(QRectF(box.x, box.y, box.w, box.h))
            item.show()
        for item in items[len(others) :]:
            item.hide()
        self._others = list(others)
        if not getattr(self, "_click_hooked", False):
            self._click_hooked = True
            self.scene().sigMouseClicked.connect(self._on_scene_click)

    def others(self) -> list[tuple[int, Box, str]]:
        return list(getattr(self, "_others", []))

    def object_at(self, x: float, y: float) -> int | None:
        """The smallest other object's box holding the frame point, or None."""
        others = self.others()
        inside = [(b.w * b.h, i) for i, b, _ in others if b.x <= x < b.x + b.w and b.y <= y < b.y + b.h]
        return min(inside)[1] if inside else None

    def _on_scene_click(self, event) -> None:  # noqa: ANN001 - pyqtgraph's MouseClickEvent
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self._view.mapSceneToView(event.scenePos())
        object_id = self.object_at(point.x(), point.y())
        if object_id is not None:
            self.object_clicked.emit(object_id)
