"""``python -m app [SOURCE]``: open the desktop app (the same options as ``siamtrack gui``)."""

import sys

from app.qt.gui import main

sys.exit(main(prog="python -m app"))
