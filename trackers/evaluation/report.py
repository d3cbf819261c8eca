"""Evaluation results: per-sequence results, the report with its JSON contract, the text
table and the per-frame boxes written for cross-checks."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


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
    trained_on: dict[str, list[str]] = field(default_factory=dict)
    """Per tracker, the evaluated sequences its weights trained on (their provenance says so):
    figures on those measure memory, not tracking."""

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
            if self.trained_on.get(name):
                entry["trained_on"] = list(self.trained_on[name])
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



def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(report: EvalReport) -> str:
    """An aligned text table: one row per tracker and sequence, then a mean row per tracker."""
    header = ("tracker", "sequence", "AUC", "Prec@20", "fps", "frames")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for name in report.trackers:
        per_seq = report.results.get(name, {})
        seen = set(report.trained_on.get(name, ()))
        for seq, r in per_seq.items():
            shown = seq + " *" if seq in seen else seq
            if r.ok:
                rows.append(
                    (name, shown, _fmt(r.auc, 3), _fmt(r.precision, 3), _fmt(r.fps, 1), str(r.frames))
                )
            else:
                rows.append((name, shown, "error", "", "", ""))
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
    for name in report.trackers:
        seen_list = report.trained_on.get(name, [])
        if seen_list:
            count = f"{len(seen_list)} of the {len(report.sequences)}"
            notes.append(
                f"WARNING: {name}'s weights trained on {count} sequences marked *: "
                "their figures (and the mean) measure memory, not tracking on unseen video"
            )
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
