"""``python -m stack …`` (see :mod:`stack.cli`)."""

import sys

from stack.cli import main

sys.exit(main())
