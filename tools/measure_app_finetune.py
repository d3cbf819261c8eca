"""Measure the app's "Fine-tune on this project's trajectories" on a real labelled video.

    python tools/measure_app_finetune.py VIDEO.mp4 [--out DIR] [--device cpu]

It builds the project a user would have after annotating VIDEO with the app: a keyframe
every 10th frame and accepted tracked boxes between them, all equal to the video's ground
truth (``VIDEO.txt`` beside it). It saves that project, reads it back, splits it as the
dialog does (the last 20 % of the annotated frames held out) and runs the dialog's worker
with the dialog's defaults: success AUC on the held-out frames before, training, and
AUC after. No Qt window is opened; the worker's code is the app's own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.model.project import content_hash, load_project, save_project  # noqa: E402
from app.model.project_training import initial_weights, split_session  # noqa: E402
from app.model.session import AnnotationSession  # noqa: E402
from app.qt.finetune_worker import FinetuneJob, run_in_this_thread  # noqa: E402
from trackers.evaluation import load_sequences  # noqa: E402
from trackers.sources import open_source  # noqa: E402
from trackers.trajectory import Entry, Origin, Trajectory  # noqa: E402
from trackers.types import Box  # noqa: E402

KEYFRAME_EVERY = 10


def build_session(video: Path) -> AnnotationSession:
    (sequence,) = load_sequences(video)
    with open_source(video) as source:
        frame = source[0]
    size = (frame.shape[1], frame.shape[0])
    entries: list[Entry | None] = []
    for index, row in enumerate(sequence.groundtruth):
        if row[2] != row[2]:  # NaN: absent
            entries.append(Entry(None, Origin.KEYFRAME))
            continue
        box = Box(*(float(v) for v in row))
        origin = Origin.KEYFRAME if index % KEYFRAME_EVERY == 0 else Origin.TRACKED
        entries.append(Entry(box, origin, None if origin is Origin.KEYFRAME else 0.9))
    trajectory = Trajectory(tuple(entries), size)
    return AnnotationSession(video, len(entries), size, content_hash(video), trajectory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/app_finetune"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tracker", default="siamfc")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    project = args.out / f"{args.video.stem}.siamtrack.json"
    save_project(build_session(args.video), project)
    session = load_project(project)
    split = split_session(session)
    job = FinetuneJob(
        split=split,
        tracker=args.tracker,
        weights=None,
        init=initial_weights(args.tracker, None),
        out=args.out / f"{args.video.stem}.tuned.pt",
        device=args.device,
        cache_dir=args.out / "cache",
    )
    start = time.perf_counter()
    try:
        result = run_in_this_thread(job, lambda event: print(f"  {event.phase} {event.message}", flush=True))
    except RuntimeError as exc:
        print(f"failed: {exc}")
        return 1
    minutes = (time.perf_counter() - start) / 60
    print(
        f"{args.video.name}: {job.epochs} epochs x {job.pairs_per_epoch} pairs, {minutes:.1f} min; "
        f"held-out success AUC before {result.before_auc:.3f}, after {result.after_auc:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
