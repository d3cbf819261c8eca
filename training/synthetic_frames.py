"""The unlabelled clips synthetic pairs are cut from (``training.synthetic``), and their cached frames.

A source is a video, a folder of frames, or a *still photo* (one image file): issue 16's
"still photos with synthetic motion". A still is one frame; the motion is the synthesis's
(``training.synthetic``: the target cut from one photo moves, grows or shrinks and changes
its colours on another photo), so every photo adds distinct targets and backgrounds.

The frames are decoded once: ``frames_per_source`` evenly spaced frames per clip
(sequential decode, the frame count taken from decoding), downscaled so that the
longer side is at most 640 pixels, stored as uint8 ``frames.npy`` under
``<cache>/synthetic/<clip>-<key>`` where the key covers the file's path, size and
mtime and the decode settings; written to a temporary folder and renamed into place
as the crop cache does (``training.crop_cache.cache_entry``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.sources import IMAGE_SUFFIXES, open_source
from training.crop_cache import CacheCancelled, Progress, cache_entry, default_cache_dir
from training.fingerprint import source_fingerprint

CACHE_VERSION = 1
"""Bump when the way frames are decoded or stored changes."""

VIDEO_SUFFIXES = (".avi", ".mkv", ".mov", ".mp4")

MAX_SIDE = 640
"""Cached frames are downscaled to at most this many pixels on their longer side."""

DEFAULT_FRAMES_PER_SOURCE = 16


# --------------------------------------------------------------------------- sources


def unlabelled_sources(paths: Iterable[str | Path], *, stills: bool = False) -> list[Path]:
    """Video files named, or found directly inside the folders named, each folder sorted.

    With ``stills``, image files count too, each one a source of its own (a still
    photo): named, or found directly inside the folders named. Raises ValueError (one
    line) for a missing path or when no source results.
    """
    kinds = VIDEO_SUFFIXES + (tuple(sorted(IMAGE_SUFFIXES)) if stills else ())
    paths = [Path(p) for p in paths]
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.suffix.lower() in kinds and p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not found:
        names = ", ".join(str(p) for p in paths) or "(nothing given)"
        what = "video or image files" if stills else "video files"
        raise ValueError(f"no {what} ({' '.join(kinds)}) in {names}")
    return found


def is_still(path: Path) -> bool:
    """A single image file: a still photo, one frame."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir()


# --------------------------------------------------------------------------- frame cache


def _entry_name(path: Path, frames_per_source: int) -> str:
    description = {
        "version": CACHE_VERSION,
        "source": source_fingerprint(path),
        "frames_per_source": frames_per_source,
        "max_side": MAX_SIDE,
    }
    key = hashlib.sha1(json.dumps(description, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:80] or "clip"
    return f"{stem}-{key}"


def _downscale(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    height, width = frame.shape[:2]
    factor = MAX_SIDE / max(height, width)
    if factor >= 1.0:
        return np.ascontiguousarray(frame)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # INTER_AREA: averaging, no aliasing in the texture the network is meant to learn.
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _decode(path: Path, count: int, cancel: Any) -> NDArray[np.uint8]:
    """``count`` evenly spaced frames (fewer if the clip is shorter), downscaled; a still is one."""
    if is_still(path):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        return _downscale(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))[None]
    with open_source(path) as source:
        total = len(source)  # decoded, not the header's claim (README, Conventions)
        wanted = np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))
        frames = []
        for index in wanted:  # increasing: the source decodes forwards, skipping cheaply
            if cancel is not None and cancel.is_set():
                raise CacheCancelled(str(path))
            frames.append(_downscale(source[int(index)]))
    return np.stack(frames)


def _build_entry(path: Path, final: Path, count: int, cancel: Any) -> None:
    with cache_entry(final) as work:
        frames = _decode(path, count, cancel)
        np.save(work / "frames.npy", frames)
        meta = {"version": CACHE_VERSION, "source": str(path), "frames": len(frames)}
        (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def cache_frames(
    sources: Sequence[str | Path],
    cache_dir: str | Path | None = None,
    *,
    frames_per_source: int = DEFAULT_FRAMES_PER_SOURCE,
    progress: Progress | None = None,
    cancel: Any = None,
) -> list[Path]:
    """Make sure each source's frames are cached; return their entry folders in input order.

    Entries live in ``<cache_dir>/synthetic`` (``cache_dir`` defaults to
    ``training.data.default_cache_dir()``), so one cache folder serves both kinds of
    pairs. Raises CacheCancelled when ``cancel`` is set, keeping nothing partial.
    """
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "synthetic"
    entries = []
    for number, source in enumerate(sources, start=1):
        path = Path(source)
        final = root / _entry_name(path, frames_per_source)
        if not (final / "meta.json").is_file():
            if progress is not None:
                progress(f"caching frames of {path.name} ({number}/{len(sources)})")
            _build_entry(path, final, frames_per_source, cancel)
        entries.append(final)
    return entries
