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
        raise argparse.ArgumentTypeError(f"the box needs a positive width and height and finite values: {text}")
    return box


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
    parser.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")


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


def build_parser() -> argparse.ArgumentParser:
    from trackers.registry import TRACKERS

    names = sorted(TRACKERS)
    parser = _Parser(prog="siamtrack", description="Siamese trackers for video annotation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    track = sub.add_parser("track", help="track one object through a video or image folder")
    track.add_argument("source", type=Path, help="video file, image folder, or OTB sequence folder")
    track.add_argument(
        "--box", required=True, type=_parse_box, action="append",
        help="0-based X,Y,W,H on the start frame; repeat it for several objects (then --out is MOT 1.1 text)",
    )
    track.add_argument("--start-frame", type=_non_negative, default=0, help="0-based frame to start on")
    track.add_argument("--frames", type=_positive, default=None, help="track at most N frames (start included)")
    track.add_argument("--tracker", default="siamfc", choices=names, metavar="NAME", help=f"one of {', '.join(names)}")
    track.add_argument(
        "--out", required=True, type=Path,
        help="output file: one x,y,w,h line per frame; with several --box, MOT 1.1 frame,id,x,y,w,h,conf,-1,-1,-1",
    )
    _add_tracker_options(track)

    evaluate = sub.add_parser("eval", help="score trackers on sequences with ground truth (OTB definitions)")
    evaluate.add_argument("sequences", nargs="+", type=Path, metavar="SEQ")
    evaluate.add_argument(
        "--tracker", action="append", dest="trackers", choices=names, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    evaluate.add_argument("--json", type=Path, help="write the scores as JSON")
    evaluate.add_argument("--plot", type=Path, help="write success and precision plots (PNG)")
    _add_tracker_options(evaluate)

    bench = sub.add_parser("bench", help="end-to-end speed per tracker, decode included, split by stage")
    bench.add_argument("source", nargs="?", type=Path, help="video or folder (default: a generated 1280x720 clip)")
    bench.add_argument(
        "--tracker", action="append", dest="trackers", choices=names, metavar="NAME",
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
        "--tracker", action="append", dest="trackers", choices=names, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    effort.add_argument("--iou", type=float, default=0.5, help="a frame passes at this IoU (default 0.5)")
    effort.add_argument("--mode", choices=["forward", "bidirectional"], default="forward")
    effort.add_argument("--json", type=Path, help="write the figures as JSON")
    effort.add_argument(
        "--rejoin-iou", type=float, default=None,
        help="re-track policy: a re-track stops where it rejoins the old track at this IoU (app default 0.8)",
    )
    effort.add_argument(
        "--rejoin-frames", type=int, default=None,
        help="... for this many frames in a row (app default 3; a huge number turns the rule off)",
    )
    _add_tracker_options(effort)

    from trackers.formats.convert import add_convert_parser
    from trackers.toolkits.trax_server import add_trax_parser

    from app.gui import add_gui_parser

    add_convert_parser(sub)
    add_trax_parser(sub)
    add_gui_parser(sub)

    # `train` is parsed by the training module itself, so both entry points agree.
    sub.add_parser("train", help="train or fine-tune a tracker (see `siamtrack train --help`)", add_help=False)
    return parser


# ------------------------------------------------------------------------ helpers
def _write_atomically(path: Path, text: str) -> None:
    """A temporary file beside ``path`` and a rename: an interrupted write leaves the old file.

    fsync before the rename, so that a crash just after it cannot leave an empty file
    under the old name. A failure (disk full, no permission) is a CliError naming the file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        kept = " (the earlier file is kept)" if path.exists() else ""
        raise CliError(f"cannot write {path}: {exc.strerror or exc}{kept}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


# ------------------------------------------------------------------------ commands
def cmd_track(args: argparse.Namespace) -> int:
    if isinstance(args.box, list) and len(args.box) > 1:
        return cmd_track_objects(args)
    if isinstance(args.box, list):
        args.box = args.box[0]
    from trackers.geometry import iou
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames
    from trackers.sources import frame_count_note, open_source
    from trackers.types import Box

    with open_source(args.source) as source:
        total = len(source)
        note = frame_count_note(source)
        if note:
            print(f"siamtrack: note: {note}", file=sys.stderr)
        if args.start_frame >= total:
            raise CliError(f"--start-frame {args.start_frame} is past the end: {args.source} has {total} frames")
        stop = total if args.frames is None else min(total, args.start_frame + args.frames)
        width, height = source[args.start_frame].shape[1], source[args.start_frame].shape[0]
        frame_box = Box(0, 0, width, height)
        if iou(args.box, frame_box) <= 0.0:
            raise CliError(f"--box {args.box} lies wholly outside the {width}x{height} frame")

        tracker = _build_tracker(args)
        untrained = bool(getattr(tracker, "untrained", False))
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)

        lines: list[str] = []
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
            if lines:
                _write_atomically(args.out, "\n".join(lines) + "\n")
        progress.done()
        elapsed = time.perf_counter() - started
        print(
            f"{args.tracker}: tracked {len(lines)}/{count} frames in {elapsed:.1f} s "
            f"({len(lines) / max(elapsed, 1e-9):.1f} fps, decode included) -> {args.out}",
            file=sys.stderr,
        )
        if untrained:
            print(_untrained_warning(args.tracker), file=sys.stderr)
        if interrupted:
            print("siamtrack: interrupted; the frames tracked so far were written", file=sys.stderr)
            return EXIT_INTERRUPTED
    return 0


def cmd_track_objects(args: argparse.Namespace) -> int:
    """``track`` with several ``--box``: one decode per frame, MOT 1.1 out (see app.track_objects)."""
    from app.track_objects import check_boxes, mot_lines
    from trackers.batch import make_trackers
    from trackers.prefetch import Prefetcher
    from trackers.run import FrameSizeError, track_frames_multi
    from trackers.sources import frame_count_note, open_source

    boxes = list(args.box)
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
            print("siamtrack: interrupted; the frames tracked so far were written", file=sys.stderr)
            return EXIT_INTERRUPTED
    return 0


@contextlib.contextmanager
def _first_interrupt_cancels(cancel: threading.Event) -> Iterator[None]:
    """While inside: the first SIGINT sets ``cancel``, a second raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nsiamtrack: stopping after this frame (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_eval(args: argparse.Namespace) -> int:
    from trackers import evaluation

    names = args.trackers or ["siamfc"]
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
            print("\nsiamtrack: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    progress.done()
    if report.cancelled:
        done = sum(len(per_seq) for per_seq in report.results.values())
        total = len(report.trackers) * len(report.sequences)
        print(f"siamtrack: interrupted; the {done} of {total} runs that finished:", file=sys.stderr)
    print(evaluation.format_table(report))
    if args.json:
        _write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        from trackers.plots import write_plot

        write_plot(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_effort(args: argparse.Namespace) -> int:
    from app.effort import format_effort_table, measure_effort
    from trackers.evaluation import load_sequences

    if not 0.0 < args.iou <= 1.0:
        raise CliError(f"--iou must lie in (0, 1], got {args.iou}")
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
    if args.json:
        _write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from app.bench import format_bench_table, run_bench

    if args.box is not None:
        _parse_box(args.box)  # fail early on a malformed box
    names = args.trackers or ["siamfc-3s", "siamfc", "siamrpn", "dsiam", "cv-csrt", "cv-nano"]
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
    from app.gui import cmd_gui as gui

    return gui(args)


def cmd_trax(args: argparse.Namespace) -> int:
    from trackers.toolkits.trax_server import cmd_trax as trax

    return trax(args)


def cmd_convert(args: argparse.Namespace) -> int:
    from trackers.formats.convert import cmd_convert as convert

    return convert(args)


def cmd_train(argv: list[str]) -> int:
    """``siamtrack train``: the training module's own command, plus project files as DATA.

    A project file (``*.siamtrack.json``) stands for its video with the project's
    annotation as ground truth. The training command reads "a video with <name>.txt
    beside it", so each project becomes, in a temporary folder, a link to its video and
    that text file (every box the trajectory holds, NaN elsewhere), named after the project.
    """
    from app.project_training import is_project_file
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

    from app.project_training import sequences_from_project
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


COMMANDS = {"track": cmd_track, "eval": cmd_eval, "convert": cmd_convert, "effort": cmd_effort, "trax": cmd_trax, "bench": cmd_bench, "gui": cmd_gui}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_opencv()
    if argv[:1] == ["train"]:
        return cmd_train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    from trackers.protocol import TrackerError
    from trackers.sources import SourceError

    try:
        return COMMANDS[args.command](args)
    except (CliError, SourceError, TrackerError, ValueError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"siamtrack {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("siamtrack: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
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
