"""One object's trajectory through a video: per frame a box, an absence, or nothing yet.

A frame of a trajectory is in one of three states:

* **unannotated**: ``trajectory[i] is None``; nobody has said anything about it yet.
* **absent**: an :class:`Entry` whose ``box`` is None; the target is not visible
  (fully occluded or out of view), and somebody (a user, a tracker, a file) said so.
* **present**: an :class:`Entry` with a :class:`~trackers.types.Box` (0-based, see
  :mod:`trackers.types`).

Each entry also says where it came from (:class:`Origin`), how sure the tracker was
(``score``), and whether the visible target is partly occluded.

Trajectories are immutable: every edit returns a new one. The app keeps old ones
for undo and hands them to worker threads without copying; an edit costs one pass
over the frame tuple (pointers only), which is negligible next to decoding a frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from trackers.types import Box

DEFAULT_LABEL = "object"


class Origin(Enum):
    """Who put an entry there."""

    KEYFRAME = "keyframe"
    """Drawn or fixed by the user; trackers and interpolation start from these."""
    TRACKED = "tracked"
    """Produced by a tracker run."""
    INTERPOLATED = "interpolated"
    """Filled in between keyframes."""
    IMPORTED = "imported"
    """Read from a file that does not say more."""


@dataclass(frozen=True, slots=True)
class Entry:
    """What is known about one frame: a box, or ``box=None`` when the target is absent."""

    box: Box | None
    origin: Origin = Origin.IMPORTED
    score: float | None = None
    occluded: bool = False
    """The target is visible but partly hidden. Only a present target can be occluded."""

    def __post_init__(self) -> None:
        if self.box is not None:
            if not self.box.is_finite():
                raise ValueError(f"a box must be finite (use box=None for an absent target): {self.box}")
            if self.box.w < 0 or self.box.h < 0:
                raise ValueError(f"a box cannot have a negative size: {self.box}")
        elif self.occluded:
            raise ValueError("an absent target cannot be marked occluded")
        if not isinstance(self.origin, Origin):
            raise TypeError(f"origin must be an Origin, got {self.origin!r}")
        if self.score is not None:
            score = float(self.score)
            # A NaN score is a tracker saying nothing; store it as no score so equality works.
            object.__setattr__(self, "score", score if math.isfinite(score) else None)
        object.__setattr__(self, "occluded", bool(self.occluded))

    @property
    def absent(self) -> bool:
        return self.box is None


class TrajectoryArrays(NamedTuple):
    """A trajectory as numpy arrays, one row per frame."""

    boxes: NDArray[np.float64]
    """N x 4 0-based ``x, y, w, h``; NaN rows where the target is absent or unannotated."""
    annotated: NDArray[np.bool_]
    absent: NDArray[np.bool_]
    scores: NDArray[np.float64]
    """NaN where there is no score."""
    occluded: NDArray[np.bool_]


@dataclass(frozen=True)
class Trajectory:
    """A single-object trajectory: one ``Entry | None`` per frame of the video.

    Build one with :meth:`empty` or :meth:`from_boxes`; change it with
    :meth:`with_entry`, :meth:`with_entries`, :meth:`with_frame_count` or
    ``dataclasses.replace(t, label=..., frame_size=...)``.
    """

    entries: tuple[Entry | None, ...] = ()
    frame_size: tuple[int, int] | None = None
    """(width, height) of the video's frames, when known."""
    label: str = DEFAULT_LABEL

    def __post_init__(self) -> None:
        entries = tuple(self.entries)
        for index, entry in enumerate(entries):
            if entry is not None and not isinstance(entry, Entry):
                raise TypeError(f"frame {index}: expected an Entry or None, got {type(entry).__name__}")
        object.__setattr__(self, "entries", entries)
        if self.frame_size is not None:
            width, height = (int(v) for v in self.frame_size)
            if width <= 0 or height <= 0 or (width, height) != tuple(self.frame_size):
                raise ValueError(f"frame_size must be two positive whole numbers, got {self.frame_size}")
            object.__setattr__(self, "frame_size", (width, height))
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"a label must be a non-empty string, got {self.label!r}")

    # --- construction ---------------------------------------------------------------
    @classmethod
    def empty(
        cls, frame_count: int, frame_size: tuple[int, int] | None = None, label: str = DEFAULT_LABEL
    ) -> Trajectory:
        """``frame_count`` unannotated frames."""
        if frame_count < 0:
            raise ValueError(f"frame_count must be >= 0, got {frame_count}")
        return cls((None,) * frame_count, frame_size, label)

    @classmethod
    def from_boxes(
        cls,
        boxes: NDArray[np.float64] | Iterable[Iterable[float]],
        origin: Origin = Origin.IMPORTED,
        scores: Iterable[float | None] | None = None,
        frame_size: tuple[int, int] | None = None,
        label: str = DEFAULT_LABEL,
    ) -> Trajectory:
        """Every frame annotated from N x 4 0-based boxes; rows with a NaN are absent."""
        array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        score_list = [None] * len(array) if scores is None else list(scores)
        if len(score_list) != len(array):
            raise ValueError(f"{len(array)} boxes but {len(score_list)} scores")
        entries = [
            Entry(None if np.isnan(row).any() else Box(*row), origin, score)
            for row, score in zip(array, score_list)
        ]
        return cls(tuple(entries), frame_size, label)

    # --- reading --------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return len(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Entry | None:
        return self.entries[index]

    def __repr__(self) -> str:
        # The default repr would print every frame of a long video.
        annotated = sum(e is not None for e in self.entries)
        return (
            f"Trajectory(frames={self.frame_count}, annotated={annotated}, "
            f"frame_size={self.frame_size}, label={self.label!r})"
        )

    def annotated(self) -> Iterator[tuple[int, Entry]]:
        """``(index, entry)`` of every annotated frame, in order."""
        return ((i, e) for i, e in enumerate(self.entries) if e is not None)

    def keyframes(self) -> list[int]:
        """Indices of the entries the user drew or fixed (present or absent)."""
        return [i for i, e in self.annotated() if e.origin is Origin.KEYFRAME]

    def absent_spans(self) -> list[tuple[int, int]]:
        """Runs of consecutive absent frames as half-open ``(start, stop)`` index pairs."""
        spans: list[tuple[int, int]] = []
        start: int | None = None
        for index, entry in enumerate(self.entries):
            absent = entry is not None and entry.box is None
            if absent and start is None:
                start = index
            elif not absent and start is not None:
                spans.append((start, index))
                start = None
        if start is not None:
            spans.append((start, self.frame_count))
        return spans

    def to_arrays(self) -> TrajectoryArrays:
        count = self.frame_count
        boxes = np.full((count, 4), np.nan, dtype=np.float64)
        scores = np.full(count, np.nan, dtype=np.float64)
        annotated = np.zeros(count, dtype=bool)
        absent = np.zeros(count, dtype=bool)
        occluded = np.zeros(count, dtype=bool)
        for index, entry in self.annotated():
            annotated[index] = True
            if entry.box is None:
                absent[index] = True
            else:
                boxes[index] = (entry.box.x, entry.box.y, entry.box.w, entry.box.h)
            if entry.score is not None:
                scores[index] = entry.score
            occluded[index] = entry.occluded
        return TrajectoryArrays(boxes, annotated, absent, scores, occluded)

    # --- editing (each returns a new trajectory) --------------------------------------
    def with_entry(self, index: int, entry: Entry | None) -> Trajectory:
        return self.with_entries({index: entry})

    def with_entries(self, changes: Mapping[int, Entry | None]) -> Trajectory:
        """Set several frames at once (one copy, however many frames change)."""
        entries = list(self.entries)
        for index, entry in changes.items():
            if not 0 <= index < len(entries):
                raise IndexError(f"frame {index} is outside 0..{len(entries) - 1}")
            entries[index] = entry
        return replace(self, entries=tuple(entries))

    def with_frame_count(self, frame_count: int) -> Trajectory:
        """Cut off frames at the end, or add unannotated ones."""
        if frame_count < 0:
            raise ValueError(f"frame_count must be >= 0, got {frame_count}")
        entries = self.entries[:frame_count] + (None,) * (frame_count - self.frame_count)
        return replace(self, entries=entries)
