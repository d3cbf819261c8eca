"""A project's own annotations as training data and as a held-out test (no Qt here).

"Fine-tune on this project's trajectories" needs three things the GUI and the CLI
share, and nothing of Qt:

* the user's annotation as a :class:`~trackers.evaluation.AnnotatedSequence`: the video as the
  source, one 0-based row per frame with the box the trajectory holds there (keyframes,
  accepted tracked boxes, interpolated and imported ones), NaN where the target is
  absent or nobody has said anything yet;
* a split **by time**: the last ~20 % of the annotated frames (at least
  :data:`MIN_HELDOUT`) are held out, the frames before them train. Each part is a
  AnnotatedSequence of the whole video's length with NaN rows outside its own range, so no frame
  is on both sides (:class:`Split`);
* :func:`heldout_auc`: a tracker run from the held-out part's first box over its frames,
  scored with ``trackers.evaluation`` (got10k's success AUC), before and after training;
* optionally, :func:`teacher_fill`: the distillation teacher (NanoTrack, issue 16) labels
  the training part's frames nobody reviewed, forward from each reviewed box, keeping
  only the stretches it can track back (forward-backward check); never a frame from the
  cut on, so the held-out part stays unseen.

The held-out part comes after the training part in time, so the score measures how well
the tracker does on the *rest* of this video, which is what the user wants to know. The
two parts touch at the cut: frames just before it look like those just after. That
flatters the "after" score a little; the comparison with "before" is still fair.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.model.project import PROJECT_SUFFIX, load_project
from app.model.session import AnnotationSession
from trackers.evaluation import AnnotatedSequence, evaluate, first_valid_frame
from trackers.messages import one_line
from trackers.protocol import Tracker
from trackers.run import CancelToken
from trackers.trajectory import Origin, Trajectory
from training.splits import Split, split_tail  # noqa: F401 - Split is part of this module's API

MIN_ANNOTATED = 20
"""Fewest frames with a box a project needs before it can be split and fine-tuned on."""
MIN_HELDOUT = 10
HELDOUT_FRACTION = 0.2

SIAMFC_FAMILY = ("siamfc", "siamfc-3s", "dsiam", "dsiamm")
"""Trackers that run on SiamFC's weights: fine-tuning SiamFC fine-tunes them."""
FINETUNED_TRACKER = "siamfc"
"""What the app fine-tunes and scores when the current tracker is not of the SiamFC family."""

PROJECT_SUFFIXES = (PROJECT_SUFFIX, ".siamtrack")

DEFAULT_ORIGINS = frozenset(Origin)
"""Every box in the trajectory counts as the user's annotation (it is what they export)."""


class ProjectTrainingError(ValueError):
    """The project cannot be used for fine-tuning; the message is one line for the user."""


class Cancelled(Exception):
    """A held-out run was cancelled before it finished."""


# --------------------------------------------------------------------------- sequences


def is_project_file(path: str | Path) -> bool:
    """Whether ``path`` names a siamtrack project file (``*.siamtrack.json`` or ``*.siamtrack``)."""
    path = Path(path)
    return path.is_file() and any(path.name.endswith(s) for s in PROJECT_SUFFIXES)


def project_stem(path: str | Path) -> str:
    """``clip.siamtrack.json`` -> ``clip``."""
    name = Path(path).name
    for suffix in PROJECT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def video_name(video: str | Path) -> str:
    """A sequence name: a video's stem, an image folder's name (its parent's for ``img/``)."""
    path = Path(video)
    if path.is_dir():
        return path.parent.name if path.name == "img" else path.name
    return path.stem


def annotation_boxes(
    trajectory: Trajectory, origins: frozenset[Origin] | set[Origin] = DEFAULT_ORIGINS
) -> NDArray[np.float64]:
    """N x 4 0-based boxes of ``trajectory``; NaN rows where absent, unannotated, or of another origin."""
    arrays = trajectory.to_arrays()
    boxes = arrays.boxes.copy()
    if set(origins) != set(Origin):
        for index, entry in trajectory.annotated():
            if entry.origin not in origins:
                boxes[index] = np.nan
    # A zero-size box is no ground truth: it can neither start a tracker nor train one.
    boxes[~((boxes[:, 2] > 0) & (boxes[:, 3] > 0))] = np.nan
    return boxes


def annotation_sequence(
    session: AnnotationSession,
    name: str | None = None,
    origins: frozenset[Origin] | set[Origin] = DEFAULT_ORIGINS,
) -> AnnotatedSequence:
    """The session's annotation as an AnnotatedSequence over its video (one row per frame of the video)."""
    return AnnotatedSequence(
        name or video_name(session.video), Path(session.video), annotation_boxes(session.trajectory, origins)
    )


def _check_frame_count(path: Path, session: AnnotationSession) -> None:
    """As the app does on opening: a project whose frame count is not its video's is refused
    (a damaged or hostile count, or boxes for frames the video does not have)."""
    from trackers.sources import SourceError, open_source

    try:
        with open_source(session.video) as source:
            decoded = len(source)
    except SourceError as exc:
        raise ProjectTrainingError(f"project {path}: {exc}") from None
    if decoded != session.frame_count:
        raise ProjectTrainingError(
            f"project {path} is for {session.frame_count} frames but its video {session.video} has "
            f"{decoded}; open it in the app to check it"
        )


def object_sequences(
    session: AnnotationSession,
    name: str | None = None,
    origins: frozenset[Origin] | set[Origin] = DEFAULT_ORIGINS,
) -> list[AnnotatedSequence]:
    """Every object's annotation as an AnnotatedSequence over the video, objects without a box left out.

    With one object the sequence is named ``name`` (as :func:`annotation_sequence`), with
    several ``name#<object id>``: each object's trajectory is training material of its own.
    """
    base = name or video_name(session.video)
    several = len(session.objects) > 1
    found = []
    for obj in session.objects:
        boxes = annotation_boxes(obj.trajectory, origins)
        if first_valid_frame(boxes) is None:
            continue
        found.append(AnnotatedSequence(f"{base}#{obj.id}" if several else base, Path(session.video), boxes))
    return found


def other_objects_before(
    session: AnnotationSession, cut: int, name: str | None = None
) -> list[AnnotatedSequence]:
    """The objects other than the selected one, cut to the frames before ``cut``: extra training
    material for a fine-tune whose held-out part (the selected object's frames from ``cut``
    on) must stay unseen, also as pixels of the same frames."""
    base = name or video_name(session.video)
    extra = []
    for obj in session.objects:
        if obj.id == session.selected_id:
            continue
        boxes = annotation_boxes(obj.trajectory)
        boxes[cut:] = np.nan
        if first_valid_frame(boxes) is not None:
            extra.append(AnnotatedSequence(f"{base}#{obj.id}", Path(session.video), boxes))
    return extra


def sequences_from_project(path: str | Path) -> list[AnnotatedSequence]:
    """The annotation a project file holds: one AnnotatedSequence per object, named after the project
    (``<stem>#<object id>`` when it holds several objects).

    The project's video must be found (see ``app.model.project.load_project``); a project
    without a single box is an error. ProjectTrainingError, one line, on any problem.
    """
    path = Path(path)
    try:
        session = load_project(path)
    except ValueError as exc:  # ProjectError is a ValueError
        raise ProjectTrainingError(str(exc)) from None
    _check_frame_count(path, session)
    sequences = object_sequences(session, name=project_stem(path))
    if not sequences:
        raise ProjectTrainingError(f"project {path} has no annotated box to train on")
    return sequences


# --------------------------------------------------------------------------- split


def split_sequence(
    sequence: AnnotatedSequence,
    fraction: float = HELDOUT_FRACTION,
    *,
    min_heldout: int = MIN_HELDOUT,
    min_annotated: int = MIN_ANNOTATED,
) -> Split:
    """``training.splits.split_tail`` with the project's wording for too few boxes."""
    try:
        return split_tail(sequence, fraction, min_heldout=min_heldout, min_annotated=min_annotated)
    except ValueError as exc:
        raise ProjectTrainingError(str(exc)) from None


def split_session(session: AnnotationSession, name: str | None = None, **kwargs: object) -> Split:
    """:func:`split_sequence` of the session's annotation."""
    return split_sequence(annotation_sequence(session, name), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- teacher labels

TEACHER_STRETCH = 50
"""Unreviewed frames the teacher follows after a reviewed box, at most (``PseudoLabelSettings.stretch``)."""


def teacher_fill(
    train: AnnotatedSequence,
    cut: int,
    *,
    stretch: int = TEACHER_STRETCH,
    absent: Iterable[int] = (),
    model_dir: str | Path | None = None,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[AnnotatedSequence, int]:
    """``train`` with the teacher's boxes on frames before ``cut`` that have none, and how many it filled.

    From every reviewed box whose next frame has none, NanoTrack follows the target over
    the frames up to the next reviewed box, the cut or ``stretch`` frames, and then back
    to the start; a stretch is kept only if it comes back to the reviewed box
    (``training.pseudo_labels.label_stretch``). Reviewed boxes are never changed, and
    the ``absent`` frames (where a person said the target is not there: no box, but
    reviewed) are never filled; a stretch ends before them.
    ``progress(done, total)`` counts the stretches. Raises :class:`Cancelled` when
    ``cancel`` is set, ProjectTrainingError (one line) when the teacher's model files or
    the video cannot be had.
    """
    from trackers.protocol import TrackerError
    from trackers.sources import SourceError, open_source
    from trackers.types import Box
    from training.pseudo_labels import PseudoLabelSettings, label_stretch, teacher_factory

    boxes = np.array(train.groundtruth, dtype=np.float64, copy=True)
    given = ~np.isnan(boxes).any(axis=1)
    reviewed = given.copy()
    for row in absent:
        if 0 <= row < len(reviewed):
            reviewed[row] = True
    cut = min(int(cut), len(boxes))
    starts = [int(r) for r in np.flatnonzero(given[: cut - 1]) if not reviewed[r + 1]]
    try:
        make = teacher_factory(model_dir)
    except (OSError, ValueError, TrackerError) as exc:
        raise ProjectTrainingError(f"the teacher (NanoTrack) cannot start: {one_line(exc)}") from None
    settings = PseudoLabelSettings(stretch=max(2, int(stretch)))
    filled = 0
    try:
        with open_source(train.source) as source:
            for done, start in enumerate(starts):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(train.name)
                if progress is not None:
                    progress(done, len(starts))
                end = start + 1
                while end < cut and end - start < settings.stretch and not reviewed[end]:
                    end += 1
                frames = [source[i] for i in range(start, end)]
                labelled = label_stretch(make, frames, Box(*(float(v) for v in boxes[start])), settings)
                for offset, box in enumerate(labelled[1:], start=1):
                    boxes[start + offset] = (box.x, box.y, box.w, box.h)
                    filled += 1
    except SourceError as exc:
        raise ProjectTrainingError(str(exc)) from None
    if progress is not None:
        progress(len(starts), len(starts))
    return AnnotatedSequence(train.name, train.source, boxes), filled


# --------------------------------------------------------------------------- scoring

TrackerMaker = Callable[..., Tracker]


def finetuned_tracker(tracker: str) -> str:
    """The tracker whose weights a fine-tune changes: ``tracker`` if it runs on SiamFC's, else SiamFC."""
    return tracker if tracker in SIAMFC_FAMILY else FINETUNED_TRACKER


def initial_weights(tracker: str, weights: str | Path | None) -> Path | None:
    """The SiamFC weights a fine-tune starts from: the current ones for the SiamFC family,
    else (and when none are set) the bundled default; None when that is missing too."""
    if weights is not None and tracker in SIAMFC_FAMILY:
        return Path(weights)
    from trackers.siamfc.tracker import default_weights_path

    default = default_weights_path()
    return default if default.is_file() else None


def heldout_auc(
    tracker_name: str,
    weights_path: str | Path | None,
    heldout: AnnotatedSequence,
    device: str = "auto",
    cancel: CancelToken | None = None,
    *,
    model_dir: str | Path | None = None,
    make_tracker: TrackerMaker | None = None,
) -> float:
    """Success AUC of ``tracker_name`` (with ``weights_path``, None = its default) on ``heldout``.

    The tracker starts from the first held-out box and runs to the last annotated
    held-out frame; frames without a box are tracked but not scored. Raises
    :class:`Cancelled` when ``cancel`` is set part-way, ProjectTrainingError (one line)
    when the tracker or the video fails.
    """
    gt = np.asarray(heldout.groundtruth, dtype=np.float64)
    rows = np.flatnonzero(~np.isnan(gt).any(axis=1))
    if len(rows) == 0:
        raise ProjectTrainingError(f"{heldout.name} has no box to score against")
    # Stop at the last box: tracking the unannotated rest would score nothing.
    trimmed = AnnotatedSequence(heldout.name, heldout.source, gt[: int(rows[-1]) + 1])
    if make_tracker is None:
        from trackers.registry import create_tracker

        make_tracker = create_tracker
    maker = make_tracker

    def build(name: str) -> Tracker:
        return maker(name, weights=weights_path, device=device, model_dir=model_dir)

    report = evaluate([trimmed], [tracker_name], build, cancel=cancel)
    if report.cancelled:
        raise Cancelled(heldout.name)
    result = report.results[tracker_name][trimmed.name]
    if result.error is not None or result.auc is None:
        raise ProjectTrainingError(f"{tracker_name} failed on the held-out frames: {result.error}")
    return float(result.auc)


# --------------------------------------------------------------------------- where results go


def output_path(
    project_path: str | Path | None,
    video: str | Path,
    avoid: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> Path:
    """Where fine-tuned weights go: ``<project stem>.finetuned.pt`` beside the project, or,
    for a video not saved as a project yet, ``<video>-<hash>.finetuned.pt`` in the user data folder.

    Never ``avoid`` (the weights in use, which may be an earlier fine-tune): a run that
    the user does not accept must not have overwritten the weights the tracker uses.
    """
    if project_path is not None:
        folder = Path(project_path).parent
        stem = project_stem(project_path)
    else:
        if data_dir is None:
            from trackers.user_dirs import user_dir

            data_dir = user_dir("data") / "finetuned"
        folder = Path(data_dir)
        resolved = str(Path(video).resolve())
        stem = f"{video_name(video)}-{hashlib.sha1(resolved.encode('utf-8')).hexdigest()[:8]}"
    avoided = Path(avoid).resolve() if avoid is not None else None
    number = 1
    while True:
        suffix = ".finetuned.pt" if number == 1 else f".finetuned-{number}.pt"
        candidate = folder / f"{stem}{suffix}"
        if avoided is None or candidate.resolve() != avoided:
            return candidate
        number += 1
