"""``python -m training --tracker siamfc DATA... --out CKPT``: train a tracker from annotated data.

DATA are OTB sequence folders (``img/`` + ``groundtruth_rect.txt``), folders of them,
or videos with ``<name>.txt`` beside them (see ``trackers.evaluation.load_sequences``).
Progress goes to stderr. The first Ctrl-C (or SIGTERM) stops after the current step and
saves a checkpoint (continue later with ``--resume``); a second one aborts at once.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from trackers.evaluation import AnnotatedSequence, load_sequences
from trackers.protocol import TrackerError
from training.checkpoints import resume_path
from training.config import AMP_CHOICES, TrainConfig
from training.pseudo_labels import PseudoLabelSettings
from training.splits import default_split, split_by_names, split_tail
from training.synthetic import Synthesis
from training.task import Task

TRACKERS = ("siamfc", "siamrpn", "dsiam")
"""Trackers this command can train, each by its task in training/<name>_train.py."""


def make_task(name: str, args: argparse.Namespace) -> Task:
    if name == "siamrpn":
        from training.siamrpn_train import SiamRPNTask

        # options left out keep the task's own defaults (one place for each)
        given = {"scale_jitter": args.scale_jitter}
        return SiamRPNTask(
            freeze_layers=args.freeze_layers, reg_weight=args.reg_weight, feature_cache=args.feature_cache,
            freeze_classification=args.freeze_classification,
            **{key: value for key, value in given.items() if value is not None},
        )
    if name == "dsiam":
        from training.dsiam_train import DSiamTask

        return DSiamTask()
    from training.siamfc_train import SiamFCTask

    return SiamFCTask()

LOG_EVERY = 10
"""Training steps between two progress lines."""


MAX_THREADS = 256


def _number(
    kind: type, low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False
):
    """An argparse type: a finite ``kind`` within [low, high] (open ends as asked); else a one-line error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        inside = math.isfinite(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
        if not inside:
            left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
            raise argparse.ArgumentTypeError(
                f"expected a number in {left}{low:g}, {high:g}{right}, got {text}"
            )
        return value

    return parse


COUNT = _number(int, 1)
"""A whole number >= 1."""
NATURAL = _number(int, 0)
"""A whole number >= 0."""
POSITIVE = _number(float, 0.0, low_open=True)
"""A finite number > 0."""


DEFAULTS = TrainConfig()
"""The run settings' defaults, kept in one place (``TrainConfig``); the options show them."""


def _synthetic_description(args: argparse.Namespace) -> str:
    """What the run's settings record of its synthetic pairs: the sources, and the aspect range where
    it is not the default (so a run or cache from before the option keeps its description)."""
    text = " ".join(str(p) for p in args.synthetic)
    if args.synthetic_aspect:
        text += f" aspect {args.synthetic_aspect[0]:g}-{args.synthetic_aspect[1]:g}"
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a Siamese tracker on annotated sequences (SiamFC: Bertinetto et al. 2016).",
    )
    parser.add_argument("--tracker", choices=TRACKERS, default="siamfc", help="tracker to train")
    parser.add_argument("data", nargs="+", metavar="DATA",
                        help="OTB folders, folders of them, or videos with <name>.txt beside them")
    parser.add_argument("--out", required=True, type=Path, metavar="CKPT",
                        help="weights file to write (resume state goes beside it as <stem>.resume.pt)")
    parser.add_argument("--init", type=Path, metavar="CKPT",
                        help="start from these weights (fine-tuning) instead of random ones")
    parser.add_argument("--epochs", type=COUNT, default=DEFAULTS.epochs, help="epochs (paper: 50)")
    parser.add_argument("--pairs-per-epoch", type=COUNT, default=DEFAULTS.pairs_per_epoch,
                        help="pairs sampled per epoch (paper: 50000)")
    parser.add_argument("--batch-size", type=COUNT, help="pairs per step (default: the paper's; SiamFC 8)")
    parser.add_argument("--device", default=DEFAULTS.device, help="auto, cpu or cuda[:N]")
    parser.add_argument("--amp", choices=AMP_CHOICES, default=DEFAULTS.amp,
                        help="mixed precision: auto = fp16 on CUDA, off on the CPU")
    parser.add_argument("--lr", type=POSITIVE, nargs=2, metavar=("START", "END"),
                        help="learning rate at the first and last epoch (default: the paper's)")
    parser.add_argument("--patience", type=NATURAL, default=DEFAULTS.patience, metavar="EPOCHS",
                        help="stop after this many epochs without a better validation loss "
                             "and keep the best epoch (0: never stop early)")
    # the command line measures by default; TrainConfig.metric_frames (0) is for callers that do not ask
    parser.add_argument("--metric-frames", type=NATURAL, default=150, metavar="N",
                        help="track the first N frames of each validation sequence before and "
                             "after training and record the success AUC (0: skip)")
    parser.add_argument("--synthetic", nargs="+", metavar="CLIP_OR_FOLDER", default=[],
                        help="unlabelled videos, or still photos (image files or folders of them), "
                             "to paste synthetic pairs from")
    parser.add_argument("--synthetic-ratio", type=_number(float, 0.0, 1.0), default=0.0, metavar="R",
                        help="share of the pairs that are synthetic, 0..1 (default 0)")
    parser.add_argument("--synthetic-aspect", nargs=2, type=POSITIVE, metavar=("LO", "HI"),
                        help="range of the synthetic targets' aspect w/h, drawn log-uniform "
                             f"(default {Synthesis.aspect[0]} {Synthesis.aspect[1]})")
    parser.add_argument("--freeze-layers", type=_number(int, 0, 5), default=3, metavar="N",
                        help="SiamRPN: backbone conv layers kept fixed (section 5.1: 3)")
    parser.add_argument("--freeze-classification", action="store_true",
                        help="SiamRPN: keep the classification branch fixed and train the regression "
                             "alone (with --freeze-layers 5 the class scores stay exactly as loaded)")
    parser.add_argument("--reg-weight", type=_number(float, 0.0), metavar="LAMBDA",
                        help="SiamRPN: weight of the regression loss, eq. 5's lambda (default 1)")
    parser.add_argument("--scale-jitter", type=_number(float, 0.0, 1.0, high_open=True), metavar="S",
                        help="SiamRPN: search images rescaled by up to this fraction (default 0.2)")
    parser.add_argument("--feature-cache", type=NATURAL, default=0, metavar="PAIRS",
                        help="SiamRPN: run this many augmented pairs through the frozen backbone "
                             "layers (--freeze-layers) once, cache what they make of them and train "
                             "the rest on that (several times faster per pair; 0: off)")
    parser.add_argument("--resume", action="store_true",
                        help="carry on from the resume state beside --out, if there is one")
    parser.add_argument("--val", nargs="*", metavar="NAME_OR_PREFIX",
                        help="validation sequences by name or prefix (whole flights follow); "
                             "given with no names: no validation. Default: a deterministic "
                             "held-out ~15%% of the sequences")
    parser.add_argument("--val-tail", metavar="FRACTION",
                        type=_number(float, 0.0, 1.0, low_open=True, high_open=True),
                        help="also hold out the last FRACTION of every training sequence's boxes "
                             "(at least 10 frames): validation on later frames of the same data, "
                             "for fine-tuning on one's own annotations")
    parser.add_argument("--val-pairs", type=COUNT, default=DEFAULTS.val_pairs,
                        help="fixed validation pairs scored after each epoch")
    parser.add_argument("--threads", type=_number(int, 1, MAX_THREADS),
                        help=f"CPU threads for torch and OpenCV, 1 to {MAX_THREADS}")
    parser.add_argument("--checkpoint-every", type=COUNT, default=DEFAULTS.checkpoint_every, metavar="STEPS",
                        help="save weights and resume state every this many steps")
    parser.add_argument("--keep-epochs", action="store_true",
                        help="also keep each epoch's weights beside --out (NAME.epochN.pt), to choose one "
                             "afterwards by a tracking figure such as `siamtrack eval`")
    parser.add_argument("--max-gap", type=COUNT, default=DEFAULTS.max_gap, metavar="T",
                        help="most frames between the two images of a pair (section 2.2)")
    parser.add_argument("--hflip", type=_number(float, 0.0, 1.0), default=DEFAULTS.hflip, metavar="P",
                        help="mirror this share of the real pairs left to right, both images together "
                             "(default 0: never; not in the papers, see training/augmentation.py)")
    parser.add_argument("--negative-pairs", type=_number(float, 0.0, 1.0), default=DEFAULTS.negative_pairs,
                        metavar="P",
                        help="SiamFC: make this share of the real pairs negative ones, the search image from "
                             "another flight's sequence and every cell labelled -1 (default 0: none; not in "
                             "the papers, see training/augmentation.py)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--teacher", choices=("nano",),
                        help="distil NanoTrack (bundled) into the tracker: its maps on every pair become "
                             "a second training objective (training/distill.py)")
    parser.add_argument("--teacher-weight", type=float, default=DEFAULTS.teacher_weight, metavar="W",
                        help="share of the teacher's term in the loss, 0..1 (default 0.5); 0 keeps only the "
                             "task's own loss, so the teacher's boxes on --teacher-label clips teach")
    parser.add_argument("--teacher-label", nargs="+", metavar="CLIP_OR_FOLDER", default=[],
                        help="unlabelled clips the teacher labels (forward-backward checked stretches) "
                             "to train on as extra sequences (training/pseudo_labels.py)")
    parser.add_argument("--teacher-label-objects", type=COUNT, metavar="N",
                        default=PseudoLabelSettings.objects,
                        help="object-like start boxes the teacher follows per 50-frame stretch "
                             f"(default {PseudoLabelSettings.objects}); more boxes, more distinct targets")
    parser.add_argument("--teacher-label-aspect", type=float, metavar="A",
                        default=PseudoLabelSettings.max_aspect,
                        help="the teacher's start boxes range from 1:A to A:1 in width/height "
                             f"(default {PseudoLabelSettings.max_aspect:g}); 3 reaches standing people")
    parser.add_argument("--teacher-share", type=_number(float, 0.0, 1.0), metavar="F",
                        help="draw this share of the real pairs from the --teacher-label stretches and the "
                             "rest from the labelled data (default: every sequence equally likely, so "
                             "hundreds of short stretches outweigh a few long labelled sequences)")
    parser.add_argument("--model-dir", type=Path,
                        help="folder with the teacher's ONNX files (default: the bundled ones)")
    parser.add_argument("--cache-dir", type=Path,
                        help="where decoded crops are kept (default: the user cache folder)")
    return parser


def choose_split(
    sequences: list[AnnotatedSequence], val: list[str] | None
) -> tuple[list[AnnotatedSequence], list[AnnotatedSequence]]:
    if val is None:
        return default_split(sequences)
    if not val:
        return list(sequences), []
    return split_by_names(sequences, val)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.threads is not None:
        if args.threads < 1:
            say("error: --threads must be at least 1")
            return 2
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)

    from trackers.output import OutputError, check_output

    try:
        check_output(args.out)  # before the run, not after it
    except OutputError as exc:
        say(f"error: {exc}")
        return 2
    try:
        sequences = load_sequences(args.data)
        train, val = choose_split(sequences, args.val)
    except (ValueError, OSError) as exc:
        say(f"error: {exc}")
        return 2
    if not train:
        say("error: every sequence is held out for validation; nothing is left to train on")
        return 2
    if args.val_tail is not None:
        if not 0.0 < args.val_tail < 1.0:
            say("error: --val-tail must be between 0 and 1")
            return 2
        try:
            splits = [split_tail(s, args.val_tail) for s in train]
        except ValueError as exc:
            say(f"error: {exc}")
            return 2
        train = [split.train for split in splits]
        val = list(val) + [split.heldout for split in splits]
    if args.teacher_share is not None and not args.teacher_label:
        say("error: --teacher-share needs --teacher-label (the stretches it shares the pairs with)")
        return 2
    if args.teacher_label:
        if args.teacher is None:
            say("error: --teacher-label needs --teacher (the teacher labels the clips)")
            return 2
        from training.pseudo_labels import pseudo_sequences
        from training.synthetic_frames import unlabelled_sources

        try:
            clips = unlabelled_sources(args.teacher_label)
            settings = PseudoLabelSettings(objects=args.teacher_label_objects,
                                           max_aspect=args.teacher_label_aspect)
            labelled, summary = pseudo_sequences(clips, args.cache_dir, settings, model_dir=args.model_dir,
                                                 progress=say)
        except (ValueError, OSError, TrackerError) as exc:
            say(f"error: {exc}")
            return 2
        say(f"teacher labels: {summary['stretches_kept']} of {summary['stretches_tried']} stretches kept "
            f"(forward-backward check), {summary['frames_labelled']} frames in {summary['clips']} clips")
        train = list(train) + labelled
    say(f"training on {len(train)} sequences: {', '.join(s.name for s in train)}")
    say(f"validating on {len(val)} sequences: {', '.join(s.name for s in val) or '(none)'}")

    from training.config import TrainingError
    from training.loop import train as run_training
    from training.progress import TrainProgress

    try:
        task = make_task(args.tracker, args)
    except (TrainingError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    resuming = args.resume and resume_path(args.out).is_file()
    if args.tracker == "dsiam" and args.init is None and not resuming:
        # Section 3.6 learns DSiam's transformations on top of a trained SiamFC.
        from training.dsiam_train import default_init

        if not default_init().is_file():
            say("error: DSiam trains from SiamFC weights: give --init SIAMFC_OR_DSIAM_CKPT")
            return 2
        args.init = default_init()
        say(f"starting DSiam from the bundled SiamFC weights {args.init}")
    if args.synthetic_ratio > 0 and not args.synthetic:
        say("error: --synthetic-ratio needs --synthetic clips to paste from")
        return 2
    if args.synthetic_aspect and args.synthetic_aspect[0] > args.synthetic_aspect[1]:
        say(f"error: --synthetic-aspect {args.synthetic_aspect[0]:g} {args.synthetic_aspect[1]:g}: "
            "the low end is above the high end")
        return 2
    synthetic = None
    if args.synthetic and args.synthetic_ratio > 0:
        from training.synthetic import SyntheticPairs
        from training.synthetic_frames import unlabelled_sources

        try:
            clips = unlabelled_sources(args.synthetic, stills=True)
        except ValueError as exc:
            say(f"error: {exc}")
            return 2

        if args.tracker == "dsiam":
            say("error: DSiam trains on clips through time; synthetic pairs are for siamfc and siamrpn")
            return 2
        # The synthetic target moves as far as the task's own augmentation moves real
        # ones: SiamFC's labels assume a centred target, SiamRPN's regression does not.
        shift = task.augmentation().translate_px

        synthesis = Synthesis(aspect=tuple(args.synthetic_aspect)) if args.synthetic_aspect else Synthesis()

        def synthetic(pairs: int) -> SyntheticPairs:
            return SyntheticPairs(clips, pairs_per_epoch=pairs, seed=args.seed, cache_dir=args.cache_dir,
                                  max_shift_px=shift, synthesis=synthesis, progress=say)

    cancel = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        say("stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    window: list[TrainProgress] = []

    def progress(event: TrainProgress) -> None:
        if event.phase != "train":
            say(str(event))
            return
        # Each event is one step; a line sums up the steps since the last line, so the
        # loss printed is a mean and not one noisy batch.
        window.append(event)
        if event.step % LOG_EVERY == 0 or event.step == 1:
            # Equal batches: the window's rate is the harmonic mean of the per-step rates.
            per_pair = [1.0 / e.pairs_per_second for e in window if e.pairs_per_second]
            mean = replace(
                event,
                loss=sum(e.loss or 0.0 for e in window) / len(window),
                pairs_per_second=len(per_pair) / sum(per_pair) if per_pair else event.pairs_per_second,
            )
            window.clear()
            say(str(mean))

    # Signal handlers can only be installed from the main thread (not when a caller
    # runs main() in a worker thread); there the cancel token is simply never set.
    # SIGTERM (a plain `kill`) is treated like Ctrl-C, so a run in the background stops
    # cleanly too; a background job of a non-interactive shell ignores SIGINT until
    # this handler is installed.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        hangup = (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()  # a closed terminal
        for signum in (signal.SIGINT, signal.SIGTERM, *hangup):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        result = run_training(
            task,
            train,
            val,
            args.out,
            epochs=args.epochs,
            pairs_per_epoch=args.pairs_per_epoch,
            batch_size=args.batch_size,
            init=args.init,
            device=args.device,
            progress=progress,
            cancel=cancel,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            keep_epochs=args.keep_epochs,
            val_pairs=args.val_pairs,
            max_gap=args.max_gap,
            hflip=args.hflip,
            negative_pairs=args.negative_pairs,
            seed=args.seed,
            cache_dir=args.cache_dir,
            amp=args.amp,
            lr_start=args.lr[0] if args.lr else None,
            lr_end=args.lr[1] if args.lr else None,
            patience=args.patience,
            metric_frames=args.metric_frames,
            extra_pairs=synthetic,
            extra_ratio=args.synthetic_ratio if synthetic is not None else 0.0,
            extra_description=_synthetic_description(args) if synthetic is not None else "",
            teacher=args.teacher,
            teacher_weight=args.teacher_weight,
            teacher_share=args.teacher_share,
            teacher_model_dir=args.model_dir,
        )
    except (TrainingError, TrackerError, ValueError, OSError) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("aborted; the last saved checkpoint is kept")
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    if result.cancelled:
        where = f"; weights in {result.checkpoint}, continue with --resume" if result.checkpoint else ""
        say(f"stopped at step {result.step}{where}")
        return 130
    say(f"done: {result.epochs_done} epochs, {result.step} steps, weights in {result.checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
