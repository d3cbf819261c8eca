"""Which sequences a weights file learnt from: its own training data and its ancestors'.

A figure on a sequence the weights trained on measures memory, not tracking, so
``siamtrack eval`` marks such rows (``trackers.evaluation``). Our checkpoints name their
training sequences in ``provenance["train_sequences"]``; since the 16th session a run
started with ``--init`` also records what its starting weights had learnt from, in
``provenance["inherited_sequences"]`` (``training.loop``), so the list follows a whole
chain of fine-tunes. Files written before that, and foreign layouts, name only their own
run's sequences, or none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trackers.weights.checkpoint import FORMAT, WeightsError, load_safely

TRAIN_SUFFIX = "-train"
"""``--val-tail`` trains on a sequence's head under the name ``<name>-train``."""

TEACHER_PREFIX = "teacher-"
"""How the name of every stretch the teacher labelled begins: ``teacher-<clip>-o<slot>p<phase>``
(``training.pseudo_labels``), i.e. frames of ``<clip>``."""

_STRETCH = re.compile(re.escape(TEACHER_PREFIX) + r"(?P<clip>.+)-o\d+p\d+")


def read_provenance(path: str | Path | None) -> dict[str, Any]:
    """The ``provenance`` of one of our checkpoints; ``{}`` for none, a foreign layout or an
    unreadable file (saying nothing: loading the weights reports those)."""
    if path is None:
        return {}
    try:
        data = load_safely(Path(path))
    except WeightsError:
        return {}
    if not (isinstance(data, dict) and data.get("format") == FORMAT):
        return {}
    provenance = data.get("provenance")
    return dict(provenance) if isinstance(provenance, Mapping) else {}


def learnt_from(provenance: Mapping[str, Any]) -> frozenset[str]:
    """Every sequence name the weights trained on, their own run's and inherited ones."""
    names: set[str] = set()
    for key in ("train_sequences", "inherited_sequences"):
        value = provenance.get(key)
        if isinstance(value, (list, tuple)):
            names.update(str(name) for name in value)
    return frozenset(names)


def seen_in_training(sequences: Iterable[str], learnt: frozenset[str]) -> list[str]:
    """The names among ``sequences`` whose frames the weights trained on: whole, in part (a
    ``-train`` head) or as the teacher labelled them (a stretch of that clip), in the order given."""
    clips = {m["clip"] for m in map(_STRETCH.fullmatch, learnt) if m is not None}
    return [name for name in sequences if name in learnt or name + TRAIN_SUFFIX in learnt or name in clips]
