"""Can Qt open a window here? Checked before the window starts, without importing Qt.

On Linux, Qt's ``xcb`` platform plugin needs system libraries that pip cannot
install (``libxcb-icccm4``, ``libxcb-keysyms1``, ``libxcb-cursor0``...). When one is
missing Qt aborts the whole process with a page of plugin diagnostics. This module
finds the plugin of the installed PySide6, asks the dynamic loader (``ldd``) which of
its libraries do not resolve, and names the Debian/Ubuntu packages that hold them,
so the caller can say so in one line and fall back to the offscreen platform.

``python -m app.model.qt_check`` prints that line (nothing when all is there) and exits 1
when something is missing; ``tools/dev.py`` uses it.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_NAMES = {
    # the few sonames whose Debian package name does not follow the usual rule
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
}
RUNTIME_LOADED = {"xcb-cursor": "libxcb-cursor.so.0"}
"""Loaded by Qt (6.5 and later) when the plugin starts, so ldd does not list it."""
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def package_for(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (``libxcb-icccm.so.4`` -> ``libxcb-icccm4``)."""
    if soname in PACKAGE_NAMES:
        return PACKAGE_NAMES[soname]
    match = re.fullmatch(r"(.+?)\.so\.(\d+)(?:\..*)?", soname)
    if match is None:
        return soname
    name, version = match.group(1).lower(), match.group(2)
    # Debian policy: a dash before the version when the name already ends in a digit
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(plugin: Path | None = None) -> list[str]:
    """Sonames the xcb plugin needs that the loader cannot find; [] when unknown or all there."""
    plugin = plugin or xcb_plugin()
    if plugin is None or shutil.which("ldd") is None:
        return []
    try:
        output = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = list(dict.fromkeys(_NOT_FOUND.findall(output)))
    for name, soname in RUNTIME_LOADED.items():
        if ctypes.util.find_library(name) is None and soname not in missing:
            missing.append(soname)
    return missing


def needs_xcb() -> bool:
    """Whether Qt would use its xcb plugin: Linux, an X display, no other platform asked for."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    if os.environ.get("WAYLAND_DISPLAY"):
        return False  # Qt prefers its Wayland plugin there
    return bool(os.environ.get("DISPLAY"))


def problem() -> str | None:
    """One line naming the packages to install, or None when Qt can open a window (as far as we can tell)."""
    if not needs_xcb():
        return None
    missing = missing_libraries()
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(package_for(s) for s in missing))
    return (
        f"Qt cannot open a window: missing {', '.join(missing)}. "
        f"Install them with: sudo apt-get install {packages}"
    )


def main() -> int:
    line = problem()
    if line:
        print(line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
