"""Comma-separated rows of boxes with named columns: a generic CSV, and DarkLabel's text.

A row is one box of one object on one frame. Columns are named (``--columns
fn,x1,y1,w,h``):

=========  ==============================================================
``fn``     frame number, 0-based (``fn1``: 1-based)
``id``     the object's id (whole number)
``label``  the object's class name (``cname`` is the same)
``x1 y1``  top-left corner; with ``w h`` (size) or ``x2 y2`` (bottom-right)
``cx cy``  centre, with ``w h``
``score``  the tracker's score
``occluded`` 0/1
``-``      a column to skip
=========  ==============================================================

Pixels are 0-based and continuous (our convention; ``x2 = x1 + w``). A frame
without a row for an object is absent, so CSV cannot tell unannotated frames from
absent ones, nor say how many frames follow the last row. An empty or NaN box
field also reads as absent.

The generic ``csv`` format writes a header line of column names and reads one when
the first line is made of column names; its default columns are
:data:`DEFAULT_COLUMNS`. ``darklabel`` is DarkLabel's default text export,
``fn,cname,id,x1,y1,w,h`` per line, without a header (DarkLabel's frame numbers
start at 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video
from trackers.formats.numbers import format_number, parse_flag, parse_int, parse_number
from trackers.formats.reading import numbered_lines
from trackers.formats.tracks import Track, check_ids, pick, stable_ids
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import Box

COLUMNS = (
    "fn",
    "fn1",
    "id",
    "label",
    "cname",
    "x1",
    "y1",
    "x2",
    "y2",
    "w",
    "h",
    "cx",
    "cy",
    "score",
    "occluded",
    "-",
)
DEFAULT_COLUMNS = ("fn", "id", "label", "x1", "y1", "w", "h", "score", "occluded")
DARKLABEL_COLUMNS = ("fn", "cname", "id", "x1", "y1", "w", "h")
_BOX_LAYOUTS = ({"x1", "y1", "w", "h"}, {"x1", "y1", "x2", "y2"}, {"cx", "cy", "w", "h"})


def parse_columns(text: str | Sequence[str]) -> tuple[str, ...]:
    """Column names from ``"fn,x1,y1,w,h"``; ValueError (one line) when they cannot make a box."""
    names = tuple(n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text))
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}")
    used = [n for n in names if n != "-"]
    twice = next((n for n in used if used.count(n) > 1), None)
    if twice:
        raise ValueError(f"column {twice!r} is named twice")
    if sum(n in used for n in ("fn", "fn1")) != 1:
        raise ValueError("name one frame column: fn (0-based) or fn1 (1-based)")
    if "label" in used and "cname" in used:
        raise ValueError("label and cname are the same column; name one")
    box = {n for n in used if n in ("x1", "y1", "x2", "y2", "w", "h", "cx", "cy")}
    if box not in _BOX_LAYOUTS:
        raise ValueError("the box needs x1,y1,w,h or x1,y1,x2,y2 or cx,cy,w,h")
    return names


def fields_of(columns: Sequence[str]) -> frozenset[str]:
    fields = {"box", "absent"}
    if "label" in columns or "cname" in columns:
        fields.add("label")
    if "score" in columns:
        fields.add("score")
    else:
        fields.add("absent_record")  # nothing else an absent frame could keep (as OTB)
    if "occluded" in columns:
        fields.add("occluded")
    return frozenset(fields)


def _box(values: dict[str, float]) -> Box:
    if "x2" in values:
        return Box.from_corners(values["x1"], values["y1"], values["x2"], values["y2"])
    if "cx" in values:
        return Box.from_center(values["cx"], values["cy"], values["w"], values["h"])
    return Box(values["x1"], values["y1"], values["w"], values["h"])


def _is_header(fields: list[str]) -> bool:
    return bool(fields) and all(f.strip().lower() in COLUMNS for f in fields)


def read_table(
    path: Path,
    columns: Sequence[str],
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    header: bool = True,
) -> list[Track]:
    """Every object of a CSV file; a header line (when ``header``) names the columns instead."""
    path = Path(path)
    lines = [(n, t) for n, t in numbered_lines(path) if t]
    if header and lines and _is_header(lines[0][1].split(",")):
        try:
            columns = parse_columns(lines[0][1])
        except ValueError as exc:
            raise FormatError(path, f"header: {exc}", lines[0][0]) from None
        lines = lines[1:]
    columns = tuple(columns)
    rows: dict[object, dict[int, tuple[int, Entry]]] = {}
    labels: dict[object, str] = {}
    for number, text in lines:
        fields = [f.strip() for f in text.split(",")]
        if len(fields) < len(columns):
            raise FormatError(
                path, f"expected {len(columns)} fields ({','.join(columns)}), got {len(fields)}", number
            )
        cell = dict(zip(columns, fields))
        if "fn" in cell:
            frame = parse_int(cell["fn"], path, number, "fn")
        else:
            frame = parse_int(cell["fn1"], path, number, "fn1") - 1
        if frame < 0:
            raise FormatError(
                path, f"frame {cell.get('fn', cell.get('fn1'))} is before the first frame", number
            )
        check_frames(path, frame, number)
        label = (cell.get("label") or cell.get("cname") or "").strip() or DEFAULT_LABEL
        key: object = parse_int(cell["id"], path, number, "id") if "id" in cell else ("label", label)
        box_cells = {k: v for k, v in cell.items() if k in ("x1", "y1", "x2", "y2", "w", "h", "cx", "cy")}
        if any(v == "" or v.lower() == "nan" for v in box_cells.values()):
            entry = Entry(None)
        else:
            values = {k: parse_number(v, path, number, k) for k, v in box_cells.items()}
            box = _box(values)
            if not box.is_finite() or box.w < 0 or box.h < 0:
                raise FormatError(path, "negative width or height", number)
            score = None
            if cell.get("score", ""):
                score = parse_number(cell["score"], path, number, "score")
            occluded = (
                parse_flag(cell["occluded"], path, number, "occluded") if cell.get("occluded") else False
            )
            entry = Entry(box, score=score, occluded=occluded)
        mine = rows.setdefault(key, {})
        if frame in mine:
            raise FormatError(
                path,
                f"a second row for this object on frame {frame} (first on line {mine[frame][0]})",
                number,
            )
        mine[frame] = (number, entry)
        labels.setdefault(key, label)
    last = max((f for mine in rows.values() for f in mine), default=-1) + 1
    count = frame_count if frame_count is not None else last
    ids = stable_ids(rows)
    tracks = []
    for key, mine in rows.items():
        entries: list[Entry | None] = [Entry(None)] * max(count, last)
        for frame, (_n, entry) in mine.items():
            entries[frame] = entry
        trajectory = fit_to_video(
            Trajectory(tuple(entries), None, labels[key]), path, frame_count, frame_size
        )
        tracks.append(Track(ids[key], labels[key], trajectory))
    return sorted(tracks, key=lambda t: t.id)


def write_table(tracks: Sequence[Track], path: Path, columns: Sequence[str], *, header: bool = True) -> None:
    path = Path(path)
    check_ids(tracks, path)
    for track in tracks:
        if "," in track.label or "\n" in track.label:
            raise FormatError(path, f"the label {track.label!r} holds a comma or a line break")
    rows = []
    for track in tracks:
        for index, entry in track.trajectory.annotated():
            if entry.box is None:
                continue
            box = entry.box
            cx, cy = box.center()
            values = {
                "fn": str(index),
                "fn1": str(index + 1),
                "id": str(track.id),
                "label": track.label,
                "cname": track.label,
                "x1": format_number(box.x),
                "y1": format_number(box.y),
                "x2": format_number(box.x + box.w),
                "y2": format_number(box.y + box.h),
                "w": format_number(box.w),
                "h": format_number(box.h),
                "cx": format_number(cx),
                "cy": format_number(cy),
                "score": "" if entry.score is None else format_number(entry.score),
                "occluded": "1" if entry.occluded else "0",
                "-": "",
            }
            rows.append(((index, track.id), ",".join(values[c] for c in columns)))
    rows.sort(key=lambda row: row[0])
    head = [",".join(columns)] if header else []
    write_text_atomic(path, "".join(line + "\n" for line in head + [text for _k, text in rows]))


def table_format(name: str, title: str, columns: Sequence[str], header: bool) -> Format:
    """A Format that reads and writes rows of ``columns``."""
    columns = parse_columns(columns)

    def read_tracks(
        path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
    ) -> list[Track]:
        return read_table(path, columns, frame_count=frame_count, frame_size=frame_size, header=header)

    def read(
        path: Path,
        *,
        frame_count: int | None = None,
        frame_size: tuple[int, int] | None = None,
        track: int | None = None,
    ) -> Trajectory:
        tracks = read_tracks(path, frame_count=frame_count, frame_size=frame_size)
        if not tracks and track is None:  # no rows: nothing visible (as an empty MOT file)
            absent = Trajectory((Entry(None),) * (frame_count or 0))
            return fit_to_video(absent, Path(path), frame_count, frame_size)
        return pick(tracks, Path(path), track).trajectory

    def write_tracks(tracks: Sequence[Track], path: Path) -> None:
        write_table(tracks, path, columns, header=header)

    def write(trajectory: Trajectory, path: Path) -> None:
        write_tracks([Track.of(trajectory)], path)

    return Format(
        name=name,
        title=title,
        layout="file",
        fields=fields_of(columns),
        read=read,
        write=write,
        multi_track=True,
        read_tracks=read_tracks,
        write_tracks=write_tracks,
    )


def with_columns(columns: str | Sequence[str]) -> Format:
    """The ``csv`` format with other columns (``--columns``)."""
    parsed = parse_columns(columns)
    return replace(table_format("csv", CSV.title, parsed, header=True), title=f"CSV ({','.join(parsed)})")


def darklabel_looks_like(path: Path) -> bool:
    """A text line ``fn,cname,id,x1,y1,w,h``: a whole number, a name, a whole number, four numbers."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError:
        return False
    fields = [v.strip() for v in first.split(",")]
    if len(fields) != len(DARKLABEL_COLUMNS):
        return False
    try:
        numbers = [float(fields[0]), float(fields[2]), *map(float, fields[3:])]
    except ValueError:
        return False
    try:
        float(fields[1])
        return False  # a number where the class name goes
    except ValueError:
        pass
    return all(math.isfinite(v) for v in numbers) and numbers[0].is_integer()


def csv_looks_like(path: Path) -> bool:
    """A file whose first line names our columns."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError:
        return False
    fields = first.strip().split(",")
    return len(fields) > 1 and _is_header(fields)


CSV = table_format(
    "csv",
    "CSV with named columns (header line; default fn,id,label,x1,y1,w,h,score,occluded; 0-based)",
    DEFAULT_COLUMNS,
    header=True,
)
DARKLABEL = table_format(
    "darklabel",
    "DarkLabel text (fn,cname,id,x1,y1,w,h per line, 0-based frames)",
    DARKLABEL_COLUMNS,
    header=False,
)
