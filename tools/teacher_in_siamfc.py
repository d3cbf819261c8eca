#!/usr/bin/env python3
"""How far could a SiamFC student get if its score map were the teacher's? (issue 16)

Runs SiamFC's own tracking (crops, scale search, bicubic up-sampling, scale penalty, cosine
window, damped scale update: sections 2.1-2.4, 4.1) with one change: each scale's 17x17
score map is NanoTrack's foreground map for that exemplar/search pair, read at SiamFC's
cells (``trackers.nanotrack.resample_to_grid``, the same resampling the distillation loss
uses for its soft targets). A student that matched the teacher's map exactly would track
like this; if this falls short of the goal, more distillation of the score map cannot
reach it, and the limit is what the map carries, not the student's fit.

    python tools/teacher_in_siamfc.py SEQ... [--json FILE]

Prints success AUC and precision per sequence and their mean, as ``siamtrack eval``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackers.evaluation.datasets import load_sequences  # noqa: E402
from trackers.evaluation.run import evaluate  # noqa: E402
from trackers.geometry import crop_square  # noqa: E402
from trackers.nanotrack import NanoTrackNet, resample_to_grid  # noqa: E402
from trackers.siamfc.tracker import SiamFCTracker  # noqa: E402
from trackers.types import Frame, TrackResult  # noqa: E402


class TeacherMapSiamFC(SiamFCTracker):
    """SiamFC whose score maps come from NanoTrack (see the module notes)."""

    teacher: NanoTrackNet
    _teacher_exemplar: np.ndarray | None = None
    _teacher_scores: torch.Tensor | None = None

    def learn_exemplar(self, frame: Frame) -> None:
        super().learn_exemplar(frame)
        cfg = self.config
        exemplar = crop_square(frame, *self._center, self._exemplar_extent, cfg.exemplar_size, self._fill)
        self._teacher_exemplar = self.teacher.embed(exemplar)
        net, tracker = self.net, self

        # the network's correlation is replaced by the teacher's maps of the same crops
        def teacher_score(exemplar_features: torch.Tensor, search_features: torch.Tensor) -> torch.Tensor:
            assert tracker._teacher_scores is not None
            return tracker._teacher_scores

        net.score = teacher_score  # type: ignore[method-assign]

    @torch.inference_mode()
    def update(self, frame: Frame) -> TrackResult:
        cfg = self.config
        extents, search_images = self.search(frame)
        images = search_images.float().cpu().numpy()
        maps = [
            resample_to_grid(self.teacher.maps(self._teacher_exemplar, image).foreground,
                             cfg.score_size, cfg.total_stride)
            for image in images
        ]
        self._teacher_scores = torch.from_numpy(np.stack(maps)[:, None].astype(np.float32))
        return self.finish(extents, search_images)


def make(name: str) -> TeacherMapSiamFC:
    # the paper's 255-pixel search image: NanoTrack's own crop (the siamfc preset searches 319)
    tracker = TeacherMapSiamFC.create(config={"search_size": 255, "score_size": 17})
    tracker.teacher = NanoTrackNet()
    return tracker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sequences", nargs="+", metavar="SEQ")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sequences = load_sequences(args.sequences)
    report = evaluate(sequences, ["teacher-map-siamfc"], make, progress=lambda line: print(line, flush=True))
    rows = report.results["teacher-map-siamfc"]
    for name, result in rows.items():
        auc = "error" if result.auc is None else f"{result.auc:.3f}"
        precision = "" if result.precision is None else f"{result.precision:.3f}"
        print(f"{name:24s} {auc:>6s} {precision:>6s} {result.error or ''}")
    mean = report.mean("teacher-map-siamfc")
    print(f"{'mean':24s} {mean.get('auc') or 0:.3f} {mean.get('precision') or 0:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
