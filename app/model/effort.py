"""``siamtrack effort``: how many human corrections a correct trajectory costs.

A simulated careful annotator works on a sequence with ground truth through the
app's own session (``app.model.session``: keyframes, bounded re-track, rejoin, absent
marking), not a copy of it:

1. The first frame with a visible target gets its ground-truth box as a keyframe
   (the box every method needs; it is not counted as a correction). The tracker runs.
2. The annotator walks the frames in order. At the first frame that fails (a box
   with IoU below the threshold, a box where the target is absent, or nothing
   where it is present) they fix it: a visible target gets its ground-truth box as
   a keyframe and the app's bounded re-track runs from there; an absent target
   gets its whole absent span marked absent. Each fix is one correction.
3. Frames before a fix never change again, so the walk goes on from the fix until
   every frame passes.

The baseline is how CVAT or Label Studio users work: linear interpolation between
keyframes, the last box held after the last keyframe, and a keyframe added greedily
at the first frame whose interpolated box fails. A new keyframe changes the
interpolation before it, so that walk restarts at the previous keyframe.

The app suggests no absent frames yet, so every absent span costs one correction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.model.session import AnnotationSession, TrackerSettings
from app.model.session_runner import run_bidirectional, run_request
from trackers.evaluation import AnnotatedSequence, first_valid_frame
from trackers.evaluation.metrics import box_iou
from trackers.protocol import Tracker
from trackers.registry import create_tracker
from trackers.trajectory import Entry, Origin
from trackers.types import Box

MakeTracker = Callable[..., Tracker]


@dataclass
class Effort:
    """One method on one sequence."""

    corrections: int
    frames: int
    mean_iou: float
    seconds: float = 0.0
    """Wall time spent tracking (0 for interpolation)."""
    keyframes: list[int] = field(default_factory=list)

    @property
    def per100(self) -> float:
        return 100.0 * self.corrections / self.frames if self.frames else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "corrections": self.corrections,
            "frames": self.frames,
            "per100": self.per100,
            "mean_iou": self.mean_iou,
            "seconds": self.seconds,
        }


def _gt_box(row: np.ndarray) -> Box | None:
    return None if np.isnan(row).any() else Box(*row)


def frame_passes(entry: Entry | None, truth: Box | None, threshold: float) -> bool:
    """Does what the trajectory says about a frame agree with the ground truth?"""
    if truth is None:
        return entry is not None and entry.box is None
    return entry is not None and entry.box is not None and box_iou(entry.box, truth) >= threshold


def _absent_span(groundtruth: np.ndarray, start: int) -> int:
    """The exclusive end of the ground truth's absent span starting at ``start``."""
    end = start
    while end < len(groundtruth) and np.isnan(groundtruth[end]).any():
        end += 1
    return end


def _first_failure(
    session: AnnotationSession, groundtruth: np.ndarray, start: int, threshold: float
) -> int | None:
    trajectory = session.trajectory
    for index in range(start, len(groundtruth)):
        if not frame_passes(trajectory[index], _gt_box(groundtruth[index]), threshold):
            return index
    return None


def _mean_iou(session: AnnotationSession, groundtruth: np.ndarray) -> float:
    values = []
    trajectory = session.trajectory
    for index, row in enumerate(groundtruth):
        truth = _gt_box(row)
        if truth is None:
            continue
        entry = trajectory[index]
        values.append(box_iou(entry.box, truth) if entry is not None and entry.box is not None else 0.0)
    return float(np.mean(values)) if values else math.nan


def _new_session(
    sequence: AnnotatedSequence,
    frame_size: tuple[int, int],
    settings: TrackerSettings,
    policy: Mapping[str, Any] | None = None,
) -> AnnotationSession:
    """A session like the app's; ``policy`` sets its re-track knobs (rejoin_iou, rejoin_frames)."""
    return AnnotationSession(
        sequence.source, len(sequence.groundtruth), frame_size, content_hash="effort-simulation",
        settings=settings, **dict(policy or {}),
    )


def simulate_tracker(
    sequence: AnnotatedSequence,
    frames: Any,
    frame_size: tuple[int, int],
    settings: TrackerSettings,
    threshold: float = 0.5,
    mode: str = "forward",
    make_tracker: MakeTracker = create_tracker,
    policy: Mapping[str, Any] | None = None,
) -> Effort:
    """The annotator with a tracker: fix the first failing frame, re-track, repeat."""
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    session = _new_session(sequence, frame_size, settings, policy)
    start = first_valid_frame(gt)
    if start is None:
        raise ValueError(f"{sequence.name}: the ground truth has no visible target")
    corrections = 0
    seconds = 0.0
    if start > 0:  # the target is absent at the very start: one span to mark
        session.set_absent(0, start)
        corrections += 1
    session.set_keyframe(start, Box(*gt[start]))
    fix = start
    while True:
        if session.trajectory[fix] is not None and session.trajectory[fix].box is not None:
            began = time.perf_counter()
            keyframes_after = [k for k in session.trajectory.keyframes() if k > fix]
            if (
                mode == "bidirectional"
                and keyframes_after
                and session.trajectory[keyframes_after[0]].box is not None
            ):
                run_bidirectional(session, fix, keyframes_after[0], frames, settings, make_tracker)
            else:
                run_request(session, session.begin_run(fix, +1, settings), frames, make_tracker)
            seconds += time.perf_counter() - began
        failure = _first_failure(session, gt, fix, threshold)
        if failure is None:
            break
        truth = _gt_box(gt[failure])
        if truth is None:
            session.set_absent(failure, _absent_span(gt, failure))
        else:
            session.set_keyframe(failure, truth)
        corrections += 1
        fix = failure
    return Effort(corrections, len(gt), _mean_iou(session, gt), seconds, session.trajectory.keyframes())


def _hold_after(session: AnnotationSession, keyframe: int) -> None:
    """CVAT's interpolation mode keeps the last keyframe's box until the next keyframe."""
    box = session.trajectory[keyframe].box
    changes = {}
    for index in range(keyframe + 1, session.frame_count):
        entry = session.trajectory[index]
        if entry is not None and entry.origin is Origin.KEYFRAME:
            break
        changes[index] = Entry(box, Origin.INTERPOLATED)
    if changes:
        session.apply(changes, kind="interpolate")


def _interpolate_around(session: AnnotationSession, index: int) -> None:
    """Re-interpolate the spans on both sides of keyframe ``index`` (absent keyframes break spans)."""
    trajectory = session.trajectory
    keyframes = trajectory.keyframes()
    before = [k for k in keyframes if k < index]
    after = [k for k in keyframes if k > index]
    here = trajectory[index]
    if before and here.box is not None and trajectory[before[-1]].box is not None:
        session.interpolate(before[-1], index)
    if here.box is None:
        return
    if after and trajectory[after[0]].box is not None:
        session.interpolate(index, after[0])
    else:
        # no later keyframe, or an absent one: the box is held up to it
        _hold_after(session, index)


def simulate_interpolation(
    sequence: AnnotatedSequence, frame_size: tuple[int, int], threshold: float = 0.5
) -> Effort:
    """The baseline annotator: keyframes and linear interpolation, no tracker."""
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    session = _new_session(sequence, frame_size, TrackerSettings())
    start = first_valid_frame(gt)
    if start is None:
        raise ValueError(f"{sequence.name}: the ground truth has no visible target")
    corrections = 0
    if start > 0:
        session.set_absent(0, start)
        corrections += 1
    session.set_keyframe(start, Box(*gt[start]))
    _hold_after(session, start)
    cursor = start
    while True:
        failure = _first_failure(session, gt, cursor, threshold)
        if failure is None:
            break
        truth = _gt_box(gt[failure])
        if truth is None:
            end = _absent_span(gt, failure)
            session.set_absent(failure, end)
            # CVAT's `outside` hides the track until its next keyframe: no box is held past the span
            later = [k for k in session.trajectory.keyframes() if k >= end]
            stop = later[0] if later else session.frame_count
            if stop > end:
                session.clear(end, stop)
            cursor = failure
        else:
            session.set_keyframe(failure, truth)
            _interpolate_around(session, failure)
            previous = [k for k in session.trajectory.keyframes() if k < failure]
            cursor = previous[-1] if previous else failure
        corrections += 1
    return Effort(corrections, len(gt), _mean_iou(session, gt), 0.0, session.trajectory.keyframes())


# ------------------------------------------------------------------------------ report
@dataclass
class EffortReport:
    threshold: float
    mode: str
    trackers: dict[str, dict[str, Effort]]
    interpolation: dict[str, Effort]
    untrained: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    """One line per sequence measured on other than all its frames (a damaged video, a short ground truth)."""

    @staticmethod
    def _total_per100(efforts: Sequence[Effort]) -> float:
        frames = sum(e.frames for e in efforts)
        return 100.0 * sum(e.corrections for e in efforts) / frames if frames else 0.0

    def per100(self, name: str | None) -> float:
        efforts = self.interpolation if name is None else self.trackers[name]
        return self._total_per100(list(efforts.values()))

    def ratio(self, name: str) -> float:
        ours = self.per100(name)
        return self.per100(None) / ours if ours > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        trackers = {}
        for name, per_seq in self.trackers.items():
            entry: dict[str, Any] = {
                "per100": self.per100(name),
                "ratio_vs_interpolation": _finite_or_none(self.ratio(name)),
                "sequences": {seq: e.to_json() for seq, e in per_seq.items()},
            }
            if name in self.untrained:
                entry["untrained"] = True
            trackers[name] = entry
        return {
            "iou": self.threshold,
            "mode": self.mode,
            "trackers": trackers,
            "interpolation": {
                "per100": self.per100(None),
                "sequences": {seq: e.to_json() for seq, e in self.interpolation.items()},
            },
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def format_effort_table(report: EffortReport) -> str:
    header = f"{'method':<16} {'sequence':<28} {'corr':>5} {'frames':>6} {'per100':>7} {'mIoU':>6} {'sec':>7}"
    lines = [header, "-" * len(header)]
    methods: list[tuple[str, dict[str, Effort]]] = [
        *report.trackers.items(),
        ("interpolation", report.interpolation),
    ]
    for name, per_seq in methods:
        for seq, e in per_seq.items():
            lines.append(
                f"{name:<16} {seq:<28} {e.corrections:>5} {e.frames:>6} {e.per100:>7.2f} "
                f"{e.mean_iou:>6.3f} {e.seconds:>7.1f}"
            )
        total = report.per100(None if name == "interpolation" else name)
        lines.append(f"{name:<16} {'total':<28} {'':>5} {'':>6} {total:>7.2f}")
        lines.append("")
    for name in report.trackers:
        ratio = report.ratio(name)
        lines.append(f"interpolation needs {ratio:.2f}x the corrections of {name} (IoU {report.threshold})")
    for name in sorted(report.untrained):
        lines.append(f"WARNING: {name} ran on RANDOM (untrained) weights")
    return "\n".join(lines)


def _fit_to_source(sequence: AnnotatedSequence, source: Any, notes: list[str]) -> AnnotatedSequence:
    """The sequence cut to the frames that both its video and its ground truth have, saying so
    (as ``siamtrack track`` says when a damaged video decodes fewer frames than it claims)."""
    from dataclasses import replace

    from trackers.sources import frame_count_note

    note = frame_count_note(source)
    if note:
        notes.append(note)
    decoded, lines = len(source), len(sequence.groundtruth)
    if decoded < lines:
        notes.append(
            f"{sequence.name}: only {decoded} of the {lines} frames the ground truth covers decode; "
            f"measured on those {decoded}"
        )
        return replace(sequence, groundtruth=sequence.groundtruth[:decoded])
    if decoded > lines:
        notes.append(
            f"{sequence.name}: the ground truth has {lines} lines but the video {decoded} frames; "
            f"measured on the first {lines}"
        )
    return sequence


def measure_effort(
    sequences: Sequence[AnnotatedSequence],
    tracker_names: Sequence[str],
    *,
    threshold: float = 0.5,
    mode: str = "forward",
    weights: Any = None,
    device: str = "auto",
    model_dir: Any = None,
    make_tracker: MakeTracker = create_tracker,
    progress: Callable[[str], None] | None = None,
    policy: Mapping[str, Any] | None = None,
) -> EffortReport:
    from trackers.sources import open_source

    if mode not in ("forward", "bidirectional"):
        raise ValueError(f"--mode must be forward or bidirectional, got {mode!r}")
    report = EffortReport(threshold, mode, {name: {} for name in tracker_names}, {})
    for sequence in sequences:
        with open_source(sequence.source) as source:
            frame_size = source.size
            sequence = _fit_to_source(sequence, source, report.notes)
            if progress:
                progress(f"interpolation {sequence.name}")
            report.interpolation[sequence.name] = simulate_interpolation(sequence, frame_size, threshold)
            for name in tracker_names:
                if progress:
                    progress(f"{name} {sequence.name}")
                settings = TrackerSettings(tracker=name, weights=weights, device=device, model_dir=model_dir)

                def make(tracker_name: str, _name: str = name, **kwargs: Any) -> Tracker:
                    tracker = make_tracker(tracker_name, **kwargs)
                    if getattr(tracker, "untrained", False):
                        report.untrained.add(_name)
                    return tracker

                report.trackers[name][sequence.name] = simulate_tracker(
                    sequence, source, frame_size, settings, threshold, mode, make, policy
                )
    return report
