"""The Qt-free tracking loop shared by the CLI, the evaluation and the app's worker.

The loop polls a cancel token between frames (a ``threading.Event`` or anything
with ``is_set()``), so cancelling costs at most one frame of latency whatever
thread runs it.

It also holds the guarantees every caller relies on, whatever the tracker does:

* every frame of a run has the size of the first one (a folder of mixed sizes
  would otherwise give boxes in several coordinate systems without a word);
* a result never carries a NaN or infinite box or score: a tracker that emits
  one keeps its last usable box, with score 0, so nothing downstream (session,
  files, plots) ever sees a NaN;
* with a ``fallback``, a tracker that runs out of GPU memory is replaced (by a
  CPU one, say) and the run goes on from the frame it reached.

The frame order of a run lives here too (:func:`run_frames`): a run from ``start``
towards ``stop`` in ``direction``, a backward run over a video decoded forwards in
bounded chunks. Each step carries the frame it tracked, so a caller that also wants
the pixels (the app's viewer) gets them from the step: a frame goes down once.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from trackers.protocol import Tracker
from trackers.sources import VideoSource
from trackers.types import Box, Frame, TrackResult

BACKWARD_CHUNK_BYTES = 256 * 1024 * 1024
"""Memory for the frames a backward run over a plain video decodes ahead (see _backward_video)."""


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


class Frames(Protocol):
    """A FrameSource, the app's FrameCache, a list: anything with frame-accurate ``frames[i]``."""

    def __getitem__(self, index: int) -> Frame: ...


def _cancelled(cancel: CancelToken | None) -> bool:
    return cancel is not None and cancel.is_set()


def _backward_video(source: VideoSource, indices: range, cancel: CancelToken | None) -> Iterator[Frame]:
    """Frames of a backward range of a video, decoded forwards in chunks and handed out reversed.

    ``source[i]`` on a video going backwards reopens the file and decodes from the
    start for every frame; decoding a chunk at a time divides that cost by the
    chunk's length while keeping memory bounded. (A cache of frames needs none of this.)
    """
    width, height = source.size
    chunk = max(8, BACKWARD_CHUNK_BYTES // max(1, width * height * 3))
    high = indices.start + 1  # exclusive, in forward terms
    low_end = indices.stop + 1  # the lowest frame the run visits
    while high > low_end:
        low = max(low_end, high - chunk)
        frames: list[Frame] = []
        for frame in source.iter_from(low, high):
            if _cancelled(cancel):
                return
            frames.append(frame)
        yield from reversed(frames)
        if len(frames) < high - low:
            return  # the video ran out: nothing more to give
        high = low


def run_frames(
    frames: Frames, start: int, stop: int, direction: int, cancel: CancelToken | None = None
) -> Iterator[Frame]:
    """The frames ``range(start, stop, direction)`` in the run's order.

    Forward over a source, they stream (each frame decoded once, the same pixels as
    ``frames[i]``); backward over a video, they are decoded forwards in chunks of
    ``BACKWARD_CHUNK_BYTES``; anything else is indexed frame by frame. The iterator
    may hold a decoder: close it (``close()``) when the run stops early.
    """
    indices = range(start, stop, direction)
    if direction > 0 and hasattr(frames, "iter_from"):
        return frames.iter_from(indices.start, indices.stop)  # type: ignore[attr-defined]
    if direction < 0 and isinstance(frames, VideoSource):
        return _backward_video(frames, indices, cancel)
    return (frames[i] for i in indices)


class FrameSizeError(ValueError):
    """A frame of a run differs in size from the run's first frame; the message is one line."""

    def __init__(self, step: int, size: tuple[int, int], expected: tuple[int, int]) -> None:
        self.step = step
        """The frame's position in the run (0 = the first frame)."""
        self.size = size
        self.expected = expected
        super().__init__(
            f"frame {step} of the run is {size[0]}x{size[1]} but the run started on a "
            f"{expected[0]}x{expected[1]} frame; a tracker needs frames of one size"
        )


Fallback = Callable[[BaseException], Tracker]
"""Given the out-of-memory error, build the tracker the run continues with (the caller
says so to the user, and drops its own reference to the old tracker)."""


@dataclass(frozen=True, slots=True)
class RunStep:
    """One frame of a run: its index from the start frame, the result, the tracker's time,
    and the frame itself (a consumer that keeps steps keeps their frames)."""

    index: int
    result: TrackResult
    seconds: float
    frame: Frame


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch running out of GPU memory (without importing torch)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        # torch.cuda.OutOfMemoryError since torch 1.13; also torch.OutOfMemoryError since 2.5
        for oom in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)):
            if isinstance(oom, type) and isinstance(exc, oom):
                return True
    # Older torch raised a plain RuntimeError with this text.
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and "out of memory" in text and "cuda" in text


def _usable(box: Box) -> bool:
    return box.is_finite() and box.w > 0 and box.h > 0


def _sane(result: TrackResult, last: Box) -> TrackResult:
    """``result`` unless its box or score is unusable; then the last box, with score 0."""
    box_ok = _usable(result.box)
    score_ok = math.isfinite(result.score)
    if box_ok and score_ok:
        return result
    return TrackResult(
        box=result.box if box_ok else last,
        score=result.score if box_ok and score_ok else 0.0,
        score_maps=result.score_maps,
        untrained=result.untrained,
    )


def track_frames(
    tracker: Tracker,
    frames: Iterable[Frame],
    box: Box,
    cancel: CancelToken | None = None,
    *,
    fallback: Fallback | None = None,
) -> Iterator[RunStep]:
    """Initialise ``tracker`` on the first frame with ``box`` and update it on every later one.

    The first step carries the initial box itself with score 1. ``seconds`` is the
    time spent inside ``init``/``update`` only, decode excluded.

    ``fallback`` is used once, when the tracker runs out of GPU memory: the tracker it
    returns is initialised on the last frame reached with the last box, and updated on
    the frame that failed, so the run loses no frame. Any other error propagates; the
    steps already yielded stay with the caller.
    """
    if not box.is_valid():
        raise ValueError(f"the initial box must have a positive size and finite values, got {box}")
    expected: tuple[int, int] | None = None
    last_frame: Frame | None = None
    last_box = box
    for index, frame in enumerate(frames):
        if cancel is not None and cancel.is_set():
            return
        size = (int(frame.shape[1]), int(frame.shape[0]))
        if expected is None:
            expected = size
            inside = box.clipped(*size)
            if inside.w <= 0 or inside.h <= 0:
                # Nothing of the target to learn from: a tracker would follow the padding.
                raise ValueError(f"the initial box {box} lies wholly outside the {size[0]}x{size[1]} frame")
        elif size != expected:
            raise FrameSizeError(index, size, expected)
        start = time.perf_counter()
        try:
            result = _step(tracker, frame, box, index)
        except Exception as exc:
            if fallback is None or not is_out_of_memory(exc):
                raise
            tracker = fallback(exc)
            fallback = None  # once: a second failure is a real one
            start = time.perf_counter()
            if index == 0 or last_frame is None:
                result = _step(tracker, frame, box, 0)
            else:
                tracker.init(last_frame, last_box)
                result = tracker.update(frame)
        if index:
            result = _sane(result, last_box)
        last_frame, last_box = frame, result.box
        yield RunStep(index=index, result=result, seconds=time.perf_counter() - start, frame=frame)


def _step(tracker: Tracker, frame: Frame, box: Box, index: int) -> TrackResult:
    if index == 0:
        tracker.init(frame, box)
        return TrackResult(box=box, score=1.0)
    return tracker.update(frame)


@dataclass(frozen=True, slots=True)
class MultiStep:
    """One frame of a run of several objects: per object its result (None once it has stopped),
    and the frame itself."""

    index: int
    results: tuple[TrackResult | None, ...]
    seconds: float
    frame: Frame


def track_frames_multi(
    trackers: Sequence[Tracker],
    frames: Iterable[Frame],
    boxes: Sequence[Box],
    cancel: CancelToken | None = None,
    *,
    lengths: Sequence[int | None] | None = None,
    keep_going: Callable[[int], bool] | None = None,
) -> Iterator[MultiStep]:
    """:func:`track_frames` for several objects on the same frames, each decoded once.

    ``trackers[k]`` follows ``boxes[k]``; trackers that share a network run their search
    regions as one batch (:mod:`trackers.batch`). Object ``k`` stops after
    ``lengths[k]`` frames (None: never) or once ``keep_going(k)`` is False (checked
    before each frame); the run ends when every object has stopped or the frames run
    out. The guarantees of :func:`track_frames` hold per object (one frame size, no
    NaN box or score).
    """
    from trackers.batch import init_many, update_many

    if len(trackers) != len(boxes) or not boxes:
        raise ValueError(f"need one tracker per box, got {len(trackers)} trackers and {len(boxes)} boxes")
    for box in boxes:
        if not box.is_valid():
            raise ValueError(f"an initial box must have a positive size and finite values, got {box}")
    lengths = [None] * len(boxes) if lengths is None else list(lengths)
    active = [length is None or length > 0 for length in lengths]
    expected: tuple[int, int] | None = None
    last = list(boxes)
    for index, frame in enumerate(frames):
        if cancel is not None and cancel.is_set():
            return
        for k in range(len(active)):
            if active[k] and (
                (lengths[k] is not None and index >= lengths[k])  # type: ignore[operator]
                or (index and keep_going is not None and not keep_going(k))
            ):
                active[k] = False
        if not any(active):
            return
        size = (int(frame.shape[1]), int(frame.shape[0]))
        start = time.perf_counter()
        if expected is None:
            expected = size
            for box in boxes:
                inside = box.clipped(*size)
                if inside.w <= 0 or inside.h <= 0:
                    raise ValueError(
                        f"the initial box {box} lies wholly outside the {size[0]}x{size[1]} frame"
                    )
            init_many(trackers, frame, boxes)
            results: list[TrackResult | None] = [TrackResult(box=b, score=1.0) for b in boxes]
        else:
            if size != expected:
                raise FrameSizeError(index, size, expected)
            results = update_many(trackers, frame, active)
            for k, result in enumerate(results):
                if result is not None:
                    results[k] = result = _sane(result, last[k])
                    last[k] = result.box
        yield MultiStep(index=index, results=tuple(results), seconds=time.perf_counter() - start, frame=frame)
