"""Strength tests for the GPU service component, session 5 (issue 23; `service/__init__.py` seed 101's survivors):
a VPC given as a plain mapping (another Pulumi language's input bag) must name both the network and the subnetwork,
and the plan a stack validated is the one the constructor reuses, however the folder's path was spelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.service import GpuInferenceServiceArgs

from .test_strength_service import LLAMA


@pytest.mark.parametrize("vpc", [{"network": "n"}, {"subnetwork": "s"}, {}, {"network": "n", "tags": ["llm"]}])
def test_a_vpc_mapping_without_its_network_or_subnetwork_is_refused_by_name(vpc: dict[str, Any]) -> None:
    """Direct VPC egress needs both ids (Cloud Run's ``vpcAccess.networkInterfaces`` names a network and a
    subnetwork): a bag missing either is refused naming ``vpc``, its value, and the fix."""
    with pytest.raises(ConfigErrors) as err:
        GpuInferenceServiceArgs(region="europe-west1", image="i", model=LLAMA, vpc=vpc)  # type: ignore[arg-type]
    (e,) = err.value.errors
    assert (e.field, e.value) == ("GpuInferenceServiceArgs.vpc", vpc)
    assert e.problem == "must name network and subnetwork (and optionally tags), nothing else"
    assert e.fix == "pass vpc=VpcEgressArgs(network=…, subnetwork=…) from an InferenceNetwork"


def test_the_plan_is_made_once_for_the_same_folder_however_its_path_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack calls ``plan(base_dir)`` to validate every region before registering anything, and the component
    plans again when it is built: the second call, with an equal path built anew, gets the same plan without
    sizing (reading the model) a second time. Another folder is planned afresh."""
    import cloudrun_gpu.service as service_module

    calls: list[Path | None] = []
    real = service_module.plan_service

    def counted(serving: Any, base_dir: Path | None) -> Any:
        calls.append(base_dir)
        return real(serving, base_dir)

    monkeypatch.setattr(service_module, "plan_service", counted)
    args = GpuInferenceServiceArgs(region="europe-west1", image="i", model=LLAMA)
    first = args.plan(Path(str(tmp_path)))
    again = args.plan(Path(str(tmp_path)))
    assert again is first and calls == [tmp_path]
    other = args.plan(tmp_path / "other")
    assert other == first and calls == [tmp_path, tmp_path / "other"]
