"""Autosave: every edit of a session appended to a journal file, so a crash loses at most a second.

A journal is a JSON-lines file under ``<user data dir>/journal/``. Its first line is
a header with a full snapshot of the session (the project's dict form, see
:mod:`app.model.project`); every later line holds the entries an edit left on the frames
of the object it changed (``"object"``: its id), or, when the object list itself
changed (an object added, deleted, relabelled...), a new full snapshot (``"type":
"objects"``; such changes are rare, so they need no diff form). Replaying is
therefore plain assignment: no tracker needs to run again, and applying a line
twice does no harm. The record format and its replay are in :mod:`app.model.journal_records`;
this module writes journals and finds, replays and restores orphans.

Lines are buffered and written by a background thread, flushed and fsynced at most
every ``flush_interval`` seconds (0.5 s) and on close: the edit thread never waits
for the disk, and an edit is on disk at most ``flush_interval`` + one fsync later.
A crash can cut the last line short; readers ignore a last line without its newline.

Which journals are orphans: a live journal is held under an exclusive ``flock``,
which the kernel drops when its process dies however it dies (SIGKILL included).
A clean :meth:`Journal.close` deletes the file: there is nothing to recover.
Where ``flock`` does not exist (Windows), journals of other processes count as
orphans.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.model.journal_records import (
    JOURNAL_VERSION,
    READABLE_JOURNALS,
    JournalError,
    edit_record,
    read_header,
    read_records,
    record_line,
    replayed,
    snapshot_video,
)
from app.model.project import session_from_dict, session_to_dict
from app.model.session import AnnotationSession, ChangeEvent
from trackers.user_dirs import user_dir

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "APP_NAME",
    "JOURNAL_SUFFIX",
    "JOURNAL_VERSION",
    "READABLE_JOURNALS",
    "Journal",
    "JournalError",
    "JournalInfo",
    "discard",
    "find_recoverable",
    "journal_dir",
    "journal_path",
    "read_info",
    "replay",
    "restore",
    "user_data_dir",
]

JOURNAL_SUFFIX = ".jsonl"
APP_NAME = "siamtrack"


# --------------------------------------------------------------------------- locations


def user_data_dir() -> Path:
    return user_dir("data")


def journal_dir(data_dir: Path | None = None) -> Path:
    return Path(data_dir if data_dir is not None else user_data_dir()) / "journal"


def journal_path(content_hash: str, data_dir: Path | None = None) -> Path:
    """Where the journal of the video with this content hash lives."""
    return journal_dir(data_dir) / f"{content_hash}{JOURNAL_SUFFIX}"


# --------------------------------------------------------------------------- locking


def _try_lock(f: IO[bytes]) -> bool:
    """Take the exclusive lock on an open journal; False when a live process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_live(path: Path) -> bool:
    """Whether a running journal (of this or another process) holds ``path``."""
    if fcntl is None:
        return path in _OPEN_HERE
    try:
        with path.open("rb") as f:
            # A second open file description conflicts even within this process.
            return not _try_lock(f)
    except FileNotFoundError:
        return False


def _holder(path: Path) -> str:
    """Who writes a live journal, from its header: 'siamtrack (pid 123, since 14:02)'."""
    try:
        with path.open("rb") as f:
            header = json.loads(f.readline())
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(header["created"])))
        return f"Another siamtrack (pid {int(header['pid'])}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "Another siamtrack"


_OPEN_HERE: set[Path] = set()
"""Journals this process writes; the only liveness test where flock is missing."""


# --------------------------------------------------------------------------- the writer


class Journal:
    """Appends a session's edits to ``path``; see the module notes for the guarantees."""

    def __init__(self, path: Path, flush_interval: float = 0.5) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.error: str | None = None
        """The last write failure, for the GUI to show; autosave keeps trying."""
        self._session: AnnotationSession | None = None
        self._pending: list[tuple[Any, ...]] = []
        """Edits (kind, time, trajectory, frames, object id) and object-list snapshots
        ("objects", time, objects), serialised by the flusher."""
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._closing = False
        self._file: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            if _is_live(self.path):
                raise JournalError(
                    f"{_holder(self.path)} is already editing this video (journal {self.path})"
                )
            self._set_aside(self.path)

    @staticmethod
    def _set_aside(path: Path) -> None:
        """An orphan nobody restored or discarded: keep it recoverable under another name."""
        try:
            info = read_info(path)
            worth_keeping = bool(info.edits or info.unsaved)
        except (JournalError, OSError, ValueError, TypeError, AttributeError):
            worth_keeping = False
        if not worth_keeping:
            path.unlink(missing_ok=True)
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # A rename aside of an existing file, not a write (no trackers.output.atomic_write).
        os.replace(path, path.with_name(f"{path.stem}.{stamp}.{os.getpid()}{JOURNAL_SUFFIX}"))

    # --- lifecycle ----------------------------------------------------------------------
    def attach(
        self, session: AnnotationSession, project_path: Path | None = None, unsaved: bool | None = None
    ) -> None:
        """Start journaling ``session``: write the snapshot header, then every edit.

        ``unsaved`` says whether the snapshot holds work no project file has (by
        default ``session.is_modified``); a journal with neither unsaved work nor
        edits is not offered for recovery.
        """
        if self._session is not None:
            raise RuntimeError("a journal follows one session")
        self._session = session
        self._file = self._write_snapshot(self.path, project_path, unsaved)
        _OPEN_HERE.add(self.path)
        session.add_listener(self._on_change)
        self._thread = threading.Thread(target=self._flusher, name="journal-flush", daemon=True)
        self._thread.start()

    def checkpoint(self, project_path: Path | None = None) -> None:
        """After a save: restart the journal from a fresh snapshot, so it does not grow forever."""
        if self._session is None or self._file is None:
            return
        with self._io, self._cond:
            # Not trackers.output.atomic_write: the new journal must be locked (flock) before
            # it is renamed over the live one, and stay open, locked, for the appends that
            # follow. atomic_write closes its file, and a journal reopened after the rename
            # would be unlocked for a moment: another siamtrack would take it for an orphan.
            tmp = self.path.with_name(self.path.name + ".tmp")
            new: IO[bytes] | None = None
            try:
                new = self._write_snapshot(tmp, project_path, unsaved=None)
                os.replace(tmp, self.path)
            except (OSError, JournalError) as exc:
                # The project file is saved already; this journal just goes on as it was
                # (every edit in it is still valid), so a full disk here loses nothing.
                if new is not None:
                    new.close()
                tmp.unlink(missing_ok=True)
                self.error = f"Autosave to {self.path} failed: {getattr(exc, 'strerror', None) or exc}"
                return
            # Every pending edit is already in the session's current state, hence in the snapshot.
            self._pending.clear()
            old, self._file = self._file, new
            old.close()

    def close(self, discard: bool = True) -> None:
        """Flush what is pending and stop; ``discard`` (a clean exit) deletes the journal."""
        if self._session is not None:
            self._session.remove_listener(self._on_change)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._write_pending()
        if self._file is not None:
            if discard:
                # Unlink while still holding the lock: no other process can take the
                # file for an orphan in between.
                self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None
        _OPEN_HERE.discard(self.path)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(discard=exc[0] is None)

    # --- writing ------------------------------------------------------------------------
    def _write_snapshot(self, path: Path, project_path: Path | None, unsaved: bool | None) -> IO[bytes]:
        session = self._session
        assert session is not None
        if unsaved is None:
            unsaved = session.is_modified
        header = {
            "type": "header",
            "version": JOURNAL_VERSION,
            "pid": os.getpid(),
            "created": time.time(),
            "project": None if project_path is None else str(Path(project_path).absolute()),
            "unsaved": unsaved,
            "session": session_to_dict(session),
        }
        # Lock first, truncate after: opening with "wb" would empty a live journal
        # before we learnt that another process holds it.
        f = path.open("ab")
        try:
            if not _try_lock(f):
                raise JournalError(f"{_holder(path)} is already editing this video (journal {path})")
            f.truncate(0)
            f.write(record_line(header))
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()  # and with it the lock
            raise
        return f

    def _on_change(self, event: ChangeEvent) -> None:
        # Runs on the editing thread: grab the (immutable) trajectory and go; the
        # flusher serialises it.
        session = self._session
        if session is None:
            return
        if event.kind == "objects":
            item: tuple[Any, ...] = ("objects", time.time(), session.objects, session.labels)
        elif not event.frames:
            return
        else:
            object_id = session.selected_id if event.object_id is None else event.object_id
            if object_id not in session.object_ids:
                return  # deleted by the same step: the "objects" snapshot that follows holds it all
            item = (event.kind, time.time(), session.trajectory_of(object_id), event.frames, object_id)
        with self._cond:
            self._pending.append(item)
            self._cond.notify()

    def _flusher(self) -> None:
        last_flush = 0.0
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                # Wait out the interval, gathering edits into this flush.
                deadline = last_flush + self.flush_interval
                while not self._closing and (remaining := deadline - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                if self._closing:
                    return  # close() writes what is left
            self._write_pending()
            last_flush = time.monotonic()

    def _write_pending(self) -> None:
        with self._io:
            with self._cond:
                batch, self._pending = self._pending, []
            if not batch or self._file is None:
                return
            try:
                self._append(b"".join(record_line(self._record(item)) for item in batch))
                self.error = None
            except OSError as exc:
                self.error = f"Autosave to {self.path} failed: {exc.strerror}"
                with self._cond:
                    # Not dropped: the batch goes first into the next flush (the flusher
                    # retries every interval), so the edits reach the disk once it has room.
                    self._pending[:0] = batch

    def _record(self, item: tuple[Any, ...]) -> dict[str, Any]:
        if item[0] != "objects":
            return edit_record(*item)
        _, stamp, objects, labels = item
        assert self._session is not None
        snapshot = session_to_dict(self._session, objects=objects)
        snapshot["labels"] = list(labels)
        return {"type": "objects", "t": stamp, "session": snapshot}

    def _append(self, data: bytes) -> None:
        """Append ``data`` and fsync; on failure the file is cut back to where it was, and OSError raised.

        A partial write would leave half a line, and readers stop at the first damaged
        line: every edit written after it would be invisible to a restore. Raw
        ``os.write`` rather than the buffered file, so nothing failed stays in a buffer
        to be written twice.
        """
        assert self._file is not None
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise


# --------------------------------------------------------------------------- recovery


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """What a recovery dialog shows about an orphaned journal."""

    path: Path
    video: Path
    content_hash: str
    frame_count: int
    project: Path | None
    created: float
    modified: float
    edits: int
    unsaved: bool


def read_info(path: Path) -> JournalInfo:
    """What a recovery dialog shows; JournalError (one line) for anything damaged.

    Called on every journal found at start-up, so a damaged header must give a
    JournalError, never a TypeError that would stop the app from starting.
    """
    path = Path(path)
    header = read_header(path)
    video = snapshot_video(path, header)
    edits = sum(1 for r in read_records(path) if r.get("type") in ("edit", "objects"))
    project = header.get("project")
    try:
        video_path = video.get("path", "")
        count = video.get("frame_count", 0)
        created = header.get("created", 0.0)
        if not isinstance(video_path, str) or (project is not None and not isinstance(project, str)):
            raise TypeError("paths must be text")
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError("the frame count must be a whole number")
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            raise TypeError("the creation time must be a number")
        modified = path.stat().st_mtime
    except (TypeError, OSError) as exc:
        raise JournalError(f"Cannot read journal {path}: {exc}") from None
    return JournalInfo(
        path=path,
        video=Path(video_path),
        content_hash=str(video.get("content_hash", "")),
        frame_count=count,
        project=None if project is None else Path(project),
        created=float(created),
        modified=modified,
        edits=edits,
        unsaved=bool(header.get("unsaved", False)),
    )


def find_recoverable(data_dir: Path | None = None) -> list[Path]:
    """Journals left by a process that died, holding work worth offering; newest first."""
    folder = journal_dir(data_dir)
    if not folder.is_dir():
        return []
    found: list[tuple[float, Path]] = []
    for path in folder.glob(f"*{JOURNAL_SUFFIX}"):
        if _is_live(path):
            continue
        try:
            info = read_info(path)
        except (JournalError, OSError, ValueError, TypeError, AttributeError):
            continue  # not ours, or too damaged to hold anything
        if info.edits or info.unsaved:
            found.append((info.modified, path))
    return [p for _, p in sorted(found, key=lambda item: item[0], reverse=True)]


def replay(path: Path, session: AnnotationSession) -> int:
    """Bring ``session`` to the journal's last state (one undo step); return the edits replayed."""
    path = Path(path)
    header = read_header(path)
    digest = snapshot_video(path, header).get("content_hash")
    if digest != session.content_hash:
        raise JournalError(f"Cannot replay journal {path}: it belongs to another video")
    objects, labels, count = replayed(path, session.frame_count)
    for label in labels:
        if label not in session.labels:
            session.add_label(label)
    session.restore_objects(objects, kind="restore")
    return count


def restore(path: Path, video: Path | None = None) -> AnnotationSession:
    """A session rebuilt from a journal alone (no project file needed); no undo history.

    The session counts as modified whatever it holds, so that its next journal offers it
    again should siamtrack crash before it is saved.
    """
    path = Path(path)
    header = read_header(path)
    try:
        session = session_from_dict(header["session"], video)
    except (KeyError, ValueError) as exc:
        raise JournalError(f"Cannot read journal {path}: bad snapshot ({exc})") from None
    objects, labels, _ = replayed(path, session.frame_count)
    restored = AnnotationSession(
        session.video,
        session.frame_count,
        session.frame_size,
        session.content_hash,
        settings=session.settings,
        objects=objects,
        labels=labels,
        selected=session.selected_id,
    )
    restored.mark_modified()
    return restored


def discard(path: Path) -> None:
    """Delete an orphaned journal (restored, or declined by the user)."""
    path = Path(path)
    if _is_live(path):
        raise JournalError(f"Cannot discard journal {path}: a running siamtrack is writing it")
    path.unlink(missing_ok=True)
