#!/usr/bin/env python3
"""How well a SiamRPN keeps the box's size and shape (issue 16): three views.

    python tools/siamrpn_shape.py [--weights W] [SEQ...] [--trace SEQ]

* still targets: the demo object, standing still at 30 x 90, 90 x 30, 40 x 120 and 60 x 60
  pixels, tracked for 30 updates of the same frame; the box at the end (a tracker that keeps
  the shape ends where it started);
* one step from the truth (with SEQ...): on every 15th frame, the tracker starts on the
  ground truth and takes one step to the next frame; the best-scoring anchor's proposal (its
  regression alone, before section 4.3's penalty and size update) against the next box:
  median width and height ratios and mean centre error over sqrt(w h), split by the true
  aspect (tall h/w > 1.5, wide < 1/1.5, square between);
* the closed loop (``--trace SEQ``): the default tracker run through SEQ, every 10th frame's box
  beside the truth, the centre distance and the score: where the size runs away.

All with the shipped weights unless ``--weights`` names a checkpoint; fp32, CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from resources.demo_clip import object_texture, render_background, render_frame  # noqa: E402
from trackers.evaluation import load_sequences  # noqa: E402
from trackers.protocol import Tracker  # noqa: E402
from trackers.siamrpn.targets import decode  # noqa: E402
from trackers.siamrpn.tracker import SiamRPNTracker  # noqa: E402
from trackers.sources import open_source  # noqa: E402
from trackers.types import Box  # noqa: E402

STILL_SIZES = ((30, 90), (90, 30), (40, 120), (60, 60))
FRAME = (480, 270)


def still_shape(tracker: Tracker, size: tuple[int, int], frames: int = 30) -> tuple[float, float]:
    """(w, h) of ``tracker``'s box after ``frames`` updates on one still frame whose target
    (the demo object, ``size``) never moves or changes."""
    w, h = size
    background, texture = render_background(FRAME, 0), object_texture((2 * w, 2 * h), 0)
    box = Box(200, 80, w, h)
    image = render_frame(background, texture, box, Box(0, 0, 0, 0), np.zeros((0, 0, 3), np.uint8))
    tracker.init(image, box)
    found = box
    for _ in range(frames):
        found = tracker.update(image).box
    return found.w, found.h


def _tracker(weights: str | None, precision: str = "fp32") -> SiamRPNTracker:
    return SiamRPNTracker.create("siamrpn", device="cpu", config={"precision": precision},
                                 **({"weights": weights} if weights else {}))


class _BestProposal:
    """Wraps a tracker's ``_decide`` to keep the highest-foreground anchor's proposal (frame pixels)."""

    def __init__(self, tracker: SiamRPNTracker) -> None:
        self.tracker, self.box = tracker, None
        self._decide = tracker._decide
        tracker._decide = self  # type: ignore[method-assign]

    def __call__(self, extent, a_cls, a_reg):
        t = self.tracker
        cfg = t.config
        k, s = cfg.anchor_count, cfg.score_size
        logits = a_cls[0].float().reshape(k, 2, s, s)
        foreground = (logits[:, 1] - logits[:, 0]).numpy()
        deltas = a_reg[0].float().reshape(k, 4, s, s).permute(0, 2, 3, 1).double()
        best = np.unravel_index(int(np.argmax(foreground)), foreground.shape)
        proposal = decode(t._anchors, deltas).numpy()[best]
        scale = cfg.search_size / extent
        centre = t._center + (proposal[:2] - cfg.search_size / 2.0) / scale
        self.box = np.concatenate([centre, proposal[2:] / scale])  # cx, cy, w, h
        return self._decide(extent, a_cls, a_reg)


def one_step(weights: str | None, paths: list[str], every: int = 15) -> dict[str, dict[str, float]]:
    """The one-step view: per aspect class, n, median w and h ratios, mean centre error / size."""
    tracker = _tracker(weights)
    spy = _BestProposal(tracker)
    rows = []
    for seq in load_sequences(paths):
        source, gt = open_source(seq.source), seq.groundtruth
        for i in range(0, len(gt) - 1, every):
            a, b = gt[i], gt[i + 1]
            if not (np.isfinite(a).all() and np.isfinite(b).all()) or min(a[2:]) < 4 or min(b[2:]) < 4:
                continue
            tracker.init(source[i], Box(*a))
            tracker.update(source[i + 1])
            cx, cy, w, h = spy.box
            error = np.hypot(cx - (b[0] + b[2] / 2), cy - (b[1] + b[3] / 2)) / np.sqrt(b[2] * b[3])
            rows.append((b[3] / b[2], w / b[2], h / b[3], error))
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    classes = {"tall": table[:, 0] > 1.5, "square": (table[:, 0] <= 1.5) & (table[:, 0] >= 1 / 1.5),
               "wide": table[:, 0] < 1 / 1.5}
    return {name: {"n": int(m.sum()), "w": float(np.median(table[m, 1])), "h": float(np.median(table[m, 2])),
                   "centre": float(np.mean(table[m, 3]))}
            for name, m in classes.items() if m.any()}


def trace(weights: str | None, path: str, every: int = 10) -> list[str]:
    """The closed-loop view: ``frame: box w x h / true w x h, centre distance, score`` lines."""
    seq = load_sequences([path])[0]
    tracker = _tracker(weights, precision="auto")
    lines = []
    for i, frame in enumerate(open_source(seq.source).iter_from(0)):
        g = seq.groundtruth[i]
        if i == 0:
            tracker.init(frame, Box(*g))
            continue
        result = tracker.update(frame)
        b = result.box
        if i % every == 0 and np.isfinite(g).all():
            d = np.hypot(b.x + b.w / 2 - g[0] - g[2] / 2, b.y + b.h / 2 - g[1] - g[3] / 2)
            lines.append(f"{i:5d}: {b.w:6.1f} x {b.h:6.1f} / {g[2]:6.1f} x {g[3]:6.1f}  "
                         f"centre off {d:6.1f}  score {result.score:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sequences", nargs="*", metavar="SEQ")
    parser.add_argument("--weights", help="a SiamRPN checkpoint (default: the shipped weights)")
    parser.add_argument("--trace", metavar="SEQ", help="print the closed loop on this sequence")
    args = parser.parse_args(argv)
    print("still target (w x h) -> box after 30 updates")
    tracker = _tracker(args.weights)  # init() starts each target afresh: one load serves all four
    for size in STILL_SIZES:
        w, h = still_shape(tracker, size)
        print(f"  {size[0]:3d} x {size[1]:3d} -> {w:6.1f} x {h:6.1f}  "
              f"h/w {h / w:.2f} (true {size[1] / size[0]:.2f})")
    if args.sequences:
        print("one step from the truth: median proposal w / true w, h / true h; mean centre error / size")
        for name, row in one_step(args.weights, args.sequences).items():
            print(f"  {name:6s} n={row['n']:4d}  w x{row['w']:.3f}  h x{row['h']:.3f}  "
                  f"centre {row['centre']:.3f}")
    if args.trace:
        print(f"closed loop on {args.trace}: frame: box / truth")
        for line in trace(args.weights, args.trace):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
