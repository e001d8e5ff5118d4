"""scripts/mutate.py's own operators (issue 23): each produces the mutant it names, and only parseable ones."""

from __future__ import annotations

import ast
from types import ModuleType

from .conftest import ROOT, load_script

SOURCE = '''"""Docstring with several words."""


def f(x):
    """Also a docstring."""
    gcp.Thing("n", name="a", labels={"app": "llm", "env": x})
    if x:
        raise ValueError("x is not allowed here")
    return Result(ok=True, tokens={"in": 1})
'''


def _mutate() -> ModuleType:
    return load_script("mutate")


def test_each_own_operator_makes_the_change_it_names() -> None:
    m = _mutate()
    mutants = m.own_mutants(SOURCE)
    by_op: dict[str, list[str]] = {}
    for mu in mutants:
        ast.parse(mu.source)  # every mutant parses
        changed = [ln[1:].strip() for ln in mu.diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
        by_op.setdefault(mu.operator, []).append(" ".join(changed))
    assert sorted(by_op) == sorted(m.OWN_OPERATORS)
    assert by_op["DropKeyword"] == [
        'gcp.Thing("n",  labels={"app": "llm", "env": x})',
        'gcp.Thing("n", name="a", )',
    ]
    assert by_op["DropDictKey"] == [
        'gcp.Thing("n", name="a", labels={ "env": x})',
        'gcp.Thing("n", name="a", labels={"app": "llm", })',
        "return Result(ok=True, tokens={})",
    ]
    assert by_op["ChangeMessage"] == ['raise ValueError("MUTATED x is not allowed here")']  # not the docstrings
    assert sorted(by_op["DropReturnedField"]) == sorted(
        ['return Result( tokens={"in": 1})', "return Result(ok=True, )"]
    )
    assert [mu.line for mu in mutants if mu.operator == "ChangeMessage"] == [8]


def test_every_shipped_python_file_is_mutated_or_says_why_not() -> None:
    m = _mutate()
    assert m.unlisted_modules() == []
    for key in ("stack/cli.py", "policy/cloudrun_gpu_policy/rules.py", "container/cache/semcache/app.py"):
        assert m.source_path(key) == key and (ROOT / key).is_file()
        assert all((ROOT / t).is_file() for t in m.MODULES[key]), key
    assert m.source_path("netcalc.py") == "components/cloudrun_gpu/netcalc.py"
