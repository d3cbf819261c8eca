#!/usr/bin/env python3
"""Drive the real siamtrack window under X with real mouse and keyboard events, and
screenshot every step: open, draw, track, jump to a suggestion, correct, undo; then a
second object (Ctrl+N, draw, label, track all with Alt+T, jump, correct one object and
check the other's trajectory is unchanged box for box, undo it in one step); save,
reopen (both objects, ids, labels, boxes), export.

    python tools/walkthrough.py [VIDEO] [--out out/walkthrough] [--tracker siamfc]

Needs ``Xvfb`` and ``xdotool`` (``apt-get install xvfb xdotool libxcb-cursor0
libxcb-icccm4 libxcb-keysyms1``). Without a ``DISPLAY`` it starts its own Xvfb. The
window runs in this process on Qt's ``xcb`` platform, so the script knows where a
frame pixel is on screen; every input goes through the X server (``xdotool``),
exactly as a user's would, including into the modal file dialogs. The default video
is ``../shared/data/videos/labelled/UAV123_10fps_car10.mp4`` (its ground truth gives
the box to draw and the corrections), else the bundled demo clip.

Settings, journals and the frame cache go to a temporary home; the project and the
export to ``--out``. Exit status 0 when every step did what it should.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
CAR10 = ROOT.parent / "shared" / "data" / "videos" / "labelled" / "UAV123_10fps_car10.mp4"
SCREEN = (1600, 1000)


class Walkthrough:
    def __init__(self, video: Path, out: Path, tracker: str) -> None:
        from app.model.session import TrackerSettings
        from app.model.settings import AppSettings
        from app.qt.main_window import MainWindow
        from trackers.evaluation import read_groundtruth

        self.video, self.out = video, out
        self.truth = (
            read_groundtruth(video.with_suffix(".txt")) if video.with_suffix(".txt").is_file() else None
        )
        self.app = QApplication.instance() or QApplication([sys.argv[0]])
        self.window = MainWindow(AppSettings(tracker=tracker), prompts=True, persist_settings=False)
        self.window.panel.set_settings(TrackerSettings(tracker=tracker, device="cpu"))
        self.ended: list[str] = []
        self.window.run_ended.connect(lambda _rid, reason: self.ended.append(reason))
        self.step_number = 0
        self.log: list[str] = []

    # --- plumbing ----------------------------------------------------------------------
    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def wait_until(self, condition, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                self.shot("failed", f"timed out waiting for {what}")
                raise RuntimeError(f"timed out waiting for {what}")
            self.app.processEvents()
            time.sleep(0.01)

    def xdotool(self, *args: object) -> subprocess.Popen:
        """Start xdotool in the background: a modal dialog it opens runs its own event loop."""
        return subprocess.Popen(["xdotool", *map(str, args)])

    def typed(self, first: list[str], text: str, wait: float = 1.5) -> subprocess.Popen:
        """``xdotool key FIRST...``, a pause (for a dialog to open), then ``text`` typed into
        the focused field over what was there, then Return; in the background. (xdotool's
        ``type`` takes every later argument as text, so it cannot be chained.)"""
        import shlex

        script = (
            f"xdotool key {' '.join(map(shlex.quote, first))}; sleep {wait}; xdotool key ctrl+a; "
            f"xdotool type --delay 15 {shlex.quote(text)}; sleep 0.3; xdotool key Return"
        )
        return subprocess.Popen(["sh", "-c", script])

    def finish(self, process: subprocess.Popen, timeout: float = 30) -> None:
        self.wait_until(lambda: process.poll() is not None, timeout, "xdotool")

    def screen_point(self, x: float, y: float) -> tuple[int, int]:
        view = self.window.view
        point = view.mapToGlobal(view.map_to_widget(x, y).toPoint())
        return point.x(), point.y()

    def plot_point(self, frame: float, value: float) -> tuple[int, int]:
        plot = self.window.plot
        scene = plot.getViewBox().mapViewToScene(QPointF(frame, value))
        point = plot.mapToGlobal(plot.mapFromScene(scene))
        return point.x(), point.y()

    def drag(self, start: tuple[int, int], end: tuple[int, int], steps: int = 8) -> None:
        """Press at ``start``, move to ``end`` in steps, release. A short drag first goes
        30 px down and comes back, so that it passes Qt's drag distance however short."""
        args: list[object] = ["mousemove", *start, "sleep", 0.2, "mousedown", 1, "sleep", 0.1]
        via = [] if abs(end[0] - start[0]) + abs(end[1] - start[1]) > 40 else [(start[0], start[1] + 30)]
        legs = [start, *via, end]
        for a, b in zip(legs, legs[1:]):
            for i in range(1, steps + 1):
                t = i / steps
                x, y = round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t)
                args += ["mousemove", x, y, "sleep", 0.04]
        args += ["sleep", 0.1, "mouseup", 1]
        self.finish(self.xdotool(*args))
        self.pump(0.3)

    def focus(self) -> None:
        """No window manager under Xvfb: give the window the keyboard focus ourselves."""
        self.window.raise_()
        self.window.activateWindow()
        self.pump(0.2)

    def key(self, *keys: str) -> None:
        self.focus()
        self.finish(self.xdotool("key", "--delay", 60, *keys))
        self.pump(0.3)

    def shot(self, name: str, note: str) -> Path:
        self.pump(0.4)
        self.window.repaint_now()
        self.pump(0.2)
        self.step_number += 1
        path = self.out / f"{self.step_number:02d}_{name}.png"
        screen = self.app.primaryScreen()
        # the whole screen: menus and dialogs are windows of their own
        image = screen.grabWindow(0).toImage()
        geometry = self.window.frameGeometry()
        image = image.copy(geometry.adjusted(-2, -2, 2, 2).intersected(image.rect()))
        image.save(str(path))
        line = f"{path.name}: {note}"
        self.log.append(line)
        print(line, flush=True)
        return path

    def truth_box(self, index: int):
        from trackers.types import Box

        row = self.truth[index]
        return Box(*row)

    # --- the walk ----------------------------------------------------------------------
    def run(self) -> None:
        w = self.window
        w.move(0, 0)
        w.resize(1500, 940)
        w.show()
        w.activateWindow()
        self.pump(1.0)
        self.finish(self.xdotool("mousemove", 700, 400))
        self.shot("empty", "no video yet: the empty state says what to do; Track is disabled")

        # open: Ctrl+O, type the path into Qt's file dialog, Enter
        self.focus()
        typing = self.typed(["ctrl+o"], str(self.video))
        self.wait_until(lambda: w.document is not None, 25, "the video to open")
        self.finish(typing)
        self.shot("opened", f"{self.video.name} opened: a hint says to drag a box")
        assert "Drag a box" in w.view.hint_text()

        # draw the first box with the mouse
        box = self.truth_box(0) if self.truth is not None else None
        if box is None:
            from trackers.types import Box

            width, height = w.document.session.frame_size
            box = Box(width * 0.4, height * 0.4, width * 0.2, height * 0.2)
        self.drag(self.screen_point(box.x, box.y), self.screen_point(box.x + box.w, box.y + box.h))
        entry = w.document.session.trajectory[0]
        assert entry is not None and entry.box is not None, "no keyframe drawn"
        self.shot("drawn", f"box drawn with the mouse: {entry.box}")

        # track: T
        self.ended.clear()
        self.key("t")
        self.wait_until(lambda: bool(self.ended), 600, "the run to end")
        self.shot("tracked", f"tracked ({self.ended[-1]}); {len(w.suggestions())} frames suggested")

        # No frame under the default threshold (a good run): drag the threshold line up
        # with the mouse until the lowest-confidence frames are under it, as a user would.
        if not w.suggestions():
            scores = w.document.session.trajectory.to_arrays().scores
            lowest = sorted(float(v) for v in scores if v == v)[:8]
            level = min(0.999, lowest[-1] + 0.012) if lowest else 0.9  # a pixel is ~0.01
            self.drag(self.plot_point(40, 0.5), self.plot_point(40, level))
            self.shot("threshold", f"threshold dragged to {w.plot.threshold:.3f}: "
                                   f"{len(w.suggestions())} frames suggested")
        # jump to the first suggestion: Home, then N
        self.key("Home", "n")
        index = w.index
        assert index in w.suggestions(), "N did not land on a suggestion"
        self.shot("suggestion", f"N jumped to frame {index}: {w.view.info_text().strip()}")

        # correct: drag the box's centre onto the ground truth's centre
        shown = w.view.shown_box()
        target = self.truth_box(index) if self.truth is not None else None
        if shown is not None:
            from trackers.evaluation.metrics import box_iou
            from trackers.types import Box

            if target is None or box_iou(target, shown) > 0.9:
                # the box is right already: a visible correction all the same
                target = Box(shown.x + 8, shown.y + 5, shown.w, shown.h)
            self.ended.clear()
            self.drag(
                self.screen_point(shown.x + shown.w / 2, shown.y + shown.h / 2),
                self.screen_point(target.x + target.w / 2, target.y + target.h / 2),
            )
            made = w.document.session.trajectory[index].origin.value
            assert made == "keyframe", "the drag made no keyframe"
            self.wait_until(lambda: bool(self.ended), 300, "the re-track to end")
            # the view followed the re-track: a click on the timeline goes back to the fix
            self.finish(self.xdotool("mousemove", *self.plot_point(index, 0.5), "click", 1))
            self.pump(0.5)
            self.shot("corrected", f"corrected frame {index}; re-tracked ({self.ended[-1]})")
        undo_text = w.undo_action.text()
        # the Edit menu names the step
        opener = self.xdotool("key", "alt+e")
        self.finish(opener)
        self.pump(0.6)
        self.shot("edit_menu", f"Edit menu: {undo_text!r}")
        self.key("Escape")
        assert undo_text.startswith("Undo correction at frame"), undo_text
        before = w.document.session.trajectory
        self.key("ctrl+z")
        self.shot("undone", f"one Ctrl+Z undid the correction and its re-track: {w.redo_action.text()!r}")
        assert w.document.session.trajectory != before
        self.key("ctrl+shift+z")
        assert w.document.session.trajectory == before

        self.second_object()

        # save: Ctrl+S opens Save As for a new project
        project = self.out / f"{self.video.stem}.siamtrack.json"
        project.unlink(missing_ok=True)
        saved = self.objects()
        typing = self.typed(["ctrl+s"], str(project))
        self.wait_until(lambda: project.is_file(), 60, "the project to be saved")
        self.finish(typing)
        self.shot("saved", f"saved {project.name}; the title loses its star")

        # reopen: close, then open the project
        self.key("ctrl+w")
        self.wait_until(lambda: w.document is None, 20, "the video to close")
        self.focus()
        typing = self.typed(["ctrl+o"], str(project))
        self.wait_until(lambda: w.document is not None, 60, "the project to reopen")
        self.finish(typing)
        reopened = self.objects()
        names = [o[:2] for o in reopened]
        assert reopened == saved, f"the reopened project differs: {names} vs {[o[:2] for o in saved]}"
        self.shot("reopened", f"{project.name} reopened with both objects: {names}, every box")

        # export: Ctrl+E, the dialog suggests the project's folder; Enter saves
        exported = self.out / f"{self.video.stem}_otb.txt"
        exported.unlink(missing_ok=True)
        self.focus()
        seen: dict[str, str] = {}

        def while_open() -> None:  # runs in the dialog's own event loop
            dialog = QApplication.activeModalWidget()
            seen["path"] = dialog.path_edit.text() if hasattr(dialog, "path_edit") else ""
            self.shot("export", f"the export dialog suggests {seen['path']}")

        QTimer.singleShot(2000, while_open)
        keys = subprocess.Popen(["sh", "-c", "xdotool key ctrl+e; sleep 4; xdotool key Return"])
        self.wait_until(lambda: keys.poll() is not None and exported.is_file(), 60, "the export")
        assert Path(seen.get("path", "")).parent == project.parent, seen
        self.shot("exported", f"exported {exported.name} ({oct(exported.stat().st_mode & 0o777)})")
        w.close()
        self.pump(0.5)

    # --- a second object ---------------------------------------------------------------
    def objects(self) -> list[tuple[int, str, str, object]]:
        """Every object as ``(id, label, colour, trajectory)``: what a save must keep."""
        session = self.window.document.session
        return [(o.id, o.label, o.colour, o.trajectory) for o in session.objects]

    def trajectory_of(self, object_id: int):
        return self.window.document.session.object(object_id).trajectory

    def click(self, point: tuple[int, int]) -> None:
        self.finish(self.xdotool("mousemove", *point, "sleep", 0.2, "click", 1))
        self.pump(0.4)

    def widget_point(self, widget) -> tuple[int, int]:
        point = widget.mapToGlobal(widget.rect().center())
        return point.x(), point.y()

    def second_box(self, first):
        """The second object's box on frame 0: on car10 the sculptures on the lawn right of
        the road (textured, in view for a while), elsewhere a box like the first one's,
        mirrored to the other half of the frame."""
        from trackers.types import Box

        if self.video.stem == "UAV123_10fps_car10":
            return Box(965, 237, 85, 53)
        width, _ = self.window.document.session.frame_size
        return Box(width - first.x - first.w, first.y, first.w, first.h)

    def second_object(self) -> None:
        """Ctrl+N, draw, relabel, track all (Alt+T), jump, correct ONE object; the other's
        trajectory must not change by a single box, and one Ctrl+Z must take the correction back."""
        import numpy as np

        w = self.window
        session = w.document.session
        first_id = session.selected_id
        if w.plot.threshold is not None and abs(w.plot.threshold - 0.5) > 0.02:
            # the threshold back to 0.5 with the mouse: the new object's doubtful frames only
            self.drag(self.plot_point(40, w.plot.threshold), self.plot_point(40, 0.5))
            assert w.plot.threshold is not None and abs(w.plot.threshold - 0.5) < 0.02, w.plot.threshold
        self.key("Home")
        self.key("ctrl+n")
        assert len(session.objects) == 2, f"Ctrl+N made no object: {len(session.objects)}"
        second_id = session.selected_id
        assert second_id != first_id, "the new object is not selected"
        self.shot("new_object", f"Ctrl+N: object {second_id} is selected and empty; the hint says "
                                f"to draw its box; object {first_id}'s box stays dashed")
        assert "Drag a box" in w.view.hint_text(), w.view.hint_text()

        box = self.second_box(session.object(first_id).trajectory[0].box)
        self.drag(self.screen_point(box.x, box.y), self.screen_point(box.x + box.w, box.y + box.h))
        entry = self.trajectory_of(second_id)[0]
        assert entry is not None and entry.box is not None, "no keyframe drawn for the second object"
        assert [o for o, *_ in w.view.others()] == [first_id], w.view.others()

        # its label: type it into the Objects dock's label box, Enter
        label_edit = w.object_list.label_box.lineEdit()
        self.click(self.widget_point(label_edit))
        script = "xdotool key ctrl+a; xdotool type --delay 15 sculpture; sleep 0.3; xdotool key Return"
        self.finish(subprocess.Popen(["sh", "-c", script]))
        self.pump(0.4)
        assert session.object(second_id).label == "sculpture", session.object(second_id).label
        self.shot("second_drawn", f"object {second_id} drawn with the mouse ({entry.box}) and "
                                  f"labelled 'sculpture' in the Objects dock")

        # track all: Alt+T, from frame 0, both objects in one run
        self.ended.clear()
        self.key("alt+t")
        self.wait_until(lambda: bool(self.ended), 900, "the run of both objects to end")
        for object_id in (first_id, second_id):
            tracked = sum(1 for _ in self.trajectory_of(object_id).annotated())
            assert tracked > 10, f"object {object_id} has {tracked} boxes after Alt+T"
        self.shot("tracked_all", f"Alt+T tracked both objects ({self.ended[-1]})")

        # jump: Home, then Shift+Right (N frames on)
        self.key("Home", "shift+Right")
        index = w.index
        assert index == w.transport.big_step, f"Home, Shift+Right went to frame {index}"
        shown = [o for o, *_ in w.view.others()]
        assert shown == [first_id], f"object {first_id}'s box is not drawn on frame {index}: {shown}"
        self.shot("both_objects", f"frame {index}: both boxes, object {second_id} selected")

        # select the first object with a click inside its dashed box
        car = self.trajectory_of(first_id)[index].box
        self.click(self.screen_point(car.x + car.w / 2, car.y + car.h / 2))
        assert session.selected_id == first_id, "a click inside the dashed box did not select its object"

        # correct the first object's box with the mouse; the second's trajectory must not move
        other_before = self.trajectory_of(second_id)
        boxes_before = other_before.to_arrays().boxes.copy()
        mine_before = self.trajectory_of(first_id)
        shown_box = w.view.shown_box()
        assert shown_box is not None and shown_box == car, (shown_box, car)
        target = self.truth_box(index) if self.truth is not None else None
        from trackers.evaluation.metrics import box_iou
        from trackers.types import Box

        if target is None or box_iou(target, shown_box) > 0.9:
            target = Box(shown_box.x + 8, shown_box.y + 5, shown_box.w, shown_box.h)
        self.ended.clear()
        self.drag(
            self.screen_point(shown_box.x + shown_box.w / 2, shown_box.y + shown_box.h / 2),
            self.screen_point(target.x + target.w / 2, target.y + target.h / 2),
        )
        fixed = self.trajectory_of(first_id)[index]
        assert fixed.origin.value == "keyframe", "the drag made no keyframe"
        self.wait_until(lambda: bool(self.ended), 300, "the re-track to end")
        mine_after = self.trajectory_of(first_id)
        assert mine_after != mine_before, "the correction changed nothing"
        assert self.trajectory_of(second_id) == other_before, "correcting one object changed the other"
        assert np.array_equal(self.trajectory_of(second_id).to_arrays().boxes, boxes_before, equal_nan=True)
        changed = sum(1 for i in range(mine_after.frame_count) if mine_after[i] != mine_before[i])
        self.go_to_by_click(index)
        self.shot("corrected_one", f"object {first_id} corrected on frame {index} ({changed} frames changed, "
                                   f"re-track {self.ended[-1]}); object {second_id}'s "
                                   f"{sum(1 for _ in other_before.annotated())} boxes unchanged")

        # one Ctrl+Z takes back the correction and its re-track, and only them
        undo_text = w.undo_action.text()
        assert undo_text == f"Undo correction at frame {index}", undo_text
        self.key("ctrl+z")
        assert self.trajectory_of(first_id) == mine_before, "one Ctrl+Z did not take the correction back"
        assert self.trajectory_of(second_id) == other_before, "undo changed the other object"
        self.shot("undone_one", f"one Ctrl+Z: object {first_id} as before the correction, "
                                f"object {second_id} untouched; {w.redo_action.text()!r}")
        self.key("ctrl+shift+z")
        assert self.trajectory_of(first_id) == mine_after, "redo did not bring the correction back"
        assert self.trajectory_of(second_id) == other_before

    def go_to_by_click(self, index: int) -> None:
        """The view followed the re-track: a click on the timeline goes back to ``index``."""
        self.click(self.plot_point(index, 0.5))
        assert self.window.index == index, f"the timeline click went to {self.window.index}, not {index}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "walkthrough")
    parser.add_argument("--tracker", default="siamfc")
    args = parser.parse_args(argv)
    for tool in ("xdotool",) + (() if os.environ.get("DISPLAY") else ("Xvfb",)):
        if shutil.which(tool) is None:
            print(f"walkthrough: error: {tool} is missing (apt-get install xvfb xdotool)", file=sys.stderr)
            return 2
    video = args.video or (CAR10 if CAR10.is_file() else ROOT / "resources" / "demo" / "demo.mp4")
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="siamtrack-walkthrough-"))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        os.environ[name] = str(home / name.lower())
    xvfb = None
    if not os.environ.get("DISPLAY"):
        display = ":97"
        screen = f"{SCREEN[0]}x{SCREEN[1]}x24"
        xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", screen, "-nolisten", "tcp"])
        os.environ["DISPLAY"] = display
        time.sleep(1.5)
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    walk = None
    try:
        walk = Walkthrough(video.resolve(), args.out.resolve(), args.tracker)
        walk.run()
        (args.out / "steps.txt").write_text("\n".join(walk.log) + "\n", encoding="utf-8")
    except (AssertionError, RuntimeError) as exc:
        print(f"walkthrough: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if walk is not None:
            walk.window.prompts = False  # no "save changes?" on the way out
            walk.window.close()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
