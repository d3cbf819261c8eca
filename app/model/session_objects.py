"""The session's object list: select, add, delete, relabel objects, and the project's labels.

:class:`ObjectList` is a mixin of :class:`~app.model.session.AnnotationSession`; every
change of the list is one undo step (see :mod:`app.model.undo`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from app.model.annotated_object import AnnotatedObject, TrackerSettings, default_colour
from app.model.undo import ChangeEvent, UndoStep
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box


class ObjectList:
    """The objects of :class:`~app.model.session.AnnotationSession` and their labels (a mixin)."""

    # What the session holds (set by its __init__):
    frame_count: int
    frame_size: tuple[int, int]
    _objects: dict[int, AnnotatedObject]
    _labels: list[str]
    _selected: int
    _lock: threading.RLock

    def select(self, object_id: int) -> None:
        """Make ``object_id`` the object edits act on (not an undo step)."""
        self.object(object_id)
        if object_id == self._selected:
            return
        self._selected = object_id
        self._notify(ChangeEvent((), "select", object_id))

    def add_object(
        self,
        label: str | None = None,
        *,
        box: tuple[int, Box] | None = None,
        colour: str | None = None,
        name: str = "",
        select: bool = True,
        settings: TrackerSettings | None = None,
    ) -> int:
        """A new object (the next free id), optionally with a keyframe ``(frame, box)``: one undo step."""
        if box is not None:
            self._check_index(box[0])
            if not box[1].is_valid():
                raise ValueError(f"a keyframe box needs a positive size and finite values, got {box[1]}")
        with self._lock:
            # Runs going on go on: a new object touches none of their frames.
            object_id = max(self._objects, default=0) + 1
            trajectory = Trajectory.empty(self.frame_count, self.frame_size, label or self._default_label())
            colour = colour or default_colour(object_id)
            obj = AnnotatedObject(object_id, trajectory, colour, name, False, settings)
            step = UndoStep("add_object", objects=[(len(self._objects), None, obj)])
            events = [self._apply_objects(step.objects, after=True)]
            if box is not None:
                entry = Entry(box[1], Origin.KEYFRAME)
                step.frames[object_id] = ({box[0]: None}, {box[0]: entry})
                events.append(self._write(object_id, {box[0]: entry}, "keyframe"))
            self._push(step)
            if select:
                self._selected = object_id
                events.append(ChangeEvent((), "select", object_id))
        self._notify(events)
        return object_id

    def delete_object(self, object_id: int | None = None) -> None:
        """Remove an object and its trajectory (one undo step); the last object cannot go."""
        obj = self.object(object_id)
        with self._lock:
            if len(self._objects) == 1:
                raise ValueError("a session keeps at least one object; clear its frames instead")
            self._commit_runs()
            position = list(self._objects).index(obj.id)
            step = UndoStep("delete_object", objects=[(position, obj, None)])
            events = [self._apply_objects(step.objects, after=True)]
            self._push(step)
            if self._selected == obj.id:
                ids = list(self._objects)
                self._selected = ids[min(position, len(ids) - 1)]
                events.append(ChangeEvent((), "select", self._selected))
        self._notify(events)

    def update_object(
        self,
        object_id: int | None = None,
        *,
        label: str | None = None,
        colour: str | None = None,
        name: str | None = None,
        hidden: bool | None = None,
        settings: TrackerSettings | None = None,
        clear_settings: bool = False,
    ) -> None:
        """Relabel, recolour, rename, hide or show an object, or set its tracker settings: one undo step."""
        obj = self.object(object_id)
        trajectory = obj.trajectory
        if label is not None:
            if not label.strip():
                raise ValueError("a label must be non-empty text")
            trajectory = replace(trajectory, label=label.strip())
        new = replace(
            obj,
            trajectory=trajectory,
            colour=obj.colour if colour is None else colour,
            name=obj.name if name is None else name,
            hidden=obj.hidden if hidden is None else bool(hidden),
            settings=None if clear_settings else (obj.settings if settings is None else settings),
        )
        if new.same_meta(obj):
            return
        with self._lock:
            # Runs going on go on: a label, colour or name changes none of their frames.
            position = list(self._objects).index(obj.id)
            step = UndoStep("update_object", objects=[(position, obj, new)])
            event = self._apply_objects(step.objects, after=True)
            self._push(step)
        self._notify(event)

    def add_label(self, label: str) -> None:
        """Offer ``label`` in the project's list (not an undo step; it is saved with the project)."""
        if not label.strip():
            raise ValueError("a label must be non-empty text")
        with self._lock:
            self._add_label(label)
        self._notify(ChangeEvent((), "objects"))

    def _add_label(self, label: str) -> None:
        label = label.strip()
        if label and label not in self._labels:
            self._labels.append(label)

    def _default_label(self) -> str:
        return self.object().label if self._objects else DEFAULT_LABEL

    def _apply_objects(
        self, changes: list[tuple[int, AnnotatedObject | None, AnnotatedObject | None]], after: bool
    ) -> ChangeEvent:
        """Put the objects of a step's object changes in place (caller holds the lock).

        A change with an object on both sides changes only what :meth:`AnnotatedObject.same_meta`
        compares: the frames stay as they are now.
        """
        ordered = changes if after else list(reversed(changes))
        for position, before, later in ordered:
            old, new = (before, later) if after else (later, before)
            items = list(self._objects.items())
            if old is not None and new is not None:
                current = self._objects[new.id]
                trajectory = replace(current.trajectory, label=new.label)
                self._objects[new.id] = replace(new, trajectory=trajectory)
            elif new is None and old is not None:
                del self._objects[old.id]
            elif new is not None:
                items.insert(min(position, len(items)), (new.id, new))
                self._objects = dict(items)
            self._add_label(new.label if new is not None else "")
        if self._selected not in self._objects and self._objects:
            # (the list is empty only for a moment, inside a step that replaces every object)
            self._selected = next(iter(self._objects))
        return ChangeEvent((), "objects")

    def restore_objects(self, objects: Iterable[AnnotatedObject], kind: str = "restore") -> None:
        """Make the object list exactly ``objects`` (journal restore, imports): one undo step."""
        target = list(objects)
        for obj in target:
            if obj.trajectory.frame_count != self.frame_count:
                count = obj.trajectory.frame_count
                raise ValueError(f"object {obj.id} has {count} frames, the video {self.frame_count}")
        with self._lock:
            self._commit_runs()
            step = UndoStep(kind)
            events: list[ChangeEvent] = []
            wanted = {o.id: o for o in target}
            removed = [(i, o, None) for i, o in enumerate(self._objects.values()) if o.id not in wanted]
            for change in reversed(removed):
                step.objects.append(change)
            if step.objects:
                events.append(self._apply_objects(step.objects, after=True))
            for position, obj in enumerate(target):
                current = self._objects.get(obj.id)
                if current is None:
                    nothing = Trajectory.empty(self.frame_count, self.frame_size, obj.label)
                    empty = replace(obj, trajectory=nothing)
                    change = (position, None, empty)
                elif not current.same_meta(obj):
                    change = (position, current, obj)
                else:
                    continue
                step.objects.append(change)
                events.append(self._apply_objects([change], after=True))
            for obj in target:
                now = self._objects[obj.id].trajectory
                after = {i: e for i, e in enumerate(obj.trajectory.entries) if now[i] != e}
                if after:
                    step.frames[obj.id] = ({i: now[i] for i in after}, after)
                    events.append(self._write(obj.id, after, kind))
            if step.objects or step.frames:
                self._push(step)
        self._notify(events)
