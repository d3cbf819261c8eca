"""A session's objects as the formats' tracks, and back (no Qt here).

``trackers.formats`` writes and reads several objects as :class:`Track` (id, label,
trajectory) with ``write_tracks`` / ``read_tracks``; these two functions carry a
session's objects to that API and bring imported tracks back as objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.model.session import AnnotatedObject, AnnotationSession, default_colour


def session_tracks(session: AnnotationSession) -> list[Any]:
    """Every object of ``session`` as a ``trackers.formats.tracks.Track``, in list order."""
    from trackers.formats.tracks import Track

    return [Track(obj.id, obj.label, obj.trajectory) for obj in session.objects]


def objects_from_tracks(tracks: Iterable[Any], frame_count: int) -> list[AnnotatedObject]:
    """Imported tracks as objects (ids >= 1 kept, others renumbered), fitted to ``frame_count`` frames."""
    objects: list[AnnotatedObject] = []
    used: set[int] = set()
    for track in tracks:
        object_id = track.id if isinstance(track.id, int) and track.id >= 1 and track.id not in used else 0
        if not object_id:
            object_id = max(used, default=0) + 1
        used.add(object_id)
        trajectory = track.trajectory.with_frame_count(frame_count)
        objects.append(AnnotatedObject(object_id, trajectory, default_colour(object_id)))
    return objects
