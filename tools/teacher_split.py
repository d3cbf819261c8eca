#!/usr/bin/env python3
"""A tuning split from unlabelled clips: the teacher's kept stretches, written as OTB folders.

The 8-item validation split of issue 16 holds one flight three times (UAV123 group2), and a
SiamFC trained with another seed moves its mean by 0.08 (README, Weights, "18th session").
A recipe trained on labelled items only (`tools/distill.sh siamfc-labelled`) never saw the
unlabelled clips, so the stretches NanoTrack labelled there (``training.pseudo_labels``:
object-like start boxes, followed for up to 50 frames, kept only when the teacher tracks
back to its start) are footage that recipe never trained on, from 22 clips. Each kept
stretch becomes one OTB folder (``img/0001.jpg``..., ``groundtruth_rect.txt``, 1-based), so
``siamtrack eval OUT/*`` scores any tracker on it unchanged. The teacher's boxes are the
ground truth: agreement with the teacher, not with a person (said wherever a figure from it
is given). A stretch of a clip that a model trained on (``--teacher-label``) is no test of
that model.

    python tools/teacher_split.py OUT CLIP... [--cache-dir DIR] [--objects N]

``--cache-dir`` is the training cache holding the labels (``pseudo-labels/``); clips not
labelled yet are labelled there first (the teacher runs, about 6 ms a frame and box).
Writes ``OUT/<clip>-f<first frame>-o<slot>/`` per stretch and ``OUT/SPLIT.txt`` (one line
per stretch: folder, clip, first and last frame).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trackers.sources import open_source  # noqa: E402
from trackers.types import AnnotatedSequence  # noqa: E402


def stretches(groundtruth: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frame of each run of consecutive frames with a finite box, two frames or more."""
    present = np.isfinite(groundtruth).all(axis=1)
    runs, start = [], None
    for index, here in enumerate(present.tolist() + [False]):
        if here and start is None:
            start = index
        elif not here and start is not None:
            if index - start >= 2:
                runs.append((start, index - 1))
            start = None
    return runs


def write_stretches(sequences: Iterable[AnnotatedSequence], out: Path) -> list[str]:
    """Each stretch of each sequence as an OTB folder under ``out``; the SPLIT.txt lines."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for sequence in sequences:
        runs = stretches(np.asarray(sequence.groundtruth, dtype=np.float64))
        if not runs:
            continue
        slot = sequence.name.rsplit("-o", 1)[-1] if "-o" in sequence.name else "0"
        with open_source(sequence.source) as source:
            for first, last in runs:
                name = f"{Path(sequence.source).stem}-f{first}-o{slot}"
                folder = out / name
                (folder / "img").mkdir(parents=True, exist_ok=True)
                for k, frame in enumerate(source.iter_from(first, last + 1)):
                    cv2.imwrite(str(folder / "img" / f"{k + 1:04d}.jpg"),
                                cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
                boxes = sequence.groundtruth[first : last + 1]
                text = "".join(f"{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f}\n" for x, y, w, h in boxes)
                (folder / "groundtruth_rect.txt").write_text(text)
                lines.append(f"{name} {Path(sequence.source).name} {first} {last}")
    (out / "SPLIT.txt").write_text("".join(line + "\n" for line in lines))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=Path("out/distill/cache"))
    parser.add_argument("--objects", type=int, default=2,
                        help="start boxes per 50-frame stretch (part of the labels' cache key)")
    args = parser.parse_args(argv)
    from training.pseudo_labels import PseudoLabelSettings, pseudo_sequences

    settings = PseudoLabelSettings(objects=args.objects)
    sequences, summary = pseudo_sequences(args.clips, args.cache_dir, settings,
                                          progress=lambda text: print(text, file=sys.stderr))
    lines = write_stretches(sequences, args.out)
    print(f"{len(lines)} stretches from {summary['clips']} clips "
          f"({summary['stretches_kept']} of {summary['stretches_tried']} kept, "
          f"{summary['frames_labelled']} frames) in {args.out}")
    return 0 if lines else 1


if __name__ == "__main__":
    raise SystemExit(main())
