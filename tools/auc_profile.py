#!/usr/bin/env python3
"""Where a tracker loses success AUC: localisation, scale, aspect or drift.

    python tools/auc_profile.py SEQ... --tracker siamfc --tracker distilled:siamfc=W.pt --tracker cv-nano

A tracker is ``[LABEL:]NAME[=WEIGHTS]``; the label tells two weights of one tracker apart.
``--set LABEL:KEY=VALUE`` changes one tracker's config (e.g. ``--set old:lr=0``).

Tracks every sequence as ``siamtrack eval`` does (one pass from the first box) and
splits each frame's shortfall ``1 - IoU`` into four parts that add up exactly:

* drift: frames with IoU 0 (the box is off the target altogether): their whole 1;
* localisation: what re-centring the box on the ground truth's centre would gain;
* scale: what then giving it the ground truth's area (keeping its aspect) would gain;
* aspect: what is left (a centred box of the right area and the wrong aspect).

The mean over frames of ``IoU + drift + localisation + scale + aspect`` is 1. The
success AUC is close to the mean IoU (it is the mean over thresholds of the fraction
of frames above each), so the parts show where the AUC goes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.cli.options import config_item  # noqa: E402
from trackers.evaluation import evaluate, iou, load_sequences  # noqa: E402
from trackers.registry import create_tracker  # noqa: E402


def _centred(boxes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    out[:, 0] = centres[:, 0] - boxes[:, 2] / 2
    out[:, 1] = centres[:, 1] - boxes[:, 3] / 2
    return out


def profile(predicted: np.ndarray, groundtruth: np.ndarray) -> dict[str, float]:
    """Mean IoU and the four parts of ``1 - IoU`` over frames where both boxes exist."""
    valid = ~(np.isnan(predicted).any(axis=1) | np.isnan(groundtruth).any(axis=1))
    valid &= (groundtruth[:, 2] > 0) & (groundtruth[:, 3] > 0) & (predicted[:, 2] > 0) & (predicted[:, 3] > 0)
    pred, gt = predicted[valid], groundtruth[valid]
    if len(pred) == 0:
        return {"frames": 0}
    actual = iou(pred, gt)
    centres = gt[:, :2] + gt[:, 2:] / 2
    moved = _centred(pred, centres)
    at_centre = iou(moved, gt)
    ratio = np.sqrt((gt[:, 2] * gt[:, 3]) / (pred[:, 2] * pred[:, 3]))
    sized = _centred(np.column_stack([moved[:, :2], pred[:, 2] * ratio, pred[:, 3] * ratio]), centres)
    at_area = iou(sized, gt)
    lost = actual <= 0
    parts = {
        "iou": actual,
        "drift": np.where(lost, 1.0, 0.0),
        "localisation": np.where(lost, 0.0, at_centre - actual),
        "scale": np.where(lost, 0.0, at_area - at_centre),
        "aspect": np.where(lost, 0.0, 1.0 - at_area),
    }
    out = {name: float(np.mean(values)) for name, values in parts.items()}
    out["frames"] = int(len(pred))
    return out


def parse_spec(spec: str) -> tuple[str, tuple[str, str | None]]:
    """``[LABEL:]NAME[=WEIGHTS]`` -> ``(label, (name, weights))``; the label defaults to the spec."""
    label, _, rest = spec.rpartition(":") if ":" in spec.split("=", 1)[0] else ("", "", spec)
    name, _, weights = rest.partition("=")
    return (label or spec), (name, weights or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequences", nargs="+", metavar="SEQ")
    parser.add_argument("--tracker", action="append", required=True, metavar="NAME[=WEIGHTS]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="LABEL:KEY=VALUE",
                        help="a config value for one tracker (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    specs = dict(parse_spec(spec) for spec in args.tracker)
    configs: dict[str, dict[str, object]] = {label: {} for label in specs}
    for item in args.set:
        label, _, setting = item.partition(":")
        if label not in specs or "=" not in setting:
            parser.error(f"--set {item!r}: expected LABEL:KEY=VALUE with LABEL one of {', '.join(specs)}")
        key, value = config_item(setting)
        configs[label][key] = value
    sequences = load_sequences(args.sequences)
    report = evaluate(sequences, list(specs), lambda label: create_tracker(
        specs[label][0], weights=specs[label][1], device=args.device, config=configs[label] or None))
    rows = {}
    for name in specs:
        per_frame = {key: [] for key in ("iou", "drift", "localisation", "scale", "aspect")}
        aucs = []
        for sequence in sequences:
            result = report.results[name].get(sequence.name)
            if result is None or result.boxes is None:
                continue
            aucs.append(result.auc)
            gt = np.asarray(sequence.groundtruth, dtype=np.float64)[: len(result.boxes)]
            parts = profile(result.boxes, gt)
            for key in per_frame:
                if parts.get("frames"):
                    per_frame[key].append(parts[key])
        rows[name] = {"auc": float(np.mean(aucs)) if aucs else None,
                      **{key: float(np.mean(v)) if v else None for key, v in per_frame.items()}}
    header = f"{'tracker':<14} {'AUC':>6} {'IoU':>6} {'drift':>7} {'locat.':>7} {'scale':>7} {'aspect':>7}"
    print(header)
    for name, row in rows.items():
        cells = [f"{row[k]:.3f}" if row[k] is not None else "-" for k in
                 ("auc", "iou", "drift", "localisation", "scale", "aspect")]
        print(f"{name:<14} " + " ".join(f"{c:>7}" for c in cells))
    print("mean over sequences; IoU + drift + localisation + scale + aspect = 1 per frame")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
