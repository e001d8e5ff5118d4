"""The offline policy checker's command line as a user reads it: the text report and the JSON of a stack with
violations (dev checked as production), pack config that lowers or disables a policy, how a stack is found to be
production, a stack outside this clone, and a policy the offline runner cannot run (async)."""

from __future__ import annotations

import json
import runpy
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "policy"))  # as the CLI runs the pack: its directory on sys.path

from cloudrun_gpu_policy import offline
from cloudrun_gpu_policy.rules import POLICIES

SAFETY = "production-deletion-safety"
SVC_MESSAGE = (
    "Service 'llm-dev-svc': production (policy config production=true) but deletionProtection is False; a stray "
    "`pulumi destroy` or a replacement would delete the serving endpoint. Fix: set deletion_protection=True."
)


def test_dev_checked_as_production_prints_each_violation_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """dev keeps deletion protection off and a force-destroyed bucket (fine for dev): as production, both are
    mandatory violations, and the command exits 1."""
    assert offline.main(["--stack", "dev", "--production"]) == 1
    text = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(text) if line.startswith("Policy check of stack 'dev'"))
    report = text[head:]
    assert report[0].startswith("Policy check of stack 'dev' (production: yes): ")
    assert report[0].endswith(f" resources × {len(POLICIES)} policies")
    assert report[1] == f"  [mandatory] {SAFETY}  gcp:cloudrunv2/service:Service  llm-dev-svc"
    assert report[2] == f"      {SVC_MESSAGE}"
    assert report[3] == f"  [mandatory] {SAFETY}  gcp:storage/bucket:Bucket  llm-dev-models-bucket"
    assert report[-1] == "2 violation(s), 2 mandatory."


def test_the_json_report_lists_every_violation_with_its_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert offline.main(["--stack", "dev", "--production", "--json"]) == 1
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n") :])
    assert report["stack"] == "dev" and report["production"] is True
    assert report["policies"] == [p.name for p in POLICIES] and report["resources"] > 0
    assert report["violations"][0] == {
        "policy": SAFETY,
        "resource": "llm-dev-svc",
        "resource_type": "gcp:cloudrunv2/service:Service",
        "message": SVC_MESSAGE,
        "enforcement_level": "mandatory",
    }
    assert [v["resource"] for v in report["violations"]] == ["llm-dev-svc", "llm-dev-models-bucket"]


@pytest.mark.parametrize(
    ("config", "levels", "code"),
    [
        ({SAFETY: "advisory"}, ["advisory", "advisory"], 0),
        ({SAFETY: {"enforcementLevel": "disabled"}}, [], 0),
        ({SAFETY: {"production": True}}, ["mandatory", "mandatory"], 1),
    ],
)
def test_pack_config_lowers_or_disables_a_policy_as_pulumi_does(
    config: dict[str, Any], levels: list[str], code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config`` takes the file ``pulumi preview --policy-pack-config`` takes."""
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(config))
    assert offline.main(["--stack", "dev", "--production", "--json", "--config", str(path)]) == code
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n") :])
    assert [v["enforcement_level"] for v in report["violations"]] == levels


@pytest.mark.parametrize(
    ("content", "production"),
    [
        (None, False),
        ("", False),
        ("config: {}\n", False),
        ("config:\n  cloudrun-gpu:environment: staging\n", False),
        ("config:\n  cloudrun-gpu:environment: Production\n", True),
        ("config:\n  cloudrun-gpu:environment: prod\n", True),
        ("config:\n  cloudrun-gpu:environment: {secure: x}\n", False),
    ],
)
def test_a_stack_is_production_only_when_its_file_says_prod(
    content: str | None, production: bool, tmp_path: Path
) -> None:
    if content is not None:
        (tmp_path / "Pulumi.s.yaml").write_text(content)
    assert offline.stack_is_production("s", tmp_path) is production


def test_a_stack_in_another_project_directory_is_rendered_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--root`` points at another checkout: its directory goes on the import path and its stack file is read (a
    different service name proves which file)."""
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    doc["config"]["cloudrun-gpu:service"]["name"] = "elsewhere"
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())  # the program, as a checkout has it
    monkeypatch.setattr(sys, "path", list(sys.path))
    resources = offline.stack_resources("dev", tmp_path)
    assert str(tmp_path) in sys.path
    services = [r["name"] for r in resources if r["type"] == "gcp:cloudrunv2/service:Service"]
    assert services and all(name.startswith("elsewhere-") for name in services), services


def test_an_async_policy_is_refused_by_name_instead_of_passing_unchecked() -> None:
    async def validate(args: Any, report: Any) -> None:
        report("never reached")

    policy = ResourceValidationPolicy(
        "async-check", "an async validation", validate, enforcement_level=EnforcementLevel.MANDATORY
    )
    with pytest.raises(TypeError) as err:
        offline.check([{"type": "gcp:storage/bucket:Bucket", "name": "b", "inputs": {}}], production=False,
                      policies=[policy])  # fmt: skip
    assert str(err.value) == "policy async-check is async; the offline checker runs synchronous ones"


def test_the_module_runs_as_a_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m policy.cloudrun_gpu_policy.offline --stack dev`` exits with main's code."""
    monkeypatch.setattr(sys, "argv", ["offline", "--stack", "dev"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as done:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is already imported by this test
        runpy.run_module("cloudrun_gpu_policy.offline", run_name="__main__")
    assert done.value.code == 0
    assert capsys.readouterr().out.rstrip().endswith("No violations.")
