"""``siamtrack track`` with several ``--box``: every object on the same frames, one MOT file.

Each frame is decoded once for all objects, and trackers that can share a network
run all objects' search regions as one batch (:mod:`trackers.batch`).

The output is MOT Challenge 1.1 text (the results layout of
https://motchallenge.net/instructions/ : ``frame,id,bb_left,bb_top,bb_width,bb_height,
conf,x,y,z``), with 1-based frames (the video's own frame numbers) and 1-based pixels,
as ``trackers.formats.mot`` reads and writes them; ids are numbered in the order of
``--box``, and the 3D fields are ``-1``. Lines are sorted by frame, then id.
"""

from __future__ import annotations

from collections.abc import Sequence

from trackers.types import Box, TrackResult


def mot_lines(frame: int, results: Sequence[TrackResult | None]) -> list[str]:
    """The MOT lines of one 0-based ``frame``: object ``k`` (0-based) gets id ``k + 1``."""
    lines = []
    for k, result in enumerate(results):
        if result is None:
            continue
        x, y, w, h = result.box.to_one_based()
        lines.append(f"{frame + 1},{k + 1},{x:.3f},{y:.3f},{w:.3f},{h:.3f},{result.score:.4f},-1,-1,-1")
    return lines


def check_boxes(boxes: Sequence[Box], width: int, height: int) -> str | None:
    """The problem with the first box outside the frame, or None."""
    from trackers.evaluation.metrics import box_iou

    frame_box = Box(0, 0, width, height)
    for k, box in enumerate(boxes):
        if box_iou(box, frame_box) <= 0.0:
            which = f" (object {k + 1})" if len(boxes) > 1 else ""
            return f"--box {box}{which} lies wholly outside the {width}x{height} frame"
    return None
