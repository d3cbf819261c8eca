"""Training caches key on a source's content: a fresh copy with new timestamps hits the cache."""

from __future__ import annotations

import os

from training.fingerprint import EDGE_BYTES, source_fingerprint


def test_a_file_keeps_its_fingerprint_when_only_its_timestamps_change(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(bytes(range(256)) * (3 * EDGE_BYTES // 256))
    before = source_fingerprint(video)
    os.utime(video, (1_000_000, 1_000_000))
    assert source_fingerprint(video) == before
    data = bytearray(video.read_bytes())
    data[-1] ^= 0xFF  # the last byte changes: the end's hash sees it
    video.write_bytes(bytes(data))
    assert source_fingerprint(video) != before


def test_an_image_folder_keeps_its_fingerprint_when_copied_afresh(tmp_path):
    def make(root):
        img = root / "img"
        img.mkdir(parents=True)
        for i in range(3):
            (img / f"{i + 1:04d}.jpg").write_bytes(bytes([i]) * (100 + i))
        return root

    first = source_fingerprint(make(tmp_path / "a" / "Seq"))
    os.utime(tmp_path / "a" / "Seq" / "img", (1_000_000, 1_000_000))
    again = source_fingerprint(tmp_path / "a" / "Seq")
    assert again == first
    (tmp_path / "a" / "Seq" / "img" / "0004.jpg").write_bytes(b"x")  # a frame more
    assert source_fingerprint(tmp_path / "a" / "Seq") != first
