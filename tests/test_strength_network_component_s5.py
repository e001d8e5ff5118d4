"""Session-5 mutation-strength tests for ``cloudrun_gpu/network/__init__.py`` (seed 101's survivors): what the
component registers as its outputs (under Pulumi mocks)."""

from __future__ import annotations

from typing import Any

from cloudrun_gpu.network import TOKEN, InferenceNetwork, InferenceNetworkArgs

from .conftest import render
from .test_strength_outputs import _recording_outputs


def test_the_network_registers_its_ids_psc_address_and_tags() -> None:
    """network/__init__.py:145 and :147 (seed 101, `network_id` and `psc_ip` dropped from register_outputs
    survived): another Pulumi language reads the component's outputs from what it registers."""
    captured: list[tuple[str, str, Any]] = []

    def program() -> Any:
        net = InferenceNetwork("inet", InferenceNetworkArgs(region="europe-west1", max_instances=3))
        (outputs,) = [o for t, _, o in captured if t == TOKEN]
        own = {"network_id": net.network_id, "subnetwork_id": net.subnetwork_id, "psc_ip": net.psc_ip, "tags": net.tags}
        return {"registered": outputs, "own": own}

    with _recording_outputs(captured):
        value = render(program).value
    assert value["registered"] == value["own"]
    assert set(value["registered"]) == {"network_id", "subnetwork_id", "psc_ip", "tags"}
    assert value["registered"]["psc_ip"] == "10.255.255.254"
    assert value["registered"]["tags"] == ["llm-inference"]
