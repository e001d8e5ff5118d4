"""Mutation-strength tests for policy/cloudrun_gpu_policy/rules.py, from the first sampled run of the shipped files
(issue 23, seed 23): the memory quantity units, the dotted paths the pickle check names, and the max-instance
refusal's message."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .conftest import ROOT
from .test_policy import GPU_SERVICE, ctr, edit, tmpl

sys.path.insert(0, str(ROOT / "policy"))

from cloudrun_gpu_policy import rules
from cloudrun_gpu_policy.offline import check


@pytest.mark.parametrize(
    ("quantity", "size"),
    [
        ("1Ki", 1024),
        ("3Mi", 3 * 1024**2),
        ("32Gi", 32 * 1024**3),
        ("2Ti", 2 * 1024**4),
        ("5k", 5000),
        ("5K", 5000),
        ("7M", 7 * 1000**2),
        ("16G", 16 * 1000**3),
        ("1T", 1000**4),
        (" 512Mi ", 512 * 1024**2),
        ("17179869184", 17179869184),
        (17179869184, 17179869184),
    ],
)
def test_every_kubernetes_memory_unit_has_its_factor(quantity: Any, size: int) -> None:
    """Binary (Ki, Mi, Gi, Ti) and decimal (k/K, M, G, T) suffixes, as Kubernetes quantities define them
    (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/); "Gi" is read before "G"."""
    assert rules._memory(quantity) == size


@pytest.mark.parametrize("quantity", ["lotsGi", "Gi", True, None, [1]])
def test_a_memory_value_that_is_no_quantity_is_unknown(quantity: Any) -> None:
    assert rules._memory(quantity) is None


def test_strings_are_found_with_their_dotted_paths() -> None:
    tree = {"top": "a", "args": ["x", {"deep": "y"}], "env": {"k": {"v": "z"}}, "n": 3}
    assert rules._strings(tree, "") == [("top", "a"), ("args[0]", "x"), ("args[1].deep", "y"), ("env.k.v", "z")]
    assert rules._strings(tree["env"], "root") == [("root.k.v", "z")]


def test_the_pickle_check_names_the_input_path_of_the_file() -> None:
    bad = edit(GPU_SERVICE, lambda r: ctr(r)["args"].extend(["--model", "/models/pytorch_model.bin"]))
    found = [v.message for v in check([bad], production=False) if v.policy == "no-pickle-model-files"]
    assert len(found) == 1
    assert found[0].startswith("Service 'svc': template.containers[0].args[3] is '/models/pytorch_model.bin'")


@pytest.mark.parametrize("count", [0, 0.5, -2, "many"])
def test_a_max_instance_count_that_is_no_whole_number_is_refused_saying_so(count: Any) -> None:
    bad = edit(GPU_SERVICE, lambda r: tmpl(r)["scaling"].update(maxInstanceCount=count))
    found = [v.message for v in check([bad], production=False) if v.policy == "gpu-max-instances"]
    shown = {0: "0", 0.5: "0.5", -2: "-2", "many": "'many'"}[count]
    assert found == [f"Service 'svc': max instance count is {shown}; it must be a whole number >= 1."]


def _probe_messages(probe: dict[str, Any]) -> list[str]:
    svc = edit(GPU_SERVICE, lambda r: ctr(r).update(startupProbe={"httpGet": {"path": "/health"}, **probe}))
    return [v.message for v in check([svc], production=False) if v.policy == "startup-probe-limits"]


def test_unset_probe_fields_take_cloud_runs_defaults() -> None:
    """Unset fields are Cloud Run's defaults (google/cloud/run/v2/k8s.min.proto: initialDelaySeconds 0,
    periodSeconds 10, timeoutSeconds 1, failureThreshold 3), so the window a user reads is 0 + 3 × 10 = 30 s."""
    (only_timeout,) = _probe_messages({"timeoutSeconds": 10})
    assert "timeoutSeconds 10 must be >= 1 and smaller than periodSeconds 10" in only_timeout
    assert "initialDelaySeconds + failureThreshold × periodSeconds = 30 s (D2)" in only_timeout
    (only_period,) = _probe_messages({"periodSeconds": 1})
    assert "timeoutSeconds 1 must be >= 1 and smaller than periodSeconds 1" in only_period
    assert "= 3 s (D2)" in only_period
    assert _probe_messages({}) == []
