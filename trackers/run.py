"""The Qt-free tracking loop shared by the CLI, the evaluation and the app's worker.

The loop polls a cancel token between frames (a ``threading.Event`` or anything
with ``is_set()``), so cancelling costs at most one frame of latency whatever
thread runs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from trackers.protocol import Tracker
from trackers.types import Box, Frame, TrackResult


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RunStep:
    """One frame of a run: its index from the start frame, the result, and the tracker's time."""

    index: int
    result: TrackResult
    seconds: float


def track_frames(
    tracker: Tracker,
    frames: Iterable[Frame],
    box: Box,
    cancel: CancelToken | None = None,
) -> Iterator[RunStep]:
    """Initialise ``tracker`` on the first frame with ``box`` and update it on every later one.

    The first step carries the initial box itself with score 1. ``seconds`` is the
    time spent inside ``init``/``update`` only, decode excluded.
    """
    if not box.is_valid():
        raise ValueError(f"the initial box must have a positive size and finite values, got {box}")
    for index, frame in enumerate(frames):
        if cancel is not None and cancel.is_set():
            return
        start = time.perf_counter()
        if index == 0:
            tracker.init(frame, box)
            result = TrackResult(box=box, score=1.0)
        else:
            result = tracker.update(frame)
        yield RunStep(index=index, result=result, seconds=time.perf_counter() - start)
