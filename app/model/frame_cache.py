"""Frame-accurate, fast random access to a video for the viewer, in bounded memory.

Seeking an H.264 file with OpenCV is slow (about 190 ms for 720p) and may land on
the wrong frame. So a background thread decodes the video once, in order, with the
same decoder ``siamtrack track`` streams with, and stores every frame losslessly in
one pack file in the user cache directory; ``get(i)`` then reads one frame back
(one read and one PNG decode). Lossless matters: the viewer shows, and a tracker run
from the cache sees, exactly the pixels streaming decode gives.

* The pack is keyed by the video's content hash, the codec and the OpenCV version
  (another FFmpeg may decode other pixels), so the next session with the same video
  finds it ready and skips indexing.
* Before indexing reaches frame ``i``, ``get(i)`` asks the source itself, which is
  frame-accurate (just slower).
* Memory holds only the ``memory_frames`` most recently used frames and one
  (offset, length) pair per indexed frame.
* PNG, at zlib level 1 with the "up" filter: about 2.5x smaller than raw frames
  and among the fastest lossless formats to decode with what OpenCV offers; its
  CRCs also catch a damaged cache file, which then falls back to the source.

* **Bounded on disk** (``limit_bytes``, the app's setting "frame cache limit"): all
  videos' packs together stay under it. Opening a video touches its folder; making
  room evicts the least recently used other videos first. A video whose own pack
  would not fit stops being indexed at the limit: the frames after that are read
  from the video itself, still exact, just as slow as before indexing reached them.
  ``clear_cache`` empties the cache (the app's Tools menu).

Image folders need none of this: their frames are already files, read directly.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from app.model.project import content_hash
from trackers.output import write_text
from trackers.sources import FrameSource, ImageFolderSource
from trackers.types import Frame
from trackers.user_dirs import user_dir

CODEC = "png1up"
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10
    _PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
PACK_NAME = "frames.pack"
INDEX_NAME = "index.json"
DEFAULT_LIMIT_BYTES = 2 * 1024**3
"""2 GB: about 2,000 frames of 720p, or ten minutes of 480p. The app sets it from its settings."""

Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    return user_dir("cache") / "frames"


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def cache_entries(root: Path | None = None) -> list[tuple[float, int, Path]]:
    """(last used, bytes, folder) of every video in the cache, least recently used first."""
    root = Path(root) if root is not None else default_cache_dir()
    entries = []
    try:
        folders = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    for folder in folders:
        with contextlib.suppress(OSError):
            entries.append((folder.stat().st_mtime, _folder_size(folder), folder))
    return sorted(entries, key=lambda e: e[0])


def cache_usage(root: Path | None = None) -> int:
    """Bytes the frame cache holds on disk."""
    return sum(size for _, size, _ in cache_entries(root))


def clear_cache(root: Path | None = None, keep: Path | None = None) -> int:
    """Delete every cached video but ``keep`` (the one open now); returns the bytes freed."""
    freed = 0
    for _, size, folder in cache_entries(root):
        if keep is not None and folder == Path(keep):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        freed += size
    return freed


def make_room(root: Path, limit_bytes: int, keep: Path | None, wanted: int = 0) -> int:
    """Evict the least recently used videos (never ``keep``) until the others and ``wanted``
    more bytes fit under ``limit_bytes``; returns the bytes the others still hold."""
    others = [e for e in cache_entries(root) if keep is None or e[2] != Path(keep)]
    used = sum(size for _, size, _ in others)
    for _, size, folder in others:
        if used + wanted <= limit_bytes:
            break
        shutil.rmtree(folder, ignore_errors=True)
        used -= size
    return used


def _encode(frame: Frame) -> bytes:
    # The RGB array goes in as it is: PNG stores channels in the order given and
    # imdecode returns them in that order, so no colour conversion is needed either way.
    ok, buffer = cv2.imencode(".png", frame, _PNG_PARAMS)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


def _decode(data: bytes, shape: tuple[int, ...] | None) -> Frame | None:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8 or (shape is not None and image.shape != shape):
        return None
    image.flags.writeable = False
    return image


def _header_frame_count(source: FrameSource) -> int:
    """The container's claimed frame count: only a progress estimate, never trusted."""
    if isinstance(source, ImageFolderSource):
        return len(source)
    # read once when the source opened (a second VideoCapture of a name that is not
    # valid UTF-8 would crash OpenCV; trackers.sources opens those safely)
    return int(getattr(source, "header_frame_count", 0) or 0)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:  # another user's live process
        return True
    return True


STALE_SECONDS = 3600.0
"""A temporary file without a process id (an atomic write's) counts as stale after this long."""

_swept: set[Path] = set()


def remove_stale_temporaries(root: Path) -> int:
    """Delete what killed processes left in the cache folder ``root``; returns how many files.

    ``frames.<pid>.<uuid>.tmp`` is a pack being written (tens of MB); it is stale once
    process ``pid`` is gone (a live one may be indexing the same video right now).
    ``.<name>.<random>.tmp`` is an atomic write's temporary file; it is stale when over
    an hour old. Errors are ignored: cleaning up must never stop the app."""
    removed = 0
    now = time.time()
    try:
        folders = [p for p in Path(root).iterdir() if p.is_dir()]
    except OSError:
        return 0
    for folder in folders:
        try:
            names = list(folder.glob("*.tmp"))
        except OSError:
            continue
        for path in names:
            parts = path.name.split(".")
            try:
                if parts[0] == "frames" and len(parts) == 4 and parts[1].isdigit():
                    stale = not _pid_alive(int(parts[1]))
                elif path.name.startswith("."):
                    stale = now - path.stat().st_mtime > STALE_SECONDS
                else:
                    continue
                if stale and path.is_file():
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed


class FrameCache:
    """``get(i)`` = the source's i-th decoded frame, fast once indexed; see the module notes."""

    def __init__(
        self,
        source: FrameSource,
        memory_frames: int = 64,
        disk_dir: Path | None = None,
        limit_bytes: int | None = None,
    ) -> None:
        if memory_frames < 1:
            raise ValueError(f"memory_frames must be >= 1, got {memory_frames}")
        self.source = source
        self.memory_frames = memory_frames
        self.frame_count: int | None = None
        """Known once indexing finished (or a finished index was found on disk)."""
        self.error: str | None = None
        """Why indexing stopped short, if it did; ``get`` still works from the source."""
        self._memory: OrderedDict[int, Frame] = OrderedDict()
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._offsets: list[tuple[int, int]] = []
        self._shape: tuple[int, ...] | None = None
        self._reader: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._finished = threading.Event()
        """Set whenever no indexing thread runs (finished, stopped or failed)."""
        self._finished.set()
        self.dir: Path | None = None
        """This video's folder in the cache; None for image folders (nothing to cache)."""
        self.limit_bytes = DEFAULT_LIMIT_BYTES if limit_bytes is None else int(limit_bytes)
        self.capped = False
        """Indexing stopped at ``limit_bytes``: later frames come from the source (exact, slower)."""
        if isinstance(source, ImageFolderSource):
            self.frame_count = len(source)
            self._done.set()
            return
        self.root = Path(disk_dir) if disk_dir is not None else default_cache_dir()
        if self.root not in _swept:  # once per process and cache folder: what a SIGKILL left behind
            _swept.add(self.root)
            remove_stale_temporaries(self.root)
        self.dir = self.root / f"{content_hash(source.path)[:32]}-{CODEC}-cv{cv2.__version__}"
        self._load_index()
        if self.dir.is_dir():
            with contextlib.suppress(OSError):
                os.utime(self.dir)  # used now: the last to be evicted

    # --- reading ------------------------------------------------------------------------
    @property
    def indexed(self) -> int:
        """Frames stored so far."""
        return len(self._offsets)

    @property
    def is_indexed(self) -> bool:
        return self._done.is_set() and self.frame_count is not None

    def get(self, index: int) -> Frame:
        """Exactly the source's ``index``-th decoded frame, read-only; IndexError past the end."""
        index = operator.index(index)
        if index < 0:
            if self.frame_count is None:
                raise IndexError("negative frame indices need the frame count; index the video first")
            index += self.frame_count
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise IndexError(f"frame {index} is outside the video's {self.frame_count} frames")
        with self._lock:
            frame = self._memory.get(index)
            if frame is not None:
                self._memory.move_to_end(index)
                return frame
            place = self._offsets[index] if index < len(self._offsets) else None
        frame = self._read_packed(place) if place is not None else None
        if frame is None:
            frame = self.source[index]
        with self._lock:
            self._memory[index] = frame
            self._memory.move_to_end(index)
            while len(self._memory) > self.memory_frames:
                self._memory.popitem(last=False)
        return frame

    __getitem__ = get

    def offer(self, index: int, frame: Frame) -> None:
        """Keep ``frame`` as if ``get(index)`` had read it: for a frame decoded elsewhere
        by the same streaming decoder (the tracking worker's), so the viewer can show the
        frame a run just reached without decoding it again on the GUI thread."""
        with self._lock:
            if index in self._memory:
                return
            self._memory[index] = frame
            while len(self._memory) > self.memory_frames:
                self._memory.popitem(last=False)

    def memory_size(self) -> int:
        """Frames held in memory now (at most ``memory_frames``)."""
        with self._lock:
            return len(self._memory)

    def _read_packed(self, place: tuple[int, int]) -> Frame | None:
        offset, length = place
        with self._read_lock:
            if self._reader is None:
                return None
            try:
                self._reader.seek(offset)
                data = self._reader.read(length)
            except (OSError, ValueError):
                return None
        return _decode(data, self._shape) if len(data) == length else None

    # --- indexing -----------------------------------------------------------------------
    def start_indexing(self, progress: Progress | None = None) -> None:
        """Decode and store every frame in a background thread; ``progress(done, total)`` per frame.

        ``total`` is the container's claim until the end, where ``done == total`` is the
        true count. ``progress`` runs on the indexing thread.
        """
        if self._done.is_set():
            if progress is not None and self.frame_count is not None:
                progress(self.frame_count, self.frame_count)
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._finished.clear()
        self._thread = threading.Thread(target=self._index, args=(progress,), name="frame-index", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until indexing ends; True when every frame is indexed (False on timeout or failure)."""
        self._finished.wait(timeout)
        return self._done.is_set()

    def stop(self) -> None:
        """Stop indexing and join its thread; what was stored stays readable."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join()
        self._thread = None

    def close(self) -> None:
        """Stop and release the cache file (the source stays open: it is the caller's)."""
        self.stop()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> FrameCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _index(self, progress: Progress | None) -> None:
        assert self.dir is not None
        # The pack is not written with trackers.output.atomic_write: get() reads its frames
        # from the temporary file while indexing goes on, a stop() must leave it unrenamed
        # (atomic_write renames whenever its block ends without an error), and its name
        # carries our pid so that remove_stale_temporaries spares a live indexer's pack.
        tmp = self.dir / f"frames.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            others = make_room(self.root, self.limit_bytes, keep=self.dir)
            estimate = _header_frame_count(self.source)
            with tmp.open("wb") as out:
                with self._read_lock, self._lock:
                    # A restart after stop(): start over. The encoding is deterministic, so
                    # a get() still holding an old offset reads the same bytes, or too few.
                    if self._reader is not None:
                        self._reader.close()
                    self._reader = tmp.open("rb")
                    self._offsets = []
                position = 0
                for index, frame in enumerate(self.source.iter_from(0)):
                    if self._stop.is_set():
                        return
                    data = _encode(frame)
                    if others + position + len(data) > self.limit_bytes:
                        # full: evict more of the others, or stop here (the rest comes from the source)
                        others = make_room(self.root, self.limit_bytes, self.dir, position + len(data))
                        if others + position + len(data) > self.limit_bytes:
                            self.capped = True
                            return
                    out.write(data)
                    # Flushed per frame so the reader's descriptor sees it at once.
                    out.flush()
                    with self._lock:
                        if self._shape is None:
                            self._shape = frame.shape
                        self._offsets.append((position, len(data)))
                    position += len(data)
                    if progress is not None:
                        progress(index + 1, max(estimate, index + 1))
            # The pack first, then the index that vouches for it.
            os.replace(tmp, self.dir / PACK_NAME)
            count = len(self._offsets)
            index_data = {
                "codec": CODEC,
                "frame_count": count,
                "shape": list(self._shape or ()),
                "offsets": [list(p) for p in self._offsets],
            }
            write_text(self.dir / INDEX_NAME, json.dumps(index_data, separators=(",", ":")))
            self.frame_count = count
            self._done.set()
            if progress is not None:
                progress(count, count)
        except Exception as exc:  # a full disk or an undecodable tail must not kill the viewer
            self.error = f"Indexing {self.source.path} stopped: {exc}".replace("\n", " ")
        finally:
            # Unlinking keeps the data readable through the open reader (POSIX), so
            # frames indexed before a stop() stay fast.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self._finished.set()

    def _load_index(self) -> None:
        """Pick up a finished index from an earlier session, if there is a sound one."""
        assert self.dir is not None
        try:
            data: Any = json.loads((self.dir / INDEX_NAME).read_text(encoding="utf-8"))
            offsets = [(int(o), int(n)) for o, n in data["offsets"]]
            count = int(data["frame_count"])
            shape = tuple(int(v) for v in data["shape"])
            pack = self.dir / PACK_NAME
            end = offsets[-1][0] + offsets[-1][1] if offsets else 0
            if data.get("codec") != CODEC or count != len(offsets) or count == 0 or pack.stat().st_size < end:
                return
            reader = pack.open("rb")
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return
        self._offsets, self._shape, self._reader = offsets, shape, reader
        self.frame_count = count
        self._done.set()
