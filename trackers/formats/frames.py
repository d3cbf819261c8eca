"""Frames in annotation files: how far they may go, how per-frame files are named, the video's hints."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from trackers.formats.common import FormatError
from trackers.trajectory import Trajectory

MAX_FRAMES = 10_000_000
"""Frame numbers from this on are taken for typos (over three days at 30 fps): a
trajectory that long would be built in memory frame by frame."""


def check_frames(path: Path, count: int, line: int | None = None, what: str = "frame") -> int:
    """``count`` (a frame number or count), unless it is absurdly large."""
    if count >= MAX_FRAMES:
        raise FormatError(path, f"{what} {count} is past the {MAX_FRAMES:,} frames siamtrack accepts", line)
    return count


FRAME_STEM = "frame_{:06d}"
"""Per-frame file names we write (CVAT's and datumaro's), 0-based."""
_OUR_STEM = re.compile(r"frame_(\d+)")
_DIGITS = re.compile(r"\d+")


def frame_stem(index: int) -> str:
    return FRAME_STEM.format(index)


def index_from_stem(stem: str) -> int | None:
    """The 0-based frame a per-frame file belongs to, from its name.

    ``frame_000012`` is frame 12 (CVAT's and our 0-based naming). A name of digits
    only, ``00000013``, is also frame 12: OTB, GOT-10k, LaSOT and ffmpeg number
    frame files from 1. Anything else is None.
    """
    match = _OUR_STEM.fullmatch(stem)
    if match:
        return int(match.group(1))
    if _DIGITS.fullmatch(stem) and int(stem) >= 1:
        return int(stem) - 1
    return None


def fit_to_video(
    trajectory: Trajectory,
    path: Path,
    frame_count: int | None,
    frame_size: tuple[int, int] | None,
) -> Trajectory:
    """Give a read trajectory the video's frame count and size, where they are known.

    A file that places a box past the video's end, or that states another frame
    size than the video's, does not belong to that video: FormatError. Absent or
    unannotated frames past the end are dropped.
    """
    if frame_size is not None:
        frame_size = (int(frame_size[0]), int(frame_size[1]))
        if trajectory.frame_size is not None and trajectory.frame_size != frame_size:
            w, h = trajectory.frame_size
            raise FormatError(
                path, f"the file is for {w}x{h} frames but the video's are {frame_size[0]}x{frame_size[1]}"
            )
        trajectory = replace(trajectory, frame_size=frame_size)
    if frame_count is not None:
        for index in range(frame_count, trajectory.frame_count):
            entry = trajectory[index]
            if entry is not None and entry.box is not None:
                raise FormatError(
                    path,
                    f"has a box on frame {index} (0-based) but the video has only {frame_count} frames",
                )
        trajectory = trajectory.with_frame_count(frame_count)
    return trajectory
