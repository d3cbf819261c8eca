"""What every format module shares: the error type and the registry entry.

Rules kept for every format module, each in its own helper module:

* Errors are :class:`FormatError` (a ValueError), one line, naming the file and,
  where there is one, the line.
* Readers build the whole trajectory before returning, so an import either
  succeeds or raises; nothing is half-read (:mod:`~trackers.formats.reading`,
  :mod:`~trackers.formats.numbers`, :mod:`~trackers.formats.frames`).
* Writes go to a temporary file (or folder) beside the target and are renamed
  into place, so a failed export leaves the earlier one as it was
  (:mod:`~trackers.formats.writing`).
* XML is parsed with expat and any DOCTYPE is refused outright
  (:mod:`~trackers.formats.safe_xml`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from trackers.trajectory import Trajectory

if TYPE_CHECKING:
    from trackers.formats.tracks import Track


class FormatError(ValueError):
    """A file that cannot be read or written as the format says; the message is one line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = " ".join(str(problem).split())
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {self.problem}")


# --------------------------------------------------------------------------- the registry entry

FIELDS: dict[str, str] = {
    "box": "the box of a visible target",
    "absent": "frames where the target is not visible",
    "unannotated": "frames nobody annotated, told apart from absent ones",
    "absent_record": "absent frames are written as records, so they keep what else the format holds",
    "keyframe": "which entries the user drew or fixed",
    "origin": "where each entry came from: keyframe, tracked, interpolated, imported",
    "score": "the tracker's score per frame",
    "occluded": "a visible target is partly occluded",
    "label": "the object's class name",
    "frame_size": "the frames' width and height",
    "frame_count": "the number of frames, trailing unannotated ones included",
}
"""What a trajectory can carry, in the order messages list them."""


class Reader(Protocol):
    def __call__(
        self,
        path: Path,
        *,
        frame_count: int | None = None,
        frame_size: tuple[int, int] | None = None,
        track: int | None = None,
    ) -> Trajectory: ...


class Writer(Protocol):
    def __call__(self, trajectory: Trajectory, path: Path) -> None: ...


class TracksReader(Protocol):
    def __call__(
        self, path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
    ) -> list[Track]: ...


class TracksWriter(Protocol):
    def __call__(self, tracks: Sequence[Track], path: Path) -> None: ...


@dataclass(frozen=True)
class Format:
    """One annotation format: how to read and write it, and what it can hold."""

    name: str
    title: str
    layout: Literal["file", "folder"]
    fields: frozenset[str]
    read: Reader
    write: Writer
    multi_track: bool = False
    """The format holds several objects; readers take ``track`` to choose one."""
    needs_frame_size: bool = False
    """Reading and writing need the frame size (a --video), the file does not hold it."""
    read_tracks: TracksReader | None = None
    """Every object of a multi-object file (multi-track formats only)."""
    write_tracks: TracksWriter | None = None
    """Several objects into one file or folder (multi-track formats only)."""

    def __post_init__(self) -> None:
        unknown = self.fields - FIELDS.keys()
        if unknown:
            raise ValueError(f"{self.name}: unknown fields {sorted(unknown)}")
