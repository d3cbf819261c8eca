"""While a job runs off the GUI thread, the cyclic garbage collector skips the older heap.

Why: a full (generation 2) collection walks every container object in the process, holding
the GIL, so the GUI thread cannot run Python until it ends. With the window, torch, Qt and
pyqtgraph loaded that is about 230,000 objects, and one pass took 124 ms of CPU on the dev
machine (``gc.collect()`` after opening the demo clip with SiamFC): far over the 50 ms the
event loop may stall while tracking (tests/app/test_responsiveness.py). A long run allocates
enough to trigger such passes (its results and trajectory entries outlive the young
generations).

``gc.freeze()`` moves every tracked object into a permanent generation that collections
skip (the "gc.freeze" of the Python docs, in constant time); ``gc.unfreeze()`` puts them back
into the oldest generation. While at least one job is current the heap from before it is
frozen, so a collection during the run walks only what the run made; when the last job ends
it is unfrozen and collected as usual, with the user's next edits rather than with the
tracker's frames. Reference counting frees objects as always meanwhile: only garbage *cycles*
made before the run wait until it ends.
"""

from __future__ import annotations

import gc

_holders = 0


def hold() -> None:
    """One more job is running: freeze the heap if none was."""
    global _holders
    if _holders == 0:
        gc.freeze()
    _holders += 1


def release() -> None:
    """A job has ended: unfreeze the heap when it was the last one. An unmatched call is ignored."""
    global _holders
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0:
        gc.unfreeze()


def holders() -> int:
    """How many jobs hold the heap frozen (for tests and diagnostics)."""
    return _holders
