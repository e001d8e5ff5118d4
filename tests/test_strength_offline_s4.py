"""The offline policy checker, session 4 (issue 23, seed 71 of ``policy/cloudrun_gpu_policy/offline.py``): what its
survivors showed no test pinned, each asserted as its user sees it.

- a policy's own enforcement level is what the report says, and a policy without one gets the pack default
  (``pulumi_policy``'s ``_get_enforcement_level``: config, else the policy's level, else the pack's);
- the report's records are immutable values (a set of them dedupes, a changed record is refused);
- ``--help`` explains every option;
- a clean stack's report ends with exactly ``No violations.``.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "policy"))  # as the CLI runs the pack: its directory on sys.path

from cloudrun_gpu_policy import offline
from cloudrun_gpu_policy.rules import DEFAULT_ENFORCEMENT, POLICIES

BUCKET = {"type": "gcp:storage/bucket:Bucket", "name": "b", "inputs": {"location": "EUROPE-WEST1"}}


def _always(name: str, level: EnforcementLevel | None) -> ResourceValidationPolicy:
    def validate(args: Any, report: Any) -> None:
        report(f"{name} saw {args.name}")

    return ResourceValidationPolicy(name, f"{name}: reports every resource", validate, enforcement_level=level)


def test_a_policys_own_level_is_reported_and_one_without_a_level_gets_the_pack_default() -> None:
    """An advisory policy reports as advisory (it must not block ``pulumi up``), a policy that names no level is
    held to the pack default (mandatory), and pack config still wins over both."""
    policies = [_always("own-advisory", EnforcementLevel.ADVISORY), _always("no-level", None)]
    found = offline.check([BUCKET], production=False, policies=policies)
    assert [(v.policy, v.enforcement_level, v.message) for v in found] == [
        ("own-advisory", "advisory", "own-advisory saw b"),
        ("no-level", DEFAULT_ENFORCEMENT.value, "no-level saw b"),
    ]
    assert DEFAULT_ENFORCEMENT is EnforcementLevel.MANDATORY
    assert [v.mandatory for v in found] == [False, True]
    lowered = offline.check([BUCKET], production=False, policies=policies, config={"no-level": "advisory"})
    assert [v.enforcement_level for v in lowered] == ["advisory", "advisory"]
    disabled = offline.check([BUCKET], production=False, policies=policies, config={"own-advisory": "disabled"})
    assert [v.policy for v in disabled] == ["no-level"]


def test_the_reports_records_are_immutable_values() -> None:
    """A caller comparing two runs (or deduplicating one) can put the records in a set; and a record handed out
    cannot be edited behind the report's back."""
    policy = _always("own-advisory", EnforcementLevel.ADVISORY)
    first = offline.check([BUCKET, BUCKET], production=False, policies=[policy])
    second = offline.check([BUCKET], production=False, policies=[policy])
    assert len(first) == 2 and set(first) == set(second) and len(set(first)) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        first[0].enforcement_level = "mandatory"  # type: ignore[misc]


def test_help_explains_every_option(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at $COLUMNS: one line per option
    with pytest.raises(SystemExit) as done:
        offline.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: python -m policy.cloudrun_gpu_policy.offline ")
    for expected in (
        "Run the Cloud Run GPU policy pack on a stack's offline plan (no Pulumi CLI, no cloud).",
        "--root ROOT project directory holding Pulumi.<stack>.yaml",
        "--json print the violations as JSON",
        "--config CONFIG policy pack config JSON, as for pulumi --policy-pack-config",
        "--production, --no-production treat the stack as production "
        "(default: cloudrun-gpu:environment is prod in Pulumi.<stack>.yaml)",
    ):
        assert expected in text


def test_a_clean_stack_reports_its_size_and_exactly_no_violations(capsys: pytest.CaptureFixture[str]) -> None:
    assert offline.main(["--stack", "dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Policy check of stack 'dev'"))
    assert lines[head].startswith("Policy check of stack 'dev' (production: no): ")
    assert lines[head].endswith(f" resources × {len(POLICIES)} policies")
    assert lines[head + 1 :] == ["No violations."]
