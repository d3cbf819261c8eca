"""Numbers in annotation files: written as short as they read back, parsed strictly."""

from __future__ import annotations

import math
from pathlib import Path

from trackers.formats.common import FormatError


def format_number(value: float) -> str:
    """The shortest text that reads back as exactly ``value``; whole numbers without ``.0``."""
    text = repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


PIXEL_DECIMALS = 2
"""Pixel coordinates in MOT and CVAT files are rounded to 0.01 px: finer is noise, and
``633.1741662612833`` in a file a person reads is clutter (a round trip moves a box by
at most 0.005 px, a CVAT corner-derived size by 0.01 px)."""


def format_pixel(value: float) -> str:
    """``value`` rounded to :data:`PIXEL_DECIMALS` places, written as short as it reads back."""
    return format_number(round(float(value), PIXEL_DECIMALS))


def parse_number(text: str, path: Path, line: int | None, what: str) -> float:
    """A finite float, or a FormatError naming ``what`` was expected."""
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"{what}: expected a number, got {text.strip()!r}", line) from None
    if not math.isfinite(value):
        raise FormatError(path, f"{what}: expected a finite number, got {text.strip()!r}", line)
    return value


def parse_int(text: str, path: Path, line: int | None, what: str) -> int:
    """A whole number; ``"3.0"`` is accepted, ``"3.5"`` is not."""
    value = parse_number(text, path, line, what)
    if not value.is_integer():
        raise FormatError(path, f"{what}: expected a whole number, got {text.strip()!r}", line)
    return int(value)


def parse_flag(text: str, path: Path, line: int | None, what: str) -> bool:
    value = text.strip()
    if value in ("0", "1"):
        return value == "1"
    if value.lower() in ("true", "false"):  # CVAT and datumaro write both spellings
        return value.lower() == "true"
    raise FormatError(path, f"{what}: expected 0 or 1, got {value!r}", line)
