"""ScoreMapView: the raw score maps of a tracked frame, as the tracker saw them.

Everything here is raw: the map values and the tracker's raw score, labelled so. The
timeline shows the calibrated confidence instead (trackers/confidence.py).

``TrackResult.score_maps`` holds the map the tracker chose from first (SiamFC's
up-sampled chosen scale, SiamRPN's max over anchors, DSiam's fused map), then the
maps it came from (one per scale, anchor or layer). The first is drawn large with
a colour bar and its peak marked; the others are small tiles, each with its
label, sharing one colour scale so they can be compared with each other.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QLabel, QSizePolicy, QVBoxLayout, QWidget

from trackers.types import Box, ScoreMap

from .frame_view import SCORE_COLOURMAP

REMEMBERED_FRAMES = 300
"""Score maps kept for scrubbing back over a run; older ones are dropped (memory)."""
TILES_PER_ROW = 5
"""Enough for SiamFC's five scales or SiamRPN's five anchors on one row."""


def peak(values: np.ndarray) -> tuple[int, int]:
    """(row, column) of the largest finite value."""
    finite = np.where(np.isfinite(values), values, -np.inf)
    row, col = np.unravel_index(int(np.argmax(finite)), values.shape)
    return int(row), int(col)


def split_labels(labels: list[str]) -> tuple[str, list[str]]:
    """The words all tile labels start with, and what is left of each: "anchor ratio h/w 0.33",
    "anchor ratio h/w 0.5" -> ("anchor ratio h/w", ["0.33", "0.5"]). Five long labels in a row
    made the dock wider than its window and cut off the last map (issue 17 item 11)."""
    if len(labels) < 2:
        return "", labels
    words = [label.split(" ") for label in labels]
    common = 0
    while all(len(w) > common + 1 for w in words) and len({w[common] for w in words}) == 1:
        common += 1
    return " ".join(words[0][:common]), [" ".join(w[common:]) for w in words]


def _levels(values: np.ndarray) -> tuple[float, float]:
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    return (low, high) if high > low else (low, low + 1e-6)


def _image_view(
    layout: pg.GraphicsLayout, row: int, col: int
) -> tuple[pg.ViewBox, pg.ImageItem, pg.ScatterPlotItem]:
    view = layout.addViewBox(
        row=row, col=col, lockAspect=True, invertY=True, enableMouse=False, enableMenu=False
    )
    image = pg.ImageItem(axisOrder="row-major")
    image.setColorMap(pg.colormap.get(SCORE_COLOURMAP))
    view.addItem(image)
    marker = pg.ScatterPlotItem(symbol="+", size=14, pen=pg.mkPen("#00ff90", width=2), brush=None)
    view.addItem(marker)
    return view, image, marker


@dataclass(frozen=True)
class Remembered:
    """What a run said about one frame: its raw maps and score, the box it chose, the tracker."""

    maps: tuple[ScoreMap, ...]
    score: float | None = None
    box: Box | None = None
    tracker: str = ""


class ScoreMapView(QWidget):
    """The dock's content: big chosen map + colour bar + peak, small tiles for the rest."""

    blend_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._remembered: OrderedDict[int, Remembered] = OrderedDict()
        self._shown: tuple[ScoreMap, ...] = ()
        self._shown_about: Remembered | None = None

        # Two canvases rather than one grid: a nested grid sizes rows by their
        # preferred heights, which left the chosen map a thumbnail.
        self._plot = pg.GraphicsLayoutWidget()
        self._plot.setBackground("#202020")
        self._title = self._plot.addLabel("", row=0, col=0, colspan=2, size="9pt")
        self._main_view, self._main_image, self._main_peak = _image_view(self._plot.ci, 1, 0)
        # each view's image shape when it was last fitted: a view is fitted again only when the
        # shape changes (fitting re-lays out the view, which cost the GUI thread a stall each frame)
        self._fitted: dict[int, tuple[int, ...]] = {}
        self._colour_bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get(SCORE_COLOURMAP), interactive=False, width=14,
            label="map value (not the score)",
        )
        self._colour_bar.setImageItem(self._main_image)
        self._plot.addItem(self._colour_bar, row=1, col=1)
        self._tiles_canvas = pg.GraphicsLayoutWidget()
        self._tiles_canvas.setBackground("#202020")
        self._tiles_layout = self._tiles_canvas.ci
        self._tiles: list[tuple[pg.LabelItem, pg.ViewBox, pg.ImageItem, pg.ScatterPlotItem]] = []

        self._empty = QLabel("No score map for this frame: track it to see what the tracker saw.")
        self._empty.setWordWrap(True)
        self.blend_box = QCheckBox("Blend the chosen map onto the frame")
        self.blend_box.toggled.connect(self.blend_toggled)

        # the maps want every pixel of height the window can give (issue 17 item 11)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self._plot, 3)
        layout.addWidget(self._tiles_canvas, 2)
        layout.addWidget(self._empty)
        layout.addWidget(self.blend_box)
        self.show_maps(())

    # --- memory of recent frames -------------------------------------------------------
    def remember(
        self,
        index: int,
        maps: tuple[ScoreMap, ...],
        *,
        score: float | None = None,
        box: Box | None = None,
        tracker: str = "",
    ) -> None:
        if not maps:
            return
        self._remembered[index] = Remembered(tuple(maps), score, box, tracker)
        self._remembered.move_to_end(index)
        while len(self._remembered) > REMEMBERED_FRAMES:
            self._remembered.popitem(last=False)

    def about(self, index: int, box: Box | None = None) -> Remembered | None:
        """What the run that tracked ``index`` said, if ``box`` is still that run's box
        (after an undo or a later run the frame holds another box: its maps are not these)."""
        seen = self._remembered.get(index)
        if seen is None or (box is not None and seen.box is not None and seen.box != box):
            return None
        return seen

    def maps_for(self, index: int, box: Box | None = None) -> tuple[ScoreMap, ...]:
        seen = self.about(index, box)
        return () if seen is None else seen.maps

    def forget(self) -> None:
        self._remembered.clear()
        self.show_maps(())

    @property
    def shown(self) -> tuple[ScoreMap, ...]:
        return self._shown

    # --- drawing ------------------------------------------------------------------------
    def show_maps(self, maps: tuple[ScoreMap, ...], about: Remembered | None = None) -> None:
        if maps is self._shown and maps:
            return  # a repaint of the same result: nothing to redo
        self._shown = maps
        self._shown_about = about
        self._empty.setVisible(not maps)
        self._plot.setVisible(bool(maps))
        self._tiles_canvas.setVisible(len(maps) > 1)
        if not maps:
            self._title.setText("")
            self._main_image.clear()
            self._main_peak.setData([], [])
            self._set_tile_count(0)
            return
        chosen, rest = maps[0], maps[1:]
        values = np.asarray(chosen.values, dtype=np.float32)
        levels = _levels(values)
        row, col = peak(values)
        tracker = f"{about.tracker} " if about is not None and about.tracker else ""
        score = (
            f", raw score {about.score:.3g}" if about is not None and about.score is not None else ""
        )
        # The map's own peak is not the score (maps are shown before penalties and
        # windows, or up-sampled): only the tracker's raw score is named, and it is raw.
        prefix, _ = split_labels([m.label or "map" for m in rest])
        below = f"<br>below: one map per {prefix}" if prefix else ""
        # two short lines: one long one set the dock's minimum width past the window's
        self._title.setText(
            f"{tracker}map{score}<br>{chosen.label or 'chosen'} ({values.shape[1]}x{values.shape[0]}){below}"
        )
        self._main_image.setImage(values, levels=levels)
        self._colour_bar.setLevels(levels)
        self._main_peak.setData([col + 0.5], [row + 0.5])
        self._fit(self._main_view, values.shape)

        self._set_tile_count(len(rest))
        if rest:
            shared = _levels(np.concatenate([np.asarray(m.values, np.float32).ravel() for m in rest]))
            _, short = split_labels([m.label or "map" for m in rest])
            for (label, view, image, marker), score_map, text in zip(self._tiles, rest, short):
                tile = np.asarray(score_map.values, dtype=np.float32)
                r, c = peak(tile)
                label.setText(text)
                image.setImage(tile, levels=shared)
                marker.setData([c + 0.5], [r + 0.5])
                self._fit(view, tile.shape)

    def _fit(self, view, shape: tuple[int, ...]) -> None:
        """The view fitted to an image of ``shape``, unless it already is."""
        if self._fitted.get(id(view)) != shape:
            view.autoRange(padding=0)
            self._fitted[id(view)] = shape

    def _set_tile_count(self, count: int) -> None:
        if count == len(self._tiles):
            return
        self._tiles_layout.clear()
        self._fitted = {k: v for k, v in self._fitted.items() if k == id(self._main_view)}
        self._tiles = []
        # a row of tiles needs room for its labels and a readable map
        self._tiles_canvas.setMinimumHeight(110 * -(-count // TILES_PER_ROW))
        for i in range(count):
            row, col = divmod(i, TILES_PER_ROW)
            label = self._tiles_layout.addLabel("", row=2 * row, col=col, size="7pt")
            view, image, marker = _image_view(self._tiles_layout, 2 * row + 1, col)
            marker.setSize(8)
            self._tiles.append((label, view, image, marker))

    @property
    def title(self) -> str:
        return str(self._title.text)

    def tile_labels(self) -> list[str]:
        return [label.text for label, *_ in self._tiles]
