"""Writing an output file safely: atomically, through links, never over a special file.

Every file siamtrack writes (tracks, JSON reports, plots, checkpoints, converted
annotations, screenshots) goes through ``atomic_write``:

* the data goes to a temporary file beside the target, is fsynced, then renamed over
  it: an interrupted or failed write (disk full) leaves the earlier file as it was;
* a symbolic link is written through: its target gets the new content, the link stays;
* a FIFO, a device node or a socket is refused (a rename would replace, say, ``/dev/full``
  with a regular file), and so is a folder;
* the new file gets the mode an ordinary ``open()`` would give it (``0o666`` less the
  umask), or keeps the mode of the file it replaces.

``check_output`` runs the same checks up front, so that a long run is not thrown away at
its end because ``--out`` names a folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class OutputError(ValueError):
    """An output path that cannot be written; the message is one line naming it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"cannot write {path}: {problem}")


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def output_target(path: str | Path) -> Path:
    """The file a write to ``path`` lands in: links followed; folders and special files refused."""
    path = Path(path)
    target = Path(os.path.realpath(path))  # through links, also a dangling one (it is created)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(path, "it is a folder; give a file name")
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise OutputError(path, f"it is {kind}, not a regular file; refusing to replace it")
    return target


def check_output(path: str | Path) -> Path:
    """Fail now, with a one-line OutputError, if ``path`` could not be written later.

    Checks what ``output_target`` checks, and that the nearest existing folder above the
    target is a folder we may create files in. Returns the target."""
    target = output_target(path)
    folder = target.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(path, f"{folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(path, f"permission denied in {folder}")
    return target


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # the only portable way to read it: set and restore
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_write(path) as f: f.write(...)``: the target changes only if the block succeeds.

    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8 text). Raises OutputError for a path that
    must not be written, OSError for a failed write (disk full); either way the
    earlier file is kept and no temporary file is left behind."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes in 'wb' or 'w' mode, not {mode!r}")
    target = output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            keep = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            keep = 0o666 & ~_umask()
        os.chmod(tmp, keep)
        output_target(target)  # it may have become a FIFO or a folder while we wrote
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_file(source: str | Path, path: str | Path) -> None:
    """Copy ``source`` over ``path`` through :func:`atomic_write` (a half-copied file never shows)."""
    with open(source, "rb") as src, atomic_write(path, "wb") as f:
        shutil.copyfileobj(src, f)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
