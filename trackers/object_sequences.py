"""Multi-object ground truth as one evaluation sequence per object (``eval``, ``effort``, ``train``).

Each object of a multi-object annotation becomes a :class:`~trackers.types.AnnotatedSequence`
named ``<sequence>#<id>`` over the same frames, with NaN rows where that object is absent
or not annotated, so every existing score (success AUC, precision, corrections per 100
frames) is computed per object. Layouts read:

* a MOT Challenge sequence folder: ``img1/`` and ``gt/gt.txt``
  (https://motchallenge.net/instructions/ ; frames and pixels 1-based, read by
  ``trackers.formats.mot``; in 9-column ground truth a row with ``consider`` = 0 is
  an ignore region, left out);
* a video or image folder with ``gt.txt`` (MOT), ``annotations.xml`` (CVAT for video
  1.1) or ``annotations.json`` (COCO-VID / TAO) beside it: ``clip.mp4`` with
  ``clip.gt.txt``, ``clip.xml`` or ``clip.json``; or inside a folder holding
  ``img/`` or ``img1/``.

Only files that hold several objects are taken here; a file with one object stays with
the single-object loaders.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from trackers.formats.reading import split_fields
from trackers.types import AnnotatedSequence

MOT_GROUNDTRUTH = Path("gt") / "gt.txt"


def _frame_folder(folder: Path) -> Path | None:
    for name in ("img1", "img"):
        if (folder / name).is_dir():
            return folder / name
    return None


def annotation_of(path: Path) -> tuple[Path, Path, str] | None:
    """``(frames, annotation file, format)`` for a multi-object layout at ``path``, else None."""
    if path.is_dir():
        frames = _frame_folder(path)
        if frames is None:
            return None
        for name, kind in (
            (MOT_GROUNDTRUTH, "mot"),
            (Path("gt.txt"), "mot"),
            (Path("annotations.xml"), "cvat"),
            (Path("annotations.json"), "coco"),
        ):
            if (path / name).is_file():
                return frames, path / name, kind
        return None
    if path.is_file():
        for suffix, kind in ((".gt.txt", "mot"), (".xml", "cvat"), (".json", "coco")):
            candidate = path.with_name(path.stem + suffix)
            if candidate.is_file():
                return path, candidate, kind
    return None


def track_ids(annotation: Path, kind: str) -> list[int]:
    """The ids of the objects in an annotation file, in order (MOT ignore rows left out)."""
    if kind == "mot":
        ids: set[int] = set()
        for line in annotation.read_text(encoding="utf-8-sig").splitlines():
            fields = split_fields(line)
            if len(fields) < 6:
                continue
            if len(fields) == 9 and float(fields[6]) == 0:
                continue  # consider = 0: an ignore region, not an object
            ids.add(int(float(fields[1])))
        return sorted(ids)
    if kind == "cvat":
        root = ET.parse(annotation).getroot()
        return [int(t.attrib.get("id", i)) for i, t in enumerate(root.findall("track")) if t.findall("box")]
    data = json.loads(annotation.read_text(encoding="utf-8"))
    found = {a.get("track_id", a.get("instance_id")) for a in data.get("annotations", [])}
    return sorted(v for v in found if isinstance(v, int) and not isinstance(v, bool))


def _mot_without_ignored(annotation: Path, folder: Path) -> Path:
    """A copy of a 9-column MOT ground truth without its ignore rows (consider = 0)."""
    kept = []
    for line in annotation.read_text(encoding="utf-8-sig").splitlines():
        fields = split_fields(line)
        if len(fields) == 9 and float(fields[6]) == 0:
            continue
        kept.append(line)
    out = folder / "gt.txt"
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return out


def object_sequences(path: Path) -> list[AnnotatedSequence]:
    """One sequence per object of the multi-object annotation at ``path``; [] when there is none.

    ValueError (one line) when the annotation is malformed.
    """
    import tempfile

    from trackers.evaluation.metrics import first_valid_frame
    from trackers.formats import coco, cvat, mot
    from trackers.formats.common import FormatError
    from trackers.sources import open_source

    found = annotation_of(path)
    if found is None:
        return []
    frames, annotation, kind = found
    try:
        ids = track_ids(annotation, kind)
    except (OSError, ValueError, ET.ParseError, json.JSONDecodeError) as exc:
        raise ValueError(f"{annotation}: cannot read its objects ({exc})") from None
    if len(ids) < 2:
        return []
    with open_source(frames) as source:
        count = len(source)
        first = source[0]
    size = (int(first.shape[1]), int(first.shape[0]))
    reader = {"mot": mot.read, "cvat": cvat.read, "coco": coco.read}[kind]
    name = path.name if path.is_dir() else path.stem
    sequences = []
    with tempfile.TemporaryDirectory(prefix="siamtrack-gt-") as tmp:
        source_file = _mot_without_ignored(annotation, Path(tmp)) if kind == "mot" else annotation
        for object_id in ids:
            try:
                trajectory = reader(source_file, frame_count=count, frame_size=size, track=object_id)
            except FormatError as exc:
                raise ValueError(str(exc)) from None
            rows = trajectory.to_arrays().boxes
            if first_valid_frame(rows) is None:
                continue
            sequences.append(AnnotatedSequence(f"{name}#{object_id}", frames, rows))
    return sequences
