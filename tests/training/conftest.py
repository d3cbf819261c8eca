"""Shared helpers for the training tests: a tiny synthetic OTB sequence and one CPU thread."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

BACKGROUND = 20
TARGET = 230


@pytest.fixture(autouse=True)
def one_thread():
    # The test machines are shared and small: one thread keeps the timing predictable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_otb(
    root: Path,
    name: str = "Synthetic",
    frames: int = 12,
    absent: tuple[int, ...] = (),
    size: tuple[int, int] = (96, 72),
    origin: tuple[int, int] = (20, 30),
) -> Path:
    """An OTB folder: a bright ``14 x 10`` block drifting right on a dark frame.

    The ground truth is written 1-based, as OTB does; ``absent`` frames get a NaN line.
    Returns the folder.
    """
    folder = root / name
    (folder / "img").mkdir(parents=True)
    width, height = size
    lines = []
    for i in range(frames):
        image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        x, y, w, h = origin[0] + 2 * i, origin[1], 14, 10
        image[y : y + h, x : x + w] = TARGET
        # write BGR as cv2 does; the source converts back to RGB
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.png"), image)
        lines.append("NaN,NaN,NaN,NaN" if i in absent else f"{x + 1},{y + 1},{w},{h}")
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return folder


FAST = dict(pairs_per_epoch=4, batch_size=2, val_pairs=2, device="cpu")
"""Training options for runs that only need to go through the motions."""


@pytest.fixture
def data(tmp_path):
    """Two tiny sequences, one to train on and one to validate on, and a cache folder."""
    from trackers.evaluation import load_sequences

    train_seqs = load_sequences(make_otb(tmp_path / "data", "TrainSeq", frames=8))
    val_seqs = load_sequences(make_otb(tmp_path / "data", "ValSeq", frames=6, origin=(40, 20)))
    return train_seqs, val_seqs, tmp_path / "cache"
