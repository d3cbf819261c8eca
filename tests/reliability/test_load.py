"""Load: many runs leave no threads or memory behind; a long video is tracked in bounded memory.

tests/app/test_main_window.py::test_one_hundred_start_stop_cycles_leave_one_thread counts
threads over 100 start/stop cycles but not memory; the first test here adds the bound on
resident memory. The second tracks a 10,000-frame clip through ``siamtrack track`` in a
child and bounds the child's peak RSS far below what holding the frames would take.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.media import write_video
from trackers.types import Box, Frame, TrackResult

from .conftest import ROOT

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


class Quick:
    name = "quick"
    device = "cpu"

    def init(self, frame: Frame, box: Box) -> None:
        self.box = box

    def update(self, frame: Frame) -> TrackResult:
        time.sleep(0.002)
        return TrackResult(self.box, 0.9)


def test_one_hundred_start_stop_cycles_grow_neither_threads_nor_memory(window_factory, qtbot, ledger):
    window = window_factory(lambda name, **kw: Quick())
    window.document.cache.wait()  # the frame index's thread is done before counting
    window.set_keyframe(0, Box(20, 30, 40, 30))

    def cycle() -> None:
        window.go_to(0)
        with qtbot.waitSignal(window.run_ended, timeout=10_000):
            assert window.track(+1)
            window.stop()

    for _ in range(20):  # warm-up: caches, the worker thread, Qt's own pools
        cycle()
    gc.collect()
    python_threads, threads, memory = threading.active_count(), native_threads(), rss()
    for _ in range(100):
        cycle()
    ledger.injected(100)  # a hundred cancels mid-run
    gc.collect()
    grown = rss() - memory
    assert threading.active_count() <= python_threads
    qtbot.waitUntil(lambda: native_threads() <= threads + 10, timeout=3000)
    # Each cycle keeps one undo step of a few entries (bytes; measured: under 0.2 MiB in
    # all). One leaked 160x120 frame per run would be 5.5 MiB, a decoder or tracker more.
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 100 runs"


WRAPPER = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(result.returncode, peak)
sys.stderr.write(result.stderr[-2000:])
"""


def peak_rss_of_track(video: Path, out: Path) -> int:
    """Peak RSS in bytes of ``siamtrack track`` on ``video``, measured by a wrapper process of its own."""
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "track",
        str(video),
        "--box",
        "5,5,10,10",
        "--tracker",
        "identity",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    rc, peak = result.stdout.split()
    assert rc == "0", result.stderr
    return int(peak) * 1024


def write_mjpg(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip whose grey level and square change every frame, made as it is written (never held whole)."""

    def frame_stream():
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        for i in range(frames):
            frame[:] = i % 251
            frame[10:20, i % 40 : i % 40 + 10] = 255
            yield frame

    return write_video(path, frame_stream(), size)


@pytest.mark.slow  # writes and tracks 10,000 frames
def test_a_10000_frame_video_is_tracked_in_bounded_memory(tmp_path, ledger):
    long = write_mjpg(tmp_path / "long.avi", 10_000)
    short = write_mjpg(tmp_path / "short.avi", 10)
    ledger.tried()
    baseline = peak_rss_of_track(short, tmp_path / "short.txt")
    peak = peak_rss_of_track(long, tmp_path / "long.txt")
    assert len((tmp_path / "long.txt").read_text().splitlines()) == 10_000
    frames_bytes = 10_000 * 64 * 48 * 3  # 92 MB: what holding every frame would cost
    assert peak < baseline + frames_bytes // 4, (
        f"peak {peak / 2**20:.0f} MiB vs baseline {baseline / 2**20:.0f} MiB"
    )
