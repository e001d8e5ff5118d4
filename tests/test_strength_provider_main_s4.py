"""provider/__main__.py, session 4 (issue 23, seed 71): which ``provider`` package the plugin serves.

The Pulumi CLI's language host runs the plugin directory as a script (``python provider/ …``), so ``sys.path[0]`` is
``provider/`` itself and the rest is the environment's: ``PYTHONPATH``, the standard library, site-packages and
what its ``.pth`` files add. The entry point puts the repository root *first*, so the checkout's own ``provider``
package is served even when something else on the path also answers to that name (a PyPI distribution with a
top-level ``provider`` package, another checkout's editable install). Appended late instead, the other package
would be imported and served.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi.provider
import pytest

from .conftest import ROOT
from .test_schema import sdk_quiet

ENTRY = ROOT / "provider" / "__main__.py"


def test_the_checkouts_provider_package_wins_over_another_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "site" / "provider"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('an installed package named provider was imported')\n")
    for name in [m for m in sys.modules if m == "provider" or m.startswith("provider.")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, as in the host's new process
    others = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    # the language host's path: the plugin directory, then the environment (here with the other package)
    monkeypatch.setattr(sys, "path", [str(ENTRY.parent), str(decoy.parent), *others])
    monkeypatch.setattr(sys, "argv", [str(ENTRY), "127.0.0.1:12345"])
    served: list[Any] = []
    monkeypatch.setattr(pulumi.provider, "main", lambda provider, args: served.append(provider))
    with sdk_quiet():
        runpy.run_path(str(ENTRY), run_name="__main__")
    assert len(served) == 1 and type(served[0]).__module__ == "provider.analysis"
    assert Path(sys.modules["provider"].__file__ or "").resolve() == ROOT / "provider" / "__init__.py"
