"""``siamtrack train``: the training module's own command, plus project files as DATA."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from app.cli.common import EXIT_USAGE, CliError
from trackers.messages import first_line


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
            message = first_line(exc)
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
