"""Synthetic media for the tests: clips with exact boxes, and OTB-style sequence folders.

The one place the tests write a video (``write_video``); the fixtures that build on it
are in ``tests/conftest.py``. Plain functions, so module-scoped fixtures and helpers
can call them with ``tmp_path_factory`` paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from resources.demo_clip import render_sequence
from trackers.types import Box

CLIP_FRAMES = 30
CLIP_SIZE = (160, 120)
"""The shared synthetic clip (``synthetic_clip`` fixture): frames and (width, height)."""

BACKGROUND = 20
TARGET = 230
"""Grey levels of ``block_frames``: a bright block on a dark frame."""


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    size: tuple[int, int] | None = None,
    fps: float = 30.0,
    fourcc: str = "MJPG",
) -> Path:
    """Write BGR ``uint8`` frames (as cv2 takes them) to ``path``; returns ``path``.

    ``size`` (width, height) defaults to the first frame's and is needed for a clip with
    no frames. ``frames`` may be a generator, so a long clip is never held in memory.
    """
    frames = iter(frames)
    if size is None:
        first = next(frames)
        size = (first.shape[1], first.shape[0])
        frames = itertools.chain([first], frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc}"
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


def write_clip(
    path: Path, n_frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE, seed: int = 3
) -> list[Box]:
    """Render the demo generator's sequence into an MJPG AVI; returns the exact 0-based boxes."""
    frames, boxes = render_sequence(n_frames=n_frames, size=size, seed=seed)
    write_video(path, (cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) for frame in frames), size)
    return boxes


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` as streaming decode gives it (RGB): what a lossy clip really holds."""
    from trackers.sources import open_source

    with open_source(path) as source:
        return list(source.iter_from(0))


def block_frames(
    frames: int, size: tuple[int, int] = (96, 72), origin: tuple[int, int] = (20, 30)
) -> list[tuple[np.ndarray, Box]]:
    """A bright ``14 x 10`` block drifting right by 2 px a frame on a dark frame, with its 0-based box."""
    width, height = size
    out = []
    for i in range(frames):
        image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        x, y, w, h = origin[0] + 2 * i, origin[1], 14, 10
        image[y : y + h, x : x + w] = TARGET
        out.append((image, Box(x, y, w, h)))
    return out


def otb_line(box: Box) -> str:
    """A box as an OTB ground-truth line: 1-based corner, comma separated."""
    return f"{box.x + 1:g},{box.y + 1:g},{box.w:g},{box.h:g}"


def make_otb(
    root: Path,
    name: str = "Synthetic",
    frames: int = 12,
    absent: tuple[int, ...] = (),
    size: tuple[int, int] = (96, 72),
    origin: tuple[int, int] = (20, 30),
) -> Path:
    """An OTB folder (``img/0001.png``..., ``groundtruth_rect.txt``) of ``block_frames``.

    The ground truth is written 1-based, as OTB does; ``absent`` frames get a NaN line.
    Returns the folder.
    """
    folder = root / name
    (folder / "img").mkdir(parents=True)
    lines = []
    for i, (image, box) in enumerate(block_frames(frames, size, origin)):
        # write BGR as cv2 does; the source converts back to RGB
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.png"), image)
        lines.append("NaN,NaN,NaN,NaN" if i in absent else otb_line(box))
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return folder
