"""``siamtrack track``: one object (``x,y,w,h`` lines, or ``--to FORMAT``) or several (MOT 1.1 text).

Both forms share their first and last steps (:func:`_open_run`, :func:`_start_tracker`,
:func:`_keep_lines`): the output path is checked before the source is opened, and whatever
was tracked is written, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.common import CliError, Progress, check_outputs, say, write_atomically
from app.cli.factory import (
    build_tracker,
    cpu_fallback_notice,
    fit_box,
    free_gpu_memory,
    make_factory,
    untrained_warning,
)
from app.cli.options import add_tracker_options, format_name, non_negative, parse_box, positive, tracker_name
from app.cli.stopping import interrupted_status


def add_track_parser(sub, names: list[str]) -> None:
    track = sub.add_parser("track", help="track one object through a video or image folder")
    track.add_argument("source", type=Path, help="video file, image folder, or OTB sequence folder")
    track.add_argument(
        "--box", required=True, type=parse_box, action="append",
        help="0-based X,Y,W,H on the start frame; repeat it for several objects (then --out is MOT 1.1 text)",
    )
    track.add_argument("--start-frame", type=non_negative, default=0, help="0-based frame to start on")
    track.add_argument(
        "--frames", type=positive, default=None, help="track at most N frames (start included)"
    )
    track.add_argument(
        "--tracker", default="siamfc", type=tracker_name, metavar="NAME", help=f"one of {', '.join(names)}"
    )
    track.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output file: one x,y,w,h line per frame; "
        "with several --box, MOT 1.1 frame,id,x,y,w,h,conf,-1,-1,-1",
    )
    track.add_argument(
        "--to", dest="to_format", metavar="FORMAT", type=format_name,
        help="write --out in this annotation format instead (see `siamtrack convert --help`): "
        "the start box as a keyframe, the tracked boxes with their scores",
    )
    add_tracker_options(track)


# ------------------------------------------------------------------------ shared steps
@dataclass(frozen=True)
class _Opened:
    source: Any
    total: int
    """The source's frame count."""
    stop: int
    """The exclusive end of the run (``--frames`` applied)."""
    first: Any
    """The start frame (an image array)."""


@contextlib.contextmanager
def _open_run(args: argparse.Namespace) -> Iterator[_Opened]:
    """Check ``--out``, open the source (saying its frame-count note), check ``--start-frame``
    and read the start frame; the source stays open while inside."""
    from trackers.sources import frame_count_note, open_source

    check_outputs(args.out)
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
        yield _Opened(source, total, stop, source[args.start_frame])


def _start_tracker(args: argparse.Namespace) -> tuple[Any, bool]:
    """The tracker (the CPU one if the GPU runs out of memory loading it), and whether its
    weights are untrained (then said now; the caller says it again after the run)."""
    tracker = build_tracker(args)
    untrained = bool(getattr(tracker, "untrained", False))
    if untrained:
        print(untrained_warning(args.tracker), file=sys.stderr)
    return tracker, untrained


def _keep_lines(path: Path, lines: list[str]) -> None:
    """Write the lines tracked so far, if any (atomically: an earlier file stays on a failure)."""
    if lines:
        write_atomically(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------ commands
def cmd_track(args: argparse.Namespace) -> int:
    if isinstance(args.box, list) and len(args.box) > 1:
        return cmd_track_objects(args)
    if isinstance(args.box, list):
        args.box = args.box[0]
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames

    with _open_run(args) as opened:
        source, total, stop = opened.source, opened.total, opened.stop
        width, height = opened.first.shape[1], opened.first.shape[0]
        args.box = fit_box(args.box, width, height)

        tracker, untrained = _start_tracker(args)

        lines: list[str] = []
        results: list[tuple] = []  # (Box, score) per frame
        progress = Progress()
        count = stop - args.start_frame
        started = time.perf_counter()
        interrupted = False

        def on_the_cpu(exc: BaseException):
            # The run goes on from the frame it reached, on a fresh CPU tracker.
            nonlocal tracker
            tracker = None
            free_gpu_memory()
            reached = args.start_frame + len(lines)
            print(cpu_fallback_notice(args.tracker, f"at frame {reached}"), file=sys.stderr)
            tracker = make_factory(args, "cpu")(args.tracker)
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
            if args.to_format is None:
                _keep_lines(args.out, lines)
            elif lines:
                _write_tracked(args, results, total, (width, height))
        if interrupted:
            kept = (
                f"the {len(lines)} frames tracked so far were written to {args.out}"
                if lines else "no frame was tracked yet"
            )
            say(f"siamtrack: interrupted; {kept}")
            return interrupted_status()
        progress.done()
        elapsed = time.perf_counter() - started
        print(
            f"{args.tracker}: tracked {len(lines)}/{count} frames in {elapsed:.1f} s "
            f"({len(lines) / max(elapsed, 1e-9):.1f} fps, decode included) -> {args.out}",
            file=sys.stderr,
        )
        if untrained:
            print(untrained_warning(args.tracker), file=sys.stderr)
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


def cmd_track_objects(args: argparse.Namespace) -> int:
    """``track`` with several ``--box``: one decode per frame, MOT 1.1 out (see app.model.track_objects)."""
    from app.model.track_objects import check_boxes, mot_lines
    from trackers.batch import make_trackers
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames_multi

    boxes = list(args.box)
    if args.to_format is not None:
        raise CliError("--to is for one --box; several objects are written as MOT 1.1 text")
    with _open_run(args) as opened:
        source, stop = opened.source, opened.stop
        problem = check_boxes(boxes, opened.first.shape[1], opened.first.shape[0])
        if problem:
            raise CliError(problem)
        first, untrained = _start_tracker(args)
        trackers = make_trackers(first, len(boxes), lambda: make_factory(args)(args.tracker))
        lines: list[str] = []
        done = 0
        progress = Progress()
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
            _keep_lines(args.out, lines)
        progress.done()
        elapsed = time.perf_counter() - started
        print(
            f"{args.tracker}: tracked {len(boxes)} objects over {done}/{stop - args.start_frame} frames in "
            f"{elapsed:.1f} s ({done / max(elapsed, 1e-9):.1f} fps, decode included) -> {args.out} (MOT 1.1)",
            file=sys.stderr,
        )
        if untrained:
            print(untrained_warning(args.tracker), file=sys.stderr)
        if interrupted:
            say("siamtrack: interrupted; the frames tracked so far were written")
            return interrupted_status()
    return 0
