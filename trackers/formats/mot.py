"""MOT Challenge CSV: ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z``.

Frames **and pixels** are 1-based: motmetrics' ``load_motchallenge`` subtracts 1
from X and Y ("matlab convention", ``motmetrics/io.py``). We write the results
layout (10 columns, ``-1`` for the 3D fields) with id 1 and the score as ``conf``;
``-1`` is MOT's "no value", so a score of None is written as -1 and a conf of -1
reads back as no score.

Reading also takes the MOT16/17 ground-truth layout (9 columns: ``frame, id,
left, top, w, h, consider, class, visibility``), where a visibility below 1
marks the target occluded, and the 6-column ``frame,id,x,y,w,h``.

A frame without a row has no box: it reads as absent. So MOT cannot tell an
unannotated frame from an absent one, and does not know about frames after the
last row unless a video says how many there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video
from trackers.formats.numbers import format_number, format_pixel, parse_int, parse_number
from trackers.formats.reading import numbered_lines, split_fields
from trackers.formats.tracks import Track, check_ids
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import Box

NO_VALUE = -1.0
TRACK_ID = 1
GT_COLUMNS = 9


def _row(path: Path, number: int, text: str) -> tuple[int, int, Entry]:
    """``(0-based frame, id, entry)`` of one line."""
    fields = split_fields(text)
    if not 6 <= len(fields) <= 10:
        raise FormatError(path, f"expected 6 to 10 comma-separated fields, got {len(fields)}", number)
    frame = check_frames(path, parse_int(fields[0], path, number, "frame"), number)
    if frame < 1:
        raise FormatError(path, f"frame numbers start at 1, got {frame}", number)
    track = parse_int(fields[1], path, number, "id")
    x, y, w, h = (parse_number(f, path, number, "bb_left,bb_top,bb_width,bb_height") for f in fields[2:6])
    if w < 0 or h < 0:
        raise FormatError(path, "negative width or height", number)
    score, occluded = None, False
    if len(fields) == GT_COLUMNS:
        visibility = parse_number(fields[8], path, number, "visibility")
        occluded = visibility < 1.0
    elif len(fields) >= 7:
        conf = parse_number(fields[6], path, number, "conf")
        score = None if conf == NO_VALUE else conf
    # MOT's first pixel and first frame are 1; ours are 0.
    return frame - 1, track, Entry(Box.from_one_based(x, y, w, h), score=score, occluded=occluded)


def _rows(path: Path) -> dict[int, dict[int, tuple[int, Entry]]]:
    """``id -> frame -> (line, entry)`` of every row."""
    rows: dict[int, dict[int, tuple[int, Entry]]] = {}
    for number, text in numbered_lines(path):
        if not text:
            raise FormatError(path, "empty line", number)
        frame, track_id, entry = _row(path, number, text)
        per_track = rows.setdefault(track_id, {})
        if frame in per_track:
            first = per_track[frame][0]
            raise FormatError(
                path, f"a second row for id {track_id} on frame {frame + 1} (first on line {first})", number
            )
        per_track[frame] = (number, entry)
    return rows


def _trajectory(
    path: Path,
    chosen: dict[int, tuple[int, Entry]],
    count: int,
    frame_count: int | None,
    frame_size: tuple[int, int] | None,
) -> Trajectory:
    entries: list[Entry | None] = [Entry(None)] * max(count, max(chosen, default=-1) + 1)
    for frame, (_number, entry) in chosen.items():
        entries[frame] = entry
    return fit_to_video(Trajectory(tuple(entries)), path, frame_count, frame_size)


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    path = Path(path)
    rows = _rows(path)
    if track is not None:
        if track not in rows:
            known = ", ".join(map(str, sorted(rows))) or "none"
            raise FormatError(path, f"has no id {track} (ids: {known})")
        chosen = rows[track]
    elif len(rows) > 1:
        raise FormatError(
            path, f"holds {len(rows)} ids ({', '.join(map(str, sorted(rows)))}): choose one with --track"
        )
    else:
        chosen = next(iter(rows.values()), {})
    count = frame_count if frame_count is not None else max(chosen, default=-1) + 1
    return _trajectory(path, chosen, count, frame_count, frame_size)


def read_tracks(
    path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
) -> list[Track]:
    """One track per id; MOT has no labels, so every label is ``object``. All tracks run
    to the last row of any id (or the video's frame count)."""
    path = Path(path)
    rows = _rows(path)
    last = max((frame for chosen in rows.values() for frame in chosen), default=-1) + 1
    count = frame_count if frame_count is not None else last
    return [
        Track(track_id, DEFAULT_LABEL, _trajectory(path, rows[track_id], count, frame_count, frame_size))
        for track_id in sorted(rows)
    ]


def write(trajectory: Trajectory, path: Path) -> None:
    write_tracks([Track(TRACK_ID, trajectory.label, trajectory)], path)


def write_tracks(tracks: Sequence[Track], path: Path) -> None:
    """Rows by frame, then by id (MOT's order)."""
    path = Path(path)
    check_ids(tracks, path)
    rows = []
    for track in tracks:
        for index, entry in track.trajectory.annotated():
            if entry.box is None:
                continue
            x, y, w, h = entry.box.to_one_based()
            conf = NO_VALUE if entry.score is None else entry.score
            values = [format_number(index + 1), format_number(track.id)]
            values += [format_pixel(v) for v in (x, y, w, h)]
            values += [format_number(v) for v in (conf, NO_VALUE, NO_VALUE, NO_VALUE)]
            rows.append(((index, track.id), ",".join(values)))
    rows.sort(key=lambda row: row[0])
    write_text_atomic(path, "".join(line + "\n" for _key, line in rows))


def looks_like(path: Path) -> bool:
    """A text file whose first line has 6 to 10 numbers starting with a whole frame number."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError:
        return False
    fields = split_fields(first)
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return False
    return 6 <= len(values) <= 10 and values[0].is_integer() and values[0] >= 1


FORMAT = Format(
    name="mot",
    title="MOT Challenge CSV (1-based frames and pixels)",
    layout="file",
    fields=frozenset({"box", "absent", "score"}),
    read=read,
    write=write,
    multi_track=True,
    read_tracks=read_tracks,
    write_tracks=write_tracks,
)
