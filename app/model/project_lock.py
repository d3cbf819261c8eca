"""One siamtrack at a time per project file: a lock beside it that says who holds it.

A second app instance on the same project used to run with autosave off and could
then overwrite the first one's save. Now the first instance that opens or saves a
project holds ``.<name>.lock`` beside it under an exclusive ``flock`` (dropped by the
kernel however its process ends, SIGKILL included) with its process id, user, host
and start time inside; every other process is refused saving there, with a message
naming the holder. ``save_project`` takes the lock for the write alone unless this
process holds it already (an open document does). Reading a project (``siamtrack
train``, ``load_project``) needs no lock.

Where ``flock`` does not exist (Windows) there is no lock and nothing is refused.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class ProjectLockedError(ValueError):
    """Another live process holds the project; the message names it."""


_HELD: dict[Path, IO[bytes]] = {}
_GUARD = threading.Lock()


def lock_path(project: Path) -> Path:
    return project.with_name(f".{project.name}.lock")


def _key(project: str | Path) -> Path:
    return Path(os.path.realpath(project))


def _me() -> dict[str, object]:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is no reason to fail
        user = "?"
    return {"pid": os.getpid(), "user": user, "host": socket.gethostname(), "since": time.time()}


def describe_holder(data: bytes) -> str:
    """'siamtrack (pid 123, user ann on host1, since 14:02)' from a lock file's content."""
    try:
        info = json.loads(data.decode("utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(info["since"])))
        return f"siamtrack (pid {int(info['pid'])}, user {info['user']} on {info['host']}, since {since})"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another siamtrack"


def acquire(project: str | Path) -> None:
    """Hold ``project``'s lock for this process (again: nothing to do); ProjectLockedError if
    another live process holds it."""
    if fcntl is None:
        return
    key = _key(project)
    with _GUARD:
        if key in _HELD:
            return
        lock = lock_path(key)
        for _attempt in range(5):
            try:
                f = open(lock, "a+b")  # noqa: SIM115 - held open as long as the lock
            except OSError:
                return  # a folder we cannot write: saving there fails with its own message
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = describe_holder(f.read(4096))
                f.close()
                raise ProjectLockedError(
                    f"{key.name} is being edited by {holder}; "
                    "close it there first, or save under another name"
                ) from None
            except OSError:
                f.close()
                return  # a file system without locks: as on Windows
            try:
                same = os.fstat(f.fileno()).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (and removed) it between our open and flock
                f.close()
                continue
            f.truncate(0)
            f.write(json.dumps(_me()).encode("utf-8"))
            f.flush()
            _HELD[key] = f
            return


def release(project: str | Path) -> None:
    """Give the lock back (a document closed); removes the lock file."""
    key = _key(project)
    with _GUARD:
        f = _HELD.pop(key, None)
        if f is None:
            return
        try:
            lock_path(key).unlink(missing_ok=True)  # while still holding it: see acquire's inode check
        except OSError:
            pass
        f.close()


def is_held(project: str | Path) -> bool:
    """Whether this process holds ``project``'s lock."""
    with _GUARD:
        return _key(project) in _HELD
