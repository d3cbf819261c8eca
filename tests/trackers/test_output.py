"""``trackers.output.copy_file``: a copy over a file through the one atomic write."""

from __future__ import annotations

import os

import pytest

from trackers import output


def test_copy_file_replaces_the_target_through_a_link(tmp_path):
    source, target, link = tmp_path / "best.pt", tmp_path / "real.pt", tmp_path / "out.pt"
    source.write_bytes(b"best weights")
    target.write_bytes(b"last weights")
    link.symlink_to(target)
    output.copy_file(source, link)
    assert link.is_symlink() and target.read_bytes() == b"best weights"
    assert source.read_bytes() == b"best weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "out.pt", "real.pt"]


def test_a_failed_copy_keeps_the_earlier_file(tmp_path, monkeypatch):
    source, target = tmp_path / "best.pt", tmp_path / "out.pt"
    source.write_bytes(b"best weights")
    target.write_bytes(b"last weights")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        output.copy_file(source, target)
    assert target.read_bytes() == b"last weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "out.pt"]
