"""OTB-style one-pass evaluation, with got10k's definitions.

The numbers must be comparable with published OTB results, so every definition
follows got10k (``got10k/utils/metrics.py`` and ``got10k/experiments/otb.py``):

* IoU on continuous ``x, y, w, h`` boxes (no ``+1``), ``inter / (union + eps)``,
  clipped to [0, 1];
* success curve: fraction of frames with IoU ``>`` each of 21 thresholds in [0, 1];
  its mean is the AUC;
* precision curve: fraction of frames with centre error ``<=`` each of 0..50 px;
  precision is its value at 20 px;
* the first frame's prediction is the ground truth itself;
* curves are computed per sequence and averaged over sequences.

One departure, stated here: frames whose ground truth is absent (NaN) are left
out, as pytracking does, where got10k would count them as failures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackers.protocol import Tracker
from trackers.run import CancelToken, track_frames
from trackers.sources import VIDEO_SUFFIXES, open_source
from trackers.types import Box

SUCCESS_THRESHOLDS: NDArray[np.float64] = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS: NDArray[np.float64] = np.arange(0, 51, dtype=np.float64)
PRECISION_AT = 20
"""Index into PRECISION_THRESHOLDS (and pixel value) of the reported precision."""

OTB_GROUNDTRUTH = "groundtruth_rect.txt"
PROGRESS_EVERY = 50
"""Frames between two progress messages inside a sequence."""


# --------------------------------------------------------------------------- metrics


def _as_boxes(boxes: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4 (x, y, w, h), got shape {array.shape}")
    return array


def iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Per-row IoU of two N x 4 arrays of 0-based ``x, y, w, h`` (got10k ``rect_iou``)."""
    a, b = _as_boxes(a), _as_boxes(b)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    x0 = np.maximum(a[:, 0], b[:, 0])
    y0 = np.maximum(a[:, 1], b[:, 1])
    x1 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y1 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x1 - x0, 0.0) * np.maximum(y1 - y0, 0.0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    # got10k's eps: it keeps 0/0 finite and shifts results by ~1e-16 only.
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def center_error(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Per-row Euclidean distance between box centres, in pixels."""
    a, b = _as_boxes(a), _as_boxes(b)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    # got10k uses xy + (wh - 1) / 2; the -1/2 cancels in the difference.
    centres_a = a[:, :2] + a[:, 2:] / 2.0
    centres_b = b[:, :2] + b[:, 2:] / 2.0
    return np.sqrt(np.sum((centres_a - centres_b) ** 2, axis=1))


def success_curve(ious: ArrayLike) -> NDArray[np.float64]:
    """Fraction of frames with IoU strictly above each of 21 thresholds in [0, 1]."""
    values = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("success_curve needs at least one frame")
    return np.mean(values > SUCCESS_THRESHOLDS[np.newaxis, :], axis=0)


def precision_curve(errors: ArrayLike) -> NDArray[np.float64]:
    """Fraction of frames with centre error at most each of 0..50 px."""
    values = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("precision_curve needs at least one frame")
    return np.mean(values <= PRECISION_THRESHOLDS[np.newaxis, :], axis=0)


def auc(curve: ArrayLike) -> float:
    """got10k's success score: the mean of the success curve."""
    return float(np.mean(np.asarray(curve, dtype=np.float64)))


def precision_score(curve: ArrayLike) -> float:
    """Precision at 20 px from a precision curve."""
    return float(np.asarray(curve, dtype=np.float64)[PRECISION_AT])


def first_valid_frame(groundtruth: NDArray[np.float64]) -> int | None:
    """Index of the first frame whose ground truth can start a tracker, or None."""
    for index, row in enumerate(groundtruth):
        if Box(*row).is_valid():
            return index
    return None


def sequence_curves(
    predicted: ArrayLike, groundtruth: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Success and precision curves of one sequence.

    The first valid ground-truth frame is the initialisation frame: its prediction
    is replaced by the ground truth. Frames with NaN ground truth (absent target)
    and frames before the first valid one are left out.
    """
    pred = _as_boxes(predicted).copy()
    gt = _as_boxes(groundtruth)
    count = min(len(pred), len(gt))
    pred, gt = pred[:count], gt[:count]
    start = first_valid_frame(gt)
    if start is None:
        raise ValueError("the ground truth has no valid box")
    pred[start] = gt[start]
    keep = ~np.isnan(gt).any(axis=1)
    keep[:start] = False
    return (
        success_curve(iou(pred[keep], gt[keep])),
        precision_curve(center_error(pred[keep], gt[keep])),
    )


# --------------------------------------------------------------------------- sequences


@dataclass(frozen=True)
class Sequence:
    """One annotated sequence: a frame source and its 0-based ground truth."""

    name: str
    source: Path
    groundtruth: np.ndarray
    """N x 4 float, 0-based x, y, w, h; NaN rows where the target is absent."""


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


def _check_boxes(sequence: Sequence, where: Path) -> Sequence:
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


def _otb_sequence(folder: Path) -> Sequence:
    groundtruth = folder / OTB_GROUNDTRUTH
    if not groundtruth.is_file():
        if groundtruth.exists():  # a FIFO would block the read until a writer appears
            raise ValueError(f"no ground truth for {folder}: {_not_regular(groundtruth)}")
        raise ValueError(f"no ground truth for {folder}: {OTB_GROUNDTRUTH} is missing")
    return Sequence(folder.name, folder, read_groundtruth(groundtruth))


def _video_sequence(video: Path) -> Sequence:
    groundtruth = video.with_suffix(".txt")
    if not groundtruth.is_file():
        if groundtruth.exists():
            raise ValueError(f"no ground truth for {video}: {_not_regular(groundtruth)}")
        raise ValueError(f"no ground truth for {video}: expected {groundtruth.name} beside it")
    return Sequence(video.stem, video, read_groundtruth(groundtruth))


def _sequences_in(path: Path) -> list[Sequence]:
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
    found: list[Sequence] = []
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


def load_sequences(paths: str | Path | Iterable[str | Path]) -> list[Sequence]:
    """Load annotated sequences from OTB folders, folders of them, or labelled videos."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sequences: list[Sequence] = []
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


# --------------------------------------------------------------------------- results


@dataclass
class SequenceResult:
    """One tracker on one sequence."""

    auc: float | None
    precision: float | None
    fps: float | None
    frames: int
    """Frames the tracker processed, the initialisation frame included."""
    success_curve: NDArray[np.float64] | None = None
    precision_curve: NDArray[np.float64] | None = None
    boxes: NDArray[np.float64] | None = None
    """N x 4 predicted 0-based boxes, NaN where the tracker did not run."""
    error: str | None = None
    frames_expected: int | None = None
    """Frames the ground truth covers."""
    frames_decoded: int | None = None
    """Frames of those the source delivered (fewer: a damaged or short video, scored on what decoded)."""
    source_longer: bool = False
    """The source holds frames past the ground truth's last line (left out of the score)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auc": self.auc,
            "precision": self.precision,
            "fps": self.fps,
            "frames": int(self.frames),
        }
        if self.frames_expected is not None:
            out["frames_expected"] = int(self.frames_expected)
        if self.frames_decoded is not None:
            out["frames_decoded"] = int(self.frames_decoded)
        if self.source_longer:
            out["source_longer"] = True
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class EvalReport:
    """Per-tracker, per-sequence results; ``to_json`` gives the fixed contract other tools parse."""

    trackers: list[str]
    sequences: list[str]
    results: dict[str, dict[str, SequenceResult]] = field(default_factory=dict)
    cancelled: bool = False
    untrained: set[str] = field(default_factory=set)
    """Trackers that ran on random weights: their figures measure nothing."""

    def _ok(self, name: str) -> list[SequenceResult]:
        return [r for r in self.results.get(name, {}).values() if r.ok]

    def _mean_curve(self, name: str, attribute: str) -> NDArray[np.float64] | None:
        curves = [getattr(r, attribute) for r in self._ok(name)]
        return np.mean(np.stack(curves), axis=0) if curves else None

    @property
    def success_curves(self) -> dict[str, NDArray[np.float64]]:
        """Per tracker, the success curve averaged over the sequences it completed."""
        out = {n: self._mean_curve(n, "success_curve") for n in self.trackers}
        return {n: c for n, c in out.items() if c is not None}

    @property
    def precision_curves(self) -> dict[str, NDArray[np.float64]]:
        """Per tracker, the precision curve averaged over the sequences it completed."""
        out = {n: self._mean_curve(n, "precision_curve") for n in self.trackers}
        return {n: c for n, c in out.items() if c is not None}

    @property
    def boxes(self) -> dict[str, dict[str, NDArray[np.float64]]]:
        return {
            name: {seq: r.boxes for seq, r in per_seq.items() if r.boxes is not None}
            for name, per_seq in self.results.items()
        }

    def mean(self, name: str) -> dict[str, float | None]:
        """Means over the sequences that ran without error (None when there are none)."""
        done = self._ok(name)
        if not done:
            return {"auc": None, "precision": None, "fps": None}
        return {
            "auc": float(np.mean([r.auc for r in done])),
            "precision": float(np.mean([r.precision for r in done])),
            "fps": float(np.mean([r.fps for r in done])),
        }

    def failures(self, name: str) -> int:
        return sum(1 for r in self.results.get(name, {}).values() if not r.ok)

    def to_json(self) -> dict[str, Any]:
        trackers: dict[str, Any] = {}
        for name in self.trackers:
            entry: dict[str, Any] = {
                "mean": self.mean(name),
                "sequences": {
                    seq: result.to_json() for seq, result in self.results.get(name, {}).items()
                },
            }
            if name in self.untrained:
                entry["untrained"] = True
            trackers[name] = entry
        # False when the run was cut short: the sequences missing from it were never run.
        return {"trackers": trackers, "complete": not self.cancelled}

    def notes(self) -> list[str]:
        """A line per sequence scored on fewer frames than its ground truth covers, or than its video has."""
        out = []
        for name in self.trackers:
            for seq, r in self.results.get(name, {}).items():
                if not r.ok or r.frames_expected is None or r.frames_decoded is None:
                    continue
                if r.frames_decoded < r.frames_expected:
                    out.append(
                        f"note: {name} on {seq}: only {r.frames_decoded} of the {r.frames_expected} frames "
                        "the ground truth covers decode (a damaged or short video); scored on those"
                    )
                if r.source_longer:
                    out.append(
                        f"note: {name} on {seq}: the ground truth has {r.frames_expected} lines but the "
                        f"video goes on; scored on the first {r.frames_expected} frames"
                    )
        return out


# --------------------------------------------------------------------------- running

Progress = Callable[[str], None]
Opener = Callable[[Path], Any]


def _run_sequence(
    tracker: Tracker,
    sequence: Sequence,
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
    sequences: SequenceOf[Sequence],
    tracker_names: SequenceOf[str],
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


# --------------------------------------------------------------------------- output


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(report: EvalReport) -> str:
    """An aligned text table: one row per tracker and sequence, then a mean row per tracker."""
    header = ("tracker", "sequence", "AUC", "Prec@20", "fps", "frames")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for name in report.trackers:
        per_seq = report.results.get(name, {})
        for seq, r in per_seq.items():
            if r.ok:
                rows.append(
                    (name, seq, _fmt(r.auc, 3), _fmt(r.precision, 3), _fmt(r.fps, 1), str(r.frames))
                )
            else:
                rows.append((name, seq, "error", "", "", ""))
                notes.append(f"{name} on {seq}: {r.error}")
        failed = report.failures(name)
        label = "mean" if not failed else f"mean ({failed} failed, excluded)"
        mean = report.mean(name)
        done_frames = sum(r.frames for r in per_seq.values() if r.ok)
        rows.append(
            (
                name,
                label,
                _fmt(mean["auc"], 3),
                _fmt(mean["precision"], 3),
                _fmt(mean["fps"], 1),
                str(done_frames),
            )
        )
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
        for i in range(len(header))
    ]
    numeric = {2, 3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous:
            out.append("")
        out.append(line(row))
        previous = row[0]
    for name in sorted(report.untrained):
        notes.append(f"WARNING: {name} ran on RANDOM (untrained) weights: its figures measure nothing")
    if report.cancelled:
        notes.append("cancelled: the table holds only the sequences finished before the cancel")
    if notes:
        out.append("")
        out.extend(notes)
    return "\n".join(out)


def save_boxes(report: EvalReport, directory: str | Path) -> Path:
    """Write ``<dir>/<tracker>/<seq>.txt`` (0-based ``x,y,w,h`` lines) and ``<dir>/report.json``.

    Frames the tracker never saw (before the first valid ground truth) are written as
    ``nan,nan,nan,nan`` so that line i is always frame i. Returns the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, per_seq in report.boxes.items():
        folder = directory / _safe_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        for seq, boxes in per_seq.items():
            lines = [",".join(_box_field(v) for v in row) for row in boxes]
            (folder / f"{_safe_name(seq)}.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    (directory / "report.json").write_text(
        json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    return directory


def _box_field(value: float) -> str:
    # repr-exact floats: the cross-check recomputes metrics from these files.
    return "nan" if math.isnan(value) else repr(float(value))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)
