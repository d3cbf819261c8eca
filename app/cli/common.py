"""What every ``siamtrack`` command shares: exit codes, the one-line error, stderr lines, outputs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _StderrHandler(logging.Handler):
    """Log records as plain lines on the current ``sys.stderr`` (looked up per record)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's own rule: never raise from a handler
            self.handleError(record)


LIBRARY_LOGGERS = ("trackers", "training", "app")


def install_log_handler() -> None:
    """The command line's one place for library messages: warnings and progress details of
    ``trackers``, ``training`` and ``app`` go to stderr as plain lines (INFO and up;
    DEBUG with SIAMTRACK_DEBUG=1). A program importing ``trackers`` installs its own
    handler instead, or none. Calling it twice adds nothing."""
    level = logging.DEBUG if os.environ.get("SIAMTRACK_DEBUG") else logging.INFO
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        logger.setLevel(level)


def quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own log lines off stderr, so a bad file gets our one line.

    Set before cv2 is first imported (it reads them then); a value the user set wins,
    and SIAMTRACK_DEBUG=1 leaves both alone.
    """
    if os.environ.get("SIAMTRACK_DEBUG"):
        return
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("siamtrack")
    except PackageNotFoundError:
        return "unknown (not installed)"


def write_atomically(path: Path, text: str) -> None:
    """A temporary file beside ``path`` and a rename: an interrupted write leaves the old file.

    Through a link to its target; a FIFO, device or folder is refused (``trackers.output``).
    A failure (disk full, no permission) is a CliError naming the file.
    """
    from trackers.output import OutputError, write_text

    try:
        write_text(path, text)
    except OutputError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        kept = " (the earlier file is kept)" if path.exists() else ""
        raise CliError(f"cannot write {path}: {exc.strerror or exc}{kept}") from None


def check_outputs(*paths: Path | None) -> None:
    """Refuse an output path before the run, not after it (a folder, a FIFO, a device, no permission)."""
    from trackers.output import OutputError, check_output

    for path in paths:
        if path is not None:
            try:
                check_output(path)
            except OutputError as exc:
                raise CliError(str(exc)) from None


def check_inputs(*paths: Path | None) -> None:
    """Refuse a FIFO, device or socket as input: reading one blocks until a writer appears."""
    for path in paths:
        if path is not None and path.exists() and not (path.is_file() or path.is_dir()):
            raise CliError(f"{path} is not a regular file or a folder (a FIFO, a device or a socket)")


class Progress:
    """A single updating line on stderr, at most a few times a second."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.last = 0.0
        self.tty = stream.isatty()

    def __call__(self, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        end = "\r" if self.tty else "\n"
        print(message.ljust(60) if self.tty else message, end=end, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=self.stream)


def say(text: str) -> None:
    """A line on stderr that cannot fail: after SIGHUP the terminal may be gone."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
