"""One object of a video (:class:`AnnotatedObject`) and the tracker settings a run of it uses.

Both are immutable: a session's edits make new ones (see :mod:`app.model.session`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trackers.trajectory import Trajectory


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    tracker: str = "siamfc"
    weights: Path | None = None
    device: str = "auto"
    model_dir: Path | None = None
    max_frames: int | None = None
    """Frames a run may track after its keyframe; None = to the next keyframe or the end."""

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be None or >= 1, got {self.max_frames}")


PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990",
)
"""Colours given to new objects in turn (Sasha Trubetskoy's distinct colours)."""


def default_colour(object_id: int) -> str:
    return PALETTE[(object_id - 1) % len(PALETTE)]


def _check_colour(colour: str) -> str:
    text = colour.strip().lower() if isinstance(colour, str) else ""
    if len(text) != 7 or text[0] != "#" or any(c not in "0123456789abcdef" for c in text[1:]):
        raise ValueError(f"a colour must be #rrggbb, got {colour!r}")
    return text


@dataclass(frozen=True, slots=True)
class AnnotatedObject:
    """One object of a video: immutable, like its trajectory; edits make new ones."""

    id: int
    trajectory: Trajectory
    colour: str = PALETTE[0]
    name: str = ""
    """Free text that tells two objects of one label apart ("left runner"); may be empty."""
    hidden: bool = False
    """Not drawn on the frames (still saved, exported and tracked)."""
    settings: TrackerSettings | None = None
    """This object's tracker settings; None = the session's."""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ValueError(f"an object id must be a whole number >= 1, got {self.id!r}")
        object.__setattr__(self, "colour", _check_colour(self.colour))
        if not isinstance(self.name, str):
            raise ValueError(f"an object's name must be text, got {self.name!r}")

    @property
    def label(self) -> str:
        """The class name; kept in the trajectory, so exports carry it."""
        return self.trajectory.label

    @property
    def title(self) -> str:
        """How lists show the object: ``3 car (left)``."""
        return f"{self.id} {self.label}" + (f" ({self.name})" if self.name else "")

    def same_meta(self, other: AnnotatedObject) -> bool:
        return (self.id, self.label, self.colour, self.name, self.hidden, self.settings) == (
            other.id, other.label, other.colour, other.name, other.hidden, other.settings
        )
