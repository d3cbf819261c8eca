"""FrameCache: exactly the streamed pixels, before, during and after indexing; bounded; clean shutdown."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.model.frame_cache import INDEX_NAME, PACK_NAME, FrameCache
from tests.media import decoded_frames, write_clip
from trackers.sources import open_source

FRAMES = 40
SIZE = (96, 64)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_clip(path, FRAMES, SIZE, seed=7)
    decoded = decoded_frames(path)
    assert len(decoded) == FRAMES
    return path, decoded


def check(cache: FrameCache, reference, indices) -> None:
    for i in indices:
        frame = cache.get(i)
        assert np.array_equal(frame, reference[i]), f"frame {i}"
        assert not frame.flags.writeable


def no_index_thread() -> bool:
    return not any(t.name == "frame-index" and t.is_alive() for t in threading.enumerate())


def test_before_during_and_after_indexing(tmp_path, source, clip):
    reference = clip[1]
    rng = random.Random(1)
    cache = FrameCache(source, memory_frames=4, disk_dir=tmp_path)
    assert cache.frame_count is None and cache.indexed == 0
    check(cache, reference, [rng.randrange(FRAMES) for _ in range(6)] + [30, 20, 10, 0])

    paused, resume = threading.Event(), threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 15:
            paused.set()
            resume.wait(10)  # holds the indexing thread at 15 frames

    cache.start_indexing(progress)
    try:
        assert paused.wait(10)
        assert cache.indexed == 15 and not cache.is_indexed
        # Indexed frames come from the pack, the rest from the source; both exact.
        check(cache, reference, [14, 3, 39, 16, 0, 25, 13, 12, 38])
    finally:
        resume.set()
    assert cache.wait(20)
    assert cache.is_indexed and cache.frame_count == FRAMES
    assert seen[-1] == (FRAMES, FRAMES) and [d for d, _ in seen[:FRAMES]] == list(range(1, FRAMES + 1))
    order = list(range(FRAMES))
    rng.shuffle(order)
    check(cache, reference, order + list(range(FRAMES - 1, -1, -1)))
    assert cache.get(-1) is not None
    with pytest.raises(IndexError):
        cache.get(FRAMES)
    cache.close()
    assert no_index_thread()


def test_a_finished_index_is_reused(tmp_path, source, clip):
    with FrameCache(source, disk_dir=tmp_path) as first:
        first.start_indexing()
        assert first.wait(20)
    files = sorted(p.name for p in first.dir.iterdir())
    assert files == sorted([INDEX_NAME, PACK_NAME])
    calls: list[tuple[int, int]] = []
    with FrameCache(source, disk_dir=tmp_path) as second:
        assert second.is_indexed and second.frame_count == FRAMES
        second.start_indexing(lambda done, total: calls.append((done, total)))
        assert calls == [(FRAMES, FRAMES)] and no_index_thread()
        check(second, clip[1], [39, 0, 17])


def test_memory_is_bounded(tmp_path, source):
    cache = FrameCache(source, memory_frames=5, disk_dir=tmp_path)
    cache.start_indexing()
    assert cache.wait(20)
    for i in list(range(FRAMES)) + list(range(FRAMES - 1, -1, -3)):
        cache.get(i)
        assert cache.memory_size() <= 5
    assert cache.memory_size() == 5
    cache.close()


def test_stop_joins_the_thread_and_keeps_what_was_indexed(tmp_path, source, clip):
    reached = threading.Event()

    def slow(done: int, total: int) -> None:
        if done == 8:
            reached.set()
        threading.Event().wait(0.02)

    cache = FrameCache(source, disk_dir=tmp_path)
    cache.start_indexing(slow)
    assert reached.wait(10)
    cache.stop()
    assert no_index_thread()
    assert 8 <= cache.indexed < FRAMES and not cache.is_indexed and cache.frame_count is None
    check(cache, clip[1], [7, 0, 39, 20])
    assert not any(p.name.endswith(".tmp") for p in cache.dir.iterdir())
    cache.start_indexing()  # a restart starts over and finishes
    assert cache.wait(20) and cache.frame_count == FRAMES
    check(cache, clip[1], [5, 35])
    cache.close()


def test_a_damaged_pack_falls_back_to_the_source(tmp_path, source, clip):
    with FrameCache(source, disk_dir=tmp_path) as cache:
        cache.start_indexing()
        assert cache.wait(20)
    pack = cache.dir / PACK_NAME
    data = bytearray(pack.read_bytes())
    for position in range(100, len(data), 997):
        data[position] ^= 0x5A
    pack.write_bytes(bytes(data))
    with FrameCache(source, disk_dir=tmp_path) as damaged:
        assert damaged.is_indexed
        check(damaged, clip[1], [3, 30, 1])


def test_image_folders_need_no_index(tmp_path, clip):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip[1][:5]):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with open_source(folder) as src, FrameCache(src, disk_dir=tmp_path / "cache") as cache:
        assert cache.frame_count == 5 and cache.dir is None
        cache.start_indexing()
        check(cache, clip[1], [4, 0, 2])
    assert not (tmp_path / "cache").exists()


def shared_data() -> Path | None:
    candidates = [os.environ.get("SIAMTRACK_SHARED"), str(ROOT.parent / "shared")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data" / "videos" / "labelled").is_dir():
            return Path(candidate) / "data"
    return None


@pytest.mark.slow
def test_a_labelled_video_is_cached_exactly(tmp_path):
    data = shared_data()
    if data is None:
        pytest.skip("needs the shared data (../shared/data or $SIAMTRACK_SHARED/data)")
    videos = sorted((data / "videos" / "labelled").glob("*.mp4"), key=lambda p: p.stat().st_size)
    if not videos:
        pytest.skip("the shared data holds no labelled .mp4 video")
    with open_source(videos[0]) as src:
        reference = {i: f for i, f in enumerate(src.iter_from(0)) if i in (0, 1, 37, 80)}
        cache = FrameCache(src, memory_frames=2, disk_dir=tmp_path)
        cache.start_indexing()
        assert cache.wait(120), cache.error
        for i in sorted(reference, reverse=True):
            if i < cache.frame_count:
                assert np.array_equal(cache.get(i), reference[i]), f"{videos[0].name} frame {i}"
        cache.close()
