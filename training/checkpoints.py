"""The files a training run keeps beside its ``out``: where they are and how they are read back.

* ``out``: the weights the tracker loads (``trackers.weights`` format);
* ``<stem>.resume.pt``: what a stopped run needs to carry on (weights, optimiser state,
  counters, settings); only tensors, numbers, strings, lists and dicts, so it loads
  with ``torch.load(weights_only=True)``;
* ``<stem>.best.pt``: with validation, the best epoch's weights while the run goes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from training.config import TrainingError

RESUME_FORMAT = "siamtrack-train-resume"
RESUME_VERSION = 2


def resume_path(out: str | Path) -> Path:
    """``out`` with its suffix replaced by ``.resume.pt``: ``siamfc.pt`` -> ``siamfc.resume.pt``."""
    return _beside(out, ".resume.pt")


def best_path(out: str | Path) -> Path:
    """``siamfc.pt`` -> ``siamfc.best.pt``: the best epoch's weights while a run goes."""
    return _beside(out, ".best.pt")


def _beside(out: str | Path, suffix: str) -> Path:
    out = Path(out)
    return out.with_name(out.stem + suffix) if out.suffix else out.with_name(out.name + suffix)


@contextlib.contextmanager
def damaged(path: Path) -> Iterator[None]:
    """A resume file of the right format with parts missing or of the wrong shape: one
    line for the user, not a traceback from deep inside load_state_dict."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrainingError(
            f"the resume state {path} is damaged ({type(exc).__name__}: {first}); "
            "start afresh without --resume"
        ) from None


def load_resume(path: Path, architecture: str) -> dict[str, Any]:
    """The resume state at ``path``, checked to be ours and for ``architecture``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"cannot read the resume state {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise TrainingError(f"{path} is not a siamtrack resume file")
    if state.get("version") != RESUME_VERSION or state.get("architecture") != architecture:
        raise TrainingError(f"{path} was written by another version or for another network")
    return state
