"""``siamtrack convert IN OUT [--from FORMAT] --to FORMAT [--video V] [--track ID]``.

IN's format is detected (:mod:`trackers.formats.detect`) unless ``--from`` names
it. OUT is a file for otb, mot, cvat and coco, a folder for got10k, lasot, yolo
and voc. ``--video`` gives the frame count and size that some formats do not
hold (YOLO needs the size both ways). ``--track`` picks one object from a
multi-object file (mot, cvat, coco). The fields the target format cannot hold
are named on stderr, e.g. ``yolo drops: origin, score, occluded``.

User errors raise FormatError (a ValueError); the CLI prints them as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from trackers.formats import FORMATS, dropped_fields, multi_track_formats, read_trajectory
from trackers.formats.common import FormatError


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` subcommand to an argparse ``add_subparsers()`` object."""
    names = list(FORMATS)
    files = ", ".join(n for n, f in FORMATS.items() if f.layout == "file")
    folders = ", ".join(n for n, f in FORMATS.items() if f.layout == "folder")
    parser = subparsers.add_parser(
        "convert",
        help="convert a trajectory between annotation formats",
        description=(
            f"Convert one object's annotations between formats ({', '.join(names)}). "
            f"OUT is a file for {files} and a folder for {folders}."
        ),
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
        "--track",
        type=int,
        metavar="ID",
        help=f"which object of a multi-object file ({', '.join(multi_track_formats())})",
    )
    return parser


def _video_facts(video: Path) -> tuple[int, tuple[int, int]]:
    from trackers.sources import open_source

    with open_source(video) as source:
        return len(source), source.size


def cmd_convert(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    err = sys.stderr if stderr is None else stderr
    frame_count = frame_size = None
    if args.video is not None:
        frame_count, frame_size = _video_facts(args.video)
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
    target = FORMATS[args.to_format]
    if target.needs_frame_size and trajectory.frame_size is None:
        raise FormatError(args.output, f"{target.name} needs the frame size: give the video with --video")
    if target.layout == "file" and args.output.is_dir():
        raise FormatError(args.output, f"is a folder; {target.name} is written to a file")

    dropped = dropped_fields(trajectory, target)
    if args.video is not None:
        dropped = [f for f in dropped if f not in ("frame_count", "frame_size")]  # the video has them
    if dropped:
        print(f"{target.name} drops: {', '.join(dropped)}", file=err)
    target.write(trajectory, args.output)

    annotated = [e for _i, e in trajectory.annotated()]
    boxes = sum(e.box is not None for e in annotated)
    print(
        f"wrote {args.output} ({source_format} -> {target.name}: {trajectory.frame_count} frames, "
        f"{boxes} boxes, {len(annotated) - boxes} absent)",
        file=err,
    )
    return 0
