#!/usr/bin/env python3
"""Choose a tracker's search settings by coordinate descent on a tuning split.

    python tools/sweep_settings.py SEQ... --tracker siamfc \\
        --group "window_influence=0.25,0.30,0.35,0.45" \\
        --group "scale_step=1.025,1.0375,1.05 scale_count=3,5" \\
        --group "scale_lr=0.5,0.6" --group "scale_penalty=0.96,0.985" --workers 2

The groups are tried in order. A group is one or more ``KEY=V1,V2,...``; its candidates are
every combination of its values laid over the best settings so far (the one that equals the
best so far is skipped). Settings that only make sense together are tied with ``:``:
``"search_size:score_size=287:21,303:23"`` tries the two pairs, never 287 with 23. The best
candidate of a group is kept only if it beats the best so far by ``--min-gain`` success AUC
(default 0.01): the rule the 12th and 14th sessions wrote down before choosing SiamRPN's,
SiamFC's and DSiam's settings (README, Weights). Each candidate is one
``tools/auc_profile.py`` run (success AUC and where it is lost), ``--workers`` of them at
once; finished ones are kept in ``--json`` so a stopped sweep resumes. Run it on a tuning
split, never on the sequences you report.

A cross-validated split (``tools/cv_folds.py``): ``--part WEIGHTS SEQ...`` (repeatable) adds
sequences tracked with other weights, e.g. each fold with the model trained without it. A
candidate's score is then the mean over all the sequences (each part's mean weighted by its
number of sequences), so every sequence counts once whichever model tracked it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

Settings = dict[str, str]


def parse_group(text: str) -> list[tuple[str, list[str]]]:
    """``"a=1,2 b=3"`` -> ``[("a", ["1", "2"]), ("b", ["3"])]``; ValueError when malformed."""
    group = []
    for part in text.split():
        key, sep, values = part.partition("=")
        choices = [v for v in values.split(",") if v]
        if not sep or not key or not choices:
            raise ValueError(f"expected KEY=V1,V2,... in the group {text!r}, got {part!r}")
        tied = key.split(":")
        if not all(tied) or any(len(c.split(":")) != len(tied) or not all(c.split(":")) for c in choices):
            raise ValueError(f"tied keys {key!r} need that many values in each choice, got {part!r}")
        group.append((key, choices))
    if not group:
        raise ValueError("an empty group")
    return group


def settings_key(settings: Settings) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(settings.items())) or "defaults"


def candidates(best: Settings, group: list[tuple[str, list[str]]]) -> list[Settings]:
    keys = [key for key, _ in group]
    out = []
    for values in itertools.product(*(choices for _, choices in group)):
        candidate = dict(best)
        for key, value in zip(keys, values):  # "a:b" = "1:2" sets a=1 and b=2
            candidate.update(zip(key.split(":"), value.split(":")))
        if candidate != best:
            out.append(candidate)
    return out


def descend(
    groups: Sequence[list[tuple[str, list[str]]]],
    score: Callable[[list[Settings]], list[float]],
    min_gain: float = 0.01,
    say: Callable[[str], None] = print,
) -> tuple[Settings, float]:
    """Coordinate descent from the defaults; ``score`` gives each settings' success AUC."""
    best: Settings = {}
    (best_auc,) = score([best])
    say(f"defaults: {best_auc:.3f}")
    for group in groups:
        tried = candidates(best, group)
        if not tried:
            continue
        results = score(tried)
        top = max(range(len(tried)), key=lambda i: results[i])
        if results[top] >= best_auc + min_gain:
            best, best_auc = tried[top], results[top]
            say(f"keep {settings_key(best)}: {best_auc:.3f}")
        else:
            say(f"no change ({settings_key(tried[top])}: {results[top]:.3f})")
    return best, best_auc


Part = tuple[str | None, list[str]]
"""Weights (None: the bundled ones) and the sequences tracked with them."""

_FIELDS = ("auc", "iou", "drift", "localisation", "scale", "aspect")


def pooled(results: Sequence[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """Parts' ``auc_profile`` rows (each a mean over its sequences) as one mean over all of them."""
    total = sum(count for count, _ in results)
    return {key: sum(count * row[key] for count, row in results) / total
            for key in _FIELDS if all(row.get(key) is not None for _, row in results)}


def profile_scorer(
    sequences: list[str], tracker: str, weights: str | None, cache_file: Path, workers: int,
    parts: Sequence[Part] = (),
) -> Callable[[list[Settings]], list[float]]:
    """Scores settings with ``tools/auc_profile.py``, one process a part, cached in ``cache_file``.

    ``sequences`` are tracked with ``weights``; each of ``parts`` with its own weights."""
    cache: dict[str, dict[str, float]] = (
        json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    )
    every: list[Part] = ([(weights, list(sequences))] if sequences else []) + [
        (w, list(s)) for w, s in parts]
    if not every or not all(s for _, s in every):
        raise ValueError("no sequences to score (a part needs weights and at least one sequence)")
    lock = threading.Lock()  # the workers' threads share the cache and its file

    def run_part(part: Part, settings: Settings) -> dict[str, float]:
        part_weights, part_sequences = part
        name = f"x:{tracker}" + (f"={part_weights}" if part_weights else "")
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "profile.json"
            command = [sys.executable, str(ROOT / "tools" / "auc_profile.py"), *part_sequences,
                       "--tracker", name, "--json", str(out)]
            for k, v in settings.items():
                command += ["--set", f"x:{k}={v}"]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            return json.loads(out.read_text(encoding="utf-8"))["x"]

    def store(settings: Settings, results: list[dict[str, float]]) -> None:
        key = settings_key(settings)
        row = pooled([(len(p[1]), r) for p, r in zip(every, results)])
        print(f"  {key}: AUC {row['auc']:.3f} (drift {row['drift']:.3f}, localisation "
              f"{row['localisation']:.3f}, scale {row['scale']:.3f}, aspect {row['aspect']:.3f})",
              flush=True)
        with lock:
            cache[key] = row
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
            os.replace(tmp, cache_file)

    def score(batch: list[Settings]) -> list[float]:
        # every (candidate, part) is one job, so the workers stay busy however the parts fall
        todo = [s for s in {settings_key(s): s for s in batch}.values() if settings_key(s) not in cache]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            jobs = {settings_key(s): [pool.submit(run_part, part, s) for part in every] for s in todo}
            for settings in todo:
                store(settings, [job.result() for job in jobs[settings_key(settings)]])
        return [cache[settings_key(s)]["auc"] for s in batch]

    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequences", nargs="*", metavar="SEQ")
    parser.add_argument("--tracker", required=True)
    parser.add_argument("--weights", help="a checkpoint for SEQ (default: the bundled weights)")
    parser.add_argument("--part", nargs="+", action="append", default=[], metavar="WEIGHTS SEQ",
                        help="sequences tracked with other weights (repeatable; a cross-validated split)")
    parser.add_argument("--group", action="append", required=True, metavar='"KEY=V1,V2 ..."')
    parser.add_argument("--min-gain", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("sweep.json"),
                        help="finished candidates (read back on a rerun)")
    args = parser.parse_args(argv)
    try:
        groups = [parse_group(g) for g in args.group]
    except ValueError as exc:
        parser.error(str(exc))
    parts: list[Part] = []
    for part in args.part:
        if len(part) < 2:
            parser.error("--part needs WEIGHTS and at least one sequence")
        parts.append((part[0], part[1:]))
    if not args.sequences and not parts:
        parser.error("no sequences: give SEQ... or --part WEIGHTS SEQ...")
    score = profile_scorer(args.sequences, args.tracker, args.weights, args.json, args.workers, parts)
    best, auc = descend(groups, score, args.min_gain)
    print(f"chosen: {settings_key(best)} (success AUC {auc:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
