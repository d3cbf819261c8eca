"""The ``siamtrack`` command line (Qt-free).

Contracts other tools rely on:

* ``siamtrack track SOURCE --box X,Y,W,H --out FILE``: FILE gets one ``x,y,w,h``
  line per frame, 0-based, from the start frame on, including it.
* ``siamtrack eval SEQ... --json FILE``: see ``trackers.evaluation``.

Bad input ends with a one-line message on stderr and a non-zero exit, never a
traceback. Progress goes to stderr.

One module per command group: ``track``, ``evaluate`` (eval, bench, effort),
``convert`` (convert, trax), ``train``, ``gui`` (the one door into the Qt app); shared
by them: ``common`` (exit codes, errors, outputs, progress), ``options`` (argument
types), ``factory`` (trackers from the options) and ``stopping`` (stop signals);
``program`` builds the parser and runs ``main``.
"""

from __future__ import annotations

from app.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, CliError, install_log_handler, version
from app.cli.program import COMMANDS, build_parser, main

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "install_log_handler",
    "main",
    "version",
]
