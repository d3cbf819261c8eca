"""``siamtrack eval``, ``bench`` and ``effort``: scores, speed and annotation effort on sequences."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from app.cli.common import EXIT_FAILED, CliError, Progress, check_outputs, say, write_atomically
from app.cli.factory import check_config, fit_box, make_factory
from app.cli.options import add_tracker_options, parse_box, positive, tracker_name, unit_interval
from app.cli.stopping import first_interrupt_cancels, interrupted_status


def add_eval_parsers(sub) -> None:
    """``eval``, ``bench`` and ``effort``, in that order."""
    evaluate = sub.add_parser("eval", help="score trackers on sequences with ground truth (OTB definitions)")
    evaluate.add_argument("sequences", nargs="+", type=Path, metavar="SEQ")
    evaluate.add_argument(
        "--tracker", action="append", dest="trackers", type=tracker_name, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    evaluate.add_argument("--json", type=Path, help="write the scores as JSON")
    evaluate.add_argument("--plot", type=Path, help="write success and precision plots (PNG)")
    add_tracker_options(evaluate)

    bench = sub.add_parser("bench", help="end-to-end speed per tracker, decode included, split by stage")
    bench.add_argument(
        "source", nargs="?", type=Path, help="video or folder (default: a generated 1280x720 clip)"
    )
    bench.add_argument(
        "--tracker", action="append", dest="trackers", type=tracker_name, metavar="NAME",
        help="repeatable; default: siamfc-3s, siamfc, siamrpn, dsiam, cv-csrt, cv-nano",
    )
    bench.add_argument("--frames", type=positive, default=150, help="frames per tracker (default 150)")
    bench.add_argument("--box", type=str, help="0-based X,Y,W,H on frame 0 (default: the ground truth's)")
    bench.add_argument(
        "--objects", type=positive, default=1,
        help="track N objects at once on the same frames (the box and N-1 copies spread over the frame)",
    )
    bench.add_argument("--json", type=Path, help="write the figures as JSON")
    add_tracker_options(bench)

    effort = sub.add_parser("effort", help="simulate an annotator: human corrections per 100 frames")
    effort.add_argument("sequences", nargs="+", type=Path, metavar="SEQ")
    effort.add_argument(
        "--tracker", action="append", dest="trackers", type=tracker_name, metavar="NAME",
        help="repeatable; default: siamfc",
    )
    effort.add_argument(
        "--iou", type=unit_interval, default=0.5, help="a frame passes at this IoU (default 0.5)"
    )
    effort.add_argument("--mode", choices=["forward", "bidirectional"], default="forward")
    effort.add_argument("--json", type=Path, help="write the figures as JSON")
    effort.add_argument(
        "--rejoin-iou", type=unit_interval, default=None,
        help="re-track policy: a re-track stops where it rejoins the old track at this IoU (app default 0.8)",
    )
    effort.add_argument(
        "--rejoin-frames", type=positive, default=None,
        help="... for this many frames in a row (app default 3; a huge number turns the rule off)",
    )
    add_tracker_options(effort)


def cmd_eval(args: argparse.Namespace) -> int:
    from trackers import evaluation
    from trackers.evaluation.plots import plot_path

    names = args.trackers or ["siamfc"]
    check_outputs(args.json, plot_path(args.plot) if args.plot else None)
    check_config(names, args.config)
    sequences = evaluation.load_sequences(args.sequences)
    if not sequences:
        raise CliError("no sequences with ground truth found in " + ", ".join(map(str, args.sequences)))
    progress = Progress()
    cancel = threading.Event()
    # The first Ctrl-C stops after the current frame and still reports the sequences
    # finished so far (an evaluation can take an hour; nothing done is thrown away).
    with first_interrupt_cancels(cancel):
        try:
            report = evaluation.evaluate(
                sequences, names, make_factory(args), progress=lambda m: progress(m), cancel=cancel
            )
        except KeyboardInterrupt:
            say("\nsiamtrack: interrupted")
            return interrupted_status()
    progress.done()
    if report.cancelled:
        done = sum(len(per_seq) for per_seq in report.results.values())
        total = len(report.trackers) * len(report.sequences)
        say(f"siamtrack: interrupted; the {done} of {total} runs that finished:")
    try:
        print(evaluation.format_table(report))
    except OSError:  # stdout gone with the terminal (SIGHUP): the files below still get written
        pass
    for note in report.notes():
        say(f"siamtrack: {note}")
    if args.json:
        write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        say(f"wrote {args.json}")
    if args.plot:
        from trackers.evaluation.plots import write_plot

        wrote = write_plot(report, args.plot)
        say(f"wrote {wrote}")
    if report.cancelled:
        return interrupted_status()
    failed = sum(report.failures(name) for name in report.trackers)
    if failed:
        say(f"siamtrack eval: {failed} run{'' if failed == 1 else 's'} failed (see the table)")
        return EXIT_FAILED
    return 0


def cmd_effort(args: argparse.Namespace) -> int:
    from app.model.effort import format_effort_table, measure_effort
    from trackers.evaluation import load_sequences

    if not 0.0 < args.iou <= 1.0:
        raise CliError(f"--iou must lie in (0, 1], got {args.iou}")
    check_outputs(args.json)
    check_config(args.trackers or ["siamfc"], args.config)
    sequences = load_sequences(args.sequences)
    progress = Progress()
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
        say(f"siamtrack: note: {note}")
    if args.json:
        write_atomically(args.json, json.dumps(report.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from trackers.evaluation.bench import DEFAULT_SIZE, format_bench_table, run_bench

    box = None
    if args.box is not None:
        try:
            box = parse_box(args.box)  # fail early on a malformed box
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--box: {exc}") from None
    check_outputs(args.json)
    names = args.trackers or ["siamfc-3s", "siamfc", "siamrpn", "dsiam", "cv-csrt", "cv-nano"]
    check_config(names, args.config)
    size = DEFAULT_SIZE
    if args.source is not None:
        from trackers.sources import open_source

        with open_source(args.source) as source:  # a one-line error here rather than one per worker
            size = source.size
    if box is not None:
        box = fit_box(box, *size)
        args.box = f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}"
    report = run_bench(
        names, args.source, args.box, args.frames, args.device, args.weights, args.model_dir,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        config=dict(args.config), threads=args.threads, objects=args.objects,
    )
    print(format_bench_table(report))
    if args.json:
        write_atomically(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if all("error" not in r for r in report["trackers"].values()) else EXIT_FAILED
