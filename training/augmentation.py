"""Augmentation of training pairs, drawn from a generator seeded by (seed, epoch, item).

So a run, and a resumed run, sees exactly the same pairs:

* stretch: each axis of each crop rescaled by up to +-5 % about the centre;
* translation of the search crop by up to +-2 px. SiamFC's labels (eq. 6) stay centred:
  2 px is a quarter of the network's stride and far inside the positive radius
  R = 16 px, so the positive cells stay the right ones without per-pair label maps;
* colour jitter (brightness, per-channel gain, offset), independently per image;
* grayscale for 25 % of the pairs, both images together (section 4.3 does this for
  the OTB experiments);
* a mild Gaussian blur, now and then, per image;
* optionally (``flip``, off unless asked for: ``--hflip``), a horizontal mirror of both
  images of a pair together, drawn after every other draw, so a run with ``flip`` 0
  sees exactly the pairs it saw before the option existed. A mirrored object is a
  plausible object and SiamFC's labels are symmetric about the centre; the box's
  ``cx`` becomes ``side - cx``. (Not in the papers: section 2.2 trains on 4,400 videos
  and needs no such help; the labelled recipe here, on about 50 items, overfits after
  two epochs.)
* optionally (``negative``, off unless asked for: ``--negative-pairs``), a negative pair:
  the search image is taken from another flight's sequence, centred on *its* target, and
  every cell of the score map is labelled -1. Drawn from a generator of its own
  (``negative_rng``), so a run with ``negative`` 0 sees exactly the pairs it saw before
  the option existed. (Not in the papers: SiamFC's section 2.2 pairs always hold the
  exemplar's own target at the centre; DaSiamRPN, Zhu et al. 2018, adds such "semantic
  negative" pairs so the network scores the object, not objectness near the centre.
  Not in ``../shared/papers``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from numpy.typing import NDArray


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
    flip: float = 0.0
    """Probability of mirroring a pair left to right (both images, and the box)."""
    negative: float = 0.0
    """Probability that a pair is a negative one (``PairDataset``; SiamFC's task only)."""

    @classmethod
    def none(cls) -> Augmentation:
        return cls(stretch=0.0, translate_px=0.0, scale=0.0, grayscale=0.0, brightness=0.0,
                   channel_gain=0.0, offset=0.0, blur=0.0)


def resample(
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


def colour_jitter(
    image: NDArray[np.float32], aug: Augmentation, rng: np.random.Generator
) -> NDArray[np.float32]:
    gain = (1.0 + rng.uniform(-aug.brightness, aug.brightness)) * (
        1.0 + rng.uniform(-aug.channel_gain, aug.channel_gain, size=3)
    )
    offset = rng.uniform(-aug.offset, aug.offset)
    return image * gain.astype(np.float32) + np.float32(offset)


def grayscale(image: NDArray[np.float32]) -> NDArray[np.float32]:
    # ITU-R BT.601 luma, the weights of OpenCV's RGB2GRAY.
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(luma[:, :, None], 3, axis=2)


def mirrored(images: list[NDArray], aug: Augmentation, rng: np.random.Generator) -> list[NDArray] | None:
    """The images mirrored left to right with probability ``aug.flip``, else None.

    Call it after every other draw of the item: with ``flip`` 0 it draws nothing, so the
    generator's stream, and every pair, stay what they were before the option existed.
    The caller maps each box's ``cx`` to ``side - cx`` (pixel i spans [i, i+1)).
    """
    if not aug.flip or rng.random() >= aug.flip:
        return None
    return [np.ascontiguousarray(img[:, ::-1]) for img in images]


NEGATIVE_STREAM = 31
"""Appended to an item's seed for the negative-pair draws: a stream apart from the item's own."""


def negative_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item ``index``'s negative-pair draws (whether, and which sequence and frame)."""
    return np.random.default_rng([int(seed), int(epoch), int(index), NEGATIVE_STREAM])


def to_tensor(image: NDArray) -> torch.Tensor:
    array = np.clip(np.asarray(image, dtype=np.float32), 0.0, 255.0)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
