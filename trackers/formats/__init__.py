"""Annotation formats: read and write a :class:`~trackers.trajectory.Trajectory`, or several objects.

One object: :func:`read_trajectory` / :func:`write_trajectory`. Several objects:
:func:`read_tracks` / :func:`write_tracks` with :class:`Track` (id, label,
trajectory); multi-object formats (``Format.multi_track``) keep every object's id
and label in one file, single-object formats write a folder of one
``<id>_<label>`` entry per object (:mod:`trackers.formats.tracks`).

``FORMATS`` maps a name to a :class:`~trackers.formats.common.Format`: its reader,
its writer, and the fields it can hold (``Format.fields``, names from
:data:`FIELDS`). A trajectory written and read back loses exactly what
:func:`project` takes away for those fields; the round-trip tests hold every
format to that.

=============  ===  ======  =====  ===  ====  ====  ====  ===  ===========  =======  =========  ===  ===
field          otb  got10k  lasot  mot  cvat  coco  yolo  voc  labelstudio  labelme  darklabel  csv  vot
=============  ===  ======  =====  ===  ====  ====  ====  ===  ===========  =======  =========  ===  ===
box            yes  yes     yes    yes  yes   yes   yes   yes  yes          yes      yes        yes  yes
absent         yes  yes     yes    yes  yes   yes   yes   yes  yes          yes      yes        yes  yes
unannotated    -    -       -      -    -     yes   yes   yes  -            yes      -          -    -
absent_record  yes  yes     yes    -    yes   -     yes   yes  yes          -        yes        -    yes
keyframe       -    -       -      -    yes   yes   -     -    -            -        -          -    -
origin         -    -       -      -    yes   yes   -     -    -            -        -          -    -
score          -    -       -      yes  -     yes   -     -    -            yes      -          yes  -
occluded       -    yes     -      -    yes   yes   -     yes  -            yes      -          yes  yes
label          -    yes     -      -    yes   yes   yes   yes  yes          yes      yes        yes  -
frame_size     -    yes     -      -    yes   yes   -     yes  -            yes      -          -    yes
frame_count    yes  yes     yes    -    yes   -     yes   yes  yes          -        -          -    yes
=============  ===  ======  =====  ===  ====  ====  ====  ===  ===========  =======  =========  ===  ===

(The table is checked against ``FORMATS`` by the tests.) Frame count and size
that a format lacks come from the video (readers take ``frame_count`` and
``frame_size``); YOLO cannot be read or written without the frame size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trackers.formats import (
    coco,
    csvtable,
    cvat,
    got10k,
    labelme,
    labelstudio,
    lasot,
    mot,
    otb,
    voc,
    vot,
    yolo,
)
from trackers.formats.common import FIELDS, Format, FormatError
from trackers.formats.detect import detect_format
from trackers.formats.got10k import export_got10k_dataset, is_got10k_folder, read_got10k_sequence
from trackers.formats.tracks import Track, check_ids, entry_name, parse_entry_name
from trackers.formats.writing import replace_folder
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        otb.FORMAT,
        got10k.FORMAT,
        lasot.FORMAT,
        mot.FORMAT,
        cvat.FORMAT,
        coco.FORMAT,
        yolo.FORMAT,
        voc.FORMAT,
        labelstudio.FORMAT,
        labelme.FORMAT,
        csvtable.DARKLABEL,
        csvtable.CSV,
        vot.FORMAT,
    )
}

__all__ = [
    "FIELDS",
    "FORMATS",
    "Format",
    "FormatError",
    "Track",
    "detect_format",
    "detect_tracks_format",
    "dropped_fields",
    "export_got10k_dataset",
    "is_got10k_folder",
    "project",
    "read_got10k_sequence",
    "read_tracks",
    "read_trajectory",
    "used_fields",
    "write_tracks",
    "write_trajectory",
]


def project(trajectory: Trajectory, fields: frozenset[str]) -> Trajectory:
    """What is left of ``trajectory`` in a format that holds only ``fields``.

    * no ``unannotated``: unannotated frames become absent;
    * no ``absent_record``: absent frames keep only their absence;
    * no ``origin``: keyframes stay keyframes if ``keyframe`` is held, every other
      entry becomes imported;
    * no ``score`` / ``occluded`` / ``label`` / ``frame_size``: None / False /
      ``"object"`` / None.

    The frame count is left alone: where a format lacks it, it comes from the video.
    """
    entries: list[Entry | None] = []
    for entry in trajectory.entries:
        if entry is None:
            entries.append(None if "unannotated" in fields else Entry(None))
        elif entry.box is None and "absent_record" not in fields:
            entries.append(Entry(None))
        else:
            origin = entry.origin
            if "origin" not in fields:
                keep = "keyframe" in fields and origin is Origin.KEYFRAME
                origin = Origin.KEYFRAME if keep else Origin.IMPORTED
            entries.append(
                Entry(
                    entry.box,
                    origin,
                    entry.score if "score" in fields else None,
                    entry.occluded and "occluded" in fields,
                )
            )
    return Trajectory(
        tuple(entries),
        trajectory.frame_size if "frame_size" in fields else None,
        trajectory.label if "label" in fields else DEFAULT_LABEL,
    )


def used_fields(trajectory: Trajectory) -> frozenset[str]:
    """The fields ``trajectory`` actually makes use of (what a format could lose)."""
    used = set()
    for entry in trajectory.entries:
        if entry is None:
            used.add("unannotated")
            continue
        used.add("absent" if entry.box is None else "box")
        if entry.origin is Origin.KEYFRAME:
            used.add("keyframe")
        elif entry.origin is not Origin.IMPORTED:
            used.add("origin")
        if entry.box is None and (entry.origin is not Origin.IMPORTED or entry.score is not None):
            used.add("absent_record")
        if entry.score is not None:
            used.add("score")
        if entry.occluded:
            used.add("occluded")
    if trajectory.label != DEFAULT_LABEL:
        used.add("label")
    if trajectory.frame_size is not None:
        used.add("frame_size")
    last = trajectory.entries[-1] if trajectory.entries else None
    if last is None or last.box is None:
        used.add("frame_count")  # trailing empty frames: only a count keeps them
    return frozenset(used)


def dropped_fields(trajectory: Trajectory, fmt: Format) -> list[str]:
    """The fields of ``trajectory`` that ``fmt`` cannot hold, in FIELDS order."""
    lost = set(used_fields(trajectory) - fmt.fields)
    if "origin" in fmt.fields:
        lost.discard("keyframe")
    return [name for name in FIELDS if name in lost]


def read_trajectory(
    path: str | Path,
    format: str | None = None,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> tuple[Trajectory, str]:
    """Read ``path`` as ``format`` (detected when None); returns the trajectory and the format name."""
    name = format or detect_format(path)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; one of {', '.join(FORMATS)}")
    fmt = FORMATS[name]
    if track is not None and not fmt.multi_track:
        raise ValueError(f"{name} holds one object; a track id is for {', '.join(multi_track_formats())}")
    trajectory = fmt.read(Path(path), frame_count=frame_count, frame_size=frame_size, track=track)
    return trajectory, name


def write_trajectory(trajectory: Trajectory, path: str | Path, format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    FORMATS[format].write(trajectory, Path(path))


# --------------------------------------------------------------------------- several objects


def _entry_suffix(fmt: Format) -> str:
    return ".txt" if fmt.layout == "file" else ""


def _object_entries(folder: Path, fmt: Format) -> list[tuple[int, str, Path]]:
    """``(id, label, path)`` of the per-object files or folders in ``folder``, by id."""
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        if child.is_dir() != (fmt.layout == "folder"):
            continue
        parsed = parse_entry_name(child.name, _entry_suffix(fmt))
        if parsed is not None:
            found.append((*parsed, child))
    return sorted(found, key=lambda item: item[0])


def read_tracks(
    path: str | Path,
    format: str | None = None,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
) -> list[Track]:
    """Every object in ``path`` as ``format`` (detected when None), in the file's order.

    Multi-object formats give each object with its id and label. For a
    single-object format, ``path`` is either one object (a list of one track, id 1)
    or a folder of ``<id>_<label>`` files or folders as :func:`write_tracks` writes
    them (OTB's ``groundtruth_rect.<n>.txt`` too).
    """
    path = Path(path)
    name = format or detect_tracks_format(path)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; one of {', '.join(FORMATS)}")
    fmt = FORMATS[name]
    if fmt.read_tracks is not None:
        return fmt.read_tracks(path, frame_count=frame_count, frame_size=frame_size)
    entries = _object_entries(path, fmt)
    if not entries:
        trajectory = fmt.read(path, frame_count=frame_count, frame_size=frame_size)
        return [Track(1, trajectory.label, trajectory)]
    tracks = []
    for track_id, label, entry in entries:
        trajectory = fmt.read(entry, frame_count=frame_count, frame_size=frame_size)
        if "label" in fmt.fields and trajectory.label != DEFAULT_LABEL:
            label = trajectory.label
        if tracks and track_id == tracks[-1].id:
            raise FormatError(entry, f"a second object with the id {track_id}")
        tracks.append(Track(track_id, label, trajectory))
    return tracks


def detect_tracks_format(path: Path) -> str:
    """A folder of per-object entries is detected by its first entry."""
    try:
        return detect_format(path)
    except FormatError:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if parse_entry_name(child.name, ".txt" if child.is_file() else "") is not None:
                    try:
                        return detect_format(child)
                    except FormatError:
                        continue
        raise


def write_tracks(tracks: Sequence[Track], path: str | Path, format: str) -> None:
    """Write every object to ``path`` as ``format``.

    Multi-object formats write one file (or folder) with every object, its id and
    label. Single-object formats write ``path`` as a folder holding one
    ``<id>_<label>`` file (OTB) or folder (GOT-10k, LaSOT, VOT, YOLO, VOC) per object;
    :func:`read_tracks` reads it back.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    fmt, path = FORMATS[format], Path(path)
    tracks = list(tracks)
    check_ids(tracks, path)
    if fmt.write_tracks is not None:
        fmt.write_tracks(tracks, path)
        return
    suffix = _entry_suffix(fmt)
    names = [entry_name(t, suffix) for t in tracks]

    def fill(tmp: Path) -> None:
        for track, name in zip(tracks, names):
            fmt.write(track.trajectory, tmp / name)

    def owns(relative: str) -> bool:
        return parse_entry_name(relative.split("/")[0], suffix) is not None

    replace_folder(path, fill, owns)


def multi_track_formats() -> list[str]:
    return [name for name, fmt in FORMATS.items() if fmt.multi_track]
