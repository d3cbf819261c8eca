"""Comparisons shared by the format tests."""

from __future__ import annotations

import math

from trackers.trajectory import Entry, Trajectory
from trackers.types import Box

ROUNDED_FORMATS = {"mot": 0.0101, "cvat": 0.0101}
"""Formats that round pixel coordinates (to 0.01 px), with the tolerance a round trip needs."""


def close(a: float | None, b: float | None, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    # Text formats write the shortest exact repr, but 1-based, corner and normalised
    # formats do arithmetic on the way: allow rounding in the last bits.
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=tol)


def same_box(a: Box | None, b: Box | None, tol: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    return all(close(p, q, tol) for p, q in zip((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h)))


def entry_diff(a: Entry | None, b: Entry | None, box_tol: float = 1e-6) -> str | None:
    """None when the entries match (boxes and scores to rounding), else what differs."""
    if a is None or b is None:
        return None if a is b else f"{a} != {b}"
    if not same_box(a.box, b.box, box_tol):
        return f"box {a.box} != {b.box}"
    if a.origin is not b.origin:
        return f"origin {a.origin} != {b.origin}"
    if not close(a.score, b.score):
        return f"score {a.score} != {b.score}"
    if a.occluded != b.occluded:
        return f"occluded {a.occluded} != {b.occluded}"
    return None


def assert_same(got: Trajectory, expected: Trajectory, box_tol: float = 1e-6) -> None:
    assert got.frame_count == expected.frame_count, (got, expected)
    assert got.label == expected.label
    assert got.frame_size == expected.frame_size
    for index, (a, b) in enumerate(zip(got.entries, expected.entries)):
        diff = entry_diff(a, b, box_tol)
        assert diff is None, f"frame {index}: {diff}"
