"""The values that cross every boundary of siamtrack: frames, boxes, score maps, results.

Conventions, stated once for the whole project:

* A **frame** is an ``H x W x 3`` ``uint8`` array in **RGB** order. Frames are
  converted once, at decode, and handed around read-only.
* A **box** is ``x, y, w, h`` in **0-based pixels**: pixel ``i`` covers the
  continuous interval ``[i, i + 1)``. A box covering exactly pixels 10..19 in x is
  ``x=10, w=10``; its centre is ``x + w / 2 = 15.0``. File formats with other
  conventions (OTB's 1-based MATLAB pixels, corner formats) convert at their edge.
* A **score map** is what the tracker maximised over the search region, together with
  the frame region it covers, so that a viewer can lay it over the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Frame = NDArray[np.uint8]
"""H x W x 3, RGB, uint8."""


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in 0-based pixels; pixel i spans [i, i+1)."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_center(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(cx - w / 2.0, cy - h / 2.0, w, h)

    @classmethod
    def from_corners(cls, x0: float, y0: float, x1: float, y1: float) -> Box:
        """From the top-left corner and the exclusive bottom-right corner."""
        return cls(x0, y0, x1 - x0, y1 - y0)

    @classmethod
    def from_one_based(cls, x: float, y: float, w: float, h: float) -> Box:
        """From OTB's 1-based MATLAB pixels, where the first pixel is 1."""
        return cls(x - 1.0, y - 1.0, w, h)

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"x,y,w,h"`` (commas, tabs or spaces); raise ValueError on anything else."""
        parts = text.replace("\t", ",").replace(" ", ",").split(",")
        parts = [p for p in parts if p != ""]
        if len(parts) != 4:
            raise ValueError(f"a box needs 4 numbers x,y,w,h, got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"a box needs 4 numbers x,y,w,h, got {text!r}") from None
        return cls(*values)

    def to_one_based(self) -> tuple[float, float, float, float]:
        return (self.x + 1.0, self.y + 1.0, self.w, self.h)

    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def corners(self) -> tuple[float, float, float, float]:
        """Top-left and exclusive bottom-right corner: x0, y0, x1, y1."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    def as_array(self) -> NDArray[np.float64]:
        return np.array([self.x, self.y, self.w, self.h], dtype=np.float64)

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.x, self.y, self.w, self.h))

    def is_valid(self) -> bool:
        """Finite, with positive width and height."""
        return self.is_finite() and self.w > 0 and self.h > 0

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside a width x height frame (may have zero size)."""
        x0, y0, x1, y1 = self.corners()
        x0 = min(max(x0, 0.0), width)
        y0 = min(max(y0, 0.0), height)
        x1 = min(max(x1, 0.0), width)
        y1 = min(max(y1, 0.0), height)
        return Box.from_corners(x0, y0, max(x1, x0), max(y1, y0))

    def __str__(self) -> str:
        return f"{self.x:.2f},{self.y:.2f},{self.w:.2f},{self.h:.2f}"


@dataclass(frozen=True, slots=True)
class ScoreMap:
    """One score map and the frame region it covers.

    ``values[0, 0]`` lies over the top-left corner of ``region`` and
    ``values[-1, -1]`` over its bottom-right corner; a viewer stretches the map
    over the region.
    """

    values: NDArray[np.float32]
    region: Box
    label: str = ""


@dataclass(frozen=True, slots=True)
class TrackResult:
    """What a tracker says about one frame."""

    box: Box
    score: float
    """The peak score the decision was taken on. Larger is more confident."""
    score_maps: tuple[ScoreMap, ...] = field(default_factory=tuple)
    """The maps the tracker looked at; the one it chose from comes first."""
    untrained: bool = False
    """True when the tracker ran on random weights: its boxes mean nothing."""

    @property
    def score_map(self) -> ScoreMap | None:
        return self.score_maps[0] if self.score_maps else None


def as_frame(image: NDArray) -> Frame:
    """Check that ``image`` is an RGB uint8 frame and return it read-only."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"a frame must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a frame must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    if image.flags.writeable:
        image = image.view()
        image.flags.writeable = False
    return image


@dataclass(frozen=True)
class AnnotatedSequence:
    """One annotated sequence: a frame source and its 0-based ground truth.

    Evaluation and training read it (``trackers.evaluation.datasets`` finds them); the
    formats that hold ground truth (``trackers.formats.got10k``) build it, so it lives
    here, below both, and neither imports the other to name it.
    """

    name: str
    source: Path
    groundtruth: np.ndarray
    """N x 4 float, 0-based x, y, w, h; NaN rows where the target is absent."""
