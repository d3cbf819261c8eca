"""Running trackers over annotated sequences, one pass from the first valid box (OTB style)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trackers.evaluation.metrics import auc, first_valid_frame, precision_score, sequence_curves
from trackers.evaluation.report import EvalReport, SequenceResult
from trackers.protocol import Tracker
from trackers.run import CancelToken, track_frames
from trackers.sources import open_source
from trackers.types import AnnotatedSequence, Box
from trackers.weights.provenance import learnt_from, read_provenance, seen_in_training

PROGRESS_EVERY = 50
"""Frames between two progress messages inside a sequence."""

Progress = Callable[[str], None]
Opener = Callable[[Path], Any]


def _run_sequence(
    tracker: Tracker,
    sequence: AnnotatedSequence,
    opener: Opener,
    label: str,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> SequenceResult | None:
    """Track one sequence from its first valid box; None when cancelled part-way."""
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    start = first_valid_frame(gt)
    if start is None:
        raise ValueError(f"{sequence.name}: the ground truth has no valid box")
    count = len(gt)
    boxes = np.full((count, 4), np.nan, dtype=np.float64)
    seconds = 0.0
    processed = 0
    longer = False
    with opener(sequence.source) as source:
        # Streaming up to the ground truth's length, rather than asking len(source),
        # spares a video a whole extra decode just to count its frames; a shorter
        # source simply ends the stream early (evaluation runs on the shorter length,
        # and the result says so). One frame more is decoded to see if the source goes on.
        stream = source.iter_from(start, count + 1)

        def frames():
            nonlocal longer
            for index, frame in enumerate(stream, start=start):
                if index >= count:
                    longer = True
                    return
                yield frame

        for step in track_frames(tracker, frames(), Box(*gt[start]), cancel):
            boxes[start + step.index] = step.result.box.as_array()
            seconds += step.seconds
            processed += 1
            if progress is not None and processed % PROGRESS_EVERY == 0:
                progress(f"{label}: frame {start + processed}/{count}")
    if cancel is not None and cancel.is_set() and processed < count - start:
        return None
    if processed == 0:
        raise ValueError(
            f"{sequence.name}: the first valid box is on frame {start}, "
            "past the source's last frame"
        )
    boxes = boxes[: start + processed]
    succ, prec = sequence_curves(boxes, gt[: len(boxes)])
    return SequenceResult(
        auc=auc(succ),
        precision=precision_score(prec),
        fps=float(processed / seconds) if seconds > 0 else 0.0,
        frames=processed,
        success_curve=succ,
        precision_curve=prec,
        boxes=boxes,
        frames_expected=count,
        frames_decoded=start + processed,
        source_longer=longer,
    )


def evaluate(
    sequences: Sequence[AnnotatedSequence],
    tracker_names: Sequence[str],
    make_tracker: Callable[[str], Tracker],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    *,
    opener: Opener | None = None,
) -> EvalReport:
    """Run every tracker on every sequence (one pass, OTB style) and score it.

    ``make_tracker(name)`` builds a tracker; it is called once per tracker, and again
    after a sequence on which the tracker raised, so one failure does not taint the
    next sequence. A failure (building, opening, tracking) is recorded on that
    sequence and the evaluation carries on. ``opener`` maps a source path to a frame
    source (default: ``trackers.sources.open_source``). On cancel, the report holds
    the sequences finished so far and ``cancelled`` is True.
    """
    open_fn = opener if opener is not None else open_source
    report = EvalReport(trackers=list(tracker_names), sequences=[s.name for s in sequences])
    total = len(sequences)
    for name in report.trackers:
        per_seq = report.results.setdefault(name, {})
        tracker: Tracker | None = None
        for number, sequence in enumerate(sequences, start=1):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                return report
            label = f"{name} {sequence.name} ({number}/{total})"
            if progress is not None:
                progress(label)
            try:
                if tracker is None:
                    tracker = make_tracker(name)
                    if getattr(tracker, "untrained", False):
                        report.untrained.add(name)
                    if name not in report.trained_on:  # one read of the file per tracker, not per rebuild
                        learnt = learnt_from(read_provenance(getattr(tracker, "weights_path", None)))
                        report.trained_on[name] = seen_in_training(report.sequences, learnt)
                result = _run_sequence(tracker, sequence, open_fn, label, progress, cancel)
            except Exception as exc:  # noqa: BLE001 - one bad sequence must not lose the rest
                tracker = None
                per_seq[sequence.name] = SequenceResult(
                    auc=None, precision=None, fps=None, frames=0, error=_describe(exc)
                )
                if progress is not None:
                    progress(f"{label}: error: {_describe(exc)}")
                continue
            if result is None:
                report.cancelled = True
                return report
            per_seq[sequence.name] = result
    return report


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
