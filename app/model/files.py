"""Files the app writes get the permissions the user's umask asks for.

The atomic writers write to a temporary file (``tempfile.mkstemp``: mode 0600) or
folder (``mkdtemp``: 0700) and rename it into place, so projects and exports came
out ``-rw-------`` whatever the umask. After the app writes a project or an export
it applies the umask the way ``open()`` would have (0666 & ~umask for files, 0777 &
~umask for folders). (The writers in trackers/formats could do this themselves; then
this becomes a no-op.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def current_umask() -> int:
    """The process's umask; read from /proc where there is one (setting it to read it
    would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the umask's modes.

    Failures are ignored: a file the user cannot chmod keeps the mode it has.
    """
    path = Path(path)
    mask = current_umask()
    file_mode, folder_mode = 0o666 & ~mask, 0o777 & ~mask

    def fix(target: Path) -> None:
        try:
            mode = target.lstat().st_mode
            if stat.S_ISLNK(mode):
                return
            os.chmod(target, folder_mode if stat.S_ISDIR(mode) else file_mode)
        except OSError:
            pass

    fix(path)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                fix(Path(root) / name)


def writable_folder(*candidates: Path | None) -> Path:
    """The first existing folder among ``candidates`` this user can write into; else home."""
    for folder in candidates:
        if folder is not None and Path(folder).is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return Path.home()
