"""A tracker that never moves: the test double of got10k's IdentityTracker."""

from __future__ import annotations

from trackers.types import Box, Frame, TrackResult


class IdentityTracker:
    name = "identity"

    def __init__(self) -> None:
        self._box: Box | None = None

    def init(self, frame: Frame, box: Box) -> None:
        self._box = box

    def update(self, frame: Frame) -> TrackResult:
        if self._box is None:
            raise RuntimeError("update() before init()")
        return TrackResult(box=self._box, score=1.0)
