"""The anchors of the region proposal subnetwork (sections 3.2, 3.3), in search-image pixels.

Every box here is ``cx, cy, w, h`` in the pixel convention of :mod:`trackers.types`,
measured in the resampled search image (255 x 255), whose centre is the continuous
point ``(search_size / 2, search_size / 2)``.

Layout: anchors are an array of shape ``(k, S, S, 4)`` (anchor, row, column, box);
flattened, anchor ``a`` at cell ``(i, j)`` has index ``(a * S + i) * S + j``. The
network's outputs are flattened to the same order (see ``targets.flatten_outputs``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from trackers.siamrpn.config import SiamRPNConfig


def anchor_shapes(size: float, ratios: Sequence[float]) -> NDArray[np.float64]:
    """``(k, 2)`` widths and heights: each anchor has area ``size^2`` and height/width = ratio.

    Section 3.3: one scale, several ratios. The released code rounds the shapes to
    whole pixels of an 8-pixel base before multiplying by 8 (a 0.33 anchor becomes
    104 x 32, 19% smaller than 64^2); we keep the exact area, which only matters for
    weights trained with the rounded anchors (we never load those).
    """
    shapes = [(size / math.sqrt(r), size * math.sqrt(r)) for r in ratios]
    return np.asarray(shapes, dtype=np.float64)


def cell_offsets(score_size: int, stride: int) -> NDArray[np.float64]:
    """Offset of each score-map cell from the search-image centre, in search pixels.

    Without padding (section 3.1, eq. 1) cell ``j`` sees the exemplar-sized window
    starting ``j * stride`` pixels into the search image, so cells sit ``stride``
    apart and the middle one is centred on the search image.
    """
    return (np.arange(score_size, dtype=np.float64) - (score_size - 1) / 2.0) * stride


def anchor_grid(config: SiamRPNConfig) -> NDArray[np.float64]:
    """``(k, S, S, 4)`` anchors ``cx, cy, w, h`` in search-image pixels (17 x 17 x 5 by default)."""
    s = config.score_size
    centre = config.search_size / 2.0
    offsets = centre + cell_offsets(s, config.total_stride)
    shapes = anchor_shapes(config.anchor_size, config.anchor_ratios)
    grid = np.empty((len(shapes), s, s, 4), dtype=np.float64)
    grid[..., 0] = offsets[None, None, :]  # x varies along columns
    grid[..., 1] = offsets[None, :, None]  # y varies along rows
    grid[..., 2] = shapes[:, 0, None, None]
    grid[..., 3] = shapes[:, 1, None, None]
    return grid


def center_mask(score_size: int, center_size: int) -> NDArray[np.bool_]:
    """``(S, S)``: True on the centre ``g x g`` cells kept by section 4.3's first strategy."""
    half = center_size // 2
    middle = score_size // 2
    keep = np.abs(np.arange(score_size) - middle) <= half
    return np.outer(keep, keep)


def cosine_window(score_size: int) -> NDArray[np.float64]:
    """``(S, S)`` Hann window, 1 at the centre and 0 on the rim (section 4.3's cosine window).

    Not normalised to sum 1 as SiamFC's: here it is mixed with probabilities in [0, 1]
    (released code), so it stays on the same 0..1 footing.
    """
    return np.outer(np.hanning(score_size), np.hanning(score_size))
