"""Reading text files and folders of a format: decoding, lines, fields."""

from __future__ import annotations

import re
from pathlib import Path

from trackers.formats.common import FormatError


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed); unreadable or undecodable files raise FormatError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(path, "not UTF-8 text", line) from None


def file_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of the file; empty when it cannot be read (for ``looks_like``
    guesses, which answer no rather than raise)."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of every line up to the last non-blank one.

    Blank lines in the middle are kept (as ``""``) so that readers, for which a
    line is a frame, can refuse them with the line number.
    """
    lines = [(n, text.strip()) for n, text in enumerate(read_text(path).splitlines(), start=1)]
    while lines and not lines[-1][1]:
        lines.pop()
    return lines


_SEPARATORS = re.compile(r"[,\s]+")


def split_fields(text: str) -> list[str]:
    """Fields separated by commas, tabs or spaces (OTB files use all three)."""
    return [f for f in _SEPARATORS.split(text.strip()) if f]


def sequence_folder(path: Path) -> Path:
    """The folder of a folder format, given the folder or a file in it."""
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    return path if path.is_dir() else path.parent
