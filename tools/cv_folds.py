#!/usr/bin/env python3
"""Print one cross-validation fold of sequence names, whole flights together.

    python tools/cv_folds.py NAME_OR_PATH... --folds 4 --fold 0

Names may be paths (``.../OTB100_Dog``, ``.../UAV123_10fps_person12_1.mp4``): the fold is
chosen on the file's stem, and the line printed holds the arguments as they were given,
space-separated, so a shell can pass them on (e.g. to ``DISTILL_VAL``). See
``training.splits.fold_names``; ``--fold`` left out prints every fold, one a line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trackers.sources import VIDEO_SUFFIXES  # noqa: E402
from training.splits import fold_names  # noqa: E402


def stem(item: str) -> str:
    """The sequence's name as ``trackers.evaluation`` gives it: a video's stem, a folder's name."""
    path = Path(item.rstrip("/"))
    return path.stem if path.suffix.lower() in VIDEO_SUFFIXES else path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="+", metavar="NAME_OR_PATH")
    parser.add_argument("--folds", type=int, required=True)
    parser.add_argument("--fold", type=int, help="which fold to print, 0-based (default: all)")
    args = parser.parse_args(argv)
    by_stem: dict[str, str] = {}
    for item in args.items:
        if by_stem.setdefault(stem(item), item) != item:
            parser.error(f"two items are named {stem(item)!r}")
    try:
        parts = fold_names(by_stem, args.folds)
    except ValueError as exc:
        parser.error(str(exc))
    if args.fold is not None and not 0 <= args.fold < args.folds:
        parser.error(f"--fold must be 0 to {args.folds - 1}")
    for index, part in enumerate(parts):
        if args.fold is None or args.fold == index:
            print(" ".join(by_stem[name] for name in part))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
