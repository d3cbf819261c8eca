"""The one interface every tracker implements, Siamese or OpenCV peer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trackers.types import Box, Frame, TrackResult


@runtime_checkable
class Tracker(Protocol):
    """``init`` once on the first frame with the user's box, then ``update`` per frame."""

    name: str

    def init(self, frame: Frame, box: Box) -> None: ...

    def update(self, frame: Frame) -> TrackResult: ...


class TrackerError(RuntimeError):
    """A tracker could not be built or run; the message is meant for the user."""
