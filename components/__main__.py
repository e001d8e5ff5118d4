"""``python -m components …`` (see :mod:`components.cli`)."""

import sys

from components.cli import main

sys.exit(main())
