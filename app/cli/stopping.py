"""Stop signals: Ctrl-C, ``kill``/``timeout`` and a closed terminal each keep the work done and
exit with 128 + the signal, as a shell reports a process a signal ended."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from app.cli.common import EXIT_INTERRUPTED, say

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Ctrl-C, ``kill``/``timeout``, a closed terminal: each keeps the work done and exits non-zero."""

stopped_by: list[int] = []
"""The stop signals received during this command (the exit status names the first)."""


def interrupted_status() -> int:
    """128 + the signal (130 for Ctrl-C), as a shell reports a process a signal ended."""
    return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED


@contextlib.contextmanager
def stop_signals(handler) -> Iterator[None]:
    """While inside, and in the main thread only: ``handler(signum, frame)`` for every stop signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before if handler_before is not None else signal.SIG_DFL)


def raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP as Ctrl-C: a KeyboardInterrupt that the commands already handle."""
    stopped_by.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def first_interrupt_cancels(cancel: threading.Event) -> Iterator[None]:
    """While inside: the first stop signal (SIGINT, SIGTERM, SIGHUP) sets ``cancel``, a second
    raises KeyboardInterrupt."""

    def handler(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        say("\nsiamtrack: stopping after this frame (Ctrl-C again to abort)")

    with stop_signals(handler):
        yield
