"""What a tracking run sends to the GUI thread: a mailbox, not one queued signal per frame.

The worker (:mod:`app.qt.tracking_worker`) appends every result to the mailbox and wakes
the GUI thread only when the mailbox was empty, so a backlog of any length costs the GUI
thread one wake-up; the controller takes the whole backlog at once. Memory stays bounded:
the worker waits while ``MAILBOX_LIMIT`` results are waiting, and of those only every
``FRAME_EVERY``-th (and the newest) keeps its decoded frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from trackers.types import Frame

MAILBOX_LIMIT = 512
"""Results waiting for the GUI thread before the worker waits for it."""
FRAME_EVERY = 8
"""Of the results waiting, every this-many-th keeps its decoded frame for the viewer."""


@dataclass(slots=True)
class RunFrame:
    run_id: int
    index: int
    result: Any  # TrackResult
    done: int
    total: int
    frame: Frame | None
    """The decoded frame, for the viewer (see ``TrackingController.frame_sink``); dropped
    from all but every ``FRAME_EVERY``-th waiting result, so a backlog holds few frames."""


@dataclass(frozen=True, slots=True)
class RunEnd:
    run_id: int
    failed: bool
    text: str  # the reason ("completed", "cancelled") or the failure's one-line message


@dataclass(frozen=True, slots=True)
class RunNotice:
    """A line for the user about the run (e.g. it went on on the CPU). It travels in the
    mailbox, in order with the frames: sent as a signal of its own, it could arrive after
    the run's end and be dropped as belonging to no current run."""

    run_id: int
    text: str


Item = RunFrame | RunNotice | RunEnd


class Mailbox:
    """What a run sends to the GUI thread, in order: its frames and notices, then its end.

    ``post`` says whether the receiver must be woken: only when nothing was waiting,
    so a backlog of any length costs the GUI thread one wake-up. A backlog holds at
    most ``MAILBOX_LIMIT`` results (the worker waits, see ``wait_for_room``) and the
    decoded frames of only every ``FRAME_EVERY``-th of them and of the newest.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._items: list[Item] = []

    def post(self, item: Item) -> bool:
        with self._lock:
            if self._items:
                last = self._items[-1]
                if isinstance(last, RunFrame) and last.done % FRAME_EVERY:
                    last.frame = None
            self._items.append(item)
            return len(self._items) == 1

    def take(self) -> list[Item]:
        with self._lock:
            items, self._items = self._items, []
            self._room.notify_all()
        return items

    def wait_for_room(self, cancel: threading.Event) -> None:
        """Block while the backlog is full (the GUI thread is late), until it drains or
        the run is cancelled: memory stays bounded however long the GUI is away."""
        with self._lock:
            while len(self._items) >= MAILBOX_LIMIT and not cancel.is_set():
                self._room.wait(0.05)
