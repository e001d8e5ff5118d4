"""The README's practice table stays true: every ID listed, every referenced test exists."""

from __future__ import annotations

import ast
import re

from .conftest import ROOT

DATA = ROOT / "tests" / "data"


def test_every_practice_id_has_a_row_and_every_referenced_test_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| ([LBDRSA]\d) \|.*$", readme, re.MULTILINE)}
    ids = set(re.findall(r"\*\*([LBDRSA]\d)\*\*", (DATA / "practices.md").read_text()))
    assert ids and ids <= set(rows), sorted(ids - set(rows))
    for ref in re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", readme):
        path, name = ROOT / ref[0], ref[1].removeprefix("::")
        assert path.is_file(), ref
        if name:
            funcs = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
            assert name in funcs, ref
    for ref in re.findall(r"`::(\w+)`", readme):
        assert any(ref in p.read_text() for p in (ROOT / "tests").glob("test_*.py")), ref


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make plan") for line in head) and any(line.startswith("make test") for line in head)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
