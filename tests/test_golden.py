"""Golden plans: ``plan --json`` of every committed stack, saved before the settings redesign.

A change must alter no resource except where it was asked to. A deliberate change re-records only the stacks it
names, with a reason (``make golden GOLDEN="prod" WHY="…"``, ``scripts/golden.py``), in a commit of its own whose
message names each difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stack.cli import plan_json

from .conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


@pytest.mark.parametrize("stack", STACKS)
def test_plan_matches_golden(stack: str) -> None:
    path = GOLDEN / f"plan-{stack}.json"
    assert path.is_file(), f"no golden plan for stack {stack}: run `make golden` and review the diff"
    want = _canonical(json.loads(path.read_text()))
    got = _canonical(plan_json(stack, ROOT))
    assert got["sizing"] == want["sizing"]
    assert got["service"] == want["service"]
    got_res = {(r["type"], r["name"]): r for r in got["resources"]}
    want_res = {(r["type"], r["name"]): r for r in want["resources"]}
    assert sorted(got_res) == sorted(want_res)
    for key, r in want_res.items():
        assert got_res[key] == r, f"{key} changed"
    assert got == want
