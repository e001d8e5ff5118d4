"""Mutation-strength tests for the policy pack, session 5 (issue 23; `rules.py` seed 101's survivors): an accelerator
written as a number still marks a GPU service, a fractional max instance count is refused, and a policy document
that is not JSON (or not an object) is read as granting nothing rather than crashing the pack."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .conftest import ROOT
from .test_policy import GPU_SERVICE, ctr, edit, res, tmpl

sys.path.insert(0, str(ROOT / "policy"))

from cloudrun_gpu_policy.offline import check

SVC = "Service 'svc': "


def test_an_accelerator_given_as_a_number_is_still_a_gpu_service() -> None:
    """A typo'd ``accelerator: 7`` with no GPU limit and throttled CPU: the pack still judges the service as a GPU
    service (CPU always allocated, both halves of the GPU syntax, a known GPU type) instead of failing on it."""

    def typo(r: dict[str, Any]) -> None:
        tmpl(r)["nodeSelector"]["accelerator"] = 7
        del ctr(r)["resources"]["limits"]["nvidia.com/gpu"]
        ctr(r)["resources"]["cpuIdle"] = True

    found = check([edit(GPU_SERVICE, typo)], production=False)
    assert [v.policy for v in found] == [
        "gpu-cpu-always-allocated",
        "gpu-limit-and-accelerator",
        "gpu-limit-and-accelerator",
    ]
    assert found[1].message.startswith(
        SVC + "template.nodeSelector.accelerator is 7.0 but no container sets resources.limits['nvidia.com/gpu']"
    )


@pytest.mark.parametrize("count", [2.5, "1.5"])
def test_a_fractional_max_instance_count_is_refused(count: object) -> None:
    """Cloud Run counts instances in whole numbers: 2.5 (or "1.5") is reported, naming the value."""
    bad = edit(GPU_SERVICE, lambda r: tmpl(r)["scaling"].update(maxInstanceCount=count))
    found = [(v.policy, v.message) for v in check([bad], production=False)]
    shown = 2.5 if count == 2.5 else "'1.5'"
    assert found == [("gpu-max-instances", f"{SVC}max instance count is {shown}; it must be a whole number >= 1.")]


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '{"bindings": "allUsers"}', "null"])
def test_a_policy_document_that_is_not_a_json_object_grants_nothing_and_breaks_nothing(data: str) -> None:
    """``policyData`` is a JSON document; one that does not parse, or parses to something other than an object of
    bindings, is read as binding nobody: the pack reports nothing for it and still checks the next resource."""
    odd = res("gcp:cloudrun/iamPolicy:IamPolicy", "pol", policyData=data)
    public = res(
        "gcp:cloudrun/iamPolicy:IamPolicy",
        "pub",
        policyData='{"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}',
    )
    assert [(v.policy, v.message.split(":")[0]) for v in check([odd, public], production=False)] == [
        ("no-public-invoker", "IamPolicy 'pub'")
    ]
