"""Build an offline VOT toolkit workspace from the synthetic demo clip, wired to siamtrack.

    .venv/bin/python tools/vot/make_workspace.py /tmp/vot_ws --trax-site /tmp/trax_site

writes into the workspace folder:

* ``sequences/list.txt`` and one ``sequences/<name>/`` per rendered sequence:
  ``sequence`` (``channels.color=color/%08d.jpg``), ``color/00000001.jpg``...,
  ``groundtruth.txt`` (0-based ``x,y,w,h``, VOT's convention and ours) and
  ``occlusion.tag`` (1 where the bar hides part of the target), so the toolkit's
  per-attribute analyses have a tag to split on;
* ``localstack.yaml``: a stack with no ``dataset:`` key (nothing to download), with
  the supervised (reset, EAO) and unsupervised experiments of VOT2017/2018;
* ``config.yaml``: that stack plus ``registry: [./trackers.ini]``;
* ``trackers.ini``: one TraX tracker per siamtrack tracker asked for, whose command
  runs ``python -m trackers.toolkits.trax_server`` with this checkout's venv and the
  TraX bindings on ``PYTHONPATH``.

It is run with the app's venv (it renders frames with ``resources.demo_clip``); the
toolkit itself runs from its own venv (see README.md beside this file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from resources.demo_clip import hidden_fraction, render_sequence  # noqa: E402

# name -> (frames, (width, height), texture seed). Three geometries: the demo clip's own,
# and two others, so that EAO averages over more than one sequence.
SEQUENCES = {
    "demo": (150, (480, 270), 0),
    "small": (100, (320, 180), 1),
    "wide": (120, (640, 360), 2),
}

STACK = """\
title: siamtrack local stack (synthetic demo sequences, offline)
url: https://www.votchallenge.net/
# No "dataset:" key: the toolkit must not try to download anything.
experiments:
  baseline:
    # VOT2017/2018 short-term: reset 5 frames after a failure (IoU 0), EAO.
    type: supervised
    repetitions: {repetitions}
    skip_initialize: 5
    analyses:
      - type: supervised_average_ar
        sensitivity: 30
      - type: cumulative_failures
      - type: supervised_eao_score
        # VOT2017 uses 100..356 on sequences of hundreds of frames; ours have 100-150.
        low: {eao_low}
        high: {eao_high}
      - type: supervised_eao_curve
  unsupervised:
    # One pass without resets (OTB-style): average overlap and success plot.
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
      - type: average_success_plot
"""

CONFIG = """\
stack: localstack.yaml
registry:
  - ./trackers.ini
"""


def identifier(tracker: str) -> str:
    """A VOT tracker identifier (letters, digits, - and _) for a siamtrack tracker name."""
    return "siamtrack_" + tracker.replace("-", "_")


def write_sequence(folder: Path, n_frames: int, size: tuple[int, int], seed: int) -> None:
    frames, boxes = render_sequence(n_frames, size, seed)
    (folder / "color").mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        path = folder / "color" / f"{index + 1:08d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write {path}")
    # VOT rectangles are 0-based continuous x,y,w,h, the same as siamtrack's boxes.
    (folder / "groundtruth.txt").write_text(
        "".join(f"{b.x:g},{b.y:g},{b.w:g},{b.h:g}\n" for b in boxes), encoding="utf-8"
    )
    (folder / "occlusion.tag").write_text(
        "".join("1\n" if hidden_fraction(b, size) > 0 else "0\n" for b in boxes), encoding="utf-8"
    )
    (folder / "sequence").write_text(
        "channels.color=color/%08d.jpg\nfps=30\n"
        f"name={folder.name}\nwidth={size[0]}\nheight={size[1]}\n",
        encoding="utf-8",
    )


def trackers_ini(
    trackers: list[str], python: Path, trax_site: Path, device: str, repo: Path, weights: dict[str, Path]
) -> str:
    sections = []
    for name in trackers:
        extra = f" --weights {weights[name]}" if name in weights else ""
        sections.append(
            f"[{identifier(name)}]\n"
            f"label = siamtrack {name}\n"
            # Plain "trax": the command is ours; vot only adds TRAX=1 and talks over the
            # child's stdin/stdout.
            "protocol = trax\n"
            f"command = {python} -m trackers.toolkits.trax_server --tracker {name} --device {device}{extra}\n"
            # The TraX bindings live outside the app's venv; the checkout is on the path
            # too, for a venv without the editable install.
            f"env_PYTHONPATH = {trax_site}:{repo}\n"
            # Keep torch from taking every core of a shared machine.
            "env_OMP_NUM_THREADS = 2\n"
            "timeout = 120\n"
        )
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--trax-site", type=Path, required=True, help="folder holding the trax package")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the app's python")
    parser.add_argument(
        "--tracker", action="append", dest="trackers", help="repeatable; default: cv-csrt, siamfc"
    )
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--weights", action="append", default=[], metavar="TRACKER=PATH", help="checkpoint for one tracker"
    )
    parser.add_argument("--repetitions", type=int, default=1, help="supervised repetitions (VOT uses 15)")
    parser.add_argument("--eao-low", type=int, default=20)
    parser.add_argument("--eao-high", type=int, default=100)
    args = parser.parse_args(argv)

    trax_site = args.trax_site.resolve()
    if not (trax_site / "trax" / "__init__.py").is_file():
        parser.error(f"{trax_site} holds no trax package (pip install --target DIR --no-deps vot-trax six)")
    workspace = args.workspace.resolve()
    sequences = workspace / "sequences"
    sequences.mkdir(parents=True, exist_ok=True)
    for name, (n_frames, size, seed) in SEQUENCES.items():
        write_sequence(sequences / name, n_frames, size, seed)
        print(f"wrote {sequences / name} ({n_frames} frames, {size[0]}x{size[1]})")
    (sequences / "list.txt").write_text("".join(n + "\n" for n in SEQUENCES), encoding="utf-8")
    (workspace / "localstack.yaml").write_text(
        STACK.format(repetitions=args.repetitions, eao_low=args.eao_low, eao_high=args.eao_high),
        encoding="utf-8",
    )
    (workspace / "config.yaml").write_text(CONFIG, encoding="utf-8")
    trackers = args.trackers or ["cv-csrt", "siamfc"]
    weights = {}
    for item in args.weights:
        name, sep, path = item.partition("=")
        if not sep or name not in trackers:
            parser.error(f"--weights {item!r}: expected TRACKER=PATH for one of {', '.join(trackers)}")
        weights[name] = Path(path).resolve()
    (workspace / "trackers.ini").write_text(
        trackers_ini(trackers, args.python, trax_site, args.device, REPO, weights), encoding="utf-8"
    )
    print(f"workspace ready: {workspace}; trackers: {', '.join(identifier(t) for t in trackers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
