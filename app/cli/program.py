"""The ``siamtrack`` parser and ``main``: one subcommand per module of this package."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from app.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    Parser,
    install_log_handler,
    quiet_opencv,
    say,
    version,
)
from app.cli.convert import cmd_convert, cmd_trax
from app.cli.evaluate import add_eval_parsers, cmd_bench, cmd_effort, cmd_eval
from app.cli.gui import cmd_gui
from app.cli.options import offered_trackers
from app.cli.stopping import interrupted_status, raise_interrupt, stop_signals, stopped_by
from app.cli.track import add_track_parser, cmd_track
from app.cli.train import cmd_train
from trackers.messages import first_line, one_line


def build_parser() -> argparse.ArgumentParser:
    names = offered_trackers()
    parser = Parser(prog="siamtrack", description="Siamese trackers for video annotation.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_track_parser(sub, names)
    add_eval_parsers(sub)

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
    quiet_opencv()
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

    stopped_by.clear()
    try:
        if args.command in ("gui", "trax"):  # Qt's event loop and the TraX server keep their own
            return COMMANDS[args.command](args)
        with stop_signals(raise_interrupt):
            return COMMANDS[args.command](args)
    except (CliError, SourceError, TrackerError, ValueError, OSError) as exc:
        message = first_line(exc)
        print(f"siamtrack {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("siamtrack: interrupted")
        return interrupted_status()
    except RecursionError:  # json and XML readers recurse: a file nested 200,000 levels deep
        say(f"siamtrack {args.command}: error: an input file is nested too deeply to be read")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the user gets one line, developers the traceback on request
        if os.environ.get("SIAMTRACK_DEBUG"):
            raise
        print(
            f"siamtrack {args.command}: internal error: {one_line(exc)} "
            "(set SIAMTRACK_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
