"""The bundled demo clip: a synthetic sequence whose ground truth is exact.

A striped, blotchy object in saturated colours glides across a smooth
coloured background, shrinks to 0.7x and grows to 1.4x of its base size, and
passes behind a textured vertical bar for about ten frames (out of 150). The
object is pasted at integer positions and integer sizes, so its box is exact
under the pixel convention of :mod:`trackers.types`: the object covers pixels
``x .. x + w - 1`` and its box is ``Box(x, y, w, h)``. The box is the full
extent of the object, also while the bar hides it.

``python -m resources.demo_clip [--out DIR]`` writes ``demo.mp4`` and
``demo.txt`` (1-based OTB boxes, one per frame), the layout of the labelled
videos in the shared data.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.types import Box, Frame

DEFAULT_SIZE = (480, 270)
DEFAULT_FRAMES = 150
DEMO_FPS = 30.0
SCALE_MIN, SCALE_MAX = 0.7, 1.4
_SCALE_PERIOD = 0.65
"""One shrink-grow cycle, as a fraction of the clip: short enough to see the object
grow, shrink behind the bar and grow again within one clip."""

# Background values stay inside this range and every object pixel has a channel
# below it (see _saturate), so no object pixel can equal the background under it:
# tests use that to see where the object ends. (An earlier clip drew a dashed
# magenta and cyan rim for this, which looked exactly like a selection box.)
_BG_LOW, _BG_HIGH = 40, 215
_OBJECT_FLOOR = _BG_LOW - 12


def _base_object_size(size: tuple[int, int]) -> tuple[int, int]:
    """Object (width, height) at scale 1, proportional to the frame height."""
    height = size[1]
    return max(8, round(0.2 * height)), max(6, round(0.15 * height))


def occluder_box(size: tuple[int, int] = DEFAULT_SIZE) -> Box:
    """The bar drawn over everything: full height, at 62% of the width."""
    width, height = size
    bar_w = max(4, round(0.085 * width))
    return Box(round(0.62 * width), 0, bar_w, height)


def render_background(size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0) -> Frame:
    """Smooth low-frequency colour field with fine static grain, RGB uint8."""
    width, height = size
    rng = np.random.default_rng([seed, 1])
    coarse = rng.uniform(80, 175, size=(5, 8, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0.0, 7.0, size=(height, width, 3)).astype(np.float32)
    image = np.clip(smooth + grain, _BG_LOW, _BG_HIGH).astype(np.uint8)
    image.flags.writeable = False
    return image


def object_texture(size: tuple[int, int], seed: int) -> NDArray[np.uint8]:
    """The object's look at its largest scale: diagonal stripes under coloured blobs."""
    width, height = size
    rng = np.random.default_rng([seed, 2])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin((xx + 0.6 * yy) * (2 * math.pi / (0.22 * width)))
    texture = stripes[..., None] * np.array([230, 120, 20], np.float32)  # orange stripes
    texture += (1 - stripes[..., None]) * np.array([30, 40, 150], np.float32)  # on navy
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.08, 0.2) * width
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        weight = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))[..., None]
        texture = texture * (1 - weight) + colour * weight
    return np.clip(texture, 0, 255).astype(np.uint8)


def _occluder_texture(box: Box, seed: int) -> NDArray[np.uint8]:
    """Grey-brown planks with knots: textured, and unlike both object and background."""
    width, height = int(box.w), int(box.h)
    rng = np.random.default_rng([seed, 3])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = 0.5 + 0.5 * np.sin(yy * 0.35 + 2.0 * np.sin(xx * 0.3))
    value = 60 + 50 * grain + rng.normal(0, 6, size=(height, width))
    value[:, :: max(2, width // 3)] = 35  # plank seams
    tint = np.array([1.0, 0.85, 0.7], np.float32)
    return np.clip(value[..., None] * tint, 0, 255).astype(np.uint8)


def _saturate(patch: NDArray[np.uint8]) -> None:
    """Push each pixel's weakest channel under the background's range, in place: the
    object's colours get more saturated, with no border drawn, and none of its pixels
    can equal a background pixel."""
    weakest = np.argmin(patch, axis=2)
    rows, cols = np.indices(weakest.shape)
    channel = patch[rows, cols, weakest]
    patch[rows, cols, weakest] = np.minimum(channel, _OBJECT_FLOOR)


def _path(n_frames: int, size: tuple[int, int]) -> list[Box]:
    """Integer boxes along a smooth path; the object is smallest as it crosses the bar."""
    width, height = size
    base_w, base_h = _base_object_size(size)
    bar = occluder_box(size)
    bar_cx = bar.x + bar.w / 2
    margin_x = SCALE_MAX * base_w / 2 + 2
    margin_y = SCALE_MAX * base_h / 2 + 2
    left, right = margin_x, width - margin_x
    # An eased sweep left to right: fastest mid-way. The time it passes the bar
    # centre is where the scale bottoms out, so the bar hides most of the object.
    u_cross = math.acos(1 - 2 * (bar_cx - left) / (right - left)) / math.pi  # inverse of ease
    boxes = []
    for t in range(n_frames):
        u = t / max(n_frames - 1, 1)
        scale = (SCALE_MIN + SCALE_MAX) / 2 - (SCALE_MAX - SCALE_MIN) / 2 * math.cos(
            2 * math.pi * (u - u_cross) / _SCALE_PERIOD
        )
        w, h = max(1, round(base_w * scale)), max(1, round(base_h * scale))
        ease = (1 - math.cos(math.pi * u)) / 2
        cx = left + (right - left) * ease
        cy = height / 2 + (height / 2 - margin_y) * 0.8 * math.sin(2 * math.pi * u * 1.5)
        boxes.append(Box(round(cx - w / 2), round(cy - h / 2), w, h))
    return boxes


def render_frame(
    background: Frame,
    texture: NDArray[np.uint8],
    box: Box,
    bar: Box,
    bar_texture: NDArray[np.uint8],
) -> Frame:
    """One frame: background, the object resized into ``box``, then the bar on top."""
    frame = background.copy()
    x, y, w, h = (int(v) for v in (box.x, box.y, box.w, box.h))
    patch = cv2.resize(texture, (w, h), interpolation=cv2.INTER_AREA)
    _saturate(patch)  # after resizing: resampling must not blend a pixel back into range
    frame[y : y + h, x : x + w] = patch
    bx, by, bw, bh = (int(v) for v in (bar.x, bar.y, bar.w, bar.h))
    frame[by : by + bh, bx : bx + bw] = bar_texture
    frame.flags.writeable = False
    return frame


def render_sequence(
    n_frames: int = DEFAULT_FRAMES, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0
) -> tuple[list[Frame], list[Box]]:
    """RGB uint8 frames and the exact 0-based box of the whole object in each.

    The geometry (path, scale, bar) depends only on ``n_frames`` and ``size``;
    ``seed`` changes the textures.
    """
    background = render_background(size, seed)
    base_w, base_h = _base_object_size(size)
    texture = object_texture((math.ceil(base_w * SCALE_MAX), math.ceil(base_h * SCALE_MAX)), seed)
    bar = occluder_box(size)
    bar_texture = _occluder_texture(bar, seed)
    boxes = _path(n_frames, size)
    frames = [render_frame(background, texture, b, bar, bar_texture) for b in boxes]
    return frames, boxes


def iter_sequence(
    n_frames: int = DEFAULT_FRAMES, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0
) -> Iterator[tuple[Frame, Box]]:
    """``render_sequence``'s frames and boxes one at a time, so only one frame is ever held."""
    background = render_background(size, seed)
    base_w, base_h = _base_object_size(size)
    texture = object_texture((math.ceil(base_w * SCALE_MAX), math.ceil(base_h * SCALE_MAX)), seed)
    bar = occluder_box(size)
    bar_texture = _occluder_texture(bar, seed)
    for box in _path(n_frames, size):
        yield render_frame(background, texture, box, bar, bar_texture), box


def hidden_fraction(box: Box, size: tuple[int, int] = DEFAULT_SIZE) -> float:
    """How much of the object's area the bar covers, 0..1."""
    bar = occluder_box(size)
    overlap_w = max(0.0, min(box.x + box.w, bar.x + bar.w) - max(box.x, bar.x))
    overlap_h = max(0.0, min(box.y + box.h, bar.y + bar.h) - max(box.y, bar.y))
    return overlap_w * overlap_h / (box.w * box.h)


def write_demo(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``demo.mp4`` (mp4v, 30 fps) and ``demo.txt`` (1-based x,y,w,h) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames, boxes = render_sequence(seed=seed)
    video = out_dir / "demo.mp4"
    # mp4v because pip's OpenCV has no H.264 encoder; it still decodes everywhere.
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), DEMO_FPS, DEFAULT_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {video}: no mp4v encoder in this OpenCV")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    truth = out_dir / "demo.txt"
    lines = (",".join(f"{v:g}" for v in box.to_one_based()) for box in boxes)
    truth.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return video, truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "demo",
        help="folder for demo.mp4 and demo.txt (default: resources/demo)",
    )
    args = parser.parse_args(argv)
    video, truth = write_demo(args.out)
    print(f"wrote {video} ({video.stat().st_size} bytes) and {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
