#!/usr/bin/env python3
"""Does a candidate beat a base on a validation split by more than one item's swing?

Reads `siamtrack eval --json` files, one for the base weights and one per candidate, run on
the same sequences with the same trackers. Every (tracker, sequence) success AUC is one
score. A candidate wins only if

* the mean of its scores beats the base's by at least ``--margin`` (default 0.015), and
* it is at least as good as the base on at least ``--min-share`` of the scores (default
  0.625, i.e. 10 of 16),

so that one sequence whose track is kept or lost (a swing of 0.3 moves the mean of 8 by
0.04) cannot decide alone. The 18th session's rule for issue 16 (README, Weights, "18th
session"); written down once here so the next rule can name it.

    python tools/compare_evals.py base.json cand1.json [cand2.json ...] [--margin M] [--min-share S]

Exit status 0 when the last candidate wins, 1 when it does not, 2 for unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple


class Verdict(NamedTuple):
    mean: float
    base_mean: float
    at_least_as_good: int
    count: int
    wins: bool

    @property
    def gain(self) -> float:
        return self.mean - self.base_mean


def scores(path: str | Path) -> dict[tuple[str, str], float]:
    """{(tracker, sequence): success AUC} of one `siamtrack eval --json` file."""
    try:
        trackers = json.loads(Path(path).read_text())["trackers"]
        return {
            (tracker, sequence): float(row["auc"])
            for tracker, result in trackers.items()
            for sequence, row in result["sequences"].items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a `siamtrack eval --json` file ({exc})") from None


def compare(base: dict[tuple[str, str], float], candidate: dict[tuple[str, str], float], *,
            margin: float = 0.015, min_share: float = 0.625) -> Verdict:
    if not base or set(base) != set(candidate):
        missing = sorted(set(base) ^ set(candidate))
        raise ValueError(f"the two runs do not score the same (tracker, sequence) pairs: {missing[:4]}")
    keys = sorted(base)
    base_mean = sum(base[k] for k in keys) / len(keys)
    mean = sum(candidate[k] for k in keys) / len(keys)
    at_least = sum(candidate[k] >= base[k] for k in keys)
    wins = mean >= base_mean + margin and at_least >= min_share * len(keys)
    return Verdict(mean, base_mean, at_least, len(keys), wins)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--margin", type=float, default=0.015)
    parser.add_argument("--min-share", type=float, default=0.625)
    args = parser.parse_args(argv)
    try:
        base = scores(args.base)
        print(f"{args.base}: mean {sum(base.values()) / len(base):.4f} over {len(base)} scores")
        verdict = None
        for path in args.candidates:
            verdict = compare(base, scores(path), margin=args.margin, min_share=args.min_share)
            print(f"{path}: mean {verdict.mean:.4f} ({verdict.gain:+.4f}), at least as good on "
                  f"{verdict.at_least_as_good}/{verdict.count}: {'wins' if verdict.wins else 'does not win'}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if verdict is not None and verdict.wins else 1


if __name__ == "__main__":
    sys.exit(main())
