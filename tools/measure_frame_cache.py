#!/usr/bin/env python3
"""Measure the frame cache: disk per frame, indexing time, and seek time (median, p95).

    python tools/measure_frame_cache.py                         # a generated 4K clip
    python tools/measure_frame_cache.py VIDEO [VIDEO...]        # and/or real videos

Seeks are random ``get(i)`` with the memory cache off (``memory_frames=1``), so every
one reads and decodes from the pack; each is checked against the streamed frame.
The cache goes to a temporary folder and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def make_4k_clip(path: Path, frames: int) -> Path:
    """A moving textured 3840x2160 clip (mp4v): content like a real video, not a flat colour."""
    rng = np.random.default_rng(0)
    base = cv2.resize(
        rng.integers(0, 255, (270, 480, 3), dtype=np.uint8), (3840, 2160), interpolation=cv2.INTER_CUBIC
    )
    noise = rng.integers(0, 24, (2160, 3840, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (3840, 2160))
    for i in range(frames):
        frame = np.roll(base, 8 * i, axis=1) // 2 + noise // 2
        writer.write(frame)
    writer.release()
    return path


def measure(video: Path, seeks: int) -> dict:
    from app.model.frame_cache import FrameCache, cache_usage
    from trackers.sources import open_source

    with tempfile.TemporaryDirectory() as tmp, open_source(video) as source:
        streamed = None
        cache = FrameCache(source, memory_frames=1, disk_dir=Path(tmp), limit_bytes=1 << 40)
        start = time.perf_counter()
        cache.start_indexing()
        assert cache.wait(), cache.error
        index_s = time.perf_counter() - start
        count = cache.frame_count
        disk = cache_usage(Path(tmp))
        rng = random.Random(0)
        order = [rng.randrange(count) for _ in range(seeks)]
        reference = {i: f for i, f in enumerate(source.iter_from(0)) if i in set(order)}
        times = []
        for i in order:
            t = time.perf_counter()
            frame = cache.get(i)
            times.append(time.perf_counter() - t)
            assert np.array_equal(frame, reference[i]), f"frame {i} differs"
            streamed = frame.shape
        cache.close()
    times.sort()
    return {
        "video": str(video),
        "frames": count,
        "size": f"{streamed[1]}x{streamed[0]}",
        "disk_mb": disk / 1e6,
        "mb_per_frame": disk / 1e6 / count,
        "index_s": index_s,
        "seek_median_ms": 1000 * statistics.median(times),
        "seek_p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--frames-4k", type=int, default=30, help="frames of the generated 4K clip (0: none)")
    parser.add_argument("--seeks", type=int, default=60)
    args = parser.parse_args(argv)
    videos = list(args.videos)
    with tempfile.TemporaryDirectory() as tmp:
        if args.frames_4k:
            videos.insert(0, make_4k_clip(Path(tmp) / "clip4k.mp4", args.frames_4k))
        for video in videos:
            r = measure(video, args.seeks)
            print(
                f"{Path(r['video']).name}: {r['frames']} frames {r['size']}, {r['disk_mb']:.1f} MB on disk "
                f"({r['mb_per_frame']:.2f} MB/frame), indexed in {r['index_s']:.1f} s, "
                f"seek median {r['seek_median_ms']:.1f} ms, p95 {r['seek_p95_ms']:.1f} ms",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
