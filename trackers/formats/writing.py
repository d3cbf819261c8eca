"""Writing a format's file or folder atomically: the earlier export survives any failure.

A file goes through :func:`trackers.output.atomic_write` (temporary file, fsync, rename);
a folder is built beside its target and swapped in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from trackers.formats.common import FormatError
from trackers.output import OutputError, write_bytes


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file beside ``path`` and a rename: never a half-written file."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Atomically, through a link to its target; a FIFO or device is refused (``trackers.output``)."""
    path = Path(path)
    if path.is_dir():
        raise FormatError(path, "is a folder; this format is written to a file")
    try:
        write_bytes(path, data)
    except OutputError as exc:
        raise FormatError(path, exc.problem) from None


def _files_under(folder: Path) -> Iterator[str]:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            yield (Path(root) / name).relative_to(folder).as_posix()


def replace_folder(target: Path, fill: Callable[[Path], None], owns: Callable[[str], bool]) -> None:
    """Build a folder format in a temporary folder beside ``target``, then swap it in.

    ``fill(tmp)`` writes every file. If it fails, ``target`` is untouched. An
    existing ``target`` is replaced only when every file in it is one this format
    writes (``owns(relative posix path)``): so pointing an export at the wrong
    folder can never delete anybody's files.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FormatError(target, "exists and is a file; this format is written to a folder")
    if target.is_dir():
        for relative in _files_under(target):
            if not owns(relative):
                raise FormatError(
                    target,
                    f"exists and holds {relative}, which this export would not write; "
                    "choose a new or empty folder",
                )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        fill(tmp)
        # On disk before the swap: otherwise a crash just after it could leave empty files
        # where the earlier export was; and a full disk often only shows here.
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Two renames: the old folder steps aside, the new one takes its name. If the
    # second fails, the old one is put back.
    old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
    try:
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.rename(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
