"""Issue 17 item 14: the frame cache is bounded on disk, evicts the least recently used
video first, can be cleared, and stays frame-exact past its limit."""

from __future__ import annotations

import os
import time

import numpy as np

from app.model.frame_cache import FrameCache, cache_entries, cache_usage, clear_cache

from .test_frame_cache import FRAMES, clip  # noqa: F401 - fixture (source is in conftest.py)


def fake_entry(root, name: str, size: int, age: float):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "frames.pack").write_bytes(b"\0" * size)
    then = time.time() - age
    os.utime(folder, (then, then))
    return folder


def frame_bytes(tmp_path, source) -> int:  # noqa: F811 - the fixture of that name
    """What one frame of the clip takes in a pack."""
    cache = FrameCache(source, disk_dir=tmp_path / "probe")
    cache.start_indexing()
    assert cache.wait(30)
    cache.close()
    return cache_usage(tmp_path / "probe") // FRAMES


def test_a_video_larger_than_the_limit_stops_indexing_there_and_stays_exact(tmp_path, source, clip):  # noqa: F811
    per_frame = frame_bytes(tmp_path, source)
    limit = per_frame * 10
    cache = FrameCache(source, memory_frames=1, disk_dir=tmp_path / "cache", limit_bytes=limit)
    cache.start_indexing()
    assert not cache.wait(30)  # never completes
    assert cache.capped and 5 <= cache.indexed <= 12
    for i in (0, cache.indexed - 1, cache.indexed, FRAMES - 1, 3):
        assert np.array_equal(cache.get(i), clip[1][i]), f"frame {i}"
    cache.close()
    assert cache_usage(tmp_path / "cache") <= limit


def test_making_room_evicts_the_least_recently_used_videos_first(tmp_path, source):  # noqa: F811
    per_frame = frame_bytes(tmp_path, source)
    root = tmp_path / "cache"
    oldest = fake_entry(root, "oldest", per_frame * 20, age=300)
    recent = fake_entry(root, "recent", per_frame * 20, age=10)
    cache = FrameCache(source, disk_dir=root, limit_bytes=per_frame * (FRAMES + 25))
    cache.start_indexing()
    assert cache.wait(30) and not cache.capped
    cache.close()
    assert not oldest.exists() and recent.exists()
    assert cache_usage(root) <= per_frame * (FRAMES + 25)
    # the video just used is the most recent entry
    assert cache_entries(root)[-1][2] == cache.dir


def test_clear_cache_keeps_only_the_open_video(tmp_path, source):  # noqa: F811
    root = tmp_path / "cache"
    fake_entry(root, "other", 1000, age=5)
    cache = FrameCache(source, disk_dir=root)
    cache.start_indexing()
    assert cache.wait(30)
    freed = clear_cache(root, keep=cache.dir)
    assert freed == 1000 and [e[2] for e in cache_entries(root)] == [cache.dir]
    cache.close()
