"""The window's menus as one table of actions, built in one place.

Each row is data: the menu, the text, the keys, what it does (a function of the window),
when it is enabled, and the window attribute that names it (for the few that tests, the
walkthrough or the window itself reach). :func:`build_menus` turns the table into menus
and window-wide shortcuts; :meth:`MenuActions.update` enables and disables them.

The texts and keys are the user's interface: ``tools/walkthrough.py``, the tests and the
keyboard help (:mod:`app.qt.widgets.help_dialog`) read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

if TYPE_CHECKING:
    from app.model.session import AnnotationSession
    from app.qt.main_window import MainWindow

MENU_TITLES = {
    "File": "&File", "Edit": "&Edit", "Navigate": "&Navigate",
    # not Alt+T: that is "Track all objects", and a menu's Alt key that is also an
    # action's shortcut makes Qt run neither ("Ambiguous shortcut overload")
    "Track": "Trac&k", "View": "&View", "Tools": "T&ools", "Help": "&Help",
}
NUDGE_BIG = 10
RECENT_COUNT = 9
"""Ctrl+1 … Ctrl+9 open the recent files."""
DOCK_KEYS = (("tracker_dock", "F6"), ("score_dock", "F7"), ("timeline_dock", "F8"), ("objects_dock", "F9"))
"""The View menu's dock toggles (each dock's own toggle action, given a key)."""


class Enabled(Enum):
    """When an action is enabled."""

    ALWAYS = "always"
    VIDEO = "video"  # a video is open
    IDLE = "idle"  # a video is open and no run goes on
    RUNNING = "running"  # a run goes on
    UNDO = "undo"  # the session has a step to undo
    REDO = "redo"  # ... to redo


@dataclass(frozen=True)
class ActionSpec:
    """One row of the table. Most actions act on the open video, so that is the default rule."""

    menu: str
    text: str
    keys: tuple[str, ...]
    handler: Callable[[MainWindow], object]
    enabled: Enabled = Enabled.VIDEO
    name: str | None = None
    """The window attribute that holds the action, if anything reaches it by name."""
    checkable: bool = False
    listed: bool = True
    """A window-wide shortcut, listed in the keyboard help; False: a menu entry only."""


def _spec(
    menu: str,
    text: str,
    keys: str | tuple[str, ...],
    handler: Callable[[MainWindow], object],
    enabled: Enabled = Enabled.VIDEO,
    name: str | None = None,
    **kwargs: bool,
) -> ActionSpec:
    keys = (keys,) if isinstance(keys, str) else keys
    return ActionSpec(menu, text, keys, handler, enabled, name, **kwargs)


_ALWAYS, _IDLE = Enabled.ALWAYS, Enabled.IDLE
_MOVES = (("left", "Left", (-1, 0, 0, 0)), ("right", "Right", (1, 0, 0, 0)),
          ("up", "Up", (0, -1, 0, 0)), ("down", "Down", (0, 1, 0, 0)))
_GROWS = (("wider", "Alt+Right", (0, 0, 1, 0)), ("narrower", "Alt+Left", (0, 0, -1, 0)),
          ("taller", "Alt+Down", (0, 0, 0, 1)), ("shorter", "Alt+Up", (0, 0, 0, -1)))


def _nudge(move: tuple[int, ...], by: int = 1) -> Callable[[MainWindow], object]:
    return lambda w: w.nudge(*(by * v for v in move))


ACTIONS: tuple[ActionSpec, ...] = (
    # ------------------------------------------------------------------ File
    _spec("File", "Open video or project…", "Ctrl+O", lambda w: w.documents.open_dialog(), _ALWAYS),
    _spec("File", "Open image folder…", "Ctrl+Shift+O", lambda w: w.documents.open_folder_dialog(), _ALWAYS),
    # (the "Open recent" submenu goes here, before "Save project")
    _spec("File", "Save project", "Ctrl+S", lambda w: w.save(), name="save_action"),
    _spec("File", "Save project as…", "Ctrl+Shift+S", lambda w: w.documents.save_as()),
    _spec("File", "Export trajectory…", "Ctrl+E", lambda w: w.export_dialog()),
    _spec("File", "Export as training dataset (GOT-10k)…", "Ctrl+Shift+E",
          lambda w: w.exports.export_dataset_dialog()),
    _spec("File", "Export all objects…", "Ctrl+Alt+E", lambda w: w.exports.export_objects_dialog()),
    _spec("File", "Close video", "Ctrl+W", lambda w: w.close_document(), name="close_action"),
    _spec("File", "Quit", "Ctrl+Q", lambda w: w.close(), _ALWAYS),
    # ------------------------------------------------------------------ Edit
    _spec("Edit", "Undo", "Ctrl+Z", lambda w: w.travel(w.annotator.undo), Enabled.UNDO, "undo_action"),
    _spec("Edit", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), lambda w: w.travel(w.annotator.redo), Enabled.REDO,
          "redo_action"),
    _spec("Edit", "Delete box", ("Del", "Backspace"), lambda w: w.annotator.delete(w.index)),
    _spec("Edit", "Mark target absent", "A", lambda w: w.annotator.mark_absent(w.index)),
    _spec("Edit", "Mark target absent up to the next keyframe", "Shift+A",
          lambda w: w.annotator.mark_absent_to_next_keyframe(w.index)),
    _spec("Edit", "Make keyframe (accept this box)", "K", lambda w: w.annotator.make_keyframe(w.index)),
    _spec("Edit", "Interpolate between keyframes around here", "I",
          lambda w: w.annotator.interpolate_around(w.index)),
    *(
        spec
        for text, key, move in _MOVES
        for spec in (
            _spec("Edit", f"Nudge box {text}", f"Ctrl+{key}", _nudge(move)),
            _spec("Edit", f"Nudge box {text} by {NUDGE_BIG}", f"Ctrl+Shift+{key}", _nudge(move, NUDGE_BIG)),
        )
    ),
    *(_spec("Edit", f"Make box {text}", key, _nudge(grow)) for text, key, grow in _GROWS),
    _spec("Edit", "New object (draw its box next)", "Ctrl+N", lambda w: w.annotator.new_object()),
    _spec("Edit", "Delete the selected object", "Ctrl+Shift+Del", lambda w: w.object_list.delete_selected()),
    # ------------------------------------------------------------------ Navigate
    _spec("Navigate", "Play / pause", "Space", lambda w: w.transport.toggle_play()),
    _spec("Navigate", "Next frame", ("Right", "."), lambda w: w.transport.step(1)),
    _spec("Navigate", "Previous frame", ("Left", ","), lambda w: w.transport.step(-1)),
    _spec("Navigate", "Forward N frames", "Shift+Right", lambda w: w.transport.step(w.transport.big_step)),
    _spec("Navigate", "Back N frames", "Shift+Left", lambda w: w.transport.step(-w.transport.big_step)),
    _spec("Navigate", "First frame", "Home", lambda w: w.transport.home()),
    _spec("Navigate", "Last frame", "End", lambda w: w.transport.end()),
    _spec("Navigate", "Next keyframe", "PgDown", lambda w: w.jump_keyframe(1)),
    _spec("Navigate", "Previous keyframe", "PgUp", lambda w: w.jump_keyframe(-1)),
    _spec("Navigate", "Next low-confidence frame", "N", lambda w: w.jump_suggestion(1)),
    _spec("Navigate", "Previous low-confidence frame", "Shift+N", lambda w: w.jump_suggestion(-1)),
    _spec("Navigate", "Confirm suggestion: target absent here", "C", lambda w: w.confirm_suggestion()),
    _spec("Navigate", "Reject suggestion: the box is right", "R", lambda w: w.reject_suggestion()),
    _spec("Navigate", "Next object", "]", lambda w: w.annotator.select_next_object(1)),
    _spec("Navigate", "Previous object", "[", lambda w: w.annotator.select_next_object(-1)),
    # ------------------------------------------------------------------ Track
    _spec("Track", "Track forward", "T", lambda w: w.track(+1), _IDLE, "forward_action"),
    _spec("Track", "Track backward", "Shift+T", lambda w: w.track(-1), _IDLE),
    _spec("Track", "Track both ways between keyframes (fused by score)", "Ctrl+T",
          lambda w: w.annotator.track_between(w.index), _IDLE),
    _spec("Track", "Stop tracking", "Esc", lambda w: w.stop(), Enabled.RUNNING),
    _spec("Track", "Track all objects forward", "Alt+T", lambda w: w.annotator.track_all(w.index, +1),
          _ALWAYS, "track_all_action"),
    _spec("Track", "Track all objects backward", "Alt+Shift+T", lambda w: w.annotator.track_all(w.index, -1),
          _ALWAYS),
    # ------------------------------------------------------------------ View (the dock toggles follow)
    _spec("View", "Zoom in", ("+", "="), lambda w: w.view.zoom(1.25), _ALWAYS),
    _spec("View", "Zoom out", "-", lambda w: w.view.zoom(0.8), _ALWAYS),
    _spec("View", "Fit frame", "0", lambda w: w.view.fit(), _ALWAYS),
    _spec("View", "Blend score map onto frame", "B", lambda w: w.blend_changed(), _ALWAYS, "blend_action",
          checkable=True),
    _spec("View", "Show trajectory trail", "L", lambda w: w.schedule_repaint(), _ALWAYS, "trail_action",
          checkable=True),
    # ------------------------------------------------------------------ Tools, Help
    _spec("Tools", "Fine-tune on this project's trajectories…", "Ctrl+Shift+F",
          lambda w: w.show_finetune_dialog(), _ALWAYS),
    # no key for this one: it is not in the shortcut list
    _spec("Tools", "Clear the frame cache", (), lambda w: w.clear_frame_cache(), _ALWAYS, listed=False),
    _spec("Help", "Keyboard shortcuts", "F1", lambda w: w.show_help(), _ALWAYS),
)


class MenuActions:
    """The built menus: their actions by menu, the recent-file entries, and the enabling rules."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        bar = window.menuBar()
        self.menus: dict[str, QMenu] = {name: bar.addMenu(title) for name, title in MENU_TITLES.items()}
        self.groups: dict[str, list[QAction]] = {name: [] for name in MENU_TITLES}
        self.enabled_when: list[tuple[QAction, Enabled]] = []
        self.named: dict[str, QAction] = {}
        for spec in ACTIONS:
            self._add(spec)
        for dock_name, key in DOCK_KEYS:
            toggle = getattr(window, dock_name).toggleViewAction()
            toggle.setShortcut(QKeySequence(key))
            self.menus["View"].addAction(toggle)
            self.groups["View"].append(toggle)
        self.recent_menu = QMenu("Open recent", self.menus["File"])
        self.menus["File"].insertMenu(self.named["save_action"], self.recent_menu)
        self.recent_actions: list[QAction] = []
        for i in range(RECENT_COUNT):
            action = QAction(window)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda checked=False, i=i: window.documents.open_recent(i))
            window.addAction(action)
            self.recent_menu.addAction(action)
            self.recent_actions.append(action)

    def _add(self, spec: ActionSpec) -> None:
        window = self.window
        action = QAction(spec.text, window)
        action.setCheckable(spec.checkable)
        action.triggered.connect(lambda checked=False, handler=spec.handler: handler(window))
        if spec.listed:
            action.setShortcuts([QKeySequence(k) for k in spec.keys])
            # Window-wide: the keys work wherever the focus is, except in widgets
            # that need the key themselves (text fields take letters and arrows).
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            window.addAction(action)
            self.groups[spec.menu].append(action)
        self.menus[spec.menu].addAction(action)
        if spec.enabled is not Enabled.ALWAYS:
            self.enabled_when.append((action, spec.enabled))
        if spec.name is not None:
            self.named[spec.name] = action

    def shortcut_groups(self) -> list[tuple[str, list[QAction]]]:
        """Every action with a shortcut, by menu: what the help dialog lists."""
        groups = [(name, list(actions)) for name, actions in self.groups.items()]
        groups.insert(1, ("File › Open recent", [a for a in self.recent_actions if a.isVisible()]))
        return groups

    def show_recent(self, recent: list[str]) -> None:
        for i, action in enumerate(self.recent_actions):
            if i < len(recent):
                action.setText(f"&{i + 1} {recent[i]}")
                action.setVisible(True)
            else:
                action.setVisible(False)
        self.recent_menu.setEnabled(bool(recent))

    def update(self, session: AnnotationSession | None, running: bool) -> None:
        """Enable what can run now; Undo and Redo name their step."""
        has = session is not None
        state = {
            Enabled.VIDEO: has,
            Enabled.IDLE: has and not running,
            Enabled.RUNNING: running,
            Enabled.UNDO: bool(session and session.can_undo),
            Enabled.REDO: bool(session and session.can_redo),
        }
        for action, when in self.enabled_when:
            action.setEnabled(state[when])
        undo_text = session.undo_text if session is not None else ""
        redo_text = session.redo_text if session is not None else ""
        self.named["undo_action"].setText(f"Undo {undo_text}" if undo_text else "Undo")
        self.named["redo_action"].setText(f"Redo {redo_text}" if redo_text else "Redo")
