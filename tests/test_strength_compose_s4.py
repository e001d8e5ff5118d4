"""Issue 23, session 4 on ``stack/compose.py``: what the seed-61 mutation sample showed no listed test read.

Each test runs the real program as ``pulumi up`` would, under the project's recording mocks, and asserts the
registered resources' inputs.
"""

from __future__ import annotations

from stack.render import Recorded
from tests.test_validation_first import PROJECT_ID, deployable, up

VPC = f"projects/{PROJECT_ID}/global/networks/llm-dev-net-vpc"
SUBNET = f"projects/{PROJECT_ID}/regions/europe-west1/subnetworks/llm-dev-net-subnet"
# Only load balancers (and the VPC) may call the service behind a front door (stack/config.py).
BEHIND_A_DOOR = {"name": "llm-dev", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}


def door_network_inputs(door: dict[str, object]) -> dict[str, tuple[object, object]]:
    """The dev stack behind ``door``, deployed: each front-door resource's ``network`` and ``subnetwork`` inputs."""
    resources, error = up("dev", deployable("dev", frontdoor=door, service=BEHIND_A_DOOR))
    assert error is None, repr(error)
    doors: list[Recorded] = [r for r in resources if r.name.startswith("llm-dev-frontdoor")]
    assert doors, "the front door registered nothing"
    return {r.name: (r.inputs.get("network"), r.inputs.get("subnetwork")) for r in doors}


def test_an_internal_front_door_sits_in_the_regions_vpc_and_an_external_one_in_none() -> None:
    """The regional internal load balancer lives in the stack's VPC: its proxy-only subnet is created in the
    region's network, its IP comes from the service's subnet and its forwarding rule names both
    (https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless). The program
    must hand the front door the region's network for an internal scheme (and the stack deploys, rather than
    being refused for a missing network), and no network at all for the global external one."""
    cert = f"projects/{PROJECT_ID}/regions/europe-west1/sslCertificates/llm"
    internal = door_network_inputs({"scheme": "INTERNAL_MANAGED", "certificate": cert})
    assert internal["llm-dev-frontdoor-proxy-only-europe-west1"] == (VPC, None)
    assert internal["llm-dev-frontdoor-ip"] == (None, SUBNET)
    assert internal["llm-dev-frontdoor-https-rule"] == (VPC, SUBNET)
    external = door_network_inputs({"domains": ["llm.corp.com"]})
    assert {name: nets for name, nets in external.items() if nets != (None, None)} == {}
