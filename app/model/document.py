"""VideoDocument: what the window has open (no Qt here).

One video (or image folder), the viewer's frame cache, the annotation session,
its autosave journal and the project file it was saved to. Opening and closing
keep the "never lose work" rules in one place: a journal is attached as soon as
a session exists, a clean close deletes it, and saving checkpoints it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from app.model import project_lock
from app.model.files import follow_umask, writable_folder
from app.model.frame_cache import FrameCache
from app.model.journal import Journal, JournalError, discard, journal_path, read_info, restore
from app.model.project import PROJECT_SUFFIX, content_hash, load_project, save_project
from app.model.session import AnnotationSession
from trackers.sources import FrameSource, frame_count_note, open_source
from trackers.types import Frame


@dataclass
class VideoDocument:
    path: Path
    """The video file or image folder."""
    source: FrameSource
    cache: FrameCache
    session: AnnotationSession
    journal: Journal | None = None
    project_path: Path | None = None
    journal_problem: str | None = None
    """Why autosave is off (another siamtrack edits the same video), for the status bar."""
    rejected: set[int] = field(default_factory=set)
    """Low-confidence suggestions the user has looked at and rejected (kept for this session only)."""
    note: str | None = None
    """Something the user should know about the video (its header lies about the frame count)."""
    cache_limit_bytes: ClassVar[int | None] = None
    """Disk the frame caches may use (the app's setting); None = the cache's default."""

    # --- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> VideoDocument:
        """A video, an image folder, or a project file (``*.siamtrack.json``)."""
        path = Path(path)
        if path.name.endswith(PROJECT_SUFFIX) or (path.suffix == ".json" and path.is_file()):
            return cls.open_project(path)
        return cls.open_video(path)

    @classmethod
    def open_video(cls, path: Path) -> VideoDocument:
        source = open_source(path)
        try:
            # len() decodes a video once to count what really decodes (headers lie);
            # the session needs the true count for its frame indices.
            session = AnnotationSession(path, len(source), source.size, content_hash(path))
            document = cls._assemble(source, session, None)
            document.note = frame_count_note(source)
            return document
        except BaseException:
            source.close()
            raise

    @classmethod
    def open_project(cls, project: Path) -> VideoDocument:
        session = load_project(project)
        return cls._from_session(session, project)

    @classmethod
    def restore_journal(cls, journal: Path) -> VideoDocument:
        """Rebuild the work a crashed siamtrack left in ``journal``; the orphan is then removed."""
        info = read_info(journal)
        session = restore(journal)
        document = cls._from_session(session, info.project, journal_to_replace=journal)
        return document

    @classmethod
    def _from_session(
        cls, session: AnnotationSession, project: Path | None, journal_to_replace: Path | None = None
    ) -> VideoDocument:
        source = open_source(session.video)
        try:
            if len(source) != session.frame_count:
                raise ValueError(
                    f"{session.video} now decodes to {len(source)} frames, "
                    f"the annotation has {session.frame_count}"
                )
            if journal_to_replace is not None:
                # The restored state is in memory; the new journal's snapshot holds it
                # before anything else can happen, so the orphan can go.
                discard(journal_to_replace)
            return cls._assemble(source, session, project)
        except BaseException:
            source.close()
            raise

    @classmethod
    def _assemble(
        cls, source: FrameSource, session: AnnotationSession, project: Path | None
    ) -> VideoDocument:
        cache = FrameCache(source, limit_bytes=cls.cache_limit_bytes)
        document = cls(Path(session.video), source, cache, session, project_path=project)
        document._lock_project()
        document._attach_journal()
        cache.start_indexing()
        return document

    def _lock_project(self) -> None:
        """Hold the project's lock while it is open here; if another siamtrack holds it, say who
        (saving there is then refused, see app.model.project_lock)."""
        if self.project_path is None:
            return
        try:
            project_lock.acquire(self.project_path)
        except project_lock.ProjectLockedError as exc:
            self.journal_problem = f"Read-only here: {exc}"

    def _attach_journal(self) -> None:
        try:
            journal = Journal(journal_path(self.session.content_hash))
            journal.attach(self.session, self.project_path)
        except (JournalError, OSError) as exc:
            self.journal_problem = self.journal_problem or f"Autosave is off: {exc}"
            return
        self.journal = journal

    # --- using ------------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return self.session.frame_count

    @property
    def fps(self) -> float:
        return float(self.source.fps)

    def frame(self, index: int) -> Frame:
        return self.cache.get(index)

    @property
    def title(self) -> str:
        name = self.project_path.name if self.project_path is not None else self.path.name
        return name

    def save(self, path: Path | None = None) -> Path:
        """Save to ``path`` (or the current project file); the journal restarts from this state."""
        target = Path(path) if path is not None else self.project_path
        if target is None:
            raise ValueError("no project file yet: choose where to save")
        save_project(self.session, target)
        follow_umask(target)
        if self.project_path != target:  # "save as": the lock moves to the new file
            if self.project_path is not None:
                project_lock.release(self.project_path)
            self.project_path = target
            self._lock_project()
        if self.journal is not None:
            self.journal.checkpoint(target)
        return target

    def default_export_base(self) -> Path:
        """Where an export is suggested, without its suffix: beside the project when there
        is one, else beside the video if that folder is writable (data folders often are
        not), else the home folder."""
        folder = writable_folder(
            self.project_path.parent if self.project_path is not None else None,
            self.path.parent,
        )
        name = self.path.name if self.path.is_dir() else self.path.stem
        return folder / name

    def find_project(self, recent: list[str] | tuple[str, ...] = ()) -> Path | None:
        """A saved project of this very video (same content hash): beside the video, in its
        folder, or among ``recent`` files; None if there is none or this is one."""
        if self.project_path is not None:
            return None
        candidates = [self.default_project_path()]
        folder = self.path if self.path.is_dir() else self.path.parent
        with contextlib.suppress(OSError):
            candidates += sorted(folder.glob(f"*{PROJECT_SUFFIX}"))
        candidates += [Path(p) for p in recent if p.endswith(PROJECT_SUFFIX)]
        for candidate in dict.fromkeys(candidates):
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
                digest = data["video"]["content_hash"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if digest == self.session.content_hash:
                return candidate
        return None

    def default_project_path(self) -> Path:
        base = self.path if self.path.is_dir() else self.path.with_suffix("")
        return base.parent / (base.name + PROJECT_SUFFIX)

    def close(self) -> None:
        """A clean close: the journal is flushed and deleted, the decoders released."""
        if self.project_path is not None:
            project_lock.release(self.project_path)
        if self.journal is not None:
            self.journal.close(discard=True)
            self.journal = None
        self.cache.close()
        self.source.close()
