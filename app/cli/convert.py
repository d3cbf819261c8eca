"""``siamtrack convert``: ``trackers.formats.convert``'s command, plus siamtrack projects as input."""

from __future__ import annotations

import argparse

from app.cli.common import CliError, check_inputs


def cmd_convert(args: argparse.Namespace) -> int:
    from app.model.project_training import is_project_file
    from trackers.formats.convert import cmd_convert as convert

    check_inputs(args.input, getattr(args, "video", None), args.output)
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


def cmd_trax(args: argparse.Namespace) -> int:
    """``siamtrack trax``: the TraX server of ``trackers.toolkits`` (it keeps its own signals)."""
    from trackers.toolkits.trax_server import cmd_trax as trax

    return trax(args)
