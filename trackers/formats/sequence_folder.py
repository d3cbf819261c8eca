"""Exporting a sequence folder: the video's frames as numbered JPEG files beside the
annotation files, swapped in for an older folder of the same name, and the sequence listed
in its split's ``list.txt``. GOT-10k's and VOT's exports differ only in where the frames go
and what the annotation files are, so both call :func:`export_sequence_folder`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trackers.formats.common import FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.reading import read_text
from trackers.formats.writing import replace_folder, write_text_atomic
from trackers.trajectory import Trajectory

if TYPE_CHECKING:
    from trackers.sources import FrameSource

JPEG_QUALITY = 95
LIST = "list.txt"


def frame_name(index: int) -> str:
    """The name of 0-based frame ``index`` in both layouts: numbered from 1, eight digits."""
    return f"{index + 1:08d}.jpg"


def export_sequence_folder(
    trajectory: Trajectory,
    source: FrameSource | str | Path,
    root: str | Path,
    name: str,
    *,
    frames_dir: str,
    write_annotations: Callable[[Trajectory, Path], None],
    owns: Callable[[str], bool],
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``root/name/`` with every frame of ``source`` as ``frames_dir/%08d.jpg`` (``""``:
    in the folder itself) and ``write_annotations(trajectory, folder)``, and list ``name`` in
    ``root/list.txt``. ``owns(relative_path)`` says which files of an older folder this
    export replaces (others are kept). The video must have the trajectory's frame count and
    size. ``progress(done, total)`` is called per frame; an exception raised from it cancels,
    leaving ``root`` as it was. Returns the sequence folder."""
    import cv2

    from trackers.sources import open_source

    root = Path(root)
    if not name or name in (".", "..") or "/" in name or "\\" in name or name == LIST:
        raise FormatError(root / str(name), "a sequence name must be a plain folder name")
    owned = isinstance(source, (str, Path))
    frames_source = open_source(source) if isinstance(source, (str, Path)) else source
    try:
        if trajectory.frame_size is None:
            trajectory = fit_to_video(trajectory, root, None, frames_source.size)
        total = trajectory.frame_count

        def fill(tmp: Path) -> None:
            frames = tmp / frames_dir if frames_dir else tmp
            frames.mkdir(exist_ok=True)
            written = 0
            for index, frame in enumerate(frames_source.iter_from(0)):
                if index >= total:
                    raise FormatError(frames_source.path, f"has more frames than the trajectory's {total}")
                size = (frame.shape[1], frame.shape[0])
                if size != trajectory.frame_size:
                    raise FormatError(
                        frames_source.path,
                        f"frame {index} is {size[0]}x{size[1]}, the trajectory's frames are "
                        f"{trajectory.frame_size[0]}x{trajectory.frame_size[1]}",
                    )
                ok, data = cv2.imencode(
                    ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                if not ok:
                    raise FormatError(frames / frame_name(index), "JPEG encoding failed")
                (frames / frame_name(index)).write_bytes(data.tobytes())
                written += 1
                if progress is not None:
                    progress(written, total)
            if written != total:
                raise FormatError(frames_source.path, f"has {written} frames, the trajectory {total}")
            write_annotations(trajectory, tmp)

        target = root / name
        replace_folder(target, fill, owns)
    finally:
        if owned:
            frames_source.close()

    # The split's list of sequences, as got10k's GOT10k(root_dir, subset) and the VOT
    # toolkit read it.
    list_path = root / LIST
    names = read_text(list_path).split() if list_path.is_file() else []
    if name not in names:
        write_text_atomic(list_path, "".join(n + "\n" for n in [*names, name]))
    return target
