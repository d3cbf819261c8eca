"""``siamtrack convert IN OUT [--from FORMAT] --to FORMAT [--video V] [--track ID]``.

IN's format is detected (:mod:`trackers.formats.detect`) unless ``--from`` names
it. OUT is a file for otb, mot, cvat and coco, a folder for got10k, lasot, yolo
and voc. ``--video`` gives the frame count and size that some formats do not
hold (YOLO needs the size both ways). A source with several objects is
converted whole: a multi-object target gets them all in one file, a
single-object target (otb, got10k, lasot, vot, yolo, voc) a folder OUT of one
``<id>_<label>`` entry per object. ``--track`` picks one object instead. The
fields the target format cannot hold are named on stderr, e.g. ``yolo drops:
origin, score, occluded``. A source without any box is an error.

User errors raise FormatError (a ValueError); the CLI prints them as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from trackers.formats import (
    FIELDS,
    FORMATS,
    Format,
    Track,
    csvtable,
    detect_tracks_format,
    dropped_fields,
    multi_track_formats,
    read_tracks,
    read_trajectory,
    vot,
    write_tracks,
)
from trackers.formats.common import FormatError
from trackers.formats.sequence_folder import LIST
from trackers.formats.tracks import entry_name
from trackers.trajectory import Trajectory


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand to an argparse ``add_subparsers()`` object."""
    names = list(FORMATS)
    files = ", ".join(n for n, f in FORMATS.items() if f.layout == "file")
    folders = ", ".join(n for n, f in FORMATS.items() if f.layout == "folder")
    parser = subparsers.add_parser(
        "convert",
        help="convert a trajectory between annotation formats",
        description=(
            f"Convert annotations between formats ({', '.join(names)}). "
            f"OUT is a file for {files} and a folder for {folders}. "
            "A source with several objects is converted whole."
        ),
        epilog="formats:\n" + "\n".join(f"  {n:<12} {f.title}" for n, f in FORMATS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, metavar="IN", help="annotation file or folder")
    parser.add_argument("output", type=Path, metavar="OUT", help="file or folder to write")
    parser.add_argument(
        "--from",
        dest="from_format",
        choices=names,
        metavar="FORMAT",
        help="IN's format (default: detected from its name and content)",
    )
    parser.add_argument(
        "--to",
        dest="to_format",
        required=True,
        choices=names,
        metavar="FORMAT",
        help=f"one of {', '.join(names)}",
    )
    parser.add_argument(
        "--video",
        type=Path,
        metavar="V",
        help="the annotated video or image folder: frame count and size for formats without them",
    )
    parser.add_argument(
        "--columns",
        metavar="NAMES",
        help=(
            "csv only: the columns of a CSV file, e.g. fn,x1,y1,w,h or fn1,id,label,cx,cy,w,h "
            "(fn 0-based, fn1 1-based frames; - skips a column); a header line names them instead"
        ),
    )
    parser.add_argument(
        "--track",
        type=_track_choice,
        metavar="ID",
        help=(
            f"convert only this object of a multi-object file ({', '.join(multi_track_formats())}); "
            "COCO also takes a category name. Without it every object is converted"
        ),
    )
    return parser


def _video_facts(video: Path) -> tuple[int, tuple[int, int]]:
    from trackers.sources import open_source

    with open_source(video) as source:
        return len(source), source.size


def _track_choice(text: str) -> int | str:
    """A track id, or (COCO) a category name."""
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _counts(trajectory: Trajectory) -> tuple[int, int]:
    annotated = [e for _i, e in trajectory.annotated()]
    boxes = sum(e.box is not None for e in annotated)
    return boxes, len(annotated) - boxes


def _with_columns(args: argparse.Namespace) -> dict[str, Format]:
    """FORMATS, with ``csv`` taking the --columns given."""
    columns = getattr(args, "columns", None)
    if columns is None:
        return FORMATS
    if "csv" not in (args.from_format, args.to_format) and not str(args.input).lower().endswith(".csv"):
        raise ValueError("--columns is for csv: give --from csv or --to csv")
    return {**FORMATS, "csv": csvtable.with_columns(columns)}


def cmd_convert(
    args: argparse.Namespace,
    stderr: TextIO | None = None,
    source: tuple[str, list[Track]] | None = None,
) -> int:
    """Run ``convert``. ``source`` is ``(name, objects)`` already read by the caller (the
    CLI reads siamtrack projects itself); otherwise IN is read as a format."""
    err = sys.stderr if stderr is None else stderr
    frame_count = frame_size = None
    if args.video is not None:
        frame_count, frame_size = _video_facts(args.video)
    formats = _with_columns(args)
    if formats is not FORMATS and source is None:
        return _convert_with(args, formats, frame_count, frame_size, err)
    tracks: list[Track] = []
    if source is not None:
        source_format, tracks = source
        if args.track is not None:
            tracks = [t for t in tracks if args.track in (t.id, t.label)]
            if not tracks:
                raise FormatError(args.input, f"has no object {args.track}")
    elif args.track is None:
        tracks = read_tracks(args.input, args.from_format, frame_count=frame_count, frame_size=frame_size)
    if len(tracks) > 1:
        source_format = source[0] if source else args.from_format or detect_tracks_format(Path(args.input))
        return _convert_tracks(args, tracks, source_format, err)
    if len(tracks) == 1:
        trajectory = tracks[0].trajectory
        source_format = source[0] if source else args.from_format or detect_tracks_format(Path(args.input))
    else:
        trajectory, source_format = read_trajectory(
            args.input,
            args.from_format,
            frame_count=frame_count,
            frame_size=frame_size,
            track=args.track,
        )
    if not any(e is not None and e.box is not None for e in trajectory.entries):
        # Converting nothing into an empty file would look like success: say what was read.
        raise FormatError(
            args.input, f"holds no boxes (read as {FORMATS[source_format].title}); nothing to convert"
        )
    target = _target(args, [trajectory])
    _report_dropped(args, [trajectory], target, err)
    _write_one(args, target, trajectory, err)
    boxes, absent = _counts(trajectory)
    print(
        f"wrote {args.output} ({source_format} -> {target.name}: {trajectory.frame_count} frames, "
        f"{boxes} boxes, {absent} absent)",
        file=err,
    )
    return 0


def _target(args: argparse.Namespace, trajectories: list[Trajectory]) -> Format:
    target = FORMATS[args.to_format]
    if target.needs_frame_size and any(t.frame_size is None for t in trajectories):
        raise FormatError(args.output, f"{target.name} needs the frame size: give the video with --video")
    return target


def _report_dropped(
    args: argparse.Namespace, trajectories: list[Trajectory], target: Format, err: TextIO
) -> None:
    lost = {name for t in trajectories for name in dropped_fields(t, target)}
    dropped = [name for name in FIELDS if name in lost]
    if args.video is not None:
        dropped = [f for f in dropped if f not in ("frame_count", "frame_size")]  # the video has them
    if dropped:
        print(f"{target.name} drops: {', '.join(dropped)}", file=err)


def _convert_tracks(args: argparse.Namespace, tracks: list[Track], source_format: str, err: TextIO) -> int:
    """Every object of a multi-object source; a single-object target gets a folder of them."""
    if not any(e is not None and e.box is not None for t in tracks for e in t.trajectory.entries):
        raise FormatError(
            args.input, f"holds no boxes (read as {FORMATS[source_format].title}); nothing to convert"
        )
    trajectories = [t.trajectory for t in tracks]
    target = _target(args, trajectories)
    if not target.multi_track and args.output.is_file():
        raise FormatError(
            args.output, f"is a file; {len(tracks)} objects in {target.name} are written to a folder"
        )
    _report_dropped(args, trajectories, target, err)
    if target.name == "vot" and args.video is not None:
        # Each object a workspace sequence of its own, frames included, all listed in OUT/list.txt.
        for track in tracks:
            vot.export_vot_sequence(track.trajectory, args.video, Path(args.output), entry_name(track))
    else:
        write_tracks(tracks, args.output, target.name)
    boxes = sum(_counts(t)[0] for t in trajectories)
    absent = sum(_counts(t)[1] for t in trajectories)
    where = "" if target.multi_track else ", one entry per object"
    print(
        f"wrote {args.output} ({source_format} -> {target.name}: {len(tracks)} objects "
        f"(ids {', '.join(str(t.id) for t in tracks)}), {max(t.frame_count for t in trajectories)} frames, "
        f"{boxes} boxes, {absent} absent{where})",
        file=err,
    )
    return 0


def _write_one(args: argparse.Namespace, target: Format, trajectory: Trajectory, err: TextIO) -> None:
    if target.name == "vot" and args.video is not None:
        # A VOT sequence is only usable with its frames: write them too (color/%08d.jpg),
        # and list the sequence in OUT's parent list.txt, as a workspace's sequences/ folder.
        out = Path(args.output)
        vot.export_vot_sequence(trajectory, args.video, out.parent, out.name)
        print(
            f"wrote the frames to {out / vot.COLOR} and listed {out.name} in {out.parent / LIST}",
            file=err,
        )
        return
    target.write(trajectory, args.output)


def _convert_with(
    args: argparse.Namespace,
    formats: dict[str, Format],
    frame_count: int | None,
    frame_size: tuple[int, int] | None,
    err: TextIO,
) -> int:
    """convert with --columns: csv on one side, read and written by its columns."""
    source_name = args.from_format or ("csv" if str(args.input).lower().endswith(".csv") else None)
    source = formats[source_name] if source_name else None
    if source is not None and source.read_tracks is not None:
        tracks = source.read_tracks(Path(args.input), frame_count=frame_count, frame_size=frame_size)
    else:
        tracks = read_tracks(args.input, source_name, frame_count=frame_count, frame_size=frame_size)
    source_name = source_name or detect_tracks_format(Path(args.input))
    if args.track is not None:
        tracks = [t for t in tracks if t.id == args.track or t.label == args.track]
        if not tracks:
            raise FormatError(args.input, f"has no object {args.track}")
    if not any(e is not None and e.box is not None for t in tracks for e in t.trajectory.entries):
        raise FormatError(
            args.input, f"holds no boxes (read as {formats[source_name].title}); nothing to convert"
        )
    target = formats[args.to_format]
    trajectories = [t.trajectory for t in tracks]
    if target.needs_frame_size and any(t.frame_size is None for t in trajectories):
        raise FormatError(args.output, f"{target.name} needs the frame size: give the video with --video")
    _report_dropped(args, trajectories, target, err)
    if target.write_tracks is not None:
        target.write_tracks(tracks, Path(args.output))
    elif len(tracks) == 1:
        target.write(trajectories[0], Path(args.output))
    else:
        write_tracks(tracks, args.output, target.name)
    print(f"wrote {args.output} ({source_name} -> {target.name}: {len(tracks)} objects)", file=err)
    return 0
