"""Strength tests for the policy pack (#23): behaviour a platform team would notice if it changed.

Each test pins something the independent mutation sample found unguarded: which inputs count as
"loads the model from Cloud Storage" (not merely "has environment variables"), each policy's
severity and default enforcement, the pack's ``production`` default, the committed stacks' own
production flag, and the probe check's non-numeric path.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, Severity

from .conftest import ROOT
from .test_policy import GPU_SERVICE, PRIVATE_BUCKET, ctr, edit, tmpl

sys.path.insert(0, str(ROOT / "policy"))

from cloudrun_gpu_policy import offline, rules
from cloudrun_gpu_policy.offline import check

EGRESS = "gpu-model-loading-egress"
PROBE = "startup-probe-limits"


def _private_ranges(r: dict[str, Any]) -> dict[str, Any]:
    vpc: dict[str, Any] = tmpl(r)["vpcAccess"]
    vpc.update(egress="PRIVATE_RANGES_ONLY")
    return vpc


def _messages(resources: list[dict[str, Any]], policy: str, production: bool = False) -> list[str]:
    return [v.message for v in check(resources, production=production) if v.policy == policy]


# --- gpu-model-loading-egress: what counts as a Cloud Storage or internet load ----------------------


def test_an_image_loaded_model_with_private_ranges_egress_is_not_a_cloud_storage_load() -> None:
    """Env vars and local args alone (MODEL_DIR=/models, --model /models/…) are not a network load."""
    baked = edit(
        GPU_SERVICE,
        lambda r: (
            _private_ranges(r),
            ctr(r)["envs"].extend(
                [
                    {"name": "MODEL_DOWNLOAD_URI", "value": "/models/local"},
                    {"name": "OTHER_URI", "value": "gs://not-a-model-var/x"},
                ]
            ),
        ),
    )
    assert _messages([baked], EGRESS) == []


def test_a_gs_download_uri_with_private_ranges_egress_is_flagged_as_cloud_storage() -> None:
    bad = edit(
        GPU_SERVICE,
        lambda r: (_private_ranges(r), ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URI", "value": "gs://b/m/*"})),
    )
    [msg] = _messages([bad], EGRESS)
    assert "loads the model from Cloud Storage (containers[0] env MODEL_DOWNLOAD_URI='gs://b/m/*')" in msg
    assert "'PRIVATE_RANGES_ONLY' with 1 Direct VPC network interface(s)" in msg
    assert "egress='ALL_TRAFFIC'" in msg


def test_a_gs_argument_is_a_cloud_storage_load_and_names_its_position() -> None:
    bad = edit(GPU_SERVICE, lambda r: (_private_ranges(r), ctr(r)["args"].extend(["--model", "gs://b/models/x"])))
    [msg] = _messages([bad], EGRESS)
    assert "containers[0].args[3]='gs://b/models/x'" in msg


def test_cloud_storage_load_without_direct_vpc_interfaces_is_flagged_even_with_all_traffic() -> None:
    bad = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r)["vpcAccess"].update(networkInterfaces=[]),
            tmpl(r).update(volumes=[{"name": "model", "gcs": {"bucket": "b"}}]),
        ),
    )
    [msg] = _messages([bad], EGRESS)
    assert "volume 'model' (bucket 'b')" in msg and "with 0 Direct VPC network interface(s)" in msg


def test_an_unset_egress_is_shown_as_cloud_runs_default() -> None:
    bad = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r)["vpcAccess"].pop("egress"),
            ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URI", "value": "gs://b/m"}),
        ),
    )
    [msg] = _messages([bad], EGRESS)
    assert "not set (Cloud Run's default is PRIVATE_RANGES_ONLY)" in msg


def test_an_internet_download_is_flagged_as_internet_not_cloud_storage() -> None:
    bad = edit(
        GPU_SERVICE,
        lambda r: (
            _private_ranges(r),
            ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URL", "value": "https://example.org/m.gguf"}),
        ),
    )
    [msg] = _messages([bad], EGRESS)
    assert "loads the model from the internet (containers[0] env MODEL_DOWNLOAD_URL)" in msg
    assert "Cloud NAT" in msg and "Cloud Storage" not in msg


def test_an_internet_download_over_all_traffic_passes() -> None:
    ok = edit(GPU_SERVICE, lambda r: ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URL", "value": "https://e.org/m"}))
    assert _messages([ok], EGRESS) == []


# --- severities, enforcement and the production default --------------------------------------------

SEVERITIES = {
    "gpu-cpu-always-allocated": Severity.HIGH,
    "gpu-http-startup-probe": Severity.HIGH,
    "gpu-explicit-concurrency": Severity.MEDIUM,
    "gpu-model-loading-egress": Severity.MEDIUM,
    "gpu-limit-and-accelerator": Severity.HIGH,
    "gpu-gcs-volume-gen2": Severity.HIGH,
    "gpu-min-cpu-memory": Severity.HIGH,
    "gpu-max-instances": Severity.MEDIUM,
    "gpu-dedicated-service-account": Severity.MEDIUM,
    "startup-probe-limits": Severity.MEDIUM,
    "no-public-invoker": Severity.CRITICAL,
    "bucket-private": Severity.HIGH,
    "no-public-bucket-access": Severity.CRITICAL,
    "no-pickle-model-files": Severity.HIGH,
    "production-deletion-safety": Severity.HIGH,
}
"""What a team's dashboards sort by: public access is critical, a missing GPU setting high."""


def test_every_policy_has_its_pinned_severity_and_blocks_by_default() -> None:
    assert {p.name: p.severity for p in rules.POLICIES} == SEVERITIES
    assert {p.enforcement_level for p in rules.POLICIES} == {EnforcementLevel.MANDATORY}


def test_the_pack_is_not_production_unless_told() -> None:
    [policy] = [p for p in rules.POLICIES if p.name == "production-deletion-safety"]
    assert policy.config_schema is not None
    assert policy.config_schema.properties["production"]["default"] is False
    assert policy.config_schema.properties["productionLabelValues"]["default"] == ["prod", "production"]
    risky = edit(GPU_SERVICE, lambda r: r.update(deletionProtection=False))
    assert _messages([risky], "production-deletion-safety") == []
    [msg] = _messages([risky], "production-deletion-safety", production=True)
    assert "deletionProtection is False" in msg


@pytest.mark.parametrize("label", ["prod", "Production", "PROD"])
def test_an_environment_label_marks_production_in_any_case(label: str) -> None:
    bucket = edit(PRIVATE_BUCKET, lambda r: r.update(forceDestroy=True, labels={"environment": label}))
    [msg] = _messages([bucket], "production-deletion-safety")
    assert "forceDestroy is true" in msg


@pytest.mark.parametrize(("stack", "production"), [("dev", False), ("staging", False), ("prod", True)])
def test_committed_stacks_declare_their_production_flag(stack: str, production: bool) -> None:
    assert offline.stack_is_production(stack) is production


# --- startup-probe-limits: the non-numeric path ------------------------------------------------------


def test_a_non_numeric_probe_field_is_reported_not_crashed_on() -> None:
    bad = edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(periodSeconds="ten"))
    [msg] = _messages([bad], PROBE)
    assert "template.containers[0].startupProbe has a non-numeric field" in msg and "'ten'" in msg


def test_numeric_strings_are_read_as_numbers() -> None:
    ok = edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(periodSeconds="10", failureThreshold="30"))
    assert _messages([ok], PROBE) == []


def test_the_probe_window_message_gives_the_sum() -> None:
    bad = edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(failureThreshold=200))
    [msg] = _messages([bad], PROBE)
    assert "200 × 10 = 2000 s exceeds 1800 s for a GPU service" in msg
    assert "= 2010 s (D2)" in msg
