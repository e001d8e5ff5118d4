"""Mutation-strength tests for the policy pack, session 5, seed 111's survivors in ``rules.py`` (issue 23): a probe
period below Cloud Run's minimum, a container whose probe is unknown during preview not hiding the next one, and the
raw-input reader's "None when absent" for list positions outside the list."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from .conftest import ROOT
from .test_policy import GPU_SERVICE, ctr, edit, tmpl

sys.path.insert(0, str(ROOT / "policy"))

from cloudrun_gpu_policy import rules
from cloudrun_gpu_policy.offline import check

TIMEOUT_BELOW_PERIOD = "(google/cloud/run/v2/k8s.min.proto: timeout 'Must be smaller than period_seconds')"


def test_a_probe_period_below_one_second_is_reported_with_the_range() -> None:
    """``periodSeconds: 0`` is below Cloud Run's 1..240: the pack names the field, its value and the range (and the
    timeout, which must be smaller than that period)."""
    bad = edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(periodSeconds=0, timeoutSeconds=0))
    [message] = [v.message for v in check([bad], production=False) if v.policy == "startup-probe-limits"]
    assert message.startswith(
        "Service 'svc': template.containers[0].startupProbe is outside Cloud Run's limits: periodSeconds 0 is "
        f"outside 1..240; timeoutSeconds 0 must be >= 1 and smaller than periodSeconds 0 {TIMEOUT_BELOW_PERIOD}."
    )


def test_a_probe_unknown_during_preview_does_not_hide_the_next_containers_probe() -> None:
    """The first container's probe period is not known until apply (an output of another resource): that probe is
    skipped, not guessed, and the second container's probe (timeout equal to its period) is still judged."""

    def two(r: dict[str, Any]) -> None:
        second = copy.deepcopy(ctr(r))
        second["name"] = "second"
        del second["resources"]["limits"]["nvidia.com/gpu"]
        second["startupProbe"].update(timeoutSeconds=10)
        ctr(r)["startupProbe"].update(periodSeconds=UNKNOWN_STRING_VALUE)
        tmpl(r)["containers"].append(second)

    found = [v.message for v in check([edit(GPU_SERVICE, two)], production=False) if v.policy == "startup-probe-limits"]
    assert [m.split(" is outside")[0] for m in found] == ["Service 'svc': template.containers[1].startupProbe"]
    assert f"timeoutSeconds 10 must be >= 1 and smaller than periodSeconds 10 {TIMEOUT_BELOW_PERIOD}" in found[0]


@pytest.mark.parametrize("index", [-1, 2, 3])
def test_a_list_position_outside_the_list_reads_as_absent(index: int) -> None:
    """The reader every policy uses returns None for an absent item (its docstring's contract): a position past the
    end, or a negative one (Python would count from the end), is absent, never another element or an IndexError."""
    assert rules._item(["a", "b"], index) is None
    assert rules._item(["a", "b"], 1) == "b"
