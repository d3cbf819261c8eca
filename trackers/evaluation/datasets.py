"""Annotated sequences for evaluation and training: where they are found and how their
ground truth is read (OTB folders, GOT-10k folders, labelled videos, multi-object files)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackers.evaluation.metrics import first_valid_frame
from trackers.sources import VIDEO_SUFFIXES
from trackers.types import AnnotatedSequence

__all__ = [
    "MAX_COORDINATE",
    "OTB_GROUNDTRUTH",
    "AnnotatedSequence",
    "box_problem",
    "load_sequences",
    "read_groundtruth",
]

OTB_GROUNDTRUTH = "groundtruth_rect.txt"

_SEPARATORS = re.compile(r"[,\s]+")


def read_groundtruth(path: str | Path) -> NDArray[np.float64]:
    """Parse a 1-based OTB ``x,y,w,h`` file into 0-based N x 4 rows, NaN rows where absent.

    The parsing is the OTB format's own (``trackers.formats.otb``): a malformed line
    raises a ValueError naming the file and line.
    """
    from trackers.formats.otb import read_box_lines

    path = Path(path)
    rows_read = read_box_lines(path)
    rows = np.full((len(rows_read), 4), np.nan, dtype=np.float64)
    for index, (number, box) in enumerate(rows_read):
        if box is not None:
            rows[index] = box.as_array()
            problem = box_problem(rows[index])
            if problem:
                raise ValueError(f"{path}:{number}: {problem}")  # as trackers.formats names a line
    if first_valid_frame(rows) is None:
        raise ValueError(f"{path}: no valid box (all lines absent or of zero size)")
    return rows


MAX_COORDINATE = 1_000_000.0
"""No frame is this large: a box beyond it (orders of magnitude past any video) is damage,
and its area would overflow the IoU arithmetic (1e154 squared is inf)."""


def box_problem(row: ArrayLike) -> str | None:
    """Why a ground-truth row ``x, y, w, h`` cannot be a box (None if it can, or if it is all NaN: absent)."""
    values = np.asarray(row, dtype=np.float64)
    if np.isnan(values).all():
        return None
    if not np.isfinite(values).all():
        return f"the box {', '.join(f'{v:g}' for v in values)} is not finite"
    if np.abs(values).max() > MAX_COORDINATE:
        return (
            f"the box {', '.join(f'{v:g}' for v in values)} lies beyond any frame "
            f"(more than {MAX_COORDINATE:,.0f} px)"
        )
    return None


def _check_boxes(sequence: AnnotatedSequence, where: Path) -> AnnotatedSequence:
    """Every row of a sequence read by another format's reader, checked as ``read_groundtruth`` checks."""
    for index, row in enumerate(np.asarray(sequence.groundtruth, dtype=np.float64)):
        problem = box_problem(row)
        if problem:
            raise ValueError(f"{where}, box {index + 1}: {problem}")
    return sequence


def _is_otb_folder(path: Path) -> bool:
    return (path / "img").is_dir()


def _not_regular(path: Path) -> str:
    return f"{path} is not a regular file or a folder (a FIFO, a device or a socket)"


def _otb_sequence(folder: Path) -> AnnotatedSequence:
    groundtruth = folder / OTB_GROUNDTRUTH
    if not groundtruth.is_file():
        if groundtruth.exists():  # a FIFO would block the read until a writer appears
            raise ValueError(f"no ground truth for {folder}: {_not_regular(groundtruth)}")
        raise ValueError(f"no ground truth for {folder}: {OTB_GROUNDTRUTH} is missing")
    return AnnotatedSequence(folder.name, folder, read_groundtruth(groundtruth))


def _video_sequence(video: Path) -> AnnotatedSequence:
    groundtruth = video.with_suffix(".txt")
    if not groundtruth.is_file():
        if groundtruth.exists():
            raise ValueError(f"no ground truth for {video}: {_not_regular(groundtruth)}")
        raise ValueError(f"no ground truth for {video}: expected {groundtruth.name} beside it")
    return AnnotatedSequence(video.stem, video, read_groundtruth(groundtruth))


def _sequences_in(path: Path) -> list[AnnotatedSequence]:
    from trackers.object_sequences import object_sequences

    # multi-object ground truth (MOT gt.txt, CVAT video, COCO-VID): one sequence per object
    per_object = object_sequences(path)
    if per_object:
        return per_object
    if path.is_file():
        return [_video_sequence(path)]
    if path.exists() and not path.is_dir():
        raise ValueError(_not_regular(path))
    if not path.is_dir():
        raise ValueError(f"{path} does not exist")
    from trackers.formats.got10k import is_got10k_folder, read_got10k_sequence

    if _is_otb_folder(path):
        return [_otb_sequence(path)]
    if is_got10k_folder(path):
        return [_check_boxes(read_got10k_sequence(path), path)]
    found: list[AnnotatedSequence] = []
    for child in sorted(path.iterdir(), key=lambda p: p.name):
        if child.is_dir() and (per_object := object_sequences(child)):
            found.extend(per_object)
        elif child.is_dir() and _is_otb_folder(child):
            found.append(_otb_sequence(child))
        elif child.is_dir() and is_got10k_folder(child):
            # our own "Export as training dataset" writes this layout
            found.append(_check_boxes(read_got10k_sequence(child), child))
        elif (
            child.is_file()
            and child.suffix.lower() in VIDEO_SUFFIXES
            and child.with_suffix(".txt").exists()
        ):
            # Videos without ground truth beside them are unlabelled clips: not sequences.
            found.append(_video_sequence(child))
    if not found:
        raise ValueError(
            f"no ground truth found in {path}: expected an OTB folder (img/ + {OTB_GROUNDTRUTH}), "
            "a GOT-10k folder, a folder of them, or videos with <name>.txt beside them"
        )
    return found


def load_sequences(paths: str | Path | Iterable[str | Path]) -> list[AnnotatedSequence]:
    """Load annotated sequences from OTB folders, folders of them, or labelled videos."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sequences: list[AnnotatedSequence] = []
    origin: dict[str, Path] = {}
    for raw in paths:
        for sequence in _sequences_in(Path(raw).expanduser()):
            previous = origin.get(sequence.name)
            if previous is not None:
                if previous.resolve() == sequence.source.resolve():
                    continue
                # Results are keyed by name; two different sources under one name would collide.
                raise ValueError(
                    f"two sequences are named {sequence.name!r}: {previous} and {sequence.source}"
                )
            origin[sequence.name] = sequence.source
            sequences.append(sequence)
    return sequences
