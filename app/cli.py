"""The ``siamtrack`` command line (Qt-free).

Contracts other tools rely on:

* ``siamtrack track SOURCE --box X,Y,W,H --out FILE``: FILE gets one ``x,y,w,h``
  line per frame, 0-based, from the start frame on, including it.
* ``siamtrack eval SEQ... --json FILE``: see ``trackers.evaluation``.

Bad input ends with a one-line message on stderr and a non-zero exit, never a
traceback. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _StderrHandler(logging.Handler):
    """Log records as plain lines on the current ``sys.stderr`` (looked up per record)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's own rule: never raise from a handler
            self.handleError(record)


LIBRARY_LOGGERS = ("trackers", "training", "app")


def install_log_handler() -> None:
    """The command line's one place for library messages: warnings and progress details of
    ``trackers``, ``training`` and ``app`` go to stderr as plain lines (INFO and up;
    DEBUG with SIAMTRACK_DEBUG=1). A program importing ``trackers`` installs its own
    handler instead, or none. Calling it twice adds nothing."""
    level = logging.DEBUG if os.environ.get("SIAMTRACK_DEBUG") else logging.INFO
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        logger.setLevel(level)


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own log lines off stderr, so a bad file gets our one line.

    Set before cv2 is first imported (it reads them then); a value the user set wins,
    and SIAMTRACK_DEBUG=1 leaves both alone.
    """
    if os.environ.get("SIAMTRACK_DEBUG"):
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def _parse_box(text: str):  # -> Box, imported lazily to keep --help fast
    from trackers.types import Box

    try:
        box = Box.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not box.is_valid():
        raise argparse.ArgumentTypeError(
            f"the box needs a positive width and height and finite values: {text}"
        )
    return box


def _format_name(text: str) -> str:
    from trackers.formats import FORMATS

    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown format {text!r}; one of {', '.join(FORMATS)}")
    return text


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


MAX_THREADS = 256
"""More CPU threads than this is a typo, not a machine (100000 crashed torch)."""


def _threads(text: str) -> int:
    value = _positive(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {value}")
    return value


def _unit_interval(text: str) -> float:
    """A finite number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def _add_tracker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, help="checkpoint file (default: the bundled weights)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get("SIAMTRACK_MODEL_DIR"),
        help="folder with the ONNX files of cv-nano and cv-vit (or set SIAMTRACK_MODEL_DIR)",
    )
    parser.add_argument(
        "--set", action="append", dest="config", default=[], type=_config_item, metavar="KEY=VALUE",
        help="override a Siamese tracker's config value, e.g. --set precision=fp32 (repeatable; "
        "unknown keys are an error; the OpenCV peers take none)",
    )
    parser.add_argument(
        "--threads", type=_threads,
        help=f"CPU threads for torch, 1 to {MAX_THREADS} (default: torch's choice)",
    )


def _config_item(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    value: object = raw
    for convert in (int, float):
        try:
            value = convert(raw)
            break
        except ValueError:
            continue
    return key.strip(), value


def _tracker_name(text: str) -> str:
    """A registered tracker; test doubles are accepted but never offered (help, errors)."""
    from trackers.registry import TEST_DOUBLES, TRACKERS

    if text in TRACKERS:
        return text
    offered = sorted(set(TRACKERS) - TEST_DOUBLES)
    raise argparse.ArgumentTypeError(f"unknown tracker {text!r}; one of {', '.join(offered)}")


def build_parser() -> argparse.ArgumentParser:
    from trackers.registry import TEST_DOUBLES, TRACKERS

    names = sorted(set(TRACKERS) - TEST_DOUBLES)
    parser = _Parser(prog="siamtrack", description="Siamese trackers for video annotation.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    track = sub.add_parser("track", help="track one object through a video or image folder")
    track.add_argument("source", type=Path, help="video file, image folder, or OTB sequence folder")
    track.add_argument(
        "--box", required=True, type=_parse_box, action="append",
        help="0-based X,Y,W,H on the start frame; repeat it for several objects (then --out is MOT 1.1 text)",
    )
    track.add_argument("--start-frame", type=_non_negative, default=0, help="0-based frame to start on")
    track.add_argument(
        "--frames", type=_positive, default=None, help="track at most N frames (start included)"
    )
    track.add_argument(
        "--tracker", default="siamfc", type=_tracker_name, metavar="NAME", help=f"one of {', '.join(names)}"
    )
    track.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output file: one x,y,w,h line per frame; "
        "with several --box, MOT 1.1 frame,id,x,y,w,h,conf,-1,-1,-1",
    )
    track.add_argument(
        "--to", dest="to_format", metavar="FORMAT", type=_format_name,
        help="write --out in this annotation format instead (see `siamtrack convert --help`): "
        "the start box as a keyframe, the tracked boxes with their scores",
    )
    _add_tracker_options(track)

    evaluate = sub.add_parser("eval", help="score trackers on sequences with ground truth (OTB definitions)")
    evaluate.add_argument("sequences", nargs="+", type=Path, metavar="SEQ")
    evaluate.add_argument(
        "--tracker", action="append", dest="trackers", type=_tracker_name, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    evaluate.add_argument("--json", type=Path, help="write the scores as JSON")
    evaluate.add_argument("--plot", type=Path, help="write success and precision plots (PNG)")
    _add_tracker_options(evaluate)

    bench = sub.add_parser("bench", help="end-to-end speed per tracker, decode included, split by stage")
    bench.add_argument(
        "source", nargs="?", type=Path, help="video or folder (default: a generated 1280x720 clip)"
    )
    bench.add_argument(
        "--tracker", action="append", dest="trackers", type=_tracker_name, metavar="NAME",
        help="repeatable; default: siamfc-3s, siamfc, siamrpn, dsiam, cv-csrt, cv-nano",
    )
    bench.add_argument("--frames", type=_positive, default=150, help="frames per tracker (default 150)")
    bench.add_argument("--box", type=str, help="0-based X,Y,W,H on frame 0 (default: the ground truth's)")
    bench.add_argument(
        "--objects", type=_positive, default=1,
        help="track N objects at once on the same frames (the box and N-1 copies spread over the frame)",
    )
    bench.add_argument("--json", type=Path, help="write the figures as JSON")
    _add_tracker_options(bench)

    effort = sub.add_parser("effort", help="simulate an annotator: human corrections per 100 frames")
    effort.add_argument("sequences", nargs="+", type=Path, metavar="SEQ")
    effort.add_argument(
        "--tracker", action="append", dest="trackers", type=_tracker_name, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    effort.add_argument(
        "--iou", type=_unit_interval, default=0.5, help="a frame passes at this IoU (default 0.5)"
    )
    effort.add_argument("--mode", choices=["forward", "bidirectional"], default="forward")
    effort.add_argument("--json", type=Path, help="write the figures as JSON")
    effort.add_argument(
        "--rejoin-iou", type=_unit_interval, default=None,
        help="re-track policy: a re-track stops where it rejoins the old track at this IoU (app default 0.8)",
    )
    effort.add_argument(
        "--rejoin-frames", type=_positive, default=None,
        help="... for this many frames in a row (app default 3; a huge number turns the rule off)",
    )
    _add_tracker_options(effort)

    from app.gui_options import add_gui_parser
    from trackers.formats.convert import add_convert_parser
    from trackers.toolkits.trax_server import add_trax_parser

    add_convert_parser(sub)
    add_trax_parser(sub)
    add_gui_parser(sub)

    # `train` is parsed by the training module itself, so both entry points agree.
    sub.add_parser(
        "train", help="train or fine-tune a tracker (see `siamtrack train --help`)", add_help=False
    )
    return parser


# ------------------------------------------------------------------------ helpers
def version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("siamtrack")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _write_atomically(path: Path, text: str) -> None:
    """A temporary file beside ``path`` and a rename: an interrupted write leaves the old file.

    Through a link to its target; a FIFO, device or folder is refused (``trackers.output``).
    A failure (disk full, no permission) is a CliError naming the file.
    """
    from trackers.output import OutputError, write_text

    try:
        write_text(path, text)
    except OutputError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        kept = " (the earlier file is kept)" if path.exists() else ""
        raise CliError(f"cannot write {path}: {exc.strerror or exc}{kept}") from None


def _check_outputs(*paths: Path | None) -> None:
    """Refuse an output path before the run, not after it (a folder, a FIFO, a device, no permission)."""
    from trackers.output import OutputError, check_output

    for path in paths:
        if path is not None:
            try:
                check_output(path)
            except OutputError as exc:
                raise CliError(str(exc)) from None


def _check_inputs(*paths: Path | None) -> None:
    """Refuse a FIFO, device or socket as input: reading one blocks until a writer appears."""
    for path in paths:
        if path is not None and path.exists() and not (path.is_file() or path.is_dir()):
            raise CliError(f"{path} is not a regular file or a folder (a FIFO, a device or a socket)")


def _free_gpu_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _cpu_fallback_notice(name: str, where: str) -> str:
    return f"siamtrack: notice: {name} ran out of GPU memory {where}; going on on the CPU (slower)"


def _build_tracker(args: argparse.Namespace):
    """The tracker for ``args``; if the GPU runs out of memory while loading, the CPU one."""
    from trackers.run import is_out_of_memory

    try:
        return _make_factory(args)(args.tracker)
    except Exception as exc:
        if args.device == "cpu" or not is_out_of_memory(exc):
            raise
    _free_gpu_memory()
    print(_cpu_fallback_notice(args.tracker, "while loading"), file=sys.stderr)
    return _make_factory(args, "cpu")(args.tracker)


_CONFIG_CLASSES = {
    "siamfc": ("trackers.siamfc.config", "SiamFCConfig"),
    "siamfc-3s": ("trackers.siamfc.config", "SiamFCConfig"),
    "siamrpn": ("trackers.siamrpn.config", "SiamRPNConfig"),
    "dsiam": ("trackers.dsiam.config", "DSiamConfig"),
    "dsiamm": ("trackers.dsiam.config", "DSiamConfig"),
}


def _check_config(names: Sequence[str], config: Sequence[tuple[str, object]]) -> None:
    """``--set`` checked against every tracker's config before a run (a one-line error naming
    the field), rather than failing each sequence of an hour's evaluation one by one."""
    import importlib

    from trackers.config import config_from_mapping

    values = dict(config or [])
    for name in names:
        spec = _CONFIG_CLASSES.get(name)
        if spec is None or not values:
            continue
        module = importlib.import_module(spec[0])
        config_from_mapping(getattr(module, spec[1]), values, base=module.PRESETS[name])


def _make_factory(args: argparse.Namespace, device: str | None = None):
    """``device`` replaces ``args.device`` (the CPU fallback after the GPU ran out of memory)."""
    import torch

    from trackers.registry import create_tracker

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    config = dict(getattr(args, "config", []) or [])

    def make(name: str):
        return create_tracker(
            name, weights=args.weights, device=device or args.device, model_dir=args.model_dir,
            config=config if not name.startswith("cv-") else None,
        )

    return make


class _Progress:
    """A single updating line on stderr, at most a few times a second."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.last = 0.0
        self.tty = stream.isatty()

    def __call__(self, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        end = "\r" if self.tty else "\n"
        print(message.ljust(60) if self.tty else message, end=end, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.stream)


def _untrained_warning(name: str) -> str:
    return f"WARNING: {name} ran on RANDOM (untrained) weights: these boxes are not a tracking result."


def _fit_box(box, width: int, height: int):  # -> Box
    """``box`` clipped to a ``width x height`` frame as the app clips a drawn box, with a note
    when that changed it; a CliError when nothing of it is inside."""
    from trackers.evaluation.metrics import box_iou
    from trackers.types import Box

    clipped = box.clipped(width, height)
    if box_iou(box, Box(0, 0, width, height)) <= 0.0 or not clipped.is_valid():
        raise CliError(f"--box {box} lies wholly outside the {width}x{height} frame")
    if clipped != box:
        print(
            f"siamtrack: note: --box {box} reaches past the {width}x{height} frame; "
            f"clipped to {clipped.x:g},{clipped.y:g},{clipped.w:g},{clipped.h:g}",
            file=sys.stderr,
        )
    return clipped


# ------------------------------------------------------------------------ commands
def cmd_track(args: argparse.Namespace) -> int:
    if isinstance(args.box, list) and len(args.box) > 1:
        return cmd_track_objects(args)
    if isinstance(args.box, list):
        args.box = args.box[0]
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames
    from trackers.sources import frame_count_note, open_source

    _check_outputs(args.out)
    with open_source(args.source) as source:
        total = len(source)
        note = frame_count_note(source)
        if note:
            print(f"siamtrack: note: {note}", file=sys.stderr)
        if args.start_frame >= total:
            raise CliError(
                f"--start-frame {args.start_frame} is past the end: {args.source} has {total} frames"
            )
        stop = total if args.frames is None else min(total, args.start_frame + args.frames)
        width, height = source[args.start_frame].shape[1], source[args.start_frame].shape[0]
        args.box = _fit_box(args.box, width, height)

        tracker = _build_tracker(args)
        untrained = bool(getattr(tracker, "untrained", False))
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)

        lines: list[str] = []
        results: list[tuple] = []  # (Box, score) per frame
        progress = _Progress()
        count = stop - args.start_frame
        started = time.perf_counter()
        interrupted = False

        def on_the_cpu(exc: BaseException):
            # The run goes on from the frame it reached, on a fresh CPU tracker.
            nonlocal tracker
            tracker = None
            _free_gpu_memory()
            reached = args.start_frame + len(lines)
            print(_cpu_fallback_notice(args.tracker, f"at frame {reached}"), file=sys.stderr)
            tracker = _make_factory(args, "cpu")(args.tracker)
            return tracker

        fallback = None if args.device == "cpu" else on_the_cpu
        try:
            # decoding runs a few frames ahead in its own thread, overlapping tracking
            with Prefetcher(source.iter_from(args.start_frame, stop)) as frames:
                for step in track_frames(tracker, frames, args.box, fallback=fallback):
                    b = step.result.box
                    lines.append(f"{b.x:.3f},{b.y:.3f},{b.w:.3f},{b.h:.3f}")
                    results.append((b, step.result.score))
                    progress(
                        f"{args.tracker}: frame {args.start_frame + step.index + 1}/{stop}  "
                        f"score {step.result.score:.3g}"
                    )
        except KeyboardInterrupt:
            interrupted = True
        except FrameSizeError as exc:
            frame = args.start_frame + exc.step
            files = getattr(source, "files", None)
            name = f" ({files[frame].name})" if files is not None and frame < len(files) else ""
            raise CliError(
                f"frame {frame}{name} is {exc.size[0]}x{exc.size[1]} but frame {args.start_frame} is "
                f"{exc.expected[0]}x{exc.expected[1]}: a tracker needs frames of one size; "
                f"the {len(lines)} frame{'' if len(lines) == 1 else 's'} before it were written to {args.out}"
            ) from None
        finally:
            # Whatever was tracked is kept, also on an error or Ctrl-C.
            if lines and args.to_format is None:
                _write_atomically(args.out, "\n".join(lines) + "\n")
            elif lines:
                _write_tracked(args, results, total, (width, height))
        if interrupted:
            kept = (
                f"the {len(lines)} frames tracked so far were written to {args.out}"
                if lines else "no frame was tracked yet"
            )
            _say(f"siamtrack: interrupted; {kept}")
            return _interrupted_status()
        progress.done()
        elapsed = time.perf_counter() - started
        print(
            f"{args.tracker}: tracked {len(lines)}/{count} frames in {elapsed:.1f} s "
            f"({len(lines) / max(elapsed, 1e-9):.1f} fps, decode included) -> {args.out}",
            file=sys.stderr,
        )
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)
    return 0


def _write_tracked(args: argparse.Namespace, results: list, total: int, size: tuple[int, int]) -> None:
    """``track --to FORMAT``: the run as a trajectory of the whole video, written in FORMAT."""
    from trackers.formats import FORMATS
    from trackers.trajectory import Entry, Origin, Trajectory

    entries: list[Entry | None] = [None] * total
    for offset, (box, score) in enumerate(results):
        if offset == 0:
            entries[args.start_frame] = Entry(args.box, Origin.KEYFRAME)  # the box the user gave
        else:
            entries[args.start_frame + offset] = Entry(box, Origin.TRACKED, score)
    FORMATS[args.to_format].write(Trajectory(tuple(entries), size), args.out)


STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Ctrl-C, ``kill``/``timeout``, a closed terminal: each keeps the work done and exits non-zero."""

_stopped_by: list[int] = []
"""The stop signals received during this command (the exit status names the first)."""


def _say(text: str) -> None:
    """A line on stderr that cannot fail: after SIGHUP the terminal may be gone."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _interrupted_status() -> int:
    """128 + the signal (130 for Ctrl-C), as a shell reports a process a signal ended."""
    return 128 + _stopped_by[0] if _stopped_by else EXIT_INTERRUPTED


@contextlib.contextmanager
def _stop_signals(handler) -> Iterator[None]:
    """While inside, and in the main thread only: ``handler(signum, frame)`` for every stop signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before if handler_before is not None else signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP as Ctrl-C: a KeyboardInterrupt that the commands already handle."""
    _stopped_by.append(signum)
    raise KeyboardInterrupt


def cmd_track_objects(args: argparse.Namespace) -> int:
    """``track`` with several ``--box``: one decode per frame, MOT 1.1 out (see app.model.track_objects)."""
    from app.model.track_objects import check_boxes, mot_lines
    from trackers.batch import make_trackers
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames_multi
    from trackers.sources import frame_count_note, open_source

    boxes = list(args.box)
    if args.to_format is not None:
        raise CliError("--to is for one --box; several objects are written as MOT 1.1 text")
    _check_outputs(args.out)
    with open_source(args.source) as source:
        total = len(source)
        note = frame_count_note(source)
        if note:
            print(f"siamtrack: note: {note}", file=sys.stderr)
        if args.start_frame >= total:
            raise CliError(f"--start-frame {args.start_frame} is past the end: {args.source} has {total} frames")  # noqa: E501
        stop = total if args.frames is None else min(total, args.start_frame + args.frames)
        first_frame = source[args.start_frame]
        problem = check_boxes(boxes, first_frame.shape[1], first_frame.shape[0])
        if problem:
            raise CliError(problem)
        first = _build_tracker(args)
        untrained = bool(getattr(first, "untrained", False))
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)
        trackers = make_trackers(first, len(boxes), lambda: _make_factory(args)(args.tracker))
        lines: list[str] = []
        done = 0
        progress = _Progress()
        started = time.perf_counter()
        interrupted = False
        try:
            with Prefetcher(source.iter_from(args.start_frame, stop)) as frames:
                for step in track_frames_multi(trackers, frames, boxes):
                    lines.extend(mot_lines(args.start_frame + step.index, step.results))
                    done = step.index + 1
                    progress(f"{args.tracker}: {len(boxes)} objects, frame {args.start_frame + done}/{stop}")
        except KeyboardInterrupt:
            interrupted = True
        except FrameSizeError as exc:
            size, first = exc.size, exc.expected
            raise CliError(
                f"frame {args.start_frame + exc.step} is {size[0]}x{size[1]} but frame {args.start_frame} "
                f"is {first[0]}x{first[1]}: a tracker needs frames of one size; "
                f"the {done} frames before it were written to {args.out}"
            ) from None
        finally:
            if lines:
                _write_atomically(args.out, "\n".join(lines) + "\n")
        progress.done()
        elapsed = time.perf_counter() - started
        print(
            f"{args.tracker}: tracked {len(boxes)} objects over {done}/{stop - args.start_frame} frames in "
            f"{elapsed:.1f} s ({done / max(elapsed, 1e-9):.1f} fps, decode included) -> {args.out} (MOT 1.1)",
            file=sys.stderr,
        )
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)
        if interrupted:
            _say("siamtrack: interrupted; the frames tracked so far were written")
            return _interrupted_status()
    return 0


@contextlib.contextmanager
def _first_interrupt_cancels(cancel: threading.Event) -> Iterator[None]:
    """While inside: the first stop signal (SIGINT, SIGTERM, SIGHUP) sets ``cancel``, a second
    raises KeyboardInterrupt."""

    def handler(signum: int, frame: object) -> None:
        _stopped_by.append(signum)
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        _say("\nsiamtrack: stopping after this frame (Ctrl-C again to abort)")

    with _stop_signals(handler):
        yield


def cmd_eval(args: argparse.Namespace) -> int:
    from trackers import evaluation
    from trackers.evaluation.plots import plot_path

    names = args.trackers or ["siamfc"]
    _check_outputs(args.json, plot_path(args.plot) if args.plot else None)
    _check_config(names, args.config)
    sequences = evaluation.load_sequences(args.sequences)
    if not sequences:
        raise CliError("no sequences with ground truth found in " + ", ".join(map(str, args.sequences)))
    progress = _Progress()
    cancel = threading.Event()
    # The first Ctrl-C stops after the current frame and still reports the sequences
    # finished so far (an evaluation can take an hour; nothing done is thrown away).
    with _first_interrupt_cancels(cancel):
        try:
            report = evaluation.evaluate(
                sequences, names, _make_factory(args), progress=lambda m: progress(m), cancel=cancel
            )
        except KeyboardInterrupt:
            _say("\nsiamtrack: interrupted")
            return _interrupted_status()
    progress.done()
    if report.cancelled:
        done = sum(len(per_seq) for per_seq in report.results.values())
        total = len(report.trackers) * len(report.sequences)
        _say(f"siamtrack: interrupted; the {done} of {total} runs that finished:")
    try:
        print(evaluation.format_table(report))
    except OSError:  # stdout gone with the terminal (SIGHUP): the files below still get written
        pass
    for note in report.notes():
        _say(f"siamtrack: {note}")
    if args.json:
        _write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        _say(f"wrote {args.json}")
    if args.plot:
        from trackers.evaluation.plots import write_plot

        wrote = write_plot(report, args.plot)
        _say(f"wrote {wrote}")
    if report.cancelled:
        return _interrupted_status()
    failed = sum(report.failures(name) for name in report.trackers)
    if failed:
        _say(f"siamtrack eval: {failed} run{'' if failed == 1 else 's'} failed (see the table)")
        return EXIT_FAILED
    return 0


def cmd_effort(args: argparse.Namespace) -> int:
    from app.model.effort import format_effort_table, measure_effort
    from trackers.evaluation import load_sequences

    if not 0.0 < args.iou <= 1.0:
        raise CliError(f"--iou must lie in (0, 1], got {args.iou}")
    _check_outputs(args.json)
    _check_config(args.trackers or ["siamfc"], args.config)
    sequences = load_sequences(args.sequences)
    progress = _Progress()
    report = measure_effort(
        sequences, args.trackers or ["siamfc"], threshold=args.iou, mode=args.mode,
        weights=args.weights, device=args.device, model_dir=args.model_dir,
        progress=lambda m: progress(m, force=True),
        policy={
            key: value
            for key, value in (("rejoin_iou", args.rejoin_iou), ("rejoin_frames", args.rejoin_frames))
            if value is not None
        },
    )
    progress.done()
    print(format_effort_table(report))
    for note in report.notes:
        _say(f"siamtrack: note: {note}")
    if args.json:
        _write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from trackers.evaluation.bench import DEFAULT_SIZE, format_bench_table, run_bench

    box = None
    if args.box is not None:
        try:
            box = _parse_box(args.box)  # fail early on a malformed box
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--box: {exc}") from None
    _check_outputs(args.json)
    names = args.trackers or ["siamfc-3s", "siamfc", "siamrpn", "dsiam", "cv-csrt", "cv-nano"]
    _check_config(names, args.config)
    size = DEFAULT_SIZE
    if args.source is not None:
        from trackers.sources import open_source

        with open_source(args.source) as source:  # a one-line error here rather than one per worker
            size = source.size
    if box is not None:
        box = _fit_box(box, *size)
        args.box = f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}"
    report = run_bench(
        names, args.source, args.box, args.frames, args.device, args.weights, args.model_dir,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        config=dict(args.config), threads=args.threads, objects=args.objects,
    )
    print(format_bench_table(report))
    if args.json:
        _write_atomically(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if all("error" not in r for r in report["trackers"].values()) else EXIT_FAILED


def cmd_gui(args: argparse.Namespace) -> int:
    # The CLI's one door into the Qt app, opened only here (pyproject.toml's contracts allow it).
    from app.qt.gui import cmd_gui as gui

    return gui(args)


def cmd_trax(args: argparse.Namespace) -> int:
    from trackers.toolkits.trax_server import cmd_trax as trax

    return trax(args)


def cmd_convert(args: argparse.Namespace) -> int:
    from app.model.project_training import is_project_file
    from trackers.formats.convert import cmd_convert as convert

    _check_inputs(args.input, getattr(args, "video", None), args.output)
    if not is_project_file(args.input):
        return convert(args)
    # A siamtrack project: every object's trajectory, and its video for the frames (VOT) and the sizes.
    from app.model.project import load_project
    from app.model.project_tracks import session_tracks

    if args.from_format is not None:
        raise CliError(f"{args.input} is a siamtrack project; leave out --from")
    session = load_project(args.input, args.video)
    if args.video is None:
        args.video = session.video
    return convert(args, source=("project", session_tracks(session)))


def cmd_train(argv: list[str]) -> int:
    """``siamtrack train``: the training module's own command, plus project files as DATA.

    A project file (``*.siamtrack.json``) stands for its video with the project's
    annotation as ground truth. The training command reads "a video with <name>.txt
    beside it", so each project becomes, in a temporary folder, a link to its video and
    that text file (every box the trajectory holds, NaN elsewhere), named after the project.
    """
    from app.model.project_training import is_project_file
    from training.__main__ import main as train_main

    if not any(is_project_file(arg) for arg in argv):
        return train_main(argv)
    with tempfile.TemporaryDirectory(prefix="siamtrack-train-") as folder:
        try:
            rewritten = [
                str(_project_as_data(Path(arg), Path(folder))) if is_project_file(arg) else arg
                for arg in argv
            ]
        except (CliError, ValueError, OSError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"siamtrack train: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        return train_main(rewritten)


def _project_as_data(project: Path, folder: Path) -> Path:
    """A folder with the project's video and each object's annotation in a layout
    ``trackers.evaluation.load_sequences`` reads."""
    import numpy as np

    from app.model.project_training import sequences_from_project
    from trackers.formats.otb import box_line
    from trackers.types import Box

    home = folder / f"{len(list(folder.iterdir()))}"
    home.mkdir()
    # one sequence per object of the project (each object's trajectory trains)
    for sequence in sequences_from_project(project):
        lines = "".join(
            box_line(None if np.isnan(row).any() else Box(*(float(v) for v in row))) + "\n"
            for row in sequence.groundtruth
        )
        video = Path(sequence.source).resolve()
        if video.is_dir():  # an image folder: an OTB folder of a link to it and groundtruth_rect.txt
            data = home / sequence.name
            data.mkdir()
            _link(video / "img" if (video / "img").is_dir() else video, data / "img")
            (data / "groundtruth_rect.txt").write_text(lines, encoding="utf-8")
            continue
        data = home / f"{sequence.name}{video.suffix}"
        _link(video, data)
        data.with_suffix(".txt").write_text(lines, encoding="utf-8")
    return home


def _link(target: Path, link: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=target.is_dir())
    except OSError:
        if target.is_dir():
            raise CliError(f"cannot link to {target} from a temporary folder (no symbolic links)") from None
        os.link(target, link)  # same drive only; the error says so otherwise


COMMANDS = {
    "track": cmd_track,
    "eval": cmd_eval,
    "convert": cmd_convert,
    "effort": cmd_effort,
    "trax": cmd_trax,
    "bench": cmd_bench,
    "gui": cmd_gui,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_opencv()
    install_log_handler()
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not valid UTF-8 (legal on Linux) must not fail a print.
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")
    if argv[:1] == ["train"]:
        return cmd_train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    from trackers.protocol import TrackerError
    from trackers.sources import SourceError

    _stopped_by.clear()
    try:
        if args.command in ("gui", "trax"):  # Qt's event loop and the TraX server keep their own
            return COMMANDS[args.command](args)
        with _stop_signals(_raise_interrupt):
            return COMMANDS[args.command](args)
    except (CliError, SourceError, TrackerError, ValueError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"siamtrack {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("siamtrack: interrupted")
        return _interrupted_status()
    except RecursionError:  # json and XML readers recurse: a file nested 200,000 levels deep
        _say(f"siamtrack {args.command}: error: an input file is nested too deeply to be read")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the user gets one line, developers the traceback on request
        if os.environ.get("SIAMTRACK_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"siamtrack {args.command}: internal error: {type(exc).__name__}: {first} "
            "(set SIAMTRACK_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
