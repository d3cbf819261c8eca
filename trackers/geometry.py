"""Box arithmetic and square crops around a centre, in the convention of trackers.types.

A crop of side ``size`` (frame pixels) centred at the continuous point ``(cx, cy)``
is resampled to ``out`` x ``out`` pixels. Output pixel ``j`` has its centre at
``j + 0.5`` in output coordinates, which sits at ``cx - size/2 + (j + 0.5) * size/out``
in frame coordinates. OpenCV addresses pixels by their centres (index ``i`` is the
continuous point ``i + 0.5``), hence the ``- 0.5`` terms below. Getting this right
is what makes a motionless target come back exactly where it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.types import Box


def exemplar_extent(w: float, h: float, context: float = 0.5) -> float:
    """Side of the square exemplar region around a ``w`` x ``h`` target, in frame pixels.

    SiamFC eq. 7 with p = (w + h) / 4, i.e. sqrt((w + 2p)(h + 2p)), which is the same
    square as SiamRPN eq. 15 with p = (w + h) / 2, i.e. sqrt((w + p)(h + p)).
    ``context`` is the fraction of (w + h) added to each side length.
    """
    pad = context * (w + h)
    return math.sqrt((w + pad) * (h + pad))


def frame_mean_colour(frame: NDArray[np.uint8]) -> NDArray[np.float64]:
    """The per-channel mean, used to pad crops that leave the frame (SiamFC Fig. 2)."""
    return frame.reshape(-1, frame.shape[-1]).mean(axis=0)


def crop_affine(cx: float, cy: float, size: float, out: int) -> NDArray[np.float64]:
    """The 2x3 matrix mapping output pixel indices to frame pixel indices (inverse map)."""
    s = size / out
    tx = cx - size / 2.0 + 0.5 * s - 0.5
    ty = cy - size / 2.0 + 0.5 * s - 0.5
    return np.array([[s, 0.0, tx], [0.0, s, ty]], dtype=np.float64)


def crop_square(
    frame: NDArray[np.uint8],
    cx: float,
    cy: float,
    size: float,
    out: int,
    fill: Sequence[float],
) -> NDArray[np.uint8]:
    """Cut a ``size``-pixel square centred at ``(cx, cy)`` and resample it to ``out`` pixels.

    Parts outside the frame are filled with ``fill`` (SiamFC section 2.2, Fig. 2: the mean
    colour of the frame), so the network never sees an artificial black border.
    """
    matrix = crop_affine(cx, cy, size, out)
    return cv2.warpAffine(
        frame,
        matrix,
        (out, out),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in fill),
    )


def clamp_box(box: Box, width: int, height: int, min_size: float = 1.0) -> Box:
    """Keep a tracked box usable: its size at least ``min_size`` and at most the frame, and
    its centre inside the frame, so a target that leaves the frame stays at the border."""
    w = min(max(box.w, min_size), float(width))
    h = min(max(box.h, min_size), float(height))
    cx, cy = box.center()
    cx = min(max(cx, 0.0), float(width))
    cy = min(max(cy, 0.0), float(height))
    return Box.from_center(cx, cy, w, h)
