"""NanoTrack v2's network on our crops: the teacher that distillation learns from.

NanoTrack (the model of OpenCV's ``TrackerNano``, bundled in ``resources/models``) is a
Siamese tracker like ours: a backbone embeds a 127x127 exemplar and a 255x255 search
image, cut as SiamFC cuts them (context ``(w + h) / 2``, same scale for both), and a head
gives two maps over the search image:

* a 2 x 16 x 16 classification map; its softmax's second channel is the probability that
  a cell is on the target (``foreground``);
* a 4 x 16 x 16 map of distances from each cell to the target box's left, top, right
  and bottom edges, in search-image pixels.

It takes RGB in 0..255 with no normalisation (OpenCV's ``TrackerNano`` swaps its BGR
input to RGB before the network), which is the input convention of our networks and of
``training.data``'s crops, so one crop pair feeds both.

**Where its cells are.** OpenCV's ``TrackerNano::generateGrids`` puts cell ``i`` at
pixel index ``(i - 8) * 16 + 255 // 2`` of the search image, i.e. at continuous position
``127.5 + (i - 8) * 16`` (pixel ``k`` spans ``[k, k + 1)``). Our crops put the search
region's centre at ``255 / 2 = 127.5`` too, so NanoTrack's cell 8 is the centre. Our
SiamFC score map has 17 cells, 8 search pixels apart, cell 8 at the centre: SiamFC cell
``j`` sits at offset ``(j - 8) * 8``, which is NanoTrack's fractional cell
``8 + (j - 8) / 2``. :func:`resample_to_grid` reads NanoTrack's maps there by bilinear
interpolation (even ``j`` fall exactly on a NanoTrack cell). The test
``tests/training/test_teacher.py`` checks this with a target placed at known offsets.

Run through ``cv2.dnn`` (already a dependency); the ONNX files take one pair at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.protocol import TrackerError

EXEMPLAR_SIZE = 127
SEARCH_SIZE = 255
SCORE_SIZE = 16
"""NanoTrack v2's maps are 16 x 16 for a 255-pixel search image."""
STRIDE = 16
"""Search-image pixels between two NanoTrack cells."""
CENTRE_CELL = SCORE_SIZE // 2
"""The cell at the search image's centre (OpenCV: ``i - sz / 2`` is zero there)."""

BACKBONE_FILE = "nanotrack_backbone_sim.onnx"
HEAD_FILE = "nanotrack_head_sim.onnx"
SUBFOLDER = "nanotrack-v2"


@dataclass(frozen=True)
class TeacherMaps:
    """NanoTrack's answer for one exemplar/search pair, in search-image pixels."""

    foreground: NDArray[np.float32]
    """16 x 16 probabilities that each cell lies on the target."""
    boxes: NDArray[np.float32]
    """4 x 16 x 16: the box each cell predicts, as ``cx, cy, w, h`` (continuous pixels)."""

    def best_box(self) -> NDArray[np.float32]:
        """``cx, cy, w, h`` predicted by the most confident cell."""
        row, col = np.unravel_index(int(np.argmax(self.foreground)), self.foreground.shape)
        return self.boxes[:, row, col].copy()


def cell_positions(size: int = SCORE_SIZE, stride: int = STRIDE, search_size: int = SEARCH_SIZE) -> NDArray:
    """Continuous search-image coordinate of each cell's centre along one axis."""
    return search_size / 2.0 + (np.arange(size, dtype=np.float64) - size // 2) * stride


def find_model_files(model_dir: str | Path | None = None) -> tuple[Path, Path]:
    """The backbone and head files (``--model-dir``, ``$SIAMTRACK_MODEL_DIR`` or the bundled copies)."""
    from trackers.opencv import _ModelFile, find_model_file, resolve_model_dir

    folder = resolve_model_dir(model_dir)
    return (
        find_model_file(folder, _ModelFile(SUBFOLDER, BACKBONE_FILE)),
        find_model_file(folder, _ModelFile(SUBFOLDER, HEAD_FILE)),
    )


class NanoTrackNet:
    """The two ONNX networks, run on crops we cut ourselves (no tracking logic here)."""

    def __init__(self, model_dir: str | Path | None = None) -> None:
        backbone, head = find_model_files(model_dir)
        try:
            self._backbone = cv2.dnn.readNet(str(backbone))
            self._head = cv2.dnn.readNet(str(head))
        except cv2.error as exc:
            raise TrackerError(f"cannot load NanoTrack from {backbone.parent}: {exc}") from None
        self.files = (backbone, head)

    @staticmethod
    def _blob(image: NDArray, size: int) -> NDArray[np.float32]:
        image = np.asarray(image, dtype=np.float32)
        if image.shape == (3, size, size):
            chw = image
        elif image.shape == (size, size, 3):
            chw = image.transpose(2, 0, 1)
        else:
            raise ValueError(f"expected a {size}x{size} RGB crop, got shape {image.shape}")
        return np.ascontiguousarray(chw[None])

    def embed(self, exemplar: NDArray) -> NDArray[np.float32]:
        """The exemplar's features (reuse them for several search images)."""
        self._backbone.setInput(self._blob(exemplar, EXEMPLAR_SIZE))
        return self._backbone.forward().copy()

    def maps(self, exemplar_features: NDArray[np.float32], search: NDArray) -> TeacherMaps:
        """Foreground and boxes for one search image (``3 x 255 x 255`` or ``255 x 255 x 3``, RGB 0..255)."""
        self._backbone.setInput(self._blob(search, SEARCH_SIZE))
        search_features = self._backbone.forward()
        self._head.setInput(exemplar_features, "input1")
        self._head.setInput(search_features, "input2")
        logits, distances = self._head.forward(["output1", "output2"])
        logits = logits.reshape(2, SCORE_SIZE, SCORE_SIZE).astype(np.float64)
        # softmax over the two classes: p(foreground) = sigmoid(l1 - l0)
        foreground = 1.0 / (1.0 + np.exp(logits[0] - logits[1]))
        ltrb = distances.reshape(4, SCORE_SIZE, SCORE_SIZE).astype(np.float64)
        # OpenCV's grid is in pixel indices; +0.5 makes it continuous (pixel k spans [k, k+1)).
        grid = cell_positions()
        gx, gy = grid[None, :], grid[:, None]
        x1, y1, x2, y2 = gx - ltrb[0], gy - ltrb[1], gx + ltrb[2], gy + ltrb[3]
        boxes = np.stack([(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1])
        return TeacherMaps(foreground.astype(np.float32), boxes.astype(np.float32))

    def __call__(self, exemplar: NDArray, search: NDArray) -> TeacherMaps:
        return self.maps(self.embed(exemplar), search)


def resample_to_grid(
    teacher_map: NDArray, size: int, stride: float, search_size: int = SEARCH_SIZE
) -> NDArray[np.float32]:
    """Read a 16 x 16 NanoTrack map (or ``C x 16 x 16``) at the cells of a ``size x size``
    map whose cells are ``stride`` search pixels apart around the search image's centre.

    Bilinear between NanoTrack's cells; outside its grid the border value is kept.
    """
    teacher_map = np.asarray(teacher_map, dtype=np.float32)
    squeeze = teacher_map.ndim == 2
    maps = teacher_map[None] if squeeze else teacher_map
    # Continuous NanoTrack cell index of each target cell.
    offsets = (np.arange(size, dtype=np.float64) - (size - 1) / 2.0) * stride
    fractional = CENTRE_CELL + offsets / STRIDE + (search_size / 2.0 - cell_positions()[CENTRE_CELL]) / STRIDE
    fractional = np.clip(fractional, 0.0, SCORE_SIZE - 1.0)
    low = np.floor(fractional).astype(int)
    high = np.minimum(low + 1, SCORE_SIZE - 1)
    weight = (fractional - low).astype(np.float32)
    rows = maps[:, low, :] * (1.0 - weight)[None, :, None] + maps[:, high, :] * weight[None, :, None]
    out = rows[:, :, low] * (1.0 - weight)[None, None, :] + rows[:, :, high] * weight[None, None, :]
    return out[0] if squeeze else out
