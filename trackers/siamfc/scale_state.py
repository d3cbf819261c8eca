"""What SiamFC's scale search carries from frame to frame, for SiamFC and DSiam.

DSiam searches exactly as SiamFC does (DSiam section 3.6), so both trackers keep the
same sizes (SiamFC eq. 7's exemplar and search extents, the smallest and largest box)
and move them the same way after each peak (SiamFC sections 2.2, 2.4, 4.1). The steps
themselves are the pure functions of ``trackers.siamfc.search``; this mixin holds the
state they update, on top of :class:`trackers.siamese.SiameseTracker`'s centre and size.
"""

from __future__ import annotations

import numpy as np

from trackers.geometry import exemplar_extent
from trackers.siamfc.config import SiamFCConfig
from trackers.siamfc.search import choose_scale, damped_scale, peak_displacement, windowed_peak
from trackers.types import Box


class ScaleSearchState:
    """Mixed into a ``SiameseTracker`` that searches the SiamFC way."""

    # set by SiameseTracker._start and the tracker's __init__
    _center: np.ndarray
    _target_size: np.ndarray
    _frame_size: tuple[int, int]
    _scale_factors: np.ndarray
    _window: np.ndarray

    def _start_extents(self, box: Box, search: SiamFCConfig) -> None:
        """Eq. 7: the exemplar's square s(w+2p) x s(h+2p) = A, p = (w+h)/4, and the search
        region 255/127 times larger; the box may shrink to a tenth and grow to the frame."""
        self._exemplar_extent = exemplar_extent(box.w, box.h, search.context)
        self._search_extent = self._exemplar_extent * search.search_size / search.exemplar_size
        self._min_size = 0.1 * self._target_size
        self._max_size = np.array(self._frame_size, dtype=np.float64)

    def _follow_peak(
        self, upsampled: np.ndarray, extents: np.ndarray, search: SiamFCConfig
    ) -> tuple[int, int, int, np.ndarray]:
        """One frame's search on the up-sampled maps of every scale: the scale with the
        best penalised peak (section 2.4), the peak of its windowed map, the centre moved
        there (section 2.2) and the sizes rescaled by the damped factor (section 4.1).
        Returns the scale's index, the peak's row and column, and the windowed map."""
        scale_id = choose_scale(upsampled, search.scale_penalty)
        row, col, windowed = windowed_peak(upsampled[scale_id], self._window, search.window_influence)
        self._center = self._center + peak_displacement(row, col, float(extents[scale_id]), search)
        scale = damped_scale(float(self._scale_factors[scale_id]), search.scale_lr)
        self._target_size = self._target_size * scale
        self._exemplar_extent *= scale
        self._search_extent *= scale
        return scale_id, row, col, windowed
