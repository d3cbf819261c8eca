"""What every format module shares: the error type, text and XML reading, atomic writes.

Rules kept here so that each format module only deals with its own layout:

* Errors are :class:`FormatError` (a ValueError), one line, naming the file and,
  where there is one, the line.
* Readers build the whole trajectory before returning, so an import either
  succeeds or raises; nothing is half-read.
* Writes go to a temporary file (or folder) beside the target and are renamed
  into place, so a failed export leaves the earlier one as it was.
* XML is parsed with expat and any DOCTYPE is refused outright: no DTD, no
  entity declarations, nothing fetched or expanded (defusedxml's rules, without
  the dependency).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol
from xml.parsers import expat

from trackers.trajectory import Trajectory

if TYPE_CHECKING:
    from trackers.formats.tracks import Track


class FormatError(ValueError):
    """A file that cannot be read or written as the format says; the message is one line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = " ".join(str(problem).split())
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {self.problem}")


# --------------------------------------------------------------------------- the registry entry

FIELDS: dict[str, str] = {
    "box": "the box of a visible target",
    "absent": "frames where the target is not visible",
    "unannotated": "frames nobody annotated, told apart from absent ones",
    "absent_record": "absent frames are written as records, so they keep what else the format holds",
    "keyframe": "which entries the user drew or fixed",
    "origin": "where each entry came from: keyframe, tracked, interpolated, imported",
    "score": "the tracker's score per frame",
    "occluded": "a visible target is partly occluded",
    "label": "the object's class name",
    "frame_size": "the frames' width and height",
    "frame_count": "the number of frames, trailing unannotated ones included",
}
"""What a trajectory can carry, in the order messages list them."""


class Reader(Protocol):
    def __call__(
        self,
        path: Path,
        *,
        frame_count: int | None = None,
        frame_size: tuple[int, int] | None = None,
        track: int | None = None,
    ) -> Trajectory: ...


class Writer(Protocol):
    def __call__(self, trajectory: Trajectory, path: Path) -> None: ...


class TracksReader(Protocol):
    def __call__(
        self, path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
    ) -> list[Track]: ...


class TracksWriter(Protocol):
    def __call__(self, tracks: Sequence[Track], path: Path) -> None: ...


@dataclass(frozen=True)
class Format:
    """One annotation format: how to read and write it, and what it can hold."""

    name: str
    title: str
    layout: Literal["file", "folder"]
    fields: frozenset[str]
    read: Reader
    write: Writer
    multi_track: bool = False
    """The format holds several objects; readers take ``track`` to choose one."""
    needs_frame_size: bool = False
    """Reading and writing need the frame size (a --video), the file does not hold it."""
    read_tracks: TracksReader | None = None
    """Every object of a multi-object file (multi-track formats only)."""
    write_tracks: TracksWriter | None = None
    """Several objects into one file or folder (multi-track formats only)."""

    def __post_init__(self) -> None:
        unknown = self.fields - FIELDS.keys()
        if unknown:
            raise ValueError(f"{self.name}: unknown fields {sorted(unknown)}")


# --------------------------------------------------------------------------- numbers


def format_number(value: float) -> str:
    """The shortest text that reads back as exactly ``value``; whole numbers without ``.0``."""
    text = repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


PIXEL_DECIMALS = 2
"""Pixel coordinates in MOT and CVAT files are rounded to 0.01 px: finer is noise, and
``633.1741662612833`` in a file a person reads is clutter (a round trip moves a box by
at most 0.005 px, a CVAT corner-derived size by 0.01 px)."""


def format_pixel(value: float) -> str:
    """``value`` rounded to :data:`PIXEL_DECIMALS` places, written as short as it reads back."""
    return format_number(round(float(value), PIXEL_DECIMALS))


def parse_number(text: str, path: Path, line: int | None, what: str) -> float:
    """A finite float, or a FormatError naming ``what`` was expected."""
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"{what}: expected a number, got {text.strip()!r}", line) from None
    if not math.isfinite(value):
        raise FormatError(path, f"{what}: expected a finite number, got {text.strip()!r}", line)
    return value


def parse_int(text: str, path: Path, line: int | None, what: str) -> int:
    """A whole number; ``"3.0"`` is accepted, ``"3.5"`` is not."""
    value = parse_number(text, path, line, what)
    if not value.is_integer():
        raise FormatError(path, f"{what}: expected a whole number, got {text.strip()!r}", line)
    return int(value)


def parse_flag(text: str, path: Path, line: int | None, what: str) -> bool:
    value = text.strip()
    if value in ("0", "1"):
        return value == "1"
    if value.lower() in ("true", "false"):  # CVAT and datumaro write both spellings
        return value.lower() == "true"
    raise FormatError(path, f"{what}: expected 0 or 1, got {value!r}", line)


# --------------------------------------------------------------------------- text files


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed); unreadable or undecodable files raise FormatError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(path, "not UTF-8 text", line) from None


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of every line up to the last non-blank one.

    Blank lines in the middle are kept (as ``""``) so that readers, for which a
    line is a frame, can refuse them with the line number.
    """
    lines = [(n, text.strip()) for n, text in enumerate(read_text(path).splitlines(), start=1)]
    while lines and not lines[-1][1]:
        lines.pop()
    return lines


_SEPARATORS = re.compile(r"[,\s]+")


def split_fields(text: str) -> list[str]:
    """Fields separated by commas, tabs or spaces (OTB files use all three)."""
    return [f for f in _SEPARATORS.split(text.strip()) if f]


def sequence_folder(path: Path) -> Path:
    """The folder of a folder format, given the folder or a file in it."""
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    return path if path.is_dir() else path.parent


# --------------------------------------------------------------------------- frame files

MAX_FRAMES = 10_000_000
"""Frame numbers from this on are taken for typos (over three days at 30 fps): a
trajectory that long would be built in memory frame by frame."""


def check_frames(path: Path, count: int, line: int | None = None, what: str = "frame") -> int:
    """``count`` (a frame number or count), unless it is absurdly large."""
    if count >= MAX_FRAMES:
        raise FormatError(path, f"{what} {count} is past the {MAX_FRAMES:,} frames siamtrack accepts", line)
    return count


FRAME_STEM = "frame_{:06d}"
"""Per-frame file names we write (CVAT's and datumaro's), 0-based."""
_OUR_STEM = re.compile(r"frame_(\d+)")
_DIGITS = re.compile(r"\d+")


def frame_stem(index: int) -> str:
    return FRAME_STEM.format(index)


def index_from_stem(stem: str) -> int | None:
    """The 0-based frame a per-frame file belongs to, from its name.

    ``frame_000012`` is frame 12 (CVAT's and our 0-based naming). A name of digits
    only, ``00000013``, is also frame 12: OTB, GOT-10k, LaSOT and ffmpeg number
    frame files from 1. Anything else is None.
    """
    match = _OUR_STEM.fullmatch(stem)
    if match:
        return int(match.group(1))
    if _DIGITS.fullmatch(stem) and int(stem) >= 1:
        return int(stem) - 1
    return None


# --------------------------------------------------------------------------- video hints


def fit_to_video(
    trajectory: Trajectory,
    path: Path,
    frame_count: int | None,
    frame_size: tuple[int, int] | None,
) -> Trajectory:
    """Give a read trajectory the video's frame count and size, where they are known.

    A file that places a box past the video's end, or that states another frame
    size than the video's, does not belong to that video: FormatError. Absent or
    unannotated frames past the end are dropped.
    """
    if frame_size is not None:
        frame_size = (int(frame_size[0]), int(frame_size[1]))
        if trajectory.frame_size is not None and trajectory.frame_size != frame_size:
            w, h = trajectory.frame_size
            raise FormatError(
                path, f"the file is for {w}x{h} frames but the video's are {frame_size[0]}x{frame_size[1]}"
            )
        trajectory = replace(trajectory, frame_size=frame_size)
    if frame_count is not None:
        for index in range(frame_count, trajectory.frame_count):
            entry = trajectory[index]
            if entry is not None and entry.box is not None:
                raise FormatError(
                    path,
                    f"has a box on frame {index} (0-based) but the video has only {frame_count} frames",
                )
        trajectory = trajectory.with_frame_count(frame_count)
    return trajectory


# --------------------------------------------------------------------------- atomic writes


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file beside ``path`` and a rename: never a half-written file."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Atomically, through a link to its target; a FIFO or device is refused (``trackers.output``)."""
    from trackers.output import OutputError, write_bytes

    path = Path(path)
    if path.is_dir():
        raise FormatError(path, "is a folder; this format is written to a file")
    try:
        write_bytes(path, data)
    except OutputError as exc:
        raise FormatError(path, exc.problem) from None


def _files_under(folder: Path) -> Iterator[str]:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            yield (Path(root) / name).relative_to(folder).as_posix()


def replace_folder(target: Path, fill: Callable[[Path], None], owns: Callable[[str], bool]) -> None:
    """Build a folder format in a temporary folder beside ``target``, then swap it in.

    ``fill(tmp)`` writes every file. If it fails, ``target`` is untouched. An
    existing ``target`` is replaced only when every file in it is one this format
    writes (``owns(relative posix path)``): so pointing an export at the wrong
    folder can never delete anybody's files.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FormatError(target, "exists and is a file; this format is written to a folder")
    if target.is_dir():
        for relative in _files_under(target):
            if not owns(relative):
                raise FormatError(
                    target,
                    f"exists and holds {relative}, which this export would not write; "
                    "choose a new or empty folder",
                )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        fill(tmp)
        # On disk before the swap: otherwise a crash just after it could leave empty files
        # where the earlier export was; and a full disk often only shows here.
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Two renames: the old folder steps aside, the new one takes its name. If the
    # second fails, the old one is put back.
    old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
    try:
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.rename(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# --------------------------------------------------------------------------- XML


@dataclass
class XmlNode:
    """One element of a parsed XML file, with the line it starts on."""

    tag: str
    attrib: dict[str, str]
    line: int
    children: list[XmlNode] = field(default_factory=list)
    text: str = ""

    def findall(self, tag: str) -> list[XmlNode]:
        return [c for c in self.children if c.tag == tag]

    def find(self, path: str) -> XmlNode | None:
        """The first element along ``a/b/c``, or None."""
        node: XmlNode | None = self
        for tag in path.split("/"):
            node = next((c for c in node.children if c.tag == tag), None) if node else None
        return node

    def findtext(self, path: str) -> str | None:
        node = self.find(path)
        return None if node is None else node.text.strip()


class _Refused(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def parse_xml(path: Path) -> XmlNode:
    """Parse an XML file into XmlNodes; a DOCTYPE, an entity or bad XML raise FormatError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot be read ({exc.strerror})") from None

    parser = expat.ParserCreate()
    # Belt and braces: the DOCTYPE handler below already stops before any DTD is read.
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[XmlNode] = []
    roots: list[XmlNode] = []
    texts: list[list[str]] = []

    def refuse_doctype(*_args: object) -> None:
        raise _Refused("a DOCTYPE declaration is not accepted (no DTDs or entities)")

    def refuse_entity(*_args: object) -> None:
        raise _Refused("an ENTITY declaration is not accepted")

    def refuse_external(*_args: object) -> int:
        raise _Refused("an external entity is not accepted")

    def start(tag: str, attrib: dict[str, str]) -> None:
        node = XmlNode(tag, dict(attrib), parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
        texts.append([])

    def end(_tag: str) -> None:
        stack.pop().text = "".join(texts.pop())

    def characters(data: str) -> None:
        if texts:
            texts[-1].append(data)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise FormatError(path, exc.what, parser.CurrentLineNumber) from None
    except LookupError as exc:  # an encoding="..." that Python does not know
        raise FormatError(path, f"unknown text encoding ({exc})", parser.CurrentLineNumber) from None
    except expat.ExpatError as exc:
        raise FormatError(path, f"not well-formed XML ({expat.ErrorString(exc.code)})", exc.lineno) from None
    if not roots:
        raise FormatError(path, "holds no XML element")
    return roots[0]


def xml_text(root: ET.Element) -> str:
    """An element tree as indented UTF-8 XML text with a declaration."""
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append a child element, optionally with text."""
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child
