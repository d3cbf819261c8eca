"""Trackers from the command line's options: ``--set`` checked up front, the CPU when the GPU runs out
of memory, the warning for untrained weights, and the start box fitted to the frame."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.cli.common import CliError


def free_gpu_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def cpu_fallback_notice(name: str, where: str) -> str:
    return f"siamtrack: notice: {name} ran out of GPU memory {where}; going on on the CPU (slower)"


def build_tracker(args: argparse.Namespace):
    """The tracker for ``args``; if the GPU runs out of memory while loading, the CPU one."""
    from trackers.run import is_out_of_memory

    try:
        return make_factory(args)(args.tracker)
    except Exception as exc:
        if args.device == "cpu" or not is_out_of_memory(exc):
            raise
    free_gpu_memory()
    print(cpu_fallback_notice(args.tracker, "while loading"), file=sys.stderr)
    return make_factory(args, "cpu")(args.tracker)


_CONFIG_CLASSES = {
    "siamfc": ("trackers.siamfc.config", "SiamFCConfig"),
    "siamfc-3s": ("trackers.siamfc.config", "SiamFCConfig"),
    "siamrpn": ("trackers.siamrpn.config", "SiamRPNConfig"),
    "dsiam": ("trackers.dsiam.config", "DSiamConfig"),
    "dsiamm": ("trackers.dsiam.config", "DSiamConfig"),
}


def check_config(names: Sequence[str], config: Sequence[tuple[str, object]]) -> None:
    """``--set`` checked against every tracker's config before a run (a one-line error naming
    the field), rather than failing each sequence of an hour's evaluation one by one."""
    import importlib

    from trackers.config import config_from_mapping

    values = dict(config or [])
    for name in names:
        spec = _CONFIG_CLASSES.get(name)
        if spec is None or not values:
            continue
        module = importlib.import_module(spec[0])
        config_from_mapping(getattr(module, spec[1]), values, base=module.PRESETS[name])


def make_factory(args: argparse.Namespace, device: str | None = None):
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


def untrained_warning(name: str) -> str:
    return f"WARNING: {name} ran on RANDOM (untrained) weights: these boxes are not a tracking result."


def fit_box(box, width: int, height: int):  # -> Box
    """``box`` clipped to a ``width x height`` frame as the app clips a drawn box, with a note
    when that changed it; a CliError when nothing of it is inside."""
    from trackers.evaluation.metrics import box_iou
    from trackers.types import Box

    clipped = box.clipped(width, height)
    if box_iou(box, Box(0, 0, width, height)) <= 0.0 or not clipped.is_valid():
        raise CliError(f"--box {box} lies wholly outside the {width}x{height} frame")
    if clipped != box:
        print(
            f"siamtrack: note: --box {box} reaches past the {width}x{height} frame; "
            f"clipped to {clipped.x:g},{clipped.y:g},{clipped.w:g},{clipped.h:g}",
            file=sys.stderr,
        )
    return clipped
