"""What a training cache keys its entries on: a source's content, not its timestamps.

A shared data folder may be copied afresh for every session (every file gets a new mtime)
while its content stays the same; keyed on mtime, every cache entry was rebuilt each time
(about 15 minutes of crops and teacher labels for the distillation run). The fingerprint is
the resolved path, the size and a hash of the first and last MiB of each file; for an image
folder, the sorted names and sizes of its files and the hash of its first and last image.
A change in the middle of a large file alone goes unseen; for videos and image sequences
that does not happen without the size or the ends changing too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

EDGE_BYTES = 1 << 20


def _ends_hash(path: Path) -> str:
    digest = hashlib.sha1()
    size = path.stat().st_size
    with open(path, "rb") as f:
        digest.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(f.read(EDGE_BYTES))
    return digest.hexdigest()


def source_fingerprint(path: str | Path) -> dict[str, Any]:
    """The content fingerprint of a video file or an image folder (an OTB folder: its img/)."""
    path = Path(path).resolve()
    if path.is_file():
        return {"path": str(path), "bytes": path.stat().st_size, "ends": _ends_hash(path)}
    img = path / "img"
    folder = img if img.is_dir() else path
    names = sorted(n for n in os.listdir(folder) if (folder / n).is_file())
    listing = hashlib.sha1()
    for name in names:
        listing.update(f"{name}\0{(folder / name).stat().st_size}\n".encode("utf-8", "surrogateescape"))
    entry: dict[str, Any] = {"path": str(path), "files": len(names), "listing": listing.hexdigest()}
    if names:
        entry["first"] = _ends_hash(folder / names[0])
        entry["last"] = _ends_hash(folder / names[-1])
    return entry
