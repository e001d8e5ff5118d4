"""``python -m provider.schema``, the documented way to print the package schema (issue 23: its ``__main__`` line
was the one line of ``provider/schema.py`` no test ran, 89 % line+branch).

``test_schema.py`` calls ``main()`` directly; these run the module as ``python -m`` does (``runpy.run_module``
with ``run_name="__main__"``, in-process so coverage sees it) and check what a user redirects into
``schema.json``: the whole package schema, indented by two, one trailing newline, and nothing at all on a
plain import.
"""

import json
import runpy
import sys

import pytest

from provider.components import NAME, VERSION
from tests.test_schema import schema, sdk_quiet


def printed(run_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """What running ``provider.schema`` under ``run_name`` prints. runpy warns (an error under filterwarnings) when
    the module it runs is already imported; monkeypatch puts the imported one back afterwards."""
    monkeypatch.delitem(sys.modules, "provider.schema", raising=False)
    with sdk_quiet():
        runpy.run_module("provider.schema", run_name=run_name, alter_sys=False)
    return capsys.readouterr().out


def test_python_m_provider_schema_prints_the_package_schema(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = printed("__main__", capsys, monkeypatch)
    assert json.loads(out) == schema()
    assert out == json.dumps(schema(), indent=2) + "\n"
    assert json.loads(out)["name"] == NAME and json.loads(out)["version"] == VERSION


def test_importing_provider_schema_prints_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert printed("provider.schema", capsys, monkeypatch) == ""
