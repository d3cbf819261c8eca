"""Success AUC of a trained checkpoint on held-out sequences: the "metrics before and
after" a training run records in its checkpoint.

The validation loss says how well the network fits pairs; what a user cares about is
whether it tracks better. So a run tracks its validation sequences (OTB one-pass, from
the first valid box, as ``siamtrack eval`` does) with the weights it started from and
with the weights it ends with, and stores both success AUCs. Only the first
``max_frames`` frames of each sequence are tracked, to keep this affordable on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trackers.evaluation import AnnotatedSequence, evaluate, first_valid_frame
from trackers.registry import create_tracker
from trackers.run import CancelToken


def truncated(sequence: AnnotatedSequence, max_frames: int | None) -> AnnotatedSequence:
    """The sequence with its ground truth cut ``max_frames`` rows after its first box
    (evaluation starts at that box and stops at the last row; a held-out tail starts late)."""
    gt = np.asarray(sequence.groundtruth)
    start = first_valid_frame(gt)
    if max_frames is None or start is None or len(gt) <= start + max_frames:
        return sequence
    return AnnotatedSequence(sequence.name, sequence.source, gt[: start + max_frames])


def success_auc(
    tracker: str,
    weights: str | Path,
    sequences: Sequence[AnnotatedSequence],
    *,
    device: str = "cpu",
    max_frames: int | None = 150,
    cancel: CancelToken | None = None,
) -> dict[str, Any] | None:
    """``{"auc", "precision", "sequences", "frames_per_sequence"}``, or None.

    None when there is nothing to track or the evaluation was cancelled. A run from
    scratch measures its "before" on a checkpoint of its random initialisation.
    """
    if not sequences:
        return None
    cut = [truncated(s, max_frames) for s in sequences]

    report = evaluate(
        cut, [tracker], lambda name: create_tracker(name, weights=weights, device=device), cancel=cancel
    )
    if report.cancelled:
        return None
    mean = report.mean(tracker)
    if mean["auc"] is None:
        return None
    return {
        "auc": round(float(mean["auc"]), 4),
        "precision": round(float(mean["precision"]), 4),
        "sequences": [s.name for s in cut],
        "frames_per_sequence": max_frames,
    }
