"""What a user reads of an exception: one line, never a traceback.

``first_line`` is the message's first line (the exception type's name when the message is
empty); ``one_line`` puts the type in front of it, for errors the user did not cause (a
worker thread that failed, an internal error), where the type says what kind of failure it was.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """``exc`` as ``Type: first line of the message`` (just ``Type`` when the message is empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
