#!/usr/bin/env python3
"""Where and how a tracker loses each sequence: the frame it loses the target, and whether it
slid off (the overlap decays over several frames, the box lagging behind) or jumped (from a
good overlap to none within two frames).

    python tools/where_lost.py SEQ... [--tracker siamfc] [--weights W] [--set KEY=VALUE]
        [--images DIR]

Per sequence: the first frame of the first run of ``--run`` frames (default 3) with IoU 0,
the overlap trail before it, the raw score over the first 10 frames and before the loss, and
``slid`` / ``jumped``; ``--images`` writes the lost frame with the ground truth (green) and
the box (red). Use it on a tuning split, to see what a setting or recipe should mend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.cli.options import config_item  # noqa: E402


def first_loss(ious: np.ndarray, run: int = 3) -> int | None:
    """The first frame of the first ``run`` consecutive frames with IoU 0 (NaN frames, where
    the target is absent, neither count nor break a run); None if there is none."""
    start, length = None, 0
    for i, value in enumerate(ious):
        if np.isnan(value):
            continue
        if value == 0:
            start = i if length == 0 else start
            length += 1
            if length >= run:
                return start
        else:
            length = 0
    return None


def how_lost(ious: np.ndarray, lost: int) -> str:
    """``jumped`` when the overlap was 0.5 or more within the two frames before the loss,
    else ``slid``."""
    before = ious[max(0, lost - 2) : lost]
    before = before[~np.isnan(before)]
    return "jumped" if before.size and before.max() >= 0.5 else "slid"


def track(sequence, tracker):
    """Boxes (N x 4) and raw scores as ``siamtrack eval`` tracks: from the first valid
    ground-truth box (``trackers.run.track_frames``); NaN before it and as its score."""
    from trackers.evaluation.metrics import first_valid_frame
    from trackers.run import track_frames
    from trackers.sources import open_source
    from trackers.types import Box

    truth = sequence.groundtruth
    start = first_valid_frame(truth)
    if start is None:
        raise ValueError(f"{sequence.name}: the ground truth has no valid box")
    boxes = np.full((len(truth), 4), np.nan)
    scores = np.full(len(truth), np.nan)
    end = start
    with open_source(sequence.source) as source:
        for step in track_frames(tracker, source.iter_from(start, len(truth)), Box(*truth[start])):
            end = start + step.index + 1
            boxes[end - 1] = step.result.box.as_array()
            if step.index and step.result.score is not None:
                scores[end - 1] = step.result.score
    return boxes[:end], scores[:end]


def save_frame(sequence, index: int, box: np.ndarray, path: Path) -> None:
    import cv2

    from trackers.sources import open_source

    with open_source(sequence.source) as source:
        frame = np.ascontiguousarray(source[index]).copy()
    for (x, y, w, h), colour in ((sequence.groundtruth[index], (0, 255, 0)), (box, (255, 0, 0))):
        if np.isfinite([x, y, w, h]).all():
            cv2.rectangle(frame, (int(x), int(y)), (int(x + w), int(y + h)), colour, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequences", nargs="+", metavar="SEQ")
    parser.add_argument("--tracker", default="siamfc")
    parser.add_argument("--weights")
    parser.add_argument("--set", action="append", default=[], type=config_item, metavar="KEY=VALUE")
    parser.add_argument("--run", type=int, default=3, help="frames of IoU 0 that make a loss")
    parser.add_argument("--images", type=Path, help="write each lost frame here")
    args = parser.parse_args(argv)
    if args.run < 1:
        parser.error("--run must be at least 1")

    import torch

    from trackers.evaluation.datasets import load_sequences
    from trackers.evaluation.metrics import iou
    from trackers.registry import create_tracker

    torch.set_num_threads(1)
    for sequence in load_sequences(args.sequences):
        tracker = create_tracker(args.tracker, weights=args.weights, device="cpu", config=dict(args.set))
        boxes, scores = track(sequence, tracker)
        ious = iou(boxes, sequence.groundtruth[: len(boxes)])
        start = np.nanmean(scores[1:11]) if len(scores) > 1 else float("nan")
        lost = first_loss(ious, args.run)
        if lost is None:
            print(f"{sequence.name}: kept ({len(boxes)} frames, mean IoU {np.nanmean(ious):.2f}, "
                  f"score over frames 1-10 {start:.2f})")
            continue
        trail = " ".join(f"{v:.2f}" for v in ious[max(0, lost - 8) : lost + 1])
        print(f"{sequence.name}: lost at frame {lost} of {len(boxes)}, {how_lost(ious, lost)}; "
              f"IoU before it {trail}; score over frames 1-10 {start:.2f}, "
              f"over the 5 before the loss {np.nanmean(scores[max(1, lost - 5) : lost]):.2f}")
        if args.images:
            save_frame(sequence, lost, boxes[lost], args.images / f"{sequence.name}_{lost:05d}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
