"""Several objects in one video: :class:`Track`, and the helpers multi-object formats share.

A :class:`Track` is one object: a stable whole-number ``id``, its ``label`` and its
:class:`~trackers.trajectory.Trajectory`. The trajectory's own label is kept equal
to the track's, so code that only looks at trajectories sees the same name.

Single-object formats (OTB, GOT-10k, LaSOT, VOT, YOLO, VOC) hold several objects as
a folder with one file or folder per object, named ``<id>_<label>`` (see
:func:`entry_name`); OTB's own ``groundtruth_rect.<n>.txt`` is read too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from trackers.formats.common import FormatError
from trackers.trajectory import DEFAULT_LABEL, Trajectory


@dataclass(frozen=True)
class Track:
    """One object of a video: its id, its label and its trajectory."""

    id: int
    label: str
    trajectory: Trajectory

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise TypeError(f"a track id must be a whole number, got {self.id!r}")
        label = self.label.strip() if isinstance(self.label, str) else ""
        if not label:
            raise ValueError(f"a label must be a non-empty string, got {self.label!r}")
        object.__setattr__(self, "label", label)
        if self.trajectory.label != label:
            object.__setattr__(self, "trajectory", replace(self.trajectory, label=label))

    @classmethod
    def of(cls, trajectory: Trajectory, id: int = 1) -> Track:
        """A trajectory as a track, with its own label."""
        return cls(id, trajectory.label, trajectory)


def check_ids(tracks: Sequence[Track], path: Path) -> None:
    """Ids must be unique: a file cannot tell two objects with one id apart."""
    seen: set[int] = set()
    for track in tracks:
        if track.id in seen:
            raise FormatError(path, f"two objects have the id {track.id}")
        seen.add(track.id)


def pick(tracks: Sequence[Track], path: Path, track: int | None, what: str = "objects") -> Track:
    """The one track a single-trajectory read asks for (``--track``), or the only one."""
    ids = ", ".join(str(t.id) for t in tracks) or "none"
    if track is not None:
        for candidate in tracks:
            if candidate.id == track:
                return candidate
        raise FormatError(path, f"has no object with id {track} (ids: {ids})")
    if len(tracks) == 1:
        return tracks[0]
    if not tracks:
        raise FormatError(path, f"holds no {what}")
    raise FormatError(path, f"holds {len(tracks)} objects (ids: {ids}): choose one with --track")


def stable_ids(keys: Iterable[object]) -> dict[object, int]:
    """Whole-number ids for a file's object keys: numbers (or digit strings) keep their
    value, other keys get the next free numbers in order of first appearance."""
    ids: dict[object, int] = {}
    others: list[object] = []
    for key in keys:
        if key in ids or key in others:
            continue
        number = _as_int(key)
        if number is not None and number not in ids.values():
            ids[key] = number
        else:
            others.append(key)
    following = max(ids.values(), default=0) + 1
    for key in others:
        ids[key] = following
        following += 1
    return ids


def _as_int(key: object) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and re.fullmatch(r"-?\d+", key.strip()):
        return int(key)
    return None


# --------------------------------------------------------------------------- one entry per object

_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')
_ENTRY = re.compile(r"(\d+)_(.+)")
_OTB_NUMBERED = re.compile(r"groundtruth_rect\.(\d+)\.txt")


def entry_name(track: Track, suffix: str = "") -> str:
    """``<id>_<label><suffix>``; characters a file name cannot hold become ``_``."""
    return f"{track.id}_{_UNSAFE.sub('_', track.label)}{suffix}"


def parse_entry_name(name: str, suffix: str = "") -> tuple[int, str] | None:
    """``(id, label)`` from a name :func:`entry_name` wrote, or OTB's ``groundtruth_rect.<n>.txt``."""
    match = _OTB_NUMBERED.fullmatch(name)
    if match:
        return int(match.group(1)), DEFAULT_LABEL
    if suffix:
        if not name.endswith(suffix):
            return None
        name = name[: -len(suffix)]
    match = _ENTRY.fullmatch(name)
    if not match:
        return None
    return int(match.group(1)), match.group(2)
