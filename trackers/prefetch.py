"""Decode ahead in a thread, so decoding overlaps tracking.

OpenCV releases the GIL while it decodes and converts colours, and torch while it
convolves, so a decoder thread really runs beside the tracker on another core.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class Prefetcher(Generic[T]):
    """Iterate ``items`` in a background thread, at most ``depth`` ahead of the consumer.

    ``decode_seconds`` holds the time the thread spent producing each item, which is
    the decode cost per frame whether or not the consumer had to wait for it.
    Closing (or leaving a ``with`` block) stops the thread within one item.
    """

    def __init__(self, items: Iterable[T], depth: int = 8) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.decode_seconds: list[float] = []
        self._thread = threading.Thread(target=self._run, name="siamtrack-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._items)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                self.decode_seconds.append(time.perf_counter() - start)
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Failure(exc))
            return
        self._put(_END)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
