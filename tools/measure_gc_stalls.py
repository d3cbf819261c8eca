"""Measure what the garbage collector costs the GUI thread during a long run in the app.

    python tools/measure_gc_stalls.py [--frames 3000] [--tracker identity] [--no-freeze]

Opens the main window offscreen on a synthetic clip of ``--frames`` frames (the demo
generator at 320x240, MJPG, in a temporary folder), tracks the last 10 frames first
(building the tracker, as a user's first run does), then forward from frame 0 up to that
keyframe, and prints every full (generation 2) collection during that run with its
duration, and the longest gap of a 10 ms timer on the GUI thread. ``--no-freeze`` runs the
same with app/qt/heap_freeze.py switched off, for the before/after. One run per call: start
it once with and once without to compare (a second run in one process would inherit the
first's heap).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def write_clip(path: Path, frames: int) -> None:
    import cv2

    from resources.demo_clip import iter_sequence

    size = (320, 240)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for frame, _box in iter_sequence(n_frames=frames, size=size):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--tracker", default="identity")
    parser.add_argument("--no-freeze", action="store_true", help="switch app/qt/heap_freeze.py off")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.model.settings import AppSettings
    from app.qt import heap_freeze
    from app.qt.main_window import MainWindow
    from trackers.types import Box

    if args.no_freeze:
        heap_freeze.hold = heap_freeze.release = lambda: None  # type: ignore[assignment]
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "long.avi"
        write_clip(video, args.frames)
        window = MainWindow(AppSettings(tracker=args.tracker), prompts=False, persist_settings=False)
        window.show()
        if not window.open_path(video):
            print(f"could not open the clip: {window.last_error}", file=sys.stderr)
            return 1
        loop = QEventLoop()
        window.run_ended.connect(lambda *_: loop.quit())
        # a first short run at the end builds the tracker (and imports torch), as a user's
        # first run does; the measured run goes from frame 0 up to that keyframe
        window.set_keyframe(args.frames - 10, Box(100, 80, 60, 50))
        window.go_to(args.frames - 10)
        window.track(+1)
        loop.exec()
        window.set_keyframe(0, Box(100, 80, 60, 50))
        window.go_to(0)

        full: list[float] = []  # seconds of each full collection
        started = [0.0]

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            elif info["generation"] == 2:
                full.append(time.perf_counter() - started[0])

        gaps: list[float] = []
        last = [None]

        def tick() -> None:
            now = time.perf_counter()
            if last[0] is not None:
                gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        objects_before = len(gc.get_objects())
        gc.callbacks.append(on_gc)
        timer.start()
        began = time.perf_counter()
        window.track(+1)
        loop.exec()
        seconds = time.perf_counter() - began
        timer.stop()
        gc.callbacks.remove(on_gc)
        window.close()
        app.processEvents()

    print(
        f"{args.tracker}, {args.frames} frames in {seconds:.1f} s, heap freeze "
        f"{'off' if args.no_freeze else 'on'}; {objects_before} tracked objects before the run"
    )
    print(
        f"full collections during the run: {len(full)}"
        + (f", longest {max(full) * 1000:.0f} ms, total {sum(full) * 1000:.0f} ms" if full else "")
    )
    print(f"worst event-loop gap (10 ms timer): {max(gaps[1:], default=0.0) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
