"""``siamtrack trax``: any registered tracker as a TraX server, for the VOT toolkit.

The VOT toolkit starts the tracker command as a child process and speaks TraX
(https://github.com/votchallenge/trax) to it over the child's stdin/stdout (or a
socket when ``TRAX_SOCKET`` is set). Per request the server:

* ``INITIALIZE``: reads the image file, starts the tracker on the region, replies
  with that region;
* ``FRAME``: reads the image, updates the tracker, replies with the box and a
  ``confidence`` property (the tracker's score; the toolkit stores it as
  ``<seq>_001_confidence.value``). A ``FRAME`` that carries a region re-initialises;
* ``QUIT``: ends the session.

Only rectangles and image paths are offered in the handshake; libtrax converts the
toolkit's polygons to their bounding rectangle before they reach us. VOT rectangles
are 0-based ``x, y, w, h`` (vot/region/raster.py rasterises one as pixels
``x .. x + w - 1`` of a 0-based image), the convention of :mod:`trackers.types`, so
boxes pass through unchanged.

The TraX Python bindings (PyPI ``vot-trax``, with ``libtrax.so`` in the wheel) are
not a siamtrack dependency; they are imported when the server starts. Installing
them into a folder of their own and naming it in ``PYTHONPATH`` keeps the app's venv
clean (tools/vot/README.md shows the whole VOT setup)::

    pip install --target /opt/trax-site --no-deps vot-trax six
    PYTHONPATH=/opt/trax-site siamtrack trax --tracker siamfc

``python -m trackers.toolkits.trax_server`` takes the same options, for setups where
the ``siamtrack`` command is not wired to this module.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from trackers.messages import first_line
from trackers.protocol import Tracker, TrackerError
from trackers.types import Box, Frame

INSTALL_HINT = "pip install vot-trax six (e.g. with --target DIR, then put DIR on PYTHONPATH)"
EXIT_USAGE = 2
EXIT_FAILED = 1


def import_trax() -> ModuleType:
    """The ``trax`` bindings, imported on first use, or a TrackerError saying how to get them."""
    try:
        import trax
        import trax.server  # noqa: F401 - Server lives here; older wheels do not import it eagerly
    except ImportError as exc:
        raise TrackerError(f"the TraX library is not importable ({exc}); {INSTALL_HINT}") from None
    except OSError as exc:
        # The wheel's libtrax.so failed to load (wrong platform, missing libc symbols).
        raise TrackerError(f"the TraX library did not load ({exc}); {INSTALL_HINT}") from None
    return trax


def read_frame(path: str) -> Frame:
    """The image file the toolkit named, as an RGB frame."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise TrackerError(f"cannot read the image {path!r} the client sent")
    frame = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    frame.flags.writeable = False
    return frame


def _image_path(images: Any) -> str:
    # A dict channel -> image; with only the "color" channel offered, that is the one.
    if not images:
        raise TrackerError("the client sent a request without an image")
    image = images.get("color") if hasattr(images, "get") else None
    if image is None:
        image = next(iter(images.values()))
    return image.path()


def region_box(region: Any) -> Box:
    """A TraX rectangle (or, defensively, a polygon) as a siamtrack box."""
    if hasattr(region, "bounds"):
        box = Box(*region.bounds())
    else:
        points = [region.get(i) for i in range(region.size())]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = Box.from_corners(min(xs), min(ys), max(xs), max(ys))
    if not box.is_valid():
        raise TrackerError(f"the client's initial region has no positive size: {box}")
    return box


def _confidence(score: float) -> dict[str, str]:
    # Properties travel as text; a NaN would end up in the toolkit's .value file.
    return {"confidence": repr(float(score))} if math.isfinite(score) else {}


def serve(tracker: Tracker, trax: ModuleType | None = None, *, label: str | None = None) -> int:
    """Answer TraX requests with ``tracker`` until the client quits; return an exit status."""
    trax = trax or import_trax()
    server = trax.Server(
        [trax.Region.RECTANGLE],
        [trax.Image.PATH],
        tracker_name=label or getattr(tracker, "name", "siamtrack"),
        tracker_family="siamtrack",
    )
    status = trax.TraxStatus
    frames = 0
    try:
        while True:
            request = server.wait()
            if request.type == status.QUIT:
                break
            frame = read_frame(_image_path(request.image))
            if request.type == status.INITIALIZE or (request.type == status.FRAME and request.objects):
                box = region_box(request.objects[0][0])
                tracker.init(frame, box)
                properties = {"confidence": "1.0"}
            elif request.type == status.FRAME:
                result = tracker.update(frame)
                box, properties = result.box, _confidence(result.score)
                frames += 1
            else:
                raise TrackerError(f"unexpected TraX request {request.type!r}")
            server.status([(trax.Rectangle.create(box.x, box.y, box.w, box.h), properties)])
    except Exception as exc:
        # Tell the client why before going: the toolkit shows the reason in its log.
        reason = first_line(exc)
        with contextlib.suppress(Exception):
            server.quit(reason=reason)
        raise
    with contextlib.suppress(Exception):
        server.quit()
    print(f"siamtrack trax: session ended after {frames} tracked frames", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- command line


def _add_options(parser: argparse.ArgumentParser) -> None:
    from trackers.registry import TRACKERS

    names = sorted(TRACKERS)
    parser.add_argument(
        "--tracker", required=True, choices=names, metavar="NAME", help=f"one of {', '.join(names)}"
    )
    parser.add_argument("--weights", type=Path, help="checkpoint file (default: the bundled weights)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get("SIAMTRACK_MODEL_DIR"),
        help="folder with the ONNX files of cv-nano and cv-vit (or set SIAMTRACK_MODEL_DIR)",
    )


def add_trax_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``trax`` subcommand to an argparse ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "trax",
        help="serve a tracker over the TraX protocol (for the VOT toolkit)",
        description=(
            "Run one tracker as a TraX server on stdin/stdout (or TRAX_SOCKET), as the VOT toolkit "
            "starts it. Needs the TraX Python bindings: " + INSTALL_HINT + "."
        ),
    )
    _add_options(parser)
    return parser


def cmd_trax(args: argparse.Namespace) -> int:
    """Build the tracker and serve until the client quits."""
    from trackers.registry import create_tracker

    trax = import_trax()  # before building a network: a missing library is the likelier problem
    tracker = create_tracker(args.tracker, weights=args.weights, device=args.device, model_dir=args.model_dir)
    if getattr(tracker, "untrained", False):
        print(
            f"WARNING: {args.tracker} runs on RANDOM (untrained) weights: its VOT scores measure nothing.",
            file=sys.stderr,
        )
    # With pipes, stdout is the protocol channel (messages are "@@TRAX:" lines among any
    # other output): keep Python's own prints, from any library, on stderr.
    with contextlib.redirect_stdout(sys.stderr):
        return serve(tracker, trax, label=args.tracker)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trackers.toolkits.trax_server",
        description="Serve a siamtrack tracker over the TraX protocol (for the VOT toolkit).",
    )
    _add_options(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_trax(args)
    except (TrackerError, ValueError, OSError) as exc:
        message = first_line(exc)
        print(f"siamtrack trax: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the toolkit's log gets one line, not a traceback
        if os.environ.get("SIAMTRACK_DEBUG"):
            raise
        print(f"siamtrack trax: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
