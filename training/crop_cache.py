"""The crop cache: every valid frame of a sequence cut once at SiamFC's canonical scale.

How crops are cut (SiamFC section 2.4): the target box ``w x h`` plus a context margin
``p = (w + h) / 4`` on each side is scaled to the exemplar area ``127^2``: the exemplar
covers a square of side ``z = sqrt((w + 2p)(h + 2p))`` frame pixels and the search
image ``z * 255 / 127``, both centred on the box centre, exactly as
``trackers.siamfc.tracker`` cuts them when tracking. Parts outside the frame take the
frame's mean colour.

Decoding H.264 at random frames is slow, so every valid frame of every sequence is
decoded once, in order, and its 255x255 search crop is stored as uint8 under the cache
folder, with the fill colour used. Section 2.4 also extracts the crops offline. The
exemplar needs no second image: at the same scale the 127-pixel exemplar is exactly the
central 127x127 pixels of the 255 crop (``center_slice``). One cache entry per sequence:
``crops.npy`` (N x 255 x 255 x 3, memory-mapped when read), ``fills.npy``, ``frames.npy``
(the frame index of each row) and ``meta.json``, written to a temporary folder and renamed
into place when complete (``cache_entry``), so an interrupted build leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trackers.evaluation import AnnotatedSequence
from trackers.geometry import crop_square
from trackers.output import atomic_write
from trackers.siamfc.config import SiamFCConfig
from trackers.sources import open_source
from training.fingerprint import source_fingerprint

CACHE_VERSION = 1
"""Bump when the way crops are cut changes, so old cache entries are not reused."""

Progress = Callable[[str], None]


class CacheCancelled(Exception):
    """Building the crop cache was cancelled; nothing partial was kept."""


def default_cache_dir() -> Path:
    from trackers.user_dirs import user_dir

    return user_dir("cache") / "crops"


def crop_extents(w: float, h: float, config: SiamFCConfig | None = None) -> tuple[float, float]:
    """Exemplar and search square sides in frame pixels for a ``w x h`` target (eq. 7).

    The same arithmetic as ``SiamFCTracker.init``: context ``p2 = 2p = context * (w + h)``.
    """
    cfg = config or SiamFCConfig()
    context = cfg.context * (w + h)
    exemplar = math.sqrt((w + context) * (h + context))
    return exemplar, exemplar * cfg.search_size / cfg.exemplar_size


def center_slice(search_size: int, exemplar_size: int) -> slice:
    """The rows (and columns) of a canonical search crop that form the exemplar crop.

    Search pixel ``j`` covers ``[j, j+1)`` in a crop whose centre is ``search_size / 2``;
    the exemplar's pixel 0 starts ``exemplar_size / 2`` before that centre.
    """
    if (search_size - exemplar_size) % 2:
        raise ValueError("search and exemplar sizes must differ by an even number of pixels")
    start = (search_size - exemplar_size) // 2
    return slice(start, start + exemplar_size)


@dataclass(frozen=True)
class CachedSequence:
    """The canonical search crops of one sequence's valid frames, in frame order."""

    name: str
    directory: Path
    frames: NDArray[np.int64]
    """Frame index of each cached crop, increasing."""

    def open(self) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        crops = np.load(self.directory / "crops.npy", mmap_mode="r")
        fills = np.load(self.directory / "fills.npy")
        return crops, fills


def _cache_key(sequence: AnnotatedSequence, config: SiamFCConfig) -> str:
    description = {
        "version": CACHE_VERSION,
        "source": source_fingerprint(sequence.source),
        "groundtruth": hashlib.sha1(
            np.ascontiguousarray(sequence.groundtruth, dtype=np.float64).tobytes()
        ).hexdigest(),
        "exemplar_size": config.exemplar_size,
        "search_size": config.search_size,
        "context": config.context,
    }
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "sequence"


def valid_frames(groundtruth: NDArray[np.float64]) -> NDArray[np.int64]:
    """Frames whose box is finite with positive width and height (the target is present)."""
    gt = np.asarray(groundtruth, dtype=np.float64)
    ok = np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    return np.flatnonzero(ok).astype(np.int64)


@contextlib.contextmanager
def cache_entry(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final`` to write one cache entry into.

    When the block ends without an exception the folder is renamed to ``final``, so an
    entry exists whole or not at all; a complete entry holds a ``meta.json``. Whatever
    happens, nothing temporary is left behind. Shared by every cache of ``training/``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent))
    try:
        yield work
        try:
            os.replace(work, final)
        except OSError:
            # Someone else finished the same entry first; theirs is as good as ours.
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_entry(
    sequence: AnnotatedSequence,
    final: Path,
    config: SiamFCConfig,
    cancel: Any,
) -> None:
    wanted = valid_frames(sequence.groundtruth)
    with cache_entry(final) as work:
        size = config.search_size
        crops = np.lib.format.open_memmap(
            work / "crops.npy", mode="w+", dtype=np.uint8, shape=(len(wanted), size, size, 3)
        )
        fills = np.zeros((len(wanted), 3), dtype=np.float32)
        wanted_set = set(int(i) for i in wanted)
        row = 0
        if len(wanted):
            with open_source(sequence.source) as source:
                # One sequential pass: random access into H.264 would decode from the
                # previous keyframe for every frame we want.
                for index, frame in enumerate(source.iter_from(0, int(wanted[-1]) + 1)):
                    if cancel is not None and cancel.is_set():
                        raise CacheCancelled(sequence.name)
                    if index not in wanted_set:
                        continue
                    x, y, w, h = sequence.groundtruth[index]
                    _exemplar, search = crop_extents(w, h, config)
                    fill = frame.reshape(-1, 3).mean(axis=0)
                    crops[row] = crop_square(frame, x + w / 2.0, y + h / 2.0, search, size, fill)
                    fills[row] = fill
                    row += 1
        crops.flush()
        del crops
        # A source shorter than its ground truth: keep the frames that decoded, and say so
        # (as `siamtrack track` does for a damaged video).
        frames = wanted[:row]
        if row < len(wanted):
            print(
                f"note: {sequence.name}: only {row} of its {len(wanted)} annotated frames decode "
                f"(the video {sequence.source.name} may be truncated or damaged); training on those",
                file=sys.stderr, flush=True,
            )
            data = np.load(work / "crops.npy", mmap_mode="r")[:row]
            with atomic_write(work / "crops.npy", "wb") as f:
                np.save(f, np.ascontiguousarray(data))
            del data
        np.save(work / "fills.npy", fills[:row])
        np.save(work / "frames.npy", frames)
        meta = {
            "version": CACHE_VERSION,
            "name": sequence.name,
            "source": str(sequence.source),
            "frames": int(row),
            "search_size": size,
        }
        (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def build_crop_cache(
    sequences: Sequence[AnnotatedSequence],
    cache_dir: str | Path | None = None,
    *,
    config: SiamFCConfig | None = None,
    progress: Progress | None = None,
    cancel: Any = None,
) -> list[CachedSequence]:
    """Make sure every sequence's canonical crops are cached; return them in input order.

    Entries already present (same source, same ground truth, same crop geometry) are
    reused without opening the source. Raises CacheCancelled if ``cancel`` is set.
    """
    cfg = config or SiamFCConfig()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached: list[CachedSequence] = []
    for number, sequence in enumerate(sequences, start=1):
        final = root / f"{_safe(sequence.name)}-{_cache_key(sequence, cfg)}"
        if not (final / "meta.json").is_file():
            if progress is not None:
                progress(f"caching crops of {sequence.name} ({number}/{len(sequences)})")
            _build_entry(sequence, final, cfg, cancel)
        frames = np.load(final / "frames.npy")
        cached.append(CachedSequence(sequence.name, final, frames.astype(np.int64)))
    return cached
