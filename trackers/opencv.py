"""OpenCV's built-in trackers behind the siamtrack Tracker protocol.

They are the peers the Siamese trackers are measured against. Two points need care:

* OpenCV wants BGR images and integer ``(x, y, w, h)`` rectangles, while siamtrack
  hands around RGB frames and float 0-based boxes; both convert here, at the edge.
* The DNN trackers (Nano, Vit) need ONNX files that are not in OpenCV's wheel. They are
  looked up in ``model_dir``, then ``$SIAMTRACK_MODEL_DIR``, then the copies bundled in
  ``resources/models`` (Apache-2.0, see the README there).

Nothing here touches cv2's global state (threads, log level): the app and the
benchmark share one process, and a tracker module should not retune it for them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trackers.geometry import clamp_box
from trackers.protocol import TrackerError
from trackers.types import Box, Frame, TrackResult

MODEL_DIR_ENV = "SIAMTRACK_MODEL_DIR"

KINDS: tuple[str, ...] = ("mil", "kcf", "csrt", "nano", "vit")

# Only these report a meaningful confidence; in OpenCV 5 the others inherit a
# getTrackingScore() that always answers -1.
_SCORED_KINDS = frozenset({"nano", "vit"})

# The classes that only opencv-contrib builds carry (see shared/docs/ECOSYSTEM.md §2).
_CONTRIB_CLASSES = {"kcf": "TrackerKCF", "csrt": "TrackerCSRT"}

# The smallest rectangle each tracker survives, in pixels per side. Measured on OpenCV 5.0:
# MIL's init never returns (an endless loop in its sampler) below 5 x 5, which would hang
# the run and every thread waiting on it; CSRT's init fails on 2 x 2 at some borders.
# A smaller box is grown around its centre to this size before OpenCV sees it.
_MIN_SIDE = {"mil": 5, "csrt": 3}


@dataclass(frozen=True)
class _ModelFile:
    """One ONNX file: the subfolder it sits in inside the shared models layout, and its name."""

    subfolder: str
    filename: str


_MODEL_FILES: dict[str, dict[str, _ModelFile]] = {
    # Keys are the cv2 Params attribute each file is assigned to.
    "nano": {
        "backbone": _ModelFile("nanotrack-v2", "nanotrack_backbone_sim.onnx"),
        "neckhead": _ModelFile("nanotrack-v2", "nanotrack_head_sim.onnx"),
    },
    "vit": {
        "net": _ModelFile("vittrack", "vitTracker.onnx"),
    },
}


def bundled_model_dir() -> Path:
    """The ONNX files shipped with siamtrack (``resources/models``)."""
    from resources import RESOURCES_DIR

    return RESOURCES_DIR / "models"


def resolve_model_dir(model_dir: str | Path | None = None) -> Path:
    """The folder to look for ONNX files in: explicit argument, then the env var, then the bundled copies.

    The first one given wins; an explicit choice that lacks the files is reported,
    not silently replaced by another folder.
    """
    if model_dir is not None and str(model_dir) != "":
        return Path(model_dir).expanduser()
    env = os.environ.get(MODEL_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return bundled_model_dir()


def find_model_file(model_dir: Path, model: _ModelFile) -> Path:
    """Find ``model`` at ``<dir>/<subfolder>/<file>`` (shared layout) or flat ``<dir>/<file>``."""
    for candidate in (model_dir / model.subfolder / model.filename, model_dir / model.filename):
        if candidate.is_file():
            return candidate
    raise TrackerError(
        f"model file {model.filename} not found in {model_dir} (nor in its {model.subfolder}/ "
        f"subfolder); pass --model-dir or set {MODEL_DIR_ENV}"
    )


def _grow(start: int, length: int, minimum: int, limit: int) -> tuple[int, int]:
    """``start, length`` widened to ``minimum`` around its middle, kept inside ``0..limit``."""
    if length >= minimum:
        return start, length
    start = max(0, min(start - (minimum - length) // 2, limit - minimum))
    return start, minimum


def _to_cv_rect(box: Box, width: int, height: int, min_side: int = 1) -> tuple[int, int, int, int]:
    """Round a float 0-based box to the integer rectangle OpenCV wants, inside the frame.

    Corners are rounded (not x and w separately) so the rectangle covers the pixels
    whose majority lies in the box; it is then kept at least ``min_side`` pixels in size.
    """
    if not box.is_valid():
        raise ValueError(f"the box must have a positive size and finite values, got {box}")
    clipped = box.clipped(width, height)
    if clipped.w <= 0 or clipped.h <= 0:
        raise ValueError(f"the box {box} lies outside the {width}x{height} frame")
    if width < min_side or height < min_side:
        raise TrackerError(
            f"the {width}x{height} frame is too small for this tracker (it needs {min_side} pixels a side)"
        )
    x0, y0, x1, y1 = clipped.corners()
    ix0 = min(math.floor(x0 + 0.5), width - 1)
    iy0 = min(math.floor(y0 + 0.5), height - 1)
    ix1 = max(math.floor(x1 + 0.5), ix0 + 1)
    iy1 = max(math.floor(y1 + 0.5), iy0 + 1)
    x, w = _grow(ix0, min(ix1, width) - ix0, min_side, width)
    y, h = _grow(iy0, min(iy1, height) - iy0, min_side, height)
    return (x, y, w, h)


def _visible_fraction(box: Box, width: int, height: int) -> float:
    """The share of ``box``'s area that lies inside the frame."""
    area = box.w * box.h
    inside = box.clipped(width, height)
    return inside.w * inside.h / area if area > 0 else 0.0


def _to_bgr(frame: Frame) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a frame must be H x W x 3 uint8 RGB, got {frame.shape} {frame.dtype}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


class OpenCVTracker:
    """One of OpenCV's trackers ("mil", "kcf", "csrt", "nano", "vit"), named ``cv-<kind>``."""

    def __init__(self, kind: str, model_dir: str | Path | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(
                f"unknown OpenCV tracker kind {kind!r}; choose one of {', '.join(KINDS)}"
            )
        self.kind = kind
        self.name = f"cv-{kind}"
        self._model_paths: dict[str, Path] = {}
        if kind in _MODEL_FILES:
            folder = resolve_model_dir(model_dir)
            self._model_paths = {
                attr: find_model_file(folder, model) for attr, model in _MODEL_FILES[kind].items()
            }
        contrib_class = _CONTRIB_CLASSES.get(kind)
        if contrib_class is not None and not hasattr(cv2, contrib_class):
            raise TrackerError(
                f"{self.name} needs cv2.{contrib_class}, which only opencv-contrib has; "
                "install opencv-contrib-python-headless"
            )
        # Built now so that a broken model file fails at creation, not on the first frame.
        self._cv: Any = self._create()
        self._used = False
        self._box: Box | None = None

    def _create(self) -> Any:
        try:
            if self.kind == "mil":
                return cv2.TrackerMIL.create()
            if self.kind == "kcf":
                return cv2.TrackerKCF.create()
            if self.kind == "csrt":
                return cv2.TrackerCSRT.create()
            if self.kind == "nano":
                params = cv2.TrackerNano_Params()
                params.backbone = str(self._model_paths["backbone"])
                params.neckhead = str(self._model_paths["neckhead"])
                return cv2.TrackerNano.create(params)
            params = cv2.TrackerVit_Params()
            params.net = str(self._model_paths["net"])
            return cv2.TrackerVit.create(params)
        except cv2.error as exc:
            raise TrackerError(
                f"{self.name}: OpenCV could not create the tracker: {_first_line(exc)}"
            ) from exc

    def init(self, frame: Frame, box: Box) -> None:
        height, width = frame.shape[:2]
        rect = _to_cv_rect(box, width, height, _MIN_SIDE.get(self.kind, 1))
        # A second init gets a fresh instance: re-initialising OpenCV 5's KCF on a box of
        # another size fails inside cv2 (and corrupts its heap), and MIL keeps old state.
        # Creating one costs under 10 ms, even for Nano and Vit.
        if self._used:
            self._cv = self._create()
        self._used = True
        try:
            self._cv.init(_to_bgr(frame), rect)
        except cv2.error as exc:
            hint = ""
            if self.kind == "mil":
                # MIL learns from background patches around the box: a box (nearly) filling
                # the frame leaves none, and OpenCV only says "negSamples.empty()".
                hint = " (MIL needs background around the box: draw a smaller box)"
            raise TrackerError(
                f"{self.name}: init failed on box {rect}{hint}: {_first_line(exc)}"
            ) from exc
        self._box = Box(*rect)

    def update(self, frame: Frame) -> TrackResult:
        if self._box is None:
            raise TrackerError(f"{self.name}: update() called before init()")
        try:
            ok, rect = self._cv.update(_to_bgr(frame))
        except cv2.error as exc:
            raise TrackerError(f"{self.name}: update failed: {_first_line(exc)}") from exc
        box = Box(*rect) if ok else None
        # A lost target (or a degenerate answer) keeps the last box, flagged by score 0.
        if box is None or not box.is_valid():
            return TrackResult(box=self._box, score=0.0)
        # OpenCV lets a rectangle run off the frame; ours stays at the border like the
        # Siamese trackers' (centre inside, size at most the frame), and the score drops
        # with the share of the rectangle left inside: a target leaving the frame scores low.
        height, width = frame.shape[:2]
        visible = _visible_fraction(box, width, height)
        box = clamp_box(box, width, height)
        self._box = box
        return TrackResult(box=box, score=self._score() * visible)

    def _score(self) -> float:
        if self.kind not in _SCORED_KINDS:
            return 1.0
        score = float(self._cv.getTrackingScore())
        return score if math.isfinite(score) else 0.0


def _first_line(exc: BaseException) -> str:
    """cv2.error messages span several lines; the user needs the one that says what broke."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
