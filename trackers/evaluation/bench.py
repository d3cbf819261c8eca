"""``siamtrack bench``: end-to-end speed per tracker, decode included, split by stage.

App-free and Qt-free (the CLI formats and prints what it returns), so it sits with the
evaluation it measures the trackers for (speed where the rest measures accuracy).

Each tracker runs in a fresh child process, so its peak memory is its own and one
tracker's warm caches do not flatter the next. Inside the child, frames are decoded
by a prefetching thread (as ``siamtrack track`` does), the tracker's own stopwatch
splits each update into crop, network and post (``trackers.timing``), and a tracker
without one (the OpenCV peers) has its whole update counted as network.

With ``objects`` N > 1, the tracker follows the box and N - 1 copies of it spread
over the frame, all on the same decoded frames (``trackers.run.track_frames_multi``:
one decode per frame, and one batch through the network for trackers that can share
it); ``fps`` is then frames per second for all N objects together, and the stages are
per frame for all objects (crop: every object's search regions; post: every object's
peak finding; network: the rest of the frame's update).

JSON: ``{"objects", "trackers": {NAME: {"fps", "ms": {"decode", "crop", "network", "post"},
"peak_rss_mb", "device", "frames", "objects", "batched"}}}`` where each ``ms`` entry is
``{"median", "p95"}`` per frame.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

STAGES = ("decode", "crop", "network", "post")
DEFAULT_SIZE = (1280, 720)


MAX_GENERATED_FRAMES = 10_000
"""Longest generated clip: about 5 minutes at 30 fps (a few hundred MB of mp4v); longer runs
want a SOURCE. 100,000,000 frames would fill any disk."""


def generate_clip(folder: Path, frames: int, size: tuple[int, int] = DEFAULT_SIZE) -> tuple[Path, str]:
    """A synthetic 720p clip (the demo scene, scaled up) and its first box as ``x,y,w,h``.

    Written while it is rendered: one frame in memory at a time, whatever ``frames`` is."""
    import cv2

    from resources.demo_clip import iter_sequence

    if not 1 <= frames <= MAX_GENERATED_FRAMES:
        raise ValueError(
            f"--frames {frames}: the generated clip holds 1 to {MAX_GENERATED_FRAMES:,} frames; "
            "give a SOURCE for a longer run"
        )
    path = folder / "bench_720p.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    first = None
    try:
        for image, box in iter_sequence(n_frames=frames, size=size, seed=0):
            first = first or box
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    assert first is not None
    return path, f"{first.x:g},{first.y:g},{first.w:g},{first.h:g}"


def first_box(source: Path) -> str | None:
    """The first line of ``<stem>.txt`` (1-based OTB) beside a video, as a 0-based box."""
    groundtruth = source.with_suffix(".txt") if source.is_file() else source / "groundtruth_rect.txt"
    if not groundtruth.is_file():
        return None
    from trackers.evaluation import first_valid_frame, read_groundtruth

    rows = read_groundtruth(groundtruth)
    start = first_valid_frame(rows)
    if start != 0:
        return None
    x, y, w, h = rows[0]
    return f"{x:g},{y:g},{w:g},{h:g}"


def _stats(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {"median": 0.0, "p95": 0.0}
    array = np.asarray(values_ms, dtype=np.float64)
    return {"median": float(np.median(array)), "p95": float(np.percentile(array, 95))}


def run_worker(
    name: str,
    source: Path,
    box_text: str,
    frames: int,
    device: str,
    weights: Path | None,
    model_dir: Path | None,
    config: dict[str, Any] | None = None,
    threads: int | None = None,
    objects: int = 1,
) -> dict[str, Any]:
    """Track ``frames`` frames of ``source`` with ``name`` in this process; return its figures."""
    import torch

    from trackers.prefetch import Prefetcher
    from trackers.registry import create_tracker
    from trackers.sources import open_source
    from trackers.types import Box

    if threads:
        torch.set_num_threads(threads)

    def make() -> Any:
        return create_tracker(
            name, weights=weights, device=device, model_dir=model_dir,
            config=config if config and not name.startswith("cv-") else None,
        )

    if objects > 1:
        return _run_objects(make, source, box_text, frames, objects)
    tracker = make()
    box = Box.parse(box_text)
    stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with open_source(source) as src, Prefetcher(src.iter_from(0, frames)) as prefetched:
        iterator = iter(prefetched)
        first = next(iterator)
        tracker.init(first, box)
        count = 0
        started = time.perf_counter()
        for frame in iterator:
            update_start = time.perf_counter()
            tracker.update(frame)
            update_seconds = time.perf_counter() - update_start
            stopwatch = getattr(tracker, "stopwatch", None)
            laps = dict(stopwatch.seconds) if stopwatch is not None else {"network": update_seconds}
            for stage in ("crop", "network", "post"):
                stage_ms[stage].append(1000.0 * laps.get(stage, 0.0))
            count += 1
        elapsed = time.perf_counter() - started
        # the first decode happened before the clock started; the rest overlapped tracking
        stage_ms["decode"] = [1000.0 * s for s in prefetched.decode_seconds[1:]]
    return _result(tracker, count, elapsed, stage_ms)


def _result(
    tracker: Any, count: int, elapsed: float, stage_ms: dict[str, list[float]], **extra: Any
) -> dict[str, Any]:
    """One bench run's figures: speed, per-stage times, peak memory, and what ran."""
    import torch

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "fps": count / elapsed if elapsed > 0 else 0.0,
        "frames": count,
        **extra,
        "ms": {stage: _stats(values) for stage, values in stage_ms.items()},
        "peak_rss_mb": peak_kb / 1024.0,
        "device": str(getattr(tracker, "device", "cpu")),
        "untrained": bool(getattr(tracker, "untrained", False)),
        "precision": str(getattr(tracker, "precision", "fp32")),
        "threads": torch.get_num_threads(),
    }


def spread_boxes(box: Any, count: int, size: tuple[int, int]) -> list[Any]:
    """``box`` and ``count - 1`` copies of it on a grid over a ``size`` frame (inside it)."""
    from trackers.types import Box

    boxes = [box]
    width, height = size
    columns = max(1, int(np.ceil(np.sqrt(count))))
    rows = int(np.ceil(count / columns))
    for k in range(1, count):
        row, column = divmod(k, columns)
        x = (column + 0.5) * width / columns - box.w / 2
        y = (row + 0.5) * height / max(rows, 1) - box.h / 2
        boxes.append(Box(min(max(0.0, x), width - box.w), min(max(0.0, y), height - box.h), box.w, box.h))
    return boxes


def _run_objects(
    make: Callable[[], Any], source: Path, box_text: str, frames: int, objects: int
) -> dict[str, Any]:
    """``objects`` trackers from ``make`` on every frame (batched where they can be)."""
    from trackers.batch import can_batch, make_trackers
    from trackers.prefetch import Prefetcher
    from trackers.run import track_frames_multi
    from trackers.sources import open_source
    from trackers.types import Box

    first = make()
    trackers = make_trackers(first, objects, make)
    stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with open_source(source) as src, Prefetcher(src.iter_from(0, frames)) as prefetched:
        probe = src[0]
        boxes = spread_boxes(Box.parse(box_text), objects, (probe.shape[1], probe.shape[0]))
        count = 0
        started = 0.0
        for step in track_frames_multi(trackers, prefetched, boxes):
            if step.index == 0:
                started = time.perf_counter()  # as for one object: the clock starts after init
                continue
            laps = [dict(t.stopwatch.seconds) if hasattr(t, "stopwatch") else {} for t in trackers]
            crops = [lap.get("crop", 0.0) for lap in laps]
            crop = crops[0] if can_batch(trackers[0]) else sum(crops)  # a batch laps all crops at once
            post = sum(lap.get("post", 0.0) for lap in laps)
            stage_ms["crop"].append(1000.0 * crop)
            stage_ms["post"].append(1000.0 * post)
            stage_ms["network"].append(1000.0 * max(0.0, step.seconds - crop - post))
            count += 1
        elapsed = time.perf_counter() - started
        stage_ms["decode"] = [1000.0 * s for s in prefetched.decode_seconds[1:]]
    return _result(first, count, elapsed, stage_ms, objects=objects, batched=can_batch(first))


def run_bench(
    trackers: Sequence[str],
    source: Path | None,
    box: str | None,
    frames: int,
    device: str,
    weights: Path | None = None,
    model_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    config: dict[str, Any] | None = None,
    threads: int | None = None,
    objects: int = 1,
) -> dict[str, Any]:
    """Run every tracker in its own child process on the same frames (``objects`` at once)."""
    with tempfile.TemporaryDirectory(prefix="siamtrack-bench-") as tmp:
        label = str(source)
        if source is None:
            source, box = generate_clip(Path(tmp), frames)
            label = f"generated {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]} clip"
        elif box is None:
            box = first_box(source)
            if box is None:
                raise ValueError(f"give --box: no ground truth beside {source} to start from")
        results: dict[str, Any] = {}
        for name in trackers:
            if progress:
                plural = f", {objects} objects" if objects > 1 else ""
                progress(f"bench {name} on {source.name} ({frames} frames{plural})")
            command = [
                sys.executable, "-m", "trackers.evaluation.bench", "--worker", name, str(source), box,
                str(frames), device, str(weights or ""), str(model_dir or ""),
                json.dumps(config or {}), str(threads or 0), str(objects),
            ]
            done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
            if done.returncode != 0:
                message = (done.stderr.strip().splitlines() or ["no output"])[-1]
                results[name] = {"error": message}
                continue
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"source": label, "frames": frames, "objects": objects, "trackers": results}


def format_bench_table(report: dict[str, Any]) -> str:
    header = (
        f"{'tracker':<10} {'fps':>7} {'decode':>13} {'crop':>13} {'network':>13} {'post':>13} "
        f"{'rss MB':>7} {'device':<7} {'thr':>3} precision"
    )
    lines = [header, "-" * len(header), "(per-frame ms as median/p95; fps end to end, decode included)"]
    objects = report.get("objects", 1)
    if objects > 1:
        lines.append(f"({objects} objects per frame: fps and ms are for all of them together)")
    for name, r in report["trackers"].items():
        if "error" in r:
            lines.append(f"{name:<10} error: {r['error']}")
            continue
        cells = " ".join(f"{r['ms'][s]['median']:>6.1f}/{r['ms'][s]['p95']:<6.1f}" for s in STAGES)
        flag = "  UNTRAINED" if r.get("untrained") else ""
        if r.get("objects", 1) > 1:
            flag += "  batched" if r.get("batched") else "  one by one"
        lines.append(
            f"{name:<10} {r['fps']:>7.1f} {cells} {r['peak_rss_mb']:>7.0f} {r['device']:<7} "
            f"{r.get('threads', ''):>3} {r.get('precision', '')}{flag}"
        )
    return "\n".join(lines)


def _worker_main(argv: Sequence[str]) -> int:
    name, source, box, frames, device, weights, model_dir, config, threads, objects = argv
    result = run_worker(
        name, Path(source), box, int(frames), device,
        Path(weights) if weights else None, Path(model_dir) if model_dir else None,
        json.loads(config), int(threads) or None, int(objects),
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["--worker"]:
        print("usage: siamtrack bench (this module's --worker mode is internal)", file=sys.stderr)
        sys.exit(2)
    sys.exit(_worker_main(sys.argv[2:]))
