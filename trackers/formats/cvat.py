"""CVAT for video 1.1 XML: a ``<track>`` of ``<box>`` elements.

Layout (cvat-ai/cvat ``site/content/en/docs/manual/advanced/xml_format.md``)::

    <annotations><version>1.1</version>
      <meta><task><size/><mode>interpolation</mode>...<original_size><width/><height/></original_size></task></meta>
      <track id="0" label="object" source="manual">
        <box frame="0" xtl ytl xbr ybr outside="0" occluded="0" keyframe="1" z_order="0"/>

Frames are 0-based; ``xtl, ytl, xbr, ybr`` are the corners in continuous pixel
coordinates, the same convention as ours (x1 = x + w). We write it ourselves:
datumaro's ``cvat`` exporter writes CVAT for images.

Reading follows CVAT's own meaning of a sparse track: before the first box and
after an ``outside="1"`` box, up to the next box, the target is absent; between
two visible boxes CVAT interpolates linearly, and after the last visible box the
box stays. Those filled frames read as interpolated. We write a box for every
frame (as CVAT's exports do), so nothing is left to fill: an unannotated frame is
written as ``outside`` (absent).

Every box we write is ``keyframe="1"``: CVAT's importer
(``cvat/apps/dataset_manager/bindings.py``, ``import_dm_annotations``) keeps a
track shape only when it is a keyframe or outside, and interpolates the rest, so a
tracked, interpolated or imported box written as ``keyframe="0"`` would be lost.
Our own origin goes in a mutable ``origin`` attribute of the box (declared on the
label in ``<meta>``), which CVAT keeps and shows. Reading a file without that
attribute, ``keyframe="1"`` is a keyframe and ``keyframe="0"`` imported.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video
from trackers.formats.numbers import format_pixel, parse_flag, parse_int, parse_number
from trackers.formats.reading import file_head
from trackers.formats.safe_xml import XmlNode, parse_xml, sub, xml_text
from trackers.formats.tracks import Track, check_ids, stable_ids
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box

VERSION = "1.1"
ORIGIN_ATTRIBUTE = "origin"


def _box_tracks(root: XmlNode) -> list[XmlNode]:
    return [t for t in root.findall("track") if t.findall("box")]


def _choose_track(path: Path, root: XmlNode, track: int | None) -> XmlNode:
    tracks = _box_tracks(root)
    ids = [t.attrib.get("id", str(i)) for i, t in enumerate(root.findall("track"))]
    if track is not None:
        for index, node in enumerate(root.findall("track")):
            if node.attrib.get("id", str(index)) == str(track) and node.findall("box"):
                return node
        raise FormatError(path, f"has no box track with id {track} (ids: {', '.join(ids) or 'none'})")
    if len(tracks) == 1:
        return tracks[0]
    if not tracks:
        if root.findall("image"):
            raise FormatError(path, "is CVAT for images (<image>), not CVAT for video (<track>)")
        raise FormatError(path, "holds no <track> of <box> elements")
    raise FormatError(
        path, f"holds {len(tracks)} box tracks (ids: {', '.join(ids)}): choose one with --track"
    )


def _meta(path: Path, root: XmlNode) -> tuple[int | None, tuple[int, int] | None]:
    """Frame count and size from ``<meta><task>`` (or ``<job>``), where given."""
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")  # a job's export says <job> where a task's says <task>
    if task is None:
        return None, None
    count = None
    size_node = task.find("size")
    if size_node is not None and size_node.text.strip():
        count = parse_int(size_node.text, path, size_node.line, "<size>")
        check_frames(path, count, size_node.line, "<size>")
    else:
        stop = task.find("stop_frame")
        if stop is not None and stop.text.strip():
            count = parse_int(stop.text, path, stop.line, "<stop_frame>") + 1
            check_frames(path, count, stop.line, "<stop_frame>")
    frame_size = None
    original = task.find("original_size")
    if original is not None:
        w, h = original.find("width"), original.find("height")
        if w is None or h is None:
            raise FormatError(path, "<original_size> needs <width> and <height>", original.line)
        frame_size = (
            parse_int(w.text, path, w.line, "<width>"),
            parse_int(h.text, path, h.line, "<height>"),
        )
        if frame_size[0] <= 0 or frame_size[1] <= 0:
            raise FormatError(path, "<original_size> must be positive", original.line)
    return count, frame_size


def _read_box(path: Path, node: XmlNode) -> tuple[int, Entry]:
    def attr(name: str) -> str:
        if name not in node.attrib:
            raise FormatError(path, f"<box> lacks the {name} attribute", node.line)
        return node.attrib[name]

    frame = check_frames(path, parse_int(attr("frame"), path, node.line, "frame"), node.line)
    if frame < 0:
        raise FormatError(path, f"frame must be >= 0, got {frame}", node.line)
    x0, y0, x1, y1 = (parse_number(attr(n), path, node.line, n) for n in ("xtl", "ytl", "xbr", "ybr"))
    if x1 < x0 or y1 < y0:
        raise FormatError(path, "xbr/ybr lie before xtl/ytl", node.line)
    outside = parse_flag(node.attrib.get("outside", "0"), path, node.line, "outside")
    occluded = parse_flag(node.attrib.get("occluded", "0"), path, node.line, "occluded")
    keyframe = parse_flag(node.attrib.get("keyframe", "1"), path, node.line, "keyframe")
    origin = Origin.KEYFRAME if keyframe else Origin.IMPORTED
    for attribute in node.findall("attribute"):
        if attribute.attrib.get("name") == ORIGIN_ATTRIBUTE:
            try:
                origin = Origin(attribute.text.strip())
            except ValueError:
                names = ", ".join(o.value for o in Origin)
                raise FormatError(
                    path,
                    f"origin attribute: expected one of {names}, got {attribute.text.strip()!r}",
                    attribute.line,
                ) from None
    if outside:
        return frame, Entry(None, origin)
    return frame, Entry(Box.from_corners(x0, y0, x1, y1), origin, occluded=occluded)


def _lerp(a: Box, b: Box, t: float) -> Box:
    return Box(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t)


def _fill(shapes: list[tuple[int, Entry]], count: int) -> list[Entry | None]:
    """Every frame of the task, as CVAT shows the track (see the module notes)."""
    entries: list[Entry | None] = [Entry(None)] * count
    for k, (frame, entry) in enumerate(shapes):
        entries[frame] = entry
        if entry.box is None:
            continue  # absent until the next shape, which the default already says
        stop = shapes[k + 1][0] if k + 1 < len(shapes) else count
        following = shapes[k + 1][1].box if k + 1 < len(shapes) else None
        for between in range(frame + 1, stop):
            if following is None:
                box = entry.box  # CVAT keeps the last box until the track goes outside
            else:
                box = _lerp(entry.box, following, (between - frame) / (stop - frame))
            entries[between] = Entry(box, Origin.INTERPOLATED, occluded=entry.occluded)
    return entries


def _trajectory(
    path: Path,
    node: XmlNode,
    meta: tuple[int | None, tuple[int, int] | None],
    frame_count: int | None,
    frame_size: tuple[int, int] | None,
) -> Trajectory:
    label = node.attrib.get("label", "").strip() or DEFAULT_LABEL
    meta_count, meta_size = meta
    shapes: dict[int, tuple[int, Entry]] = {}
    for box in node.findall("box"):
        frame, entry = _read_box(path, box)
        if frame in shapes:
            raise FormatError(
                path, f"a second <box> for frame {frame} (first on line {shapes[frame][0]})", box.line
            )
        shapes[frame] = (box.line, entry)
    ordered = [(frame, entry) for frame, (_line, entry) in sorted(shapes.items())]

    last = ordered[-1][0] + 1 if ordered else 0
    count = meta_count if meta_count is not None else frame_count if frame_count is not None else last
    if last > count:
        raise FormatError(path, f"has a box on frame {last - 1} but the task has {count} frames")
    trajectory = Trajectory(tuple(_fill(ordered, count)), meta_size, label)
    return fit_to_video(trajectory, path, frame_count, frame_size)


def _root(path: Path) -> XmlNode:
    root = parse_xml(Path(path))
    if root.tag != "annotations":
        raise FormatError(path, f"expected <annotations> at the top, got <{root.tag}>", root.line)
    return root


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    path = Path(path)
    root = _root(path)
    node = _choose_track(path, root, track)
    return _trajectory(path, node, _meta(path, root), frame_count, frame_size)


def read_tracks(
    path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
) -> list[Track]:
    """Every ``<track>`` of boxes, with its id (CVAT's ``id``) and label."""
    path = Path(path)
    root = _root(path)
    nodes = _box_tracks(root)
    if not nodes and root.findall("image"):
        raise FormatError(path, "is CVAT for images (<image>), not CVAT for video (<track>)")
    meta = _meta(path, root)
    ids = stable_ids(node.attrib.get("id", str(i)) for i, node in enumerate(nodes))
    tracks = []
    for index, node in enumerate(nodes):
        trajectory = _trajectory(path, node, meta, frame_count, frame_size)
        tracks.append(Track(ids[node.attrib.get("id", str(index))], trajectory.label, trajectory))
    return tracks


def write(trajectory: Trajectory, path: Path) -> None:
    write_tracks([Track(0, trajectory.label, trajectory)], path)


def write_tracks(tracks: Sequence[Track], path: Path) -> None:
    """One ``<track>`` per object; every box a keyframe, our origin in an attribute."""
    path = Path(path)
    check_ids(tracks, path)
    count = max((t.trajectory.frame_count for t in tracks), default=0)
    sizes = {t.trajectory.frame_size for t in tracks} - {None}
    if len(sizes) > 1:
        raise FormatError(path, f"the objects' frame sizes differ: {sorted(sizes)}")
    frame_size = next(iter(sizes), None)
    labels = list(dict.fromkeys(t.label for t in tracks))
    root = ET.Element("annotations")
    sub(root, "version", VERSION)
    task = sub(sub(root, "meta"), "task")
    sub(task, "name", labels[0] if len(labels) == 1 else "siamtrack")
    sub(task, "size", str(count))
    sub(task, "mode", "interpolation")
    sub(task, "overlap", "0")
    sub(task, "flipped", "False")
    sub(task, "start_frame", "0")
    sub(task, "stop_frame", str(max(count - 1, 0)))
    labels_node = sub(task, "labels")
    for name in labels:
        label = sub(labels_node, "label")
        sub(label, "name", name)
        sub(label, "type", "rectangle")
        attribute = sub(sub(label, "attributes"), "attribute")
        sub(attribute, "name", ORIGIN_ATTRIBUTE)
        sub(attribute, "mutable", "True")
        sub(attribute, "input_type", "select")
        sub(attribute, "default_value", Origin.IMPORTED.value)
        sub(attribute, "values", "\n".join(o.value for o in Origin))
    if frame_size is not None:
        original = sub(task, "original_size")
        sub(original, "width", str(frame_size[0]))
        sub(original, "height", str(frame_size[1]))
    for item in tracks:
        _write_track(root, item, count)
    write_text_atomic(path, xml_text(root))


def _write_track(root: ET.Element, item: Track, count: int) -> None:
    track = sub(root, "track", id=str(item.id), label=item.label, source="manual")
    last = Box(0, 0, 0, 0)  # an outside box still needs coordinates: CVAT repeats the last ones
    for index, entry in enumerate(item.trajectory.with_frame_count(count).entries):
        box = None if entry is None else entry.box
        last = box if box is not None else last
        x0, y0, x1, y1 = last.corners()
        node = sub(
            track,
            "box",
            frame=str(index),
            keyframe="1",  # see the module notes: CVAT keeps only keyframes
            outside="1" if box is None else "0",
            occluded="1" if entry is not None and entry.occluded else "0",
            xtl=format_pixel(x0),
            ytl=format_pixel(y0),
            xbr=format_pixel(x1),
            ybr=format_pixel(y1),
            z_order="0",
        )
        origin = Origin.IMPORTED if entry is None else entry.origin  # unannotated: a plain absence
        sub(node, "attribute", origin.value, name=ORIGIN_ATTRIBUTE)


def looks_like(path: Path) -> bool:
    """An XML file whose top element is ``<annotations>`` (CVAT's)."""
    return b"<annotations" in file_head(path, 4096)


FORMAT = Format(
    name="cvat",
    title="CVAT for video 1.1 XML (<track> of <box>, 0-based frames, corners)",
    layout="file",
    fields=frozenset(
        {
            "box",
            "absent",
            "absent_record",
            "keyframe",
            "origin",
            "occluded",
            "label",
            "frame_size",
            "frame_count",
        }
    ),
    read=read,
    write=write,
    multi_track=True,
    read_tracks=read_tracks,
    write_tracks=write_tracks,
)
