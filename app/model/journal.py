"""Autosave: every edit of a session appended to a journal file, so a crash loses at most a second.

A journal is a JSON-lines file under ``<user data dir>/journal/``. Its first line is
a header with a full snapshot of the session (the project's dict form, see
:mod:`app.model.project`); every later line holds the entries an edit left on the frames
of the object it changed (``"object"``: its id), or, when the object list itself
changed (an object added, deleted, relabelled...), a new full snapshot (``"type":
"objects"``; such changes are rare, so they need no diff form). Replaying is
therefore plain assignment: no tracker needs to run again, and applying a line
twice does no harm.

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
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from app.model.project import entry_from_json, entry_to_json, session_from_dict, session_to_dict
from app.model.session import AnnotatedObject, AnnotationSession, ChangeEvent
from trackers.trajectory import Entry, Trajectory
from trackers.user_dirs import user_dir

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

JOURNAL_VERSION = 2
"""2: edit records name their object, and "objects" records snapshot the object list."""
READABLE_JOURNALS = (1, 2)
JOURNAL_SUFFIX = ".jsonl"
APP_NAME = "siamtrack"


class JournalError(ValueError):
    """A journal cannot be used; the message is one line for the user."""


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


# --------------------------------------------------------------------------- records


def _edit_record(
    kind: str, stamp: float, trajectory: Trajectory, frames: range | tuple[int, ...], object_id: int = 1
) -> dict[str, Any]:
    entries = [trajectory[i] for i in frames]
    record: dict[str, Any] = {"type": "edit", "kind": kind, "t": stamp, "object": object_id}
    if isinstance(frames, range) and len(frames) > 1 and all(e == entries[0] for e in entries):
        # Marking a long stretch absent is one line, not one per frame.
        record["range"] = [frames.start, frames.stop]
        record["entry"] = None if entries[0] is None else entry_to_json(entries[0])
    else:
        record["frames"] = [[i, None if e is None else entry_to_json(e)] for i, e in zip(frames, entries)]
    return record


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The complete, parseable lines of a journal, in order; stops at the first damaged one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"Cannot read journal {path}: no such file") from None
    except OSError as exc:
        raise JournalError(f"Cannot read journal {path}: {exc.strerror}") from None
    for raw in data.split(b"\n")[:-1]:  # the piece after the last newline is unfinished
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(record, dict):
            return
        yield record


def _header(path: Path) -> dict[str, Any]:
    for record in _records(path):
        if record.get("type") == "header" and record.get("version") in READABLE_JOURNALS:
            return record
        break
    raise JournalError(f"Cannot read journal {path}: it has no valid header")


def _frame_index(value: Any, frame_count: int, stop: bool = False) -> int:
    """A frame index (or, with ``stop``, an exclusive end) of a record; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a frame index must be a whole number, got {value!r}")
    if not 0 <= value < frame_count + (1 if stop else 0):
        raise ValueError(f"frame {value} is outside 0..{frame_count - 1}")
    return value


def _changes(record: dict[str, Any], frame_count: int) -> dict[int, Entry | None]:
    """The entries an edit record sets; ValueError (or KeyError, TypeError) on a damaged one.

    Indices are checked against ``frame_count`` before anything is built: a damaged
    ``range`` of a billion frames must not become a billion-entry dict.
    """

    def entry(data: Any) -> Entry | None:
        return None if data is None else entry_from_json(data)

    if "range" in record:
        start, stop = record["range"]
        start = _frame_index(start, frame_count)
        stop = _frame_index(stop, frame_count, stop=True)
        value = entry(record["entry"])
        return dict.fromkeys(range(start, stop), value)
    return {_frame_index(i, frame_count): entry(data) for i, data in record["frames"]}


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
            f.write(_line(header))
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
                self._append(b"".join(_line(self._record(item)) for item in batch))
                self.error = None
            except OSError as exc:
                self.error = f"Autosave to {self.path} failed: {exc.strerror}"
                with self._cond:
                    # Not dropped: the batch goes first into the next flush (the flusher
                    # retries every interval), so the edits reach the disk once it has room.
                    self._pending[:0] = batch

    def _record(self, item: tuple[Any, ...]) -> dict[str, Any]:
        if item[0] != "objects":
            return _edit_record(*item)
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


def _snapshot_video(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    session = header.get("session")
    video = session.get("video") if isinstance(session, dict) else None
    if not isinstance(video, dict):
        raise JournalError(f"Cannot read journal {path}: its snapshot names no video")
    return video


def read_info(path: Path) -> JournalInfo:
    """What a recovery dialog shows; JournalError (one line) for anything damaged.

    Called on every journal found at start-up, so a damaged header must give a
    JournalError, never a TypeError that would stop the app from starting.
    """
    path = Path(path)
    header = _header(path)
    video = _snapshot_video(path, header)
    edits = sum(1 for r in _records(path) if r.get("type") in ("edit", "objects"))
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


def _replayed(path: Path, frame_count: int) -> tuple[list[AnnotatedObject], tuple[str, ...], int]:
    """The snapshot with every complete record applied: the objects, the labels, and how many edits."""
    header = _header(path)
    try:
        snapshot = session_from_dict(header["session"])
    except (KeyError, ValueError) as exc:
        raise JournalError(f"Cannot read journal {path}: bad snapshot ({exc})") from None
    if snapshot.frame_count != frame_count:
        raise JournalError(
            f"Cannot replay journal {path}: it is for {snapshot.frame_count} frames, "
            f"the session has {frame_count}"
        )
    objects = {o.id: o for o in snapshot.objects}
    labels = snapshot.labels
    count = 0
    for record in _records(path):
        kind = record.get("type")
        try:
            if kind == "edit":
                object_id = record.get("object", next(iter(objects)))
                obj = objects[object_id]
                changes = _changes(record, frame_count)
                objects[object_id] = replace(obj, trajectory=obj.trajectory.with_entries(changes))
            elif kind == "objects":
                state = session_from_dict(record["session"])
                if state.frame_count != frame_count:
                    raise ValueError("a snapshot for another frame count")
                objects = {o.id: o for o in state.objects}
                labels = state.labels
            else:
                continue
        except (KeyError, TypeError, ValueError, IndexError, OverflowError, StopIteration):
            break  # a damaged line: everything before it is still good
        count += 1
    return list(objects.values()), labels, count


def replay(path: Path, session: AnnotationSession) -> int:
    """Bring ``session`` to the journal's last state (one undo step); return the edits replayed."""
    path = Path(path)
    header = _header(path)
    digest = _snapshot_video(path, header).get("content_hash")
    if digest != session.content_hash:
        raise JournalError(f"Cannot replay journal {path}: it belongs to another video")
    objects, labels, count = _replayed(path, session.frame_count)
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
    header = _header(path)
    try:
        session = session_from_dict(header["session"], video)
    except (KeyError, ValueError) as exc:
        raise JournalError(f"Cannot read journal {path}: bad snapshot ({exc})") from None
    objects, labels, _ = _replayed(path, session.frame_count)
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
