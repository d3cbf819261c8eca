"""The options of ``siamtrack gui`` (and ``python -m app``), kept apart from the Qt app.

app/cli/ builds its parser from here, so ``siamtrack --help`` and every other
command stay Qt-free; app/qt/gui.py runs the window with what was parsed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _box(text: str):  # -> Box; imported lazily so --help stays fast
    from trackers.types import Box

    try:
        box = Box.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not box.is_valid():
        raise argparse.ArgumentTypeError(f"the box needs a positive width and height: {text}")
    return box


def _frame(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame number >= 0, got {value}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from trackers.registry import TEST_DOUBLES, TRACKERS

    names = sorted(set(TRACKERS) - TEST_DOUBLES)  # what the help offers; test doubles still parse
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        help="video, image folder or .siamtrack.json project (default: the bundled demo clip)",
    )
    parser.add_argument(
        "--box", type=_box, action="append",
        help="0-based X,Y,W,H: a keyframe on --frame; repeat it for several objects (--track: all of them)",
    )
    parser.add_argument("--frame", type=_frame, default=0, help="frame of --box (default 0)")
    parser.add_argument("--track", action="store_true", help="track forward from the --box keyframe")
    parser.add_argument(
        "--tracker",
        choices=sorted(TRACKERS),
        metavar="NAME",
        help=f"one of {', '.join(names)} (default: siamfc)",
    )
    parser.add_argument("--weights", type=Path, help="checkpoint file (default: the bundled weights)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get("SIAMTRACK_MODEL_DIR"),
        help="folder with the ONNX files of cv-nano and cv-vit",
    )
    parser.add_argument("--blend", action="store_true", help="blend the score map onto the frame")
    parser.add_argument("--screenshot", type=Path, metavar="FILE.png", help="save the window when done")
    parser.add_argument(
        "--exit-when-done", action="store_true", help="close once tracking and the screenshot are done"
    )
    return parser


def add_gui_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``gui`` to the ``siamtrack`` command line (see app/cli/gui.py)."""
    parser = subparsers.add_parser("gui", help="open the desktop annotation app")
    return configure_parser(parser)


def build_parser(prog: str = "siamtrack gui") -> argparse.ArgumentParser:
    return configure_parser(argparse.ArgumentParser(prog=prog, description="The siamtrack desktop app."))
