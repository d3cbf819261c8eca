"""Shared helpers for the training tests: tiny synthetic OTB sequences and one CPU thread."""

from __future__ import annotations

import pytest
import torch

# The OTB builder lives in tests/media.py; re-exported for the training tests that import it here.
from tests.media import make_otb


@pytest.fixture(autouse=True)
def one_thread():
    # The test machines are shared and small: one thread keeps the timing predictable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = dict(pairs_per_epoch=4, batch_size=2, val_pairs=2, device="cpu")
"""Training options for runs that only need to go through the motions."""


@pytest.fixture
def data(tmp_path):
    """Two tiny sequences, one to train on and one to validate on, and a cache folder."""
    from trackers.evaluation import load_sequences

    train_seqs = load_sequences(make_otb(tmp_path / "data", "TrainSeq", frames=8))
    val_seqs = load_sequences(make_otb(tmp_path / "data", "ValSeq", frames=6, origin=(40, 20)))
    return train_seqs, val_seqs, tmp_path / "cache"
