"""``siamtrack gui [SOURCE]``: the desktop app, also drivable from the command line.

``--box X,Y,W,H --track`` draws a keyframe and tracks forward as a user would,
``--screenshot FILE.png`` saves the window once that is done, and
``--exit-when-done`` then closes it, so the real window can be exercised by
scripts and CI (no prompts, no saved preferences in that mode).

The options live in app/gui_options.py (Qt-free: ``siamtrack --help`` loads no Qt);
app/cli/gui.py imports this module only when ``gui`` is asked for.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app.gui_options import build_parser

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def cmd_gui(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.model.session import TrackerSettings
    from app.model.settings import AppSettings, load_settings
    from app.qt.main_window import MainWindow
    from resources import DEMO_VIDEO

    if args.track and args.box is None:
        print("siamtrack gui: error: --track needs --box", file=sys.stderr)
        return EXIT_USAGE
    if args.screenshot is not None:
        from trackers.output import OutputError, check_output

        try:
            check_output(args.screenshot)  # before the run, not after it
        except OutputError as exc:
            print(f"siamtrack gui: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    unattended = bool(args.exit_when_done)
    if (
        unattended
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        # Without a display Qt aborts; an unattended run (CI, scripts) only needs pixels.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if QApplication.instance() is None:
        from app.model.qt_check import problem

        # Qt aborts the process when its xcb plugin lacks a system library: say which
        # packages to install instead (an unattended run goes on offscreen).
        missing = problem()
        if missing and not unattended:
            print(f"siamtrack gui: error: {missing}", file=sys.stderr)
            return EXIT_USAGE
        if missing:
            print(f"siamtrack gui: {missing}; going on offscreen", file=sys.stderr)
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "siamtrack"])
    app.setApplicationName("siamtrack")
    # An unattended run must not touch the user's recent files and preferences.
    settings = AppSettings() if unattended else load_settings()
    window = MainWindow(settings, prompts=not unattended, persist_settings=not unattended)
    chosen = window.panel.settings()
    window.panel.set_settings(
        TrackerSettings(
            tracker=args.tracker or chosen.tracker,
            weights=args.weights if args.weights is not None else chosen.weights,
            device=args.device or chosen.device,
            model_dir=args.model_dir,
        )
    )
    if args.blend and not window.blend_action.isChecked():
        window.blend_action.trigger()
    window.show()

    source = args.source if args.source is not None else DEMO_VIDEO
    opened = window.open_path(source)
    if not opened and unattended:
        print(f"siamtrack gui: error: {window.last_error}", file=sys.stderr)
        window.close()
        return EXIT_USAGE
    if opened and args.box is not None:
        document = window.document
        assert document is not None
        if args.frame >= document.frame_count:
            print(
                f"siamtrack gui: error: --frame {args.frame} is past the last frame "
                f"{document.frame_count - 1}",
                file=sys.stderr,
            )
            window.close()
            return EXIT_USAGE
        width, height = document.session.frame_size
        boxes = args.box if isinstance(args.box, list) else [args.box]
        clipped = [b.clipped(width, height) for b in boxes]
        for given, box in zip(boxes, clipped):
            if not box.is_valid():
                print(
                    f"siamtrack gui: error: --box {given} lies outside the {width}x{height} frame",
                    file=sys.stderr,
                )
                window.close()
                return EXIT_USAGE
        window.go_to(args.frame)
        window.set_keyframe(args.frame, clipped[0])
        for box in clipped[1:]:  # every further --box is another object
            document.session.add_object(box=(args.frame, box), select=False)

    status = {"code": EXIT_OK}
    loop = QEventLoop()

    def done() -> None:
        window.repaint_now()
        app.processEvents()
        if args.screenshot is not None:
            problem = _save_screenshot(window, args.screenshot)
            if problem:
                print(f"siamtrack gui: error: {problem}", file=sys.stderr)
                status["code"] = EXIT_FAILED
            else:
                print(f"wrote {args.screenshot}", file=sys.stderr)
        if unattended:
            window.close()
            loop.quit()

    def run_ended(run_id: int, reason: str) -> None:
        if reason == "failed":
            print(f"siamtrack gui: tracking failed: {window.last_error}", file=sys.stderr)
            status["code"] = EXIT_FAILED
        QTimer.singleShot(0, done)

    if args.track and opened:
        window.run_ended.connect(run_ended)
        several = isinstance(args.box, list) and len(args.box) > 1
        started = window.annotator.track_all(window.index, +1) if several else window.track(+1)
        if not started:
            QTimer.singleShot(0, done)
    elif args.screenshot is not None or unattended:
        QTimer.singleShot(0, done)
    if not unattended:
        QTimer.singleShot(0, window.offer_restore)
        app.exec()
        return status["code"]
    loop.exec()
    return status["code"]


def _save_screenshot(window, path: Path) -> str | None:
    """Save the window as an image, atomically (a full disk keeps the earlier file); None or the problem."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from trackers.output import write_bytes

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    kind = (path.suffix.lstrip(".") or "png").upper()
    if not window.grab().save(buffer, kind):
        return f"cannot write {path}: not an image type Qt can write ({kind})"
    buffer.close()
    try:
        write_bytes(path, bytes(data.data()))
    except ValueError as exc:  # OutputError: a folder, a FIFO, a device
        return str(exc)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None, prog: str = "siamtrack gui") -> int:
    args = build_parser(prog).parse_args(argv)
    return cmd_gui(args)


if __name__ == "__main__":
    sys.exit(main(prog="python -m app.qt.gui"))
