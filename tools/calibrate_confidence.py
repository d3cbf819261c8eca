#!/usr/bin/env python3
"""Fit the per-tracker confidence maps of ``trackers/confidence.py`` (rerun after new weights).

For every tracker, track the first ``--frames`` frames of each training sequence from
its first ground-truth box, and fit ``P(IoU > 0.5) = sigmoid(a * score + b)`` to the
(raw score, IoU > 0.5) pairs of all tracked frames by Newton's method (logistic
regression with a tiny ridge, so a tracker that never fails still gets finite numbers).
Held-out sequences are never read. Prints the table to paste into ``CALIBRATION``
with, per tracker, the frames used, the share with IoU > 0.5 and the Brier score (and on
stderr each sequence's frames and share).

    python tools/calibrate_confidence.py --frames 100            # all Siamese trackers
    python tools/calibrate_confidence.py --tracker siamrpn --weights my.pt
    python tools/calibrate_confidence.py --tracker dsiam --set window_influence=0.176  # compare settings

Cheap by design: one thread, 100 frames of 10 sequences per tracker.
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

DATA = ROOT.parent / "shared" / "data" / "sequences"
HELD_OUT = (
    "OTB100_Dog1", "OTB100_Jogging-1", "OTB100_Jogging-2", "OTB100_Subway", "VOT2015_bag", "OTB100_Coke",
)
SIAMESE = ("siamfc", "siamfc-3s", "siamrpn", "dsiam", "dsiamm")
RIDGE = 1e-3


def fit_logistic(scores: np.ndarray, hits: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(a, b) of sigmoid(a * score + b) fitted to 0/1 ``hits`` (maximum likelihood, tiny ridge on a)."""
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(hits, dtype=np.float64)
    # fit on standardised scores: Newton converges fast whatever the score's scale
    mean, std = float(x.mean()), float(x.std()) or 1.0
    z = (x - mean) / std
    design = np.stack([z, np.ones_like(z)], axis=1)
    w = np.zeros(2)
    ridge = np.diag([RIDGE * len(x), 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + ridge @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    a = w[0] / std
    b = w[1] - w[0] * mean / std
    return float(a), float(b)


def collect(
    tracker_name: str, sequences: list, frames: int, weights: Path | None,
    config: dict[str, object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    from trackers.evaluation import iou
    from trackers.registry import create_tracker
    from trackers.run import track_frames
    from trackers.sources import open_source
    from trackers.types import Box

    scores: list[float] = []
    ious: list[float] = []
    for sequence in sequences:
        gt = sequence.groundtruth[:frames]
        if not np.all(np.isfinite(gt[0])):
            continue
        tracker = create_tracker(tracker_name, weights=weights, device="cpu", config=config or None)
        source = open_source(sequence.source)
        try:
            stream = source.iter_from(0, min(frames, len(gt)))
            boxes, raw = [], []
            for step in track_frames(tracker, stream, Box(*gt[0])):
                if step.index:
                    boxes.append(step.result.box.as_array())
                    raw.append(step.result.score)
        finally:
            source.close()
        truth = gt[1 : 1 + len(boxes)]
        keep = np.all(np.isfinite(truth), axis=1) & np.isfinite(raw)
        overlap = iou(np.asarray(boxes)[keep], truth[keep])
        scores.extend(np.asarray(raw)[keep])
        ious.extend(overlap)
        share = f", {np.mean(overlap > 0.5):.0%} IoU>0.5" if len(overlap) else ""
        line = f"  {tracker_name} {sequence.name}: {int(keep.sum())} frames{share}"
        print(line, file=sys.stderr, flush=True)
    return np.asarray(scores), np.asarray(ious)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker", action="append", help=f"default: {' '.join(SIAMESE)}")
    parser.add_argument("--weights", type=Path, help="checkpoint (default: the bundled weights)")
    parser.add_argument("--frames", type=int, default=100, help="frames per sequence (default 100)")
    parser.add_argument(
        "--data", type=Path, default=DATA, help="OTB-layout sequences (default ../shared/data/sequences)"
    )
    parser.add_argument("--sequences", type=int, default=10, help="at most this many training sequences")
    parser.add_argument(
        "--set", action="append", default=[], type=config_item, metavar="KEY=VALUE",
        help="a config value for every tracker (repeatable), to see how a setting moves the fit",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from trackers.evaluation import load_sequences

    if not args.data.is_dir():
        print(f"calibrate_confidence: error: no data folder {args.data}", file=sys.stderr)
        return 2
    folders = sorted(p for p in args.data.iterdir() if p.is_dir() and p.name not in HELD_OUT)
    sequences = load_sequences(folders[: args.sequences])
    print(f"training sequences: {', '.join(s.name for s in sequences)}", file=sys.stderr)
    lines = []
    for name in args.tracker or SIAMESE:
        scores, ious = collect(name, sequences, args.frames, args.weights, dict(args.set))
        hits = (ious > 0.5).astype(np.float64)
        a, b = fit_logistic(scores, hits)
        p = 1.0 / (1.0 + np.exp(-(a * scores + b)))
        brier = float(np.mean((p - hits) ** 2))
        lines.append(
            f'    "{name}": ({a:.4g}, {b:.4g}),  # {len(scores)} frames, {hits.mean():.0%} IoU>0.5, '
            f"scores {np.percentile(scores, 5):.3g}-{np.percentile(scores, 95):.3g}, Brier {brier:.3f}"
        )
        print(lines[-1], flush=True)
    print("\nCALIBRATION = {\n" + "\n".join(lines) + "\n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
