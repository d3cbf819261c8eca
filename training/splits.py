"""Train / validation splits that keep whole flights (and whole sequences) on one side.

UAV123 cuts one flight into segments (``group1_1``, ``group1_2``...); pairs from two
segments of one flight are near-duplicates, so a split that puts them on two sides
measures frames the network was trained on. Every split here keeps a flight together,
or (``split_tail``, for one user's own annotation) cuts one sequence by time.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from trackers.evaluation import AnnotatedSequence

_SEGMENT = re.compile(r"[-_]\d+$")


def flight_key(name: str) -> str:
    """The group a sequence belongs to: its name without a trailing ``_<n>`` or ``-<n>``.

    UAV123 cuts one flight into segments ``group1_1``, ``group1_2``...; OTB's
    ``Jogging-1`` and ``Jogging-2`` are two targets in the same frames. Segments of one
    group must stay on one side of a train/validation split, or validation measures
    frames the network was trained on. ``car10`` or ``bike1`` have no separator before
    the number and stay groups of their own.
    """
    return _SEGMENT.sub("", name)


def _group(names: Iterable[str]) -> dict[str, list[str]]:
    """Names by ``flight_key``, each group in the order the names came in."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(flight_key(name), []).append(name)
    return groups


def _hash_rank(key: str) -> str:
    """A group's place in an order that depends on its key alone (SHA-1)."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def split_by_names(
    sequences: Sequence[AnnotatedSequence], names: Iterable[str]
) -> tuple[list[AnnotatedSequence], list[AnnotatedSequence]]:
    """Train and validation lists, validation chosen by name or name prefix.

    Each value selects the sequence of exactly that name if there is one, otherwise
    every sequence whose name starts with it (so ``UAV123_10fps_group1`` takes the
    whole flight, while ``UAV123_10fps_car1`` does not pull in ``car10``). Every
    selected sequence then brings its whole group (see ``flight_key``) along. A value
    that selects nothing is an error: a misspelt name must not silently train on the
    sequence meant for validation.
    """
    by_name = {s.name: s for s in sequences}
    chosen: set[str] = set()
    for value in names:
        if value in by_name:
            chosen.add(value)
            continue
        matches = [s.name for s in sequences if s.name.startswith(value)]
        if not matches:
            raise ValueError(f"--val {value!r} matches no sequence")
        chosen.update(matches)
    keys = {flight_key(name) for name in chosen}
    val = [s for s in sequences if flight_key(s.name) in keys]
    train = [s for s in sequences if flight_key(s.name) not in keys]
    return train, val


def default_split(
    sequences: Sequence[AnnotatedSequence], fraction: float = 0.15
) -> tuple[list[AnnotatedSequence], list[AnnotatedSequence]]:
    """Hold out whole groups, about ``fraction`` of the sequences, chosen by a hash of their names.

    Deterministic and independent of the order or the other sequences given: a group
    is ranked by the SHA-1 of its key, and the lowest-ranked groups go to validation
    until they hold ``fraction`` of the sequences. At least one group stays for
    training; with a single group there is no validation set.
    """
    groups = _group(s.name for s in sequences)
    if len(groups) < 2:
        return list(sequences), []
    ranked = sorted(groups, key=_hash_rank)
    target = max(1, round(fraction * len(sequences)))
    held: set[str] = set()
    count = 0
    for key in ranked[:-1]:
        if count >= target:
            break
        held.add(key)
        count += len(groups[key])
    val = [s for s in sequences if flight_key(s.name) in held]
    train = [s for s in sequences if flight_key(s.name) not in held]
    return train, val


@dataclass(frozen=True)
class Split:
    """A sequence cut by time: ``train`` holds the frames before ``cut``, ``heldout`` the rest."""

    train: AnnotatedSequence
    heldout: AnnotatedSequence
    cut: int
    """First frame of the held-out part (its first annotated frame)."""
    train_frames: int
    """Frames with a box on the training side."""
    heldout_frames: int

    @property
    def heldout_span(self) -> tuple[int, int]:
        """First and last annotated held-out frame (inclusive)."""
        rows = np.flatnonzero(~np.isnan(self.heldout.groundtruth).any(axis=1))
        return int(rows[0]), int(rows[-1])


def split_tail(
    sequence: AnnotatedSequence, fraction: float = 0.2, *, min_heldout: int = 10, min_annotated: int = 20
) -> Split:
    """Hold out the last ``fraction`` (at least ``min_heldout``) of the frames with a box.

    For one user's own annotation there is no second sequence to validate on, so the
    tail of the track is the held-out part: tracking it from its first box after
    training on the frames before measures what the user will see next. Both parts keep
    the whole length, each with NaN rows outside its own range, so no frame is on both
    sides; they are named ``<name>-train`` and ``<name>-heldout``. Raises ValueError
    with a one-line reason when there are fewer than ``min_annotated`` boxes.
    """
    gt = np.asarray(sequence.groundtruth, dtype=np.float64)
    annotated = np.flatnonzero(~np.isnan(gt).any(axis=1))
    count = len(annotated)
    if count < min_annotated:
        raise ValueError(
            f"only {count} frame{'s' if count != 1 else ''} of {sequence.name} have a box; "
            f"fine-tuning needs at least {min_annotated} (annotate or track more first)"
        )
    held = min(count - 1, max(min_heldout, math.ceil(fraction * count)))
    cut = int(annotated[count - held])
    train = gt.copy()
    train[cut:] = np.nan
    heldout = gt.copy()
    heldout[:cut] = np.nan
    return Split(
        train=AnnotatedSequence(f"{sequence.name}-train", sequence.source, train),
        heldout=AnnotatedSequence(f"{sequence.name}-heldout", sequence.source, heldout),
        cut=cut,
        train_frames=count - held,
        heldout_frames=held,
    )


def fold_names(names: Iterable[str], folds: int) -> list[list[str]]:
    """Cut ``names`` into ``folds`` disjoint parts for cross-validation, whole flights together.

    A tuning split of a few sequences swings by a whole lost track; with k models, each
    trained without one part, every training-side sequence can be scored by a model that
    never saw it. Groups (``flight_key``) are placed largest first, ties in the order of
    the SHA-1 of their keys, each into the part with the fewest names so far (the lowest
    index on a tie): deterministic, independent of the order given, and the parts differ
    in size by at most the largest group. Each part keeps the order the names came in.
    """
    if folds < 1:
        raise ValueError(f"folds must be at least 1, got {folds}")
    names = list(dict.fromkeys(names))
    groups = _group(names)
    if len(groups) < folds:
        raise ValueError(f"{len(groups)} flight{'s' if len(groups) != 1 else ''} cannot fill {folds} folds")
    ranked = sorted(groups, key=lambda k: (-len(groups[k]), _hash_rank(k)))
    parts: list[set[str]] = [set() for _ in range(folds)]
    for key in ranked:
        smallest = min(range(folds), key=lambda i: (len(parts[i]), i))
        parts[smallest].update(groups[key])
    return [[name for name in names if name in part] for part in parts]
