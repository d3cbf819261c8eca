"""``python -m app.cli``: the ``siamtrack`` command line."""

import sys

from app.cli import main

sys.exit(main())
