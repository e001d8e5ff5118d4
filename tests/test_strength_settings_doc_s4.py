"""Issue 23, session 4 on ``stack/settings_doc.py``: what the seed-71 mutation sample showed no listed test read —
the command that regenerates ``docs/settings.md``."""

from __future__ import annotations

import os
import subprocess
import sys

from stack.settings_doc import render
from tests.conftest import ROOT


def test_the_refresh_command_prints_the_page() -> None:
    """``python -m stack.settings_doc > docs/settings.md`` is how the page is refreshed (the module docstring and
    tests/test_settings_doc.py's failure message): run as a program, the module prints the page, whole."""
    paths = [str(ROOT / "components"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run(
        [sys.executable, "-m", "stack.settings_doc"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == render()
