"""The steps of SiamFC's search (sections 2.2, 2.4, 4.1) as pure functions.

SiamFC and DSiam (which searches exactly as SiamFC does, section 3.6) both call these,
so there is one copy of the scale search, the window and the peak-to-frame mapping.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from trackers.siamfc.config import SiamFCConfig
from trackers.types import Box


def hann_window(size: int) -> np.ndarray:
    """Section 2.4: a cosine window penalising large displacements, normalised to sum 1
    so that it mixes with the normalised score map on the same footing."""
    window = np.outer(np.hanning(size), np.hanning(size))
    return (window / window.sum()).astype(np.float32)


def damped_scale(factor: float, scale_lr: float) -> float:
    """Section 4.1: the new scale is a linear interpolation between 1 and the peak's scale."""
    return (1.0 - scale_lr) + scale_lr * factor


def to_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 crops (RGB, 0..255, uint8 or float) -> N x 3 x H x W float, channels_last."""
    tensor = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float()
    return tensor.contiguous(memory_format=torch.channels_last)


def upsample_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """SiamFC section 4.1: bicubic up-sampling of each S x 17 x 17 map to ``size``."""
    return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC) for m in maps])


def choose_scale(upsampled: np.ndarray, scale_penalty: float) -> int:
    """SiamFC section 2.4: the scale with the highest peak, every change of scale penalised."""
    count = upsampled.shape[0]
    penalties = np.full(count, scale_penalty, dtype=np.float32)
    penalties[count // 2] = 1.0
    return int(np.argmax(upsampled.reshape(count, -1).max(axis=1) * penalties))


def windowed_peak(
    score_map: np.ndarray, window: np.ndarray, window_influence: float
) -> tuple[int, int, np.ndarray]:
    """SiamFC section 2.4: the score map normalised to sum 1, mixed with the cosine window,
    the row and column of its maximum, and the windowed map."""
    windowed = score_map - score_map.min()
    windowed = windowed / (windowed.sum() + 1e-16)
    windowed = (1.0 - window_influence) * windowed + window_influence * window
    row, col = np.unravel_index(int(np.argmax(windowed)), windowed.shape)
    return int(row), int(col), windowed.astype(np.float32)


def peak_displacement(row: int, col: int, extent: float, search: SiamFCConfig) -> np.ndarray:
    """SiamFC section 2.2: the peak's offset from the map centre, times the stride, mapped
    from up-sampled map to search image to frame pixels (x, y)."""
    offset = np.array([col, row], dtype=np.float64) - (search.upsampled_size - 1) / 2.0
    in_search = offset * search.total_stride / search.upsample
    return in_search * extent / search.search_size


def score_region(center: np.ndarray, extent: float, search: SiamFCConfig) -> Box:
    """The frame region a score map covers: 17 cells of ``stride`` search-image pixels."""
    span = search.score_size * search.total_stride / search.search_size * extent
    return Box.from_center(float(center[0]), float(center[1]), span, span)
