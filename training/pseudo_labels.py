"""Training sequences from unlabelled clips, labelled by the teacher (NanoTrack).

Ground truth is scarce; footage is not. On a clip nobody annotated, this module picks
object-like boxes, lets OpenCV's ``TrackerNano`` (the distillation teacher, bundled
ONNX files) follow each for a stretch of frames, then tracks back from the stretch's
last box to its first frame. Only stretches that come back to where they started
(IoU >= ``min_iou``) are kept: forward-backward consistency, a standard check for a
tracker's own labels. The kept stretches become ordinary training sequences.

Layout. A clip is cut into stretches of ``stretch`` frames; each stretch gets
``objects`` start boxes. Stretches are dealt round-robin over ``phases`` sequences per
object slot, so that two stretches of one sequence are more than ``max_gap`` frames
apart: a training pair (at most ``max_gap`` frames apart, ``training.data``) never joins
two different objects. A sequence is the whole clip with NaN outside its stretches.

The labels are cached as JSON under the cache folder, keyed by the clip's size and
mtime and the settings, so a resumed run finds the same sequences.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.evaluation import AnnotatedSequence
from trackers.evaluation.metrics import box_iou
from trackers.output import atomic_write
from trackers.sources import open_source
from trackers.types import Box
from trackers.weights import provenance
from training.fingerprint import source_fingerprint

LABEL_VERSION = 1

# How the name of every sequence the teacher labelled begins (``pseudo_sequences``); defined
# beside the code that reads training provenance, which parses these names.
TEACHER_PREFIX = provenance.TEACHER_PREFIX


def is_teacher_labelled(sequence: AnnotatedSequence) -> bool:
    """Whether ``sequence`` is one of ``pseudo_sequences``' stretches (by its name)."""
    return sequence.name.startswith(TEACHER_PREFIX)


@dataclass(frozen=True)
class PseudoLabelSettings:
    stretch: int = 50
    """Frames per stretch (a pair's frames lie in one stretch)."""
    objects: int = 2
    """Start boxes per stretch."""
    phases: int = 3
    """Sequences per object slot; with ``stretch`` 50, stretches of one sequence lie 101+ frames apart."""
    min_iou: float = 0.6
    """Forward-backward IoU a stretch must reach to be kept."""
    min_score: float = 0.5
    """The teacher's own score below which a stretch ends early (NanoTrack's penalised peak)."""
    candidates: int = 64
    """Random boxes scored per start; the most object-like wins."""
    seed: int = 0
    max_aspect: float = 2.0
    """Start boxes' width/height lies in [1/max_aspect, max_aspect] (log-uniform). At 2 the
    boxes are never as tall as a standing person (about 1:3), which SiamRPN's regression then
    never sees from real footage (README, "Why SiamRPN loses the shape")."""

    def __post_init__(self) -> None:
        if self.stretch < 2 or self.objects < 1 or self.phases < 1 or self.candidates < 1:
            raise ValueError("stretch >= 2, objects >= 1, phases >= 1 and candidates >= 1 are needed")
        if not 0.0 < self.min_iou <= 1.0:
            raise ValueError("min_iou must lie in (0, 1]")
        if not math.isfinite(self.max_aspect) or self.max_aspect < 1.0:
            raise ValueError("max_aspect must be a finite number >= 1")


def objectness(gray: NDArray[np.float32], box: Box) -> float:
    """How object-like ``box`` looks: edge energy inside against a ring around it."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return _objectness(np.hypot(gx, gy), box)


def _objectness(magnitude: NDArray[np.float32], box: Box) -> float:
    h, w = magnitude.shape
    x0, y0 = int(box.x), int(box.y)
    x1, y1 = int(box.x + box.w), int(box.y + box.h)
    pad_x, pad_y = max(2, int(box.w / 4)), max(2, int(box.h / 4))
    inner = magnitude[y0:y1, x0:x1]
    ox0, oy0 = max(0, x0 - pad_x), max(0, y0 - pad_y)
    ox1, oy1 = min(w, x1 + pad_x), min(h, y1 + pad_y)
    outer = magnitude[oy0:oy1, ox0:ox1]
    ring_area = outer.size - inner.size
    if inner.size == 0 or ring_area <= 0:
        return -math.inf
    ring_mean = (float(outer.sum()) - float(inner.sum())) / ring_area
    return float(inner.mean()) - 0.5 * ring_mean


def pick_boxes(
    frame: NDArray[np.uint8], count: int, rng: np.random.Generator, candidates: int,
    max_aspect: float = PseudoLabelSettings.max_aspect,
) -> list[Box]:
    """``count`` object-like boxes on ``frame``: the best-scoring of random candidates
    (side 6-25 % of the frame's shorter side, aspect 1:max_aspect to max_aspect:1, 1:2 to 2:1
    by default), not overlapping each other."""
    h, w = frame.shape[:2]
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    chosen: list[Box] = []
    for _ in range(count):
        best, best_score = None, -math.inf
        for _ in range(candidates):
            side = rng.uniform(0.06, 0.25) * min(w, h)
            aspect = math.exp(rng.uniform(-math.log(max_aspect), math.log(max_aspect)))
            bw, bh = side * math.sqrt(aspect), side / math.sqrt(aspect)
            if bw >= w - 2 or bh >= h - 2:
                continue
            box = Box(float(rng.uniform(1, w - bw - 1)), float(rng.uniform(1, h - bh - 1)), bw, bh)
            if any(box_iou(box, other) > 0.1 for other in chosen):
                continue
            score = _objectness(magnitude, box)
            if score > best_score:
                best, best_score = box, score
        if best is not None:
            chosen.append(best)
    return chosen


def teacher_factory(model_dir: str | Path | None = None) -> Callable[[], Any]:
    """A function that makes a fresh teacher (OpenCV's TrackerNano on the bundled or given
    ONNX files). Raises TrackerError when the files are missing."""
    from trackers.opencv import _MODEL_FILES, find_model_file, resolve_model_dir

    folder = resolve_model_dir(model_dir)
    files = {key: str(find_model_file(folder, model)) for key, model in _MODEL_FILES["nano"].items()}

    def make() -> Any:
        params = cv2.TrackerNano_Params()
        params.backbone = files["backbone"]
        params.neckhead = files["neckhead"]
        return cv2.TrackerNano_create(params)

    return make


def _rect(box: Box) -> tuple[int, int, int, int]:
    return (int(round(box.x)), int(round(box.y)), max(1, int(round(box.w))), max(1, int(round(box.h))))


def _track(
    make: Callable[[], Any], frames: list[NDArray[np.uint8]], start: Box, min_score: float
) -> list[Box]:
    """The teacher's boxes from ``start`` on ``frames[0]`` through the list (BGR frames);
    it stops early where its score drops below ``min_score``."""
    tracker = make()
    tracker.init(frames[0], _rect(start))
    boxes = [start]
    for frame in frames[1:]:
        ok, rect = tracker.update(frame)
        if not ok or tracker.getTrackingScore() < min_score:
            break
        x, y, bw, bh = (float(v) for v in rect)
        if bw < 2 or bh < 2:
            break
        boxes.append(Box(x, y, bw, bh))
    return boxes


def label_stretch(
    make: Callable[[], Any], frames_rgb: list[NDArray[np.uint8]], start: Box, settings: PseudoLabelSettings
) -> list[Box]:
    """Forward from ``start``, back from the last box; the forward boxes if they agree, else []."""
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames_rgb]
    forward = _track(make, bgr, start, settings.min_score)
    if len(forward) < 2:
        return []
    backward = _track(make, bgr[: len(forward)][::-1], forward[-1], settings.min_score)
    if len(backward) < len(forward) or box_iou(backward[-1], start) < settings.min_iou:
        return []
    return forward


def _clip_key(path: Path, settings: PseudoLabelSettings) -> str:
    fields = asdict(settings)
    if fields["max_aspect"] == PseudoLabelSettings.max_aspect:
        del fields["max_aspect"]  # added later: labels cached before it keep their key
    text = json.dumps({"v": LABEL_VERSION, "source": source_fingerprint(path),
                       "settings": fields}, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def label_clip(
    path: Path,
    settings: PseudoLabelSettings,
    *,
    model_dir: str | Path | None = None,
    cancel: Any = None,
) -> tuple[int, list[list[tuple[int, Box]]]]:
    """Teacher labels for one clip: its decoded frame count and, per kept stretch, its boxes."""
    make = teacher_factory(model_dir)
    rng = np.random.default_rng([settings.seed, int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)])
    stretches: list[list[tuple[int, Box]]] = []
    count = 0
    window: list[NDArray[np.uint8]] = []
    with open_source(path) as source:
        for frame in source.iter_from(0):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            window.append(frame)
            count += 1
            if len(window) == settings.stretch:
                stretches.extend(_label_window(make, window, count - len(window), rng, settings))
                window = []
    if len(window) >= 2:
        stretches.extend(_label_window(make, window, count - len(window), rng, settings))
    return count, stretches


def _label_window(make, window, first, rng, settings) -> list[list[tuple[int, Box]]]:
    out: list[list[tuple[int, Box]]] = []
    for start in pick_boxes(window[0], settings.objects, rng, settings.candidates, settings.max_aspect):
        boxes = label_stretch(make, window, start, settings)
        out.append([(first + k, box) for k, box in enumerate(boxes)])  # empty when rejected
    while len(out) < settings.objects:
        out.append([])
    return out


def pseudo_sequences(
    clips: Iterable[Path],
    cache_dir: str | Path | None,
    settings: PseudoLabelSettings | None = None,
    *,
    model_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> tuple[list[AnnotatedSequence], dict[str, Any]]:
    """Teacher-labelled training sequences from ``clips``, and a summary for the provenance."""
    from training.crop_cache import default_cache_dir

    settings = settings or PseudoLabelSettings()
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "pseudo-labels"
    root.mkdir(parents=True, exist_ok=True)
    sequences: list[AnnotatedSequence] = []
    summary = {"clips": 0, "stretches_tried": 0, "stretches_kept": 0, "frames_labelled": 0}
    clips = list(clips)
    for number, clip in enumerate(clips, start=1):
        clip = Path(clip)
        label_file = root / f"{clip.stem}-{_clip_key(clip, settings)}.json"
        if label_file.is_file():
            data = json.loads(label_file.read_text(encoding="utf-8"))
        else:
            if progress is not None:
                progress(f"teacher-labelling {clip.name} ({number}/{len(clips)})")
            count, stretches = label_clip(clip, settings, model_dir=model_dir, cancel=cancel)
            data = {"frames": count, "stretches": [[[i, *b.as_array().tolist()] for i, b in s]
                                                   for s in stretches]}
            with atomic_write(label_file, "w") as f:
                f.write(json.dumps(data))
        summary["clips"] += 1
        sequences.extend(_as_sequences(clip, data, settings, summary))
    return sequences, summary


def _as_sequences(clip: Path, data: dict[str, Any], settings: PseudoLabelSettings,
                  summary: dict[str, Any]) -> list[AnnotatedSequence]:
    frames = int(data["frames"])
    stretches = data["stretches"]
    grids = {}
    for number, stretch in enumerate(stretches):
        summary["stretches_tried"] += 1
        if len(stretch) < 2:
            continue
        summary["stretches_kept"] += 1
        summary["frames_labelled"] += len(stretch)
        # stretch number = window * objects + slot; deal windows over the phases
        window, slot = divmod(number, settings.objects)
        key = (slot, window % settings.phases)
        grid = grids.setdefault(key, np.full((frames, 4), np.nan))
        for index, x, y, w, h in stretch:
            if 0 <= int(index) < frames:
                grid[int(index)] = (x, y, w, h)
    return [
        AnnotatedSequence(f"{TEACHER_PREFIX}{clip.stem}-o{slot}p{phase}", clip, grid)
        for (slot, phase), grid in sorted(grids.items())
    ]
