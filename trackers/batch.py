"""Several objects on one frame: one decode, and one pass through the network where possible.

Trackers that can split their update into phases (SiamFC and SiamRPN: ``search`` cuts
the search regions, ``finish`` turns their features into a box) and share one network (made with
``spawn``) have the search regions of all objects embedded as one batch: the
convolutions run once per frame with k times the batch instead of k times, which is
where a CPU and even more a GPU gain (issue 21, Speed). Every other tracker is updated
on its own, on the same decoded frame.

Batching changes no box beyond float rounding: batch norm is folded into the convs, so
a crop's features do not depend on the other crops of its batch. One thing is shared
on purpose: with int8 precision, the activation ranges are calibrated once, on the
first search regions of all objects together, rather than per object (a shared network
holds one set of ranges).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trackers.protocol import Tracker
from trackers.types import Box, Frame, TrackResult

MakeTracker = Callable[[], Tracker]


def can_batch(tracker: Tracker) -> bool:
    """Whether the tracker has the phases (SiamFC, SiamRPN) and a network to share."""
    names = ("spawn", "batch_key", "search", "finish", "prepare", "first_search_images", "learn_exemplar")
    return all(hasattr(tracker, name) for name in names) and tracker.batch_key() is not None  # type: ignore[attr-defined]


def make_trackers(first: Tracker, count: int, make: MakeTracker | None = None) -> list[Tracker]:
    """``count`` trackers for ``count`` objects: twins of ``first`` sharing its network when
    it can batch, else ``first`` and ``count - 1`` more from ``make``."""
    if count < 1:
        raise ValueError(f"need at least one object, got {count}")
    if can_batch(first):
        return [first] + [first.spawn() for _ in range(count - 1)]  # type: ignore[attr-defined]
    if make is None and count > 1:
        raise ValueError(f"{getattr(first, 'name', 'this tracker')} cannot be shared between objects")
    return [first] + [make() for _ in range(count - 1)]  # type: ignore[misc]


def _groups(trackers: Sequence[Tracker]) -> list[list[int]]:
    """Indices of trackers that share a network (batchable together); others alone."""
    groups: dict[object, list[int]] = {}
    alone: list[list[int]] = []
    for i, tracker in enumerate(trackers):
        if can_batch(tracker):
            groups.setdefault(tracker.batch_key(), []).append(i)  # type: ignore[attr-defined]
        else:
            alone.append([i])
    return list(groups.values()) + alone


def init_many(trackers: Sequence[Tracker], frame: Frame, boxes: Sequence[Box]) -> None:
    """``init`` every tracker on ``frame``; shared int8 networks are calibrated on all objects' regions."""
    import torch

    for group in _groups(trackers):
        first = trackers[group[0]]
        embedding = getattr(first, "embedding", None)
        if len(group) == 1 or embedding is None or getattr(embedding, "precision", "") != "int8":
            for i in group:
                trackers[i].init(frame, boxes[i])
            continue
        with torch.inference_mode():
            for i in group:
                trackers[i].prepare(frame, boxes[i])  # type: ignore[attr-defined]
            firsts = [trackers[i].first_search_images(frame) for i in group]  # type: ignore[attr-defined]
            regions = torch.cat(firsts)
            embedding.calibrate(regions)
            for i in group:
                trackers[i].learn_exemplar(frame)  # type: ignore[attr-defined]


def update_many(
    trackers: Sequence[Tracker], frame: Frame, active: Sequence[bool] | None = None
) -> list[TrackResult | None]:
    """Update every active tracker on ``frame``; None for the inactive ones."""
    import torch

    results: list[TrackResult | None] = [None] * len(trackers)
    for group in _groups(trackers):
        group = [i for i in group if active is None or active[i]]
        if not group:
            continue
        if len(group) == 1 or not can_batch(trackers[group[0]]):
            for i in group:
                results[i] = trackers[i].update(frame)
            continue
        with torch.inference_mode():
            first = trackers[group[0]]
            crops = None
            if hasattr(first, "device"):
                from trackers.inference.crops import FrameCrops

                # one upload of the frame for every object on a GPU
                crops = FrameCrops(frame, first.device, getattr(first, "crop_on_device", None))
            for i in group:
                trackers[i].stopwatch.start()  # type: ignore[attr-defined]
            searches = [trackers[i].search(frame, crops) for i in group]  # type: ignore[attr-defined]
            for i in group:
                trackers[i].stopwatch.lap("crop")  # type: ignore[attr-defined]
            features = first._embed(torch.cat([images for _, images in searches]))  # type: ignore[attr-defined]
            offset = 0
            for i, (extents, images) in zip(group, searches):
                count = images.shape[0]
                results[i] = trackers[i].finish(extents, features[offset : offset + count])  # type: ignore[attr-defined]
                offset += count
    return results
