"""Training pairs for SiamFC (Bertinetto et al. 2016, sections 2.2 and 2.4), cut once and cached.

What a pair is (section 2.2): an exemplar and a search image from two frames of one
annotated sequence that both contain the target and are at most ``T`` frames apart,
both centred on the target; the class of the object plays no part.

How they are cut (section 2.4): the target box ``w x h`` plus a context margin
``p = (w + h) / 4`` on each side is scaled to the exemplar area ``127^2``: the
exemplar covers a square of side ``z = sqrt((w + 2p)(h + 2p))`` frame pixels and
the search image ``z * 255 / 127``, both centred on the box centre, exactly as
``trackers.siamfc.tracker`` cuts them when tracking. Parts outside the frame take
the frame's mean colour.

The cache. Decoding H.264 at random frames is slow, so every valid frame of every
sequence is decoded once, in order, and its 255x255 search crop at this canonical
scale is stored as uint8 under the cache folder, with the fill colour used. Section
2.4 also extracts the crops offline. The exemplar needs no second image: at the same
scale the 127-pixel exemplar is exactly the central 127x127 pixels of the 255 crop
(both cover ``z / 127`` frame pixels per pixel and share a centre). One cache entry per
sequence: ``crops.npy`` (N x 255 x 255 x 3, memory-mapped when read), ``fills.npy``,
``frames.npy`` (the frame index of each row) and ``meta.json``, written to a temporary
folder and renamed into place when complete, so an interrupted build leaves nothing
half-written behind.

Augmentation, drawn from a generator seeded by (seed, epoch, item index) so that a
run, and a resumed run, sees exactly the same pairs:

* stretch: each axis of each crop rescaled by up to +-5 % about the centre;
* translation of the search crop by up to +-2 px. The labels (eq. 6) stay centred:
  2 px is a quarter of the network's stride and far inside the positive radius
  R = 16 px, so the positive cells stay the right ones without per-pair label maps;
* colour jitter (brightness, per-channel gain, offset), independently per image;
* grayscale for 25 % of the pairs, both images together (section 4.3 does this for
  the OTB experiments);
* a mild Gaussian blur, now and then, per image.
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
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from trackers.evaluation import Sequence
from trackers.geometry import crop_square
from trackers.siamfc.config import SiamFCConfig
from trackers.sources import open_source

CACHE_VERSION = 1
"""Bump when the way crops are cut changes, so old cache entries are not reused."""

DEFAULT_MAX_GAP = 100
"""T of section 2.2: the most frames between the exemplar's and the search image's frame."""

Progress = Callable[[str], None]


class CacheCancelled(Exception):
    """Building the crop cache was cancelled; nothing partial was kept."""


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("siamtrack")) / "crops"


# --------------------------------------------------------------------------- geometry


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


# --------------------------------------------------------------------------- splits

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


def _group(sequences: SequenceOf[Sequence]) -> dict[str, list[Sequence]]:
    groups: dict[str, list[Sequence]] = {}
    for sequence in sequences:
        groups.setdefault(flight_key(sequence.name), []).append(sequence)
    return groups


def split_by_names(
    sequences: SequenceOf[Sequence], names: Iterable[str]
) -> tuple[list[Sequence], list[Sequence]]:
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
    sequences: SequenceOf[Sequence], fraction: float = 0.15
) -> tuple[list[Sequence], list[Sequence]]:
    """Hold out whole groups, about ``fraction`` of the sequences, chosen by a hash of their names.

    Deterministic and independent of the order or the other sequences given: a group
    is ranked by the SHA-1 of its key, and the lowest-ranked groups go to validation
    until they hold ``fraction`` of the sequences. At least one group stays for
    training; with a single group there is no validation set.
    """
    groups = _group(sequences)
    if len(groups) < 2:
        return list(sequences), []
    ranked = sorted(groups, key=lambda k: hashlib.sha1(k.encode("utf-8")).hexdigest())
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

    train: Sequence
    heldout: Sequence
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
    sequence: Sequence, fraction: float = 0.2, *, min_heldout: int = 10, min_annotated: int = 20
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
        train=Sequence(f"{sequence.name}-train", sequence.source, train),
        heldout=Sequence(f"{sequence.name}-heldout", sequence.source, heldout),
        cut=cut,
        train_frames=count - held,
        heldout_frames=held,
    )


# --------------------------------------------------------------------------- cache


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


def _source_fingerprint(path: Path) -> dict[str, Any]:
    path = path.resolve()
    stat = path.stat()
    entry: dict[str, Any] = {"path": str(path), "mtime_ns": stat.st_mtime_ns}
    if path.is_file():
        entry["bytes"] = stat.st_size
    else:
        img = path / "img"
        folder = img if img.is_dir() else path
        entry["files"] = len(os.listdir(folder))
        entry["folder_mtime_ns"] = folder.stat().st_mtime_ns
    return entry


def _cache_key(sequence: Sequence, config: SiamFCConfig) -> str:
    description = {
        "version": CACHE_VERSION,
        "source": _source_fingerprint(Path(sequence.source)),
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
    sequence: Sequence,
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
            np.save(work / "crops_short.npy", np.ascontiguousarray(data))
            del data
            os.replace(work / "crops_short.npy", work / "crops.npy")
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
    sequences: SequenceOf[Sequence],
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


# --------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the random changes; ``Augmentation.none()`` turns them all off."""

    stretch: float = 0.05
    translate_px: float = 2.0
    scale: float = 0.0
    """Largest relative change of the search image's overall scale (both axes together).

    SiamFC keeps the target's size fixed (its labels do not depend on it); SiamRPN's
    regression needs targets of varied size and place, so its task sets this and a
    large ``translate_px``."""
    grayscale: float = 0.25
    brightness: float = 0.1
    channel_gain: float = 0.05
    offset: float = 8.0
    blur: float = 0.15
    blur_sigma: tuple[float, float] = (0.3, 1.0)

    @classmethod
    def none(cls) -> Augmentation:
        return cls(stretch=0.0, translate_px=0.0, scale=0.0, grayscale=0.0, brightness=0.0,
                   channel_gain=0.0, offset=0.0, blur=0.0)


def _resample(
    crop: NDArray[np.uint8],
    out: int,
    scale_x: float,
    scale_y: float,
    shift_x: float,
    shift_y: float,
    fill: NDArray[np.float32],
) -> NDArray[np.uint8]:
    """``out x out`` pixels around the centre of ``crop``, stretched and shifted.

    Output pixel ``j`` (centre ``j + 0.5``) reads the crop at the continuous point
    ``c + (j + 0.5 - out/2) * scale + shift``, ``c`` being the crop's centre; OpenCV
    indexes pixel centres, hence ``- 0.5``. With scale 1 and no shift this is the
    central ``out x out`` block, pixel for pixel.
    """
    c = crop.shape[0] / 2.0
    matrix = np.array(
        [
            [scale_x, 0.0, c + (0.5 - out / 2.0) * scale_x + shift_x - 0.5],
            [0.0, scale_y, c + (0.5 - out / 2.0) * scale_y + shift_y - 0.5],
        ]
    )
    return cv2.warpAffine(
        np.ascontiguousarray(crop),
        matrix,
        (out, out),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in fill),
    )


def _colour(image: NDArray[np.float32], aug: Augmentation, rng: np.random.Generator) -> NDArray[np.float32]:
    gain = (1.0 + rng.uniform(-aug.brightness, aug.brightness)) * (
        1.0 + rng.uniform(-aug.channel_gain, aug.channel_gain, size=3)
    )
    offset = rng.uniform(-aug.offset, aug.offset)
    return image * gain.astype(np.float32) + np.float32(offset)


def _gray(image: NDArray[np.float32]) -> NDArray[np.float32]:
    # ITU-R BT.601 luma, the weights of OpenCV's RGB2GRAY.
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(luma[:, :, None], 3, axis=2)


def _to_tensor(image: NDArray) -> torch.Tensor:
    array = np.clip(np.asarray(image, dtype=np.float32), 0.0, 255.0)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


# --------------------------------------------------------------------------- dataset


class PairDataset(Dataset):
    """``pairs_per_epoch`` random (exemplar, search) pairs per epoch, reproducible.

    Item ``i`` of epoch ``e`` is drawn from ``np.random.default_rng([seed, e, i])``:
    a sequence uniformly, a frame ``a`` among its valid frames, and a frame ``b != a``
    with ``|a - b| <= max_gap`` (``a`` itself only if it has no such neighbour).
    It returns ``(exemplar, search, box)``: float32 tensors ``3 x 127 x 127`` and
    ``3 x 255 x 255``, RGB in 0..255 (the input convention of the networks), and the
    target's ``cx, cy, w, h`` in search-image pixels (pixel ``i`` spans ``[i, i+1)``).

    ``search_margin`` caches crops ``2 * search_margin`` pixels larger at the same
    scale, so that a search image translated by up to that much still shows real
    context rather than fill colour (SiamRPN's task translates by tens of pixels).
    """

    def __init__(
        self,
        sequences: SequenceOf[Sequence],
        *,
        pairs_per_epoch: int,
        cache_dir: str | Path | None = None,
        max_gap: int = DEFAULT_MAX_GAP,
        seed: int = 0,
        augmentation: Augmentation | None = None,
        config: SiamFCConfig | None = None,
        progress: Progress | None = None,
        cancel: Any = None,
        search_margin: int = 0,
    ) -> None:
        if pairs_per_epoch < 1:
            raise ValueError("pairs_per_epoch must be at least 1")
        if max_gap < 0:
            raise ValueError("max_gap must not be negative")
        self.config = config or SiamFCConfig()
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.max_gap = int(max_gap)
        self.seed = int(seed)
        self.augmentation = augmentation if augmentation is not None else Augmentation()
        self.epoch = 0
        if search_margin < 0:
            raise ValueError("search_margin must not be negative")
        # The cache is cut at the same scale, only wider: a config whose search side is
        # larger by 2 * margin (crop_extents scales the extent with it).
        cache_config = replace(self.config, search_size=self.config.search_size + 2 * int(search_margin))
        cached = build_crop_cache(
            sequences, cache_dir, config=cache_config, progress=progress, cancel=cancel
        )
        empty = [c.name for c in cached if len(c.frames) == 0]
        if empty and progress is not None:
            progress(f"skipping sequences without a usable frame: {', '.join(empty)}")
        boxes = {s.name: np.asarray(s.groundtruth, dtype=np.float64) for s in sequences}
        self.sequences: list[CachedSequence] = [c for c in cached if len(c.frames)]
        if not self.sequences:
            raise ValueError("no sequence has a frame with a valid box to train on")
        # Target w, h in canonical crop pixels: the crop shows search_size / extent
        # crop pixels per frame pixel.
        self._sizes: list[NDArray[np.float64]] = []
        for c in self.sequences:
            wh = boxes[c.name][c.frames, 2:4]
            extent = np.array([crop_extents(w, h, self.config)[1] for w, h in wh])
            self._sizes.append(wh * (self.config.search_size / extent)[:, None])
        self._opened: dict[int, tuple[NDArray[np.uint8], NDArray[np.float32]]] = {}
        self._inner = center_slice(cache_config.search_size, self.config.exemplar_size)
        self._search = center_slice(cache_config.search_size, self.config.search_size)

    # Memory maps must not be pickled into DataLoader workers (pickling copies the
    # whole array); each process opens its own.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_opened"] = {}
        return state

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.sequences]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def _crops(self, which: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        opened = self._opened.get(which)
        if opened is None:
            opened = self.sequences[which].open()
            self._opened[which] = opened
        return opened

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def pair(self, index: int) -> tuple[str, int, int]:
        """(sequence name, exemplar frame, search frame) of item ``index`` this epoch."""
        which, row_a, row_b, _rng = self._draw(index)
        cached = self.sequences[which]
        return cached.name, int(cached.frames[row_a]), int(cached.frames[row_b])

    def _draw(self, index: int) -> tuple[int, int, int, np.random.Generator]:
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(f"pair {index} out of range for {self.pairs_per_epoch} pairs")
        rng = self._rng(index)
        which = int(rng.integers(len(self.sequences)))
        frames = self.sequences[which].frames
        row_a = int(rng.integers(len(frames)))
        a = frames[row_a]
        lo = int(np.searchsorted(frames, a - self.max_gap, side="left"))
        hi = int(np.searchsorted(frames, a + self.max_gap, side="right"))
        candidates = [r for r in range(lo, hi) if r != row_a]
        row_b = int(candidates[rng.integers(len(candidates))]) if candidates else row_a
        return which, row_a, row_b, rng

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        which, row_a, row_b, rng = self._draw(int(index))
        crops, fills = self._crops(which)
        cfg, aug = self.config, self.augmentation
        w, h = self._sizes[which][row_b]
        centre = cfg.search_size / 2.0
        if aug == Augmentation.none():
            exemplar = np.asarray(crops[row_a][self._inner, self._inner], dtype=np.float32)
            search = np.asarray(crops[row_b][self._search, self._search], dtype=np.float32)
            box = torch.tensor([centre, centre, w, h], dtype=torch.float32)
            return _to_tensor(exemplar), _to_tensor(search), box

        def stretch() -> tuple[float, float]:
            return (
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
            )

        ex_sx, ex_sy = stretch()
        exemplar = _resample(crops[row_a], cfg.exemplar_size, ex_sx, ex_sy, 0.0, 0.0, fills[row_a])
        se_sx, se_sy = stretch()
        shift = rng.uniform(-aug.translate_px, aug.translate_px, size=2)
        if aug.scale:
            zoom = math.exp(rng.uniform(-math.log1p(aug.scale), math.log1p(aug.scale)))
            se_sx, se_sy = se_sx * zoom, se_sy * zoom
        search = _resample(crops[row_b], cfg.search_size, se_sx, se_sy, shift[0], shift[1], fills[row_b])
        # _resample reads crop point c + (j + 0.5 - out / 2) * scale + shift at output
        # pixel j; the target's centre (crop point c) lands where that offset is zero.
        box = torch.tensor(
            [centre - shift[0] / se_sx, centre - shift[1] / se_sy, w / se_sx, h / se_sy],
            dtype=torch.float32,
        )

        images = [_colour(img.astype(np.float32), aug, rng) for img in (exemplar, search)]
        if rng.random() < aug.grayscale:
            images = [_gray(img) for img in images]
        for k, img in enumerate(images):
            if rng.random() < aug.blur:
                sigma = rng.uniform(*aug.blur_sigma)
                images[k] = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)
        return _to_tensor(images[0]), _to_tensor(images[1]), box

    def batch(self, indices: Iterable[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return stack_items([self[i] for i in indices])


def stack_items(
    items: SequenceOf[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch from ``(exemplar, search, box)`` items: three stacked tensors."""
    exemplars, searches, boxes = zip(*items)
    return torch.stack(exemplars), torch.stack(searches), torch.stack(boxes)
