"""Measure the app's fine-tune with and without the teacher on sparsely reviewed videos (issue 16).

    python tools/teacher_option.py VIDEO.mp4... [--every 10] [--json OUT]

For each labelled video (``NAME.mp4`` with ``NAME.txt`` beside it) this builds the project a
person would have after drawing a box on every ``--every``-th frame and nothing else (the
other frames have no box), splits it as the app does (the last 20 % of the boxes held out;
the held-out part is scored on every ground-truth frame from the cut on, not on its few boxes),
and runs the app's own fine-tune job (``app.qt.finetune_worker``, the same code the dialog
runs) twice from the bundled SiamFC: once as it is, once with "Let NanoTrack label the
frames you have not reviewed". It prints the held-out success AUC before and after each,
and the frames the teacher labelled. It chooses nothing: the option's default stays off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.model.project_training import initial_weights, split_sequence  # noqa: E402
from app.qt.finetune_worker import (  # noqa: E402
    DEFAULT_EPOCHS,
    DEFAULT_PAIRS_PER_EPOCH,
    FinetuneJob,
    FinetuneResult,
    run_in_this_thread,
)
from trackers.evaluation import AnnotatedSequence, load_sequences  # noqa: E402


def sparse_sequence(sequence: AnnotatedSequence, every: int) -> AnnotatedSequence:
    """``sequence``'s ground truth (as ``load_sequences`` reads it: 0-based pixels, NaN where
    absent) kept on every ``every``-th frame, NaN elsewhere."""
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    kept = np.full_like(gt, np.nan)
    kept[::every] = gt[::every]
    return AnnotatedSequence(sequence.name, sequence.source, kept)


def dense_heldout(split, sequence: AnnotatedSequence):
    """``split`` scored on every ground-truth frame of ``sequence`` from its cut on, not just the
    sparse boxes there.

    The app scores the user's own boxes in the held-out part; here every box is known, and
    a score over a handful of frames would be mostly noise. Training sees the same frames.
    """
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    dense = np.full_like(gt, np.nan)
    dense[split.cut:] = gt[split.cut:]
    heldout = AnnotatedSequence(split.heldout.name, split.heldout.source, dense)
    frames = int((~np.isnan(dense).any(axis=1)).sum())
    return dataclasses.replace(split, heldout=heldout, heldout_frames=frames)


def finetune(split, teacher: bool, out: Path, cache: Path, **budget: int) -> tuple[FinetuneResult, float]:
    job = FinetuneJob(split=split, tracker="siamfc", weights=None, init=initial_weights("siamfc", None),
                      out=out, device="cpu", cache_dir=cache, teacher=teacher, **budget)
    started = time.monotonic()
    try:
        result = run_in_this_thread(job)
    except RuntimeError as exc:
        raise SystemExit(f"{out.name}: {exc}") from None
    return result, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=10, help="a reviewed box every N frames (default 10)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="the app's default unless given")
    parser.add_argument("--pairs-per-epoch", type=int, default=DEFAULT_PAIRS_PER_EPOCH)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="teacher-option-") as tmp:
        for video in args.videos:
            (sequence,) = load_sequences([video])  # the ground truth, read once
            split = dense_heldout(split_sequence(sparse_sequence(sequence, args.every)), sequence)
            row: dict[str, object] = {"video": video.stem, "every": args.every}
            for teacher in (False, True):
                tag = "teacher" if teacher else "plain"
                out = Path(tmp) / f"{video.stem}-{tag}.pt"
                result, seconds = finetune(split, teacher, out, Path(tmp) / "cache",
                                           epochs=args.epochs, pairs_per_epoch=args.pairs_per_epoch)
                row[tag] = {"before": result.before_auc, "after": result.after_auc,
                            "teacher_frames": result.teacher_frames, "seconds": round(seconds, 1)}
                print(f"{video.stem} {tag}: before {result.before_auc:.3f} after {result.after_auc:.3f}"
                      f" teacher frames {result.teacher_frames} ({seconds:.0f} s)", flush=True)
            rows.append(row)
    mean = {tag: float(np.mean([r[tag]["after"] for r in rows])) for tag in ("plain", "teacher")}  # type: ignore[index]
    before = float(np.mean([r["plain"]["before"] for r in rows]))  # type: ignore[index]
    print(f"mean held-out AUC: before {before:.3f}, fine-tuned {mean['plain']:.3f}, "
          f"with the teacher {mean['teacher']:.3f} ({len(rows)} videos, a box every {args.every} frames)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "before": before, "after": mean}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
