"""Argument types and options several ``siamtrack`` commands share (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def parse_box(text: str):  # -> Box, imported lazily to keep --help fast
    from trackers.types import Box

    try:
        box = Box.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not box.is_valid():
        raise argparse.ArgumentTypeError(
            f"the box needs a positive width and height and finite values: {text}"
        )
    return box


def format_name(text: str) -> str:
    from trackers.formats import FORMATS

    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown format {text!r}; one of {', '.join(FORMATS)}")
    return text


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive(text: str) -> int:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


MAX_THREADS = 256
"""More CPU threads than this is a typo, not a machine (100000 crashed torch)."""


def threads(text: str) -> int:
    value = positive(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {value}")
    return value


def unit_interval(text: str) -> float:
    """A finite number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_tracker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, help="checkpoint file (default: the bundled weights)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get("SIAMTRACK_MODEL_DIR"),
        help="folder with the ONNX files of cv-nano and cv-vit (or set SIAMTRACK_MODEL_DIR)",
    )
    parser.add_argument(
        "--set", action="append", dest="config", default=[], type=config_item, metavar="KEY=VALUE",
        help="override a Siamese tracker's config value, e.g. --set precision=fp32 (repeatable; "
        "unknown keys are an error; the OpenCV peers take none)",
    )
    parser.add_argument(
        "--threads", type=threads,
        help=f"CPU threads for torch, 1 to {MAX_THREADS} (default: torch's choice)",
    )


def config_item(text: str) -> tuple[str, object]:
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


def tracker_name(text: str) -> str:
    """A registered tracker; test doubles are accepted but never offered (help, errors)."""
    from trackers.registry import TEST_DOUBLES, TRACKERS

    if text in TRACKERS:
        return text
    offered = sorted(set(TRACKERS) - TEST_DOUBLES)
    raise argparse.ArgumentTypeError(f"unknown tracker {text!r}; one of {', '.join(offered)}")


def offered_trackers() -> list[str]:
    """The trackers help texts name (test doubles left out)."""
    from trackers.registry import TEST_DOUBLES, TRACKERS

    return sorted(set(TRACKERS) - TEST_DOUBLES)
