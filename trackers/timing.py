"""Per-stage timing of one tracker update, for ``siamtrack bench``.

Trackers split ``update`` into crop (cutting the search region), network (the
forward pass, including the copy of the scores back to the host, which is where a
GPU run waits for its result) and post (peak finding, penalties, the new box).
The laps cost two ``perf_counter`` calls per stage, nothing measurable.
"""

from __future__ import annotations

import time

STAGES = ("crop", "network", "post")


class Stopwatch:
    """Laps of one update: ``start()``, then ``lap(stage)`` after each stage."""

    __slots__ = ("_last", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = 0.0

    def start(self) -> None:
        self.seconds = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now
