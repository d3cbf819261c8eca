"""Frame sources: a video file or a folder of images, read as RGB frames.

Every source hands out frames under the conventions of :mod:`trackers.types`:
``H x W x 3`` ``uint8`` RGB arrays, read-only, converted once at decode.

Two ways to read, with different costs:

* ``iter_from(start, stop)`` / ``iter(source)`` stream frames in order with a
  private decoder, so they are cheap and never need the frame count.
* ``source[i]`` is frame-accurate random access. For videos it keeps one
  sequential decoder and only ever decodes forwards (reopening the file to go
  back), because seeking with ``CAP_PROP_POS_FRAMES`` lands on the wrong frame
  in H.264 files and is slow anyway. A few recent frames are cached.

``len(source)`` of a video is the number of frames that actually decode; the
container header is not trusted (real files claim twice the frames they hold).
Counting decodes the whole file once, lazily, the first time it is asked for.
Mind that ``list(source)`` asks ``len()`` for a size hint before iterating;
``list(source.iter_from())`` streams without counting.

Sources are not meant to be shared between threads except for ``source[i]``,
which is serialised by a lock.
"""

from __future__ import annotations

import math
import operator
import os
import re
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.types import Frame

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_FPS = 30.0
"""What a source reports when it has no frame rate of its own (image folders)."""
CACHE_FRAMES = 8
"""Recently decoded frames kept per source: enough for stepping back and forth."""


class SourceError(ValueError):
    """A path could not be opened or read as frames; the message is one line for the user."""


def _fail(path: Path, problem: str) -> SourceError:
    # One line whatever the path holds, so the message fits a status bar or a dialog title.
    return SourceError(f"Cannot open {path}: {problem}".replace("\n", " "))


def _to_rgb8(image: NDArray, path: Path) -> Frame:
    """Normalise what OpenCV decoded (BGR order, any depth, maybe alpha) to a read-only frame."""
    if image.dtype == np.uint16:
        # 65535 / 257 == 255, so the full 16-bit range maps exactly onto 8 bits; +128 rounds.
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise _fail(path, f"unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (1, 2):
        image = image[:, :, 0]  # grey, or grey + alpha: the alpha is dropped
    if image.ndim == 2:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 3:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        raise _fail(path, f"unsupported image shape {image.shape}")
    rgb.flags.writeable = False
    return rgb


class FrameSource(ABC):
    """A finite sequence of frames with random access and cheap sequential streaming."""

    path: Path
    fps: float
    size: tuple[int, int]
    """(width, height) of frame 0."""

    def __init__(self) -> None:
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._lock = threading.RLock()
        self._closed = False

    # --- what a concrete source provides -------------------------------------------------
    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _read(self, index: int) -> Frame | None:
        """Decode frame ``index >= 0``; None when the source has fewer frames."""

    @abstractmethod
    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        """Frames ``start`` up to (excluding) ``stop``, or to the end, decoded in order."""

    def _release(self) -> None:  # noqa: B027 - optional: a source without decoders frees nothing
        """Free decoders; called once by ``close``."""

    # --- shared behaviour ---------------------------------------------------------------
    def __getitem__(self, index: int) -> Frame:
        index = operator.index(index)  # ints and numpy ints; slices are not supported
        with self._lock:
            self._check_open()
            if index < 0:
                index += len(self)
                if index < 0:
                    raise IndexError(f"frame index out of range for {len(self)} frames")
            frame = self._cache.get(index)
            if frame is not None:
                self._cache.move_to_end(index)
                return frame
            frame = self._read(index)
            if frame is None:
                raise IndexError(f"frame {index} is past the end of {self.path}")
            self._cache[index] = frame
            if len(self._cache) > CACHE_FRAMES:
                self._cache.popitem(last=False)
            return frame

    def __bool__(self) -> bool:
        # Without this, ``if source:`` would call __len__ and decode a whole video.
        # Every source holds at least one frame: opening checks that.
        return True

    def __iter__(self) -> Iterator[Frame]:
        return self.iter_from(0)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._cache.clear()
                self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise SourceError(f"Cannot read {self.path}: the source is closed")

    def _span(self, start: int, stop: int | None) -> tuple[int, int | None]:
        """Resolve negative bounds like a list does; only they need the frame count."""
        self._check_open()
        if start < 0:
            start = max(start + len(self), 0)
        if stop is not None and stop < 0:
            stop = max(stop + len(self), 0)
        return start, stop


# --- image folders ------------------------------------------------------------------------


def frame_sort_key(path: Path) -> tuple[tuple[object, ...], str]:
    """Sort key for frame files: the numbers in the stem compare as numbers.

    ``2.jpg`` comes before ``10.jpg``; ``0001.jpg`` and ``000001.jpg`` are both
    frame 1 and fall back on the name, so the order is always total and stable.
    Text between numbers compares case-insensitively, so ``left_2`` < ``right_1``.
    """
    # re.split with a capturing group alternates text, number, text, ...; so every
    # position holds the same type in every key and tuples compare cleanly.
    parts = re.split(r"(\d+)", path.stem)
    key = tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts))
    return key, path.name


def _image_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=frame_sort_key)


def _cv_reason(exc: BaseException) -> str:
    """The line of a multi-line cv2.error that says what went wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _read_image(path: Path) -> Frame:
    try:
        # np.fromfile + imdecode instead of imread: imread cannot open non-ASCII paths
        # on Windows, and this reads the same bytes everywhere.
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise _fail(path, f"the frame file cannot be read ({exc.strerror})") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:
        # OpenCV raises (rather than returning None) for headers it refuses outright,
        # e.g. a decompression bomb claiming more than CV_IO_MAX_IMAGE_PIXELS.
        raise _fail(path, f"the frame file is not a readable image ({_cv_reason(exc)})") from None
    if image is None:
        raise _fail(path, "the frame file is not a readable image")
    return _to_rgb8(image, path)


class ImageFolderSource(FrameSource):
    """The images of one folder, in numeric order of their names.

    Frames may differ in size within a folder: each frame keeps its own size, and
    ``size`` is that of frame 0. A frame that cannot be read raises SourceError
    naming the file when it is reached.
    """

    def __init__(self, path: Path, files: list[Path]) -> None:
        super().__init__()
        self.path = path
        self.files: tuple[Path, ...] = tuple(files)
        self.fps = DEFAULT_FPS
        first = self[0]
        self.size = (first.shape[1], first.shape[0])

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, index: int) -> Frame | None:
        return _read_image(self.files[index]) if index < len(self.files) else None

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        start, stop = self._span(start, stop)
        for index in range(start, len(self.files) if stop is None else min(stop, len(self.files))):
            self._check_open()
            yield _read_image(self.files[index])


# --- videos -------------------------------------------------------------------------------


def _capture_name(path: Path) -> tuple[str, int | None]:
    """The name to give cv2.VideoCapture for ``path``, and a descriptor to close after it (or None).

    OpenCV takes a file name as UTF-8 text, and a Linux name that is not valid UTF-8
    (legal there; Python holds it with lone surrogates) crashes it outright. Such a file
    is opened here and handed over as ``/proc/self/fd/N``, which FFmpeg reads like any file.
    """
    name = str(path)
    try:
        name.encode("utf-8")
        return name, None
    except UnicodeEncodeError:
        pass
    if not os.path.isdir("/proc/self/fd"):
        raise _fail(path, "the file name is not valid UTF-8, which OpenCV cannot open; rename the file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _fail(path, exc.strerror or str(exc)) from None
    return f"/proc/self/fd/{fd}", fd


class _Decoder:
    """One cv2.VideoCapture read strictly forwards, knowing which frame comes next."""

    def __init__(self, path: Path) -> None:
        self.path = path
        name, self._fd = _capture_name(path)
        try:
            # Name the FFmpeg backend: with the default preference OpenCV may hand a name
            # containing '%' to its image-sequence reader instead of opening the file.
            self.capture = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
        except cv2.error as exc:
            self._close_fd()
            raise _fail(path, f"not a video file that can be decoded ({_cv_reason(exc)})") from None
        self.next_index = 0
        self.at_end = False

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _failed(self, exc: cv2.error) -> SourceError:
        # cv2 raises for some damaged streams instead of reporting the end: a message, not a crash.
        return _fail(self.path, f"frame {self.next_index} cannot be decoded ({_cv_reason(exc)})")

    def skip_to(self, index: int) -> bool:
        """Decode without colour conversion up to ``index``; False if the video ends first."""
        while self.next_index < index:
            try:
                grabbed = self.capture.grab()
            except cv2.error as exc:
                raise self._failed(exc) from None
            if not grabbed:
                self.at_end = True
                return False
            self.next_index += 1
        return True

    def read(self) -> NDArray | None:
        try:
            ok, image = self.capture.read()
        except cv2.error as exc:
            raise self._failed(exc) from None
        if not ok or image is None:
            self.at_end = True
            return None
        self.next_index += 1
        return image

    def release(self) -> None:
        self.capture.release()
        self._close_fd()


class VideoSource(FrameSource):
    """A video file decoded with OpenCV's FFmpeg backend."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._length: int | None = None
        self._decoder = _Decoder(path)
        if not self._decoder.capture.isOpened():
            self._decoder.release()
            raise _fail(path, "not a video file that can be decoded")
        fps = self._decoder.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        claimed = self._decoder.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.header_frame_count = int(claimed) if math.isfinite(claimed) and claimed > 0 else 0
        """What the container claims (0 if nothing): only for telling the user when it lies."""
        try:
            # Decoding frame 0 proves the file holds frames and gives its true size,
            # which is what the capture properties report for a healthy file.
            first = self[0]
        except IndexError:
            self._decoder.release()
            raise _fail(path, "the video holds no frames that decode") from None
        self.size = (first.shape[1], first.shape[0])

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            if self._length is None:
                self._length = self._count_frames()
            return self._length

    def _count_frames(self) -> int:
        # A private decoder, so counting does not move the one random access uses.
        counter = _Decoder(self.path)
        try:
            counter.skip_to(2**62)  # to the end, whatever the header says
            return counter.next_index
        finally:
            counter.release()

    def _read(self, index: int) -> Frame | None:
        if self._length is not None and index >= self._length:
            return None
        if index < self._decoder.next_index:
            # Going back: decode forwards again from the start (see the module notes).
            self._decoder.release()
            self._decoder = _Decoder(self.path)
        image = self._decoder.read() if self._decoder.skip_to(index) else None
        if image is None:
            # The decoder ran dry, so the frames it got through are all there are.
            self._length = self._decoder.next_index
            return None
        return _to_rgb8(image, self.path)

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        start, stop = self._span(start, stop)
        if stop is not None and stop <= start:
            return
        decoder = _Decoder(self.path)
        try:
            if not decoder.skip_to(start):
                return
            while stop is None or decoder.next_index < stop:
                self._check_open()
                image = decoder.read()
                if image is None:
                    self._length = decoder.next_index  # streaming to the end counts for free
                    return
                yield _to_rgb8(image, self.path)
        finally:
            decoder.release()

    def _release(self) -> None:
        self._decoder.release()


def frame_count_note(source: FrameSource) -> str | None:
    """One line for the user when a video's header claims other than the frames that decode.

    A truncated or damaged file decodes fewer frames than its header says; siamtrack
    goes by what decodes, and says so rather than silently working on a shorter video.
    An off-by-one (common in MP4 headers) is not worth a word. Asks ``len(source)``.
    """
    claimed = getattr(source, "header_frame_count", 0)
    if not claimed:
        return None
    decoded = len(source)
    if abs(claimed - decoded) <= 1:
        return None
    return (
        f"{source.path.name}: the file's header claims {claimed} frames but {decoded} decode; "
        f"using the {decoded} (the file may be truncated or damaged)"
    )


# --- opening ------------------------------------------------------------------------------


def _frames_folder(folder: Path) -> list[Path]:
    """The frame files of a folder of images, or of an OTB sequence folder (``img/``)."""
    otb = folder / "img"
    if otb.is_dir():
        files = _image_files(otb)
        if files:
            return files
    return _image_files(folder)


def open_source(path: str | Path) -> FrameSource:
    """Open a video file, a folder of images, or an OTB sequence folder holding ``img/``.

    Raises SourceError, with a one-line message naming the path, when there are no
    frames to be had.
    """
    path = Path(path)
    try:
        if path.is_dir():
            files = _frames_folder(path)
            if not files:
                kinds = " ".join(sorted(IMAGE_SUFFIXES))
                raise _fail(path, f"the folder holds no images ({kinds})")
            return ImageFolderSource(path, files)
        if not path.exists():
            raise _fail(path, "no such file or folder")
        if not path.is_file():
            # A FIFO would block until a writer appears; a device never ends.
            raise _fail(path, "not a regular file or a folder (a FIFO, a device or a socket)")
    except PermissionError:
        raise _fail(path, "permission denied") from None
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise _fail(path, "a single image is not a video; open the folder that holds the frames")
    kinds = " ".join(sorted(VIDEO_SUFFIXES))
    raise _fail(path, f"not a supported video type ({kinds})")
