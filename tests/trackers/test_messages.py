"""trackers.messages: an exception as the one line a user reads."""

import pytest

from trackers.messages import first_line, one_line


class Broken(Exception):
    pass


@pytest.mark.parametrize(
    "exc, first, one",
    [
        (Broken("  disk full\n  while writing x\n"), "disk full", "Broken: disk full"),
        (Broken(""), "Broken", "Broken"),
        (Broken("   \n  "), "Broken", "Broken"),
        (ValueError("bad box 1,2"), "bad box 1,2", "ValueError: bad box 1,2"),
        (KeyError("frame"), "'frame'", "KeyError: 'frame'"),
    ],
)
def test_an_exception_is_one_line(exc, first, one):
    assert first_line(exc) == first
    assert one_line(exc) == one
    assert "\n" not in first_line(exc) + one_line(exc)
