"""Recompute siamtrack's OTB scores with got10k's own code and compare.

``trackers.evaluation.save_boxes`` writes ``<dir>/report.json`` and
``<dir>/<tracker>/<seq>.txt`` (0-based x,y,w,h per frame). This script reads
those, re-reads the ground truth straight from the sequence folders / videos
(its own parser, not siamtrack's), and scores every sequence with got10k's
``rect_iou``/``center_error`` and ``ExperimentOTB._calc_curves``. It imports
nothing from siamtrack, so a shared bug cannot hide.

got10k is not a siamtrack dependency; run this with a separate environment::

    python3 -m venv /tmp/g10k && /tmp/g10k/bin/pip install got10k six numpy
    /tmp/g10k/bin/python tools/check_against_got10k.py BOXES_DIR SEQUENCE_ROOT...

The one rule applied on top of got10k, as siamtrack does: ground-truth rows that
are NaN (target absent) are dropped, and the first valid row, not row 0, is the
initialisation frame whose prediction is replaced by the ground truth. On data
without NaN rows this is exactly got10k's ``ExperimentOTB.report``.

Exit status: 0 when every score agrees within --tolerance, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np


def _got10k():
    try:
        from got10k.experiments.otb import ExperimentOTB
        from got10k.utils.metrics import center_error, rect_iou
    except ImportError as exc:
        sys.exit(f"got10k is not importable ({exc}); see this script's docstring for a venv")
    return ExperimentOTB, rect_iou, center_error


def read_groundtruth_zero_based(path: Path) -> np.ndarray:
    """1-based x,y,w,h lines (comma/tab/space) -> 0-based N x 4; NaN or short lines -> NaN row."""
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are not frames
    rows = []
    for line in lines:
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if len(fields) < 4 or any(f.lower() == "nan" for f in fields):
            rows.append([np.nan] * 4)
        else:
            x, y, w, h = (float(f) for f in fields)
            rows.append([x - 1, y - 1, w, h])
    return np.array(rows, dtype=float).reshape(-1, 4)


def find_groundtruth(name: str, roots: list[Path]) -> Path:
    for root in roots:
        candidates = [
            root / name / "groundtruth_rect.txt",
            root / "groundtruth_rect.txt" if root.name == name else None,
            root / f"{name}.txt",
            root.with_suffix(".txt") if root.stem == name and root.is_file() else None,
        ]
        for candidate in candidates:
            if candidate is not None and candidate.is_file():
                return candidate
    raise SystemExit(f"no ground truth for sequence {name!r} under {', '.join(map(str, roots))}")


def score_sequence(boxes: np.ndarray, anno: np.ndarray) -> tuple[float, float]:
    ExperimentOTB, rect_iou, center_error = _got10k()
    # Only the two attributes _calc_curves reads; the constructor would try to download OTB.
    experiment = ExperimentOTB.__new__(ExperimentOTB)
    experiment.nbins_iou = 21
    experiment.nbins_ce = 51
    n = min(len(boxes), len(anno))
    boxes, anno = boxes[:n].copy(), anno[:n]
    valid = ~np.isnan(anno).any(axis=1)
    start = int(np.argmax(valid & (anno[:, 2] > 0) & (anno[:, 3] > 0)))
    boxes[start] = anno[start]
    keep = valid.copy()
    keep[:start] = False
    ious = rect_iou(boxes[keep], anno[keep])
    errors = center_error(boxes[keep], anno[keep])
    succ, prec = experiment._calc_curves(ious, errors)
    return float(np.mean(succ)), float(prec[20])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "boxes_dir", type=Path, help="folder written by trackers.evaluation.save_boxes"
    )
    parser.add_argument(
        "roots", type=Path, nargs="+", help="sequence folders, folders of them, or videos"
    )
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args(argv)

    report = json.loads((args.boxes_dir / "report.json").read_text())
    worst = 0.0
    columns = ("AUC ours", "got10k", "Prec ours", "got10k")
    print(f"{'tracker':<12} {'sequence':<24} " + " ".join(f"{c:>9}" for c in columns))
    for tracker, entry in report["trackers"].items():
        aucs, precs = [], []
        for seq, ours in entry["sequences"].items():
            if "error" in ours:
                print(f"{tracker:<12} {seq:<24} (error in the run, skipped)")
                continue
            boxes_file = (
                args.boxes_dir
                / re.sub(r"[^A-Za-z0-9._+-]", "_", tracker)
                / (re.sub(r"[^A-Za-z0-9._+-]", "_", seq) + ".txt")
            )
            boxes = np.loadtxt(boxes_file, delimiter=",", ndmin=2)
            anno = read_groundtruth_zero_based(find_groundtruth(seq, args.roots))
            auc, prec = score_sequence(boxes, anno)
            aucs.append(auc)
            precs.append(prec)
            worst = max(worst, abs(auc - ours["auc"]), abs(prec - ours["precision"]))
            print(
                f"{tracker:<12} {seq:<24} {ours['auc']:9.4f} {auc:9.4f} "
                f"{ours['precision']:9.4f} {prec:9.4f}"
            )
        if aucs:
            mean = entry["mean"]
            m_auc, m_prec = float(np.mean(aucs)), float(np.mean(precs))
            worst = max(worst, abs(m_auc - mean["auc"]), abs(m_prec - mean["precision"]))
            print(
                f"{tracker:<12} {'mean':<24} {mean['auc']:9.4f} {m_auc:9.4f} "
                f"{mean['precision']:9.4f} {m_prec:9.4f}"
            )
    verdict = "agree" if worst <= args.tolerance else "DISAGREE"
    print(f"max abs difference {worst:.3g}: {verdict} (tolerance {args.tolerance:g})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())
