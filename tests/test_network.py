"""InferenceNetwork: the real inputs of every child, parenting, bring-your-own, and validation."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu import netcalc
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, NatArgs, PscArgs

from .conftest import Rendered, parent_type, render, urns

NET = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
ADDR = "gcp:compute/globalAddress:GlobalAddress"
RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
ZONE = "gcp:dns/managedZone:ManagedZone"
RECORD = "gcp:dns/recordSet:RecordSet"
ROUTER = "gcp:compute/router:Router"
NAT = "gcp:compute/routerNat:RouterNat"


def build(args: InferenceNetworkArgs) -> Rendered:
    def program() -> Any:
        net = InferenceNetwork("inet", args)
        children = [c for c in (net.network, net.subnetwork, net.psc_address, net.psc_rule, net.router, net.nat) if c]
        return urns(*children, *net.dns_zones, *net.dns_records)

    return render(program)


def test_default_network_children_and_their_inputs() -> None:
    r = build(InferenceNetworkArgs(region="europe-west1", max_instances=3))
    assert r.one(NET).inputs["autoCreateSubnetworks"] is False
    subnet = r.one(SUBNET).inputs
    assert subnet["ipCidrRange"] == "10.8.0.0/26"
    assert subnet["region"] == "europe-west1"
    assert subnet["privateIpGoogleAccess"] is True
    assert subnet["network"] == "projects/test-project/global/networks/inet-vpc"

    addr = r.one(ADDR).inputs
    assert addr["addressType"] == "INTERNAL"
    assert addr["purpose"] == "PRIVATE_SERVICE_CONNECT"
    assert addr["address"] == "10.255.255.254"
    assert addr["network"] == subnet["network"]
    assert "prefixLength" not in addr  # not for INTERNAL + PSC

    rule = r.one(RULE).inputs
    assert rule["name"] == "llmapis"  # explicit, no auto-name suffix
    assert rule["target"] == "all-apis"
    assert rule["loadBalancingScheme"] == ""
    assert rule["ipAddress"] == "projects/test-project/global/addresses/llmapis-ip"
    assert rule["network"] == subnet["network"]

    nat = r.one(NAT).inputs
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"] == [
        {
            "name": "projects/test-project/regions/europe-west1/subnetworks/inet-subnet",
            "sourceIpRangesToNats": ["ALL_IP_RANGES"],
        }
    ]
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"
    assert nat["enableDynamicPortAllocation"] is True
    assert nat["enableEndpointIndependentMapping"] is False  # mutually exclusive with DPA
    assert (nat["minPortsPerVm"], nat["maxPortsPerVm"]) == (64, 4096)
    assert nat["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"}
    assert nat["router"] == "inet-router"
    assert r.one(ROUTER).inputs["region"] == "europe-west1"


def resolve(r: Rendered, host: str) -> str:
    """Resolve ``host`` with the private zones the component created (A and CNAME only)."""
    zones = {z.inputs["name"]: z.inputs["dnsName"] for z in r.of_type(ZONE)}
    records = {(rec.inputs["name"], rec.inputs["type"]): rec.inputs["rrdatas"] for rec in r.of_type(RECORD)}
    for rec in r.of_type(RECORD):
        assert rec.inputs["managedZone"] in zones
    name = host
    for _ in range(5):
        if (name, "A") in records:
            return str(records[(name, "A")][0])
        wildcard = "*." + name.split(".", 1)[1]
        if (name, "CNAME") in records:
            name = records[(name, "CNAME")][0]
        elif (wildcard, "CNAME") in records:
            name = records[(wildcard, "CNAME")][0]
        else:
            raise LookupError(host)
    raise LookupError(host)


def test_private_dns_sends_google_apis_and_artifact_registry_to_the_endpoint() -> None:
    r = build(InferenceNetworkArgs(region="europe-west1"))
    for zone in r.of_type(ZONE):
        assert zone.inputs["visibility"] == "private"
        assert zone.inputs["privateVisibilityConfig"]["networks"] == [
            {"networkUrl": "projects/test-project/global/networks/inet-vpc"}
        ]
    assert {z.inputs["dnsName"] for z in r.of_type(ZONE)} == {"googleapis.com.", "pkg.dev.", "gcr.io."}
    for host in (
        "storage.googleapis.com.",
        "run.googleapis.com.",
        "googleapis.com.",
        "europe-west1-docker.pkg.dev.",
        "gcr.io.",
    ):
        assert resolve(r, host) == "10.255.255.254", host


def test_children_are_parented_to_the_component() -> None:
    r = build(InferenceNetworkArgs(region="europe-west1"))
    chains = {parent_type(u) for u in r.value}
    assert chains and all(c.startswith("cloudrun-gpu:index:InferenceNetwork$") for c in chains), chains
    assert len(r.value) == len(r.types()) == 6 + 3 + 6


def test_vpc_sc_target_and_custom_nat() -> None:
    r = build(
        InferenceNetworkArgs(
            region="us-central1",
            psc=PscArgs(target="vpc-sc", name="apis2"),
            nat=NatArgs(dynamic_port_allocation=False, min_ports_per_vm=1024, log_filter="ALL"),
        )
    )
    assert r.one(RULE).inputs["target"] == "vpc-sc"
    assert r.one(RULE).inputs["name"] == "apis2"
    nat = r.one(NAT).inputs
    assert nat["enableDynamicPortAllocation"] is False
    assert "maxPortsPerVm" not in nat and "enableEndpointIndependentMapping" not in nat
    assert nat["minPortsPerVm"] == 1024
    assert nat["logConfig"]["filter"] == "ALL"


def test_nat_and_psc_can_be_turned_off() -> None:
    r = build(InferenceNetworkArgs(region="europe-west1", nat=None, psc=None))
    assert set(r.types()) == {NET, SUBNET}


def test_bring_your_own_network_creates_no_network() -> None:
    byo_net = "projects/shared-vpc/global/networks/corp"
    byo_sub = "projects/shared-vpc/regions/europe-west1/subnetworks/run"
    r = build(
        InferenceNetworkArgs(
            region="europe-west1", existing_network=byo_net, existing_subnetwork=byo_sub, subnet_cidr="ignored"
        )
    )
    assert not r.of_type(NET) and not r.of_type(SUBNET)
    assert r.one(ADDR).inputs["network"] == byo_net
    assert r.one(NAT).inputs["subnetworks"][0]["name"] == byo_sub
    assert r.one(ROUTER).inputs["network"] == byo_net


@pytest.mark.parametrize(
    ("max_instances", "prefix"),
    [(1, 26), (3, 26), (12, 26), (13, 25), (28, 25), (29, 24), (60, 24), (61, 23), (100, 23), (500, 21)],
)
def test_subnet_size_rule(max_instances: int, prefix: int) -> None:
    # ×4 addresses per instance, rounded up to /28 blocks, + 4 reserved by GCP, never below /26
    assert netcalc.required_prefix(max_instances) == prefix
    need = max_instances * 4
    assert 2 ** (32 - prefix) >= -(-need // 16) * 16 + 4
    netcalc.check_subnet("subnet_cidr", f"10.0.0.0/{prefix}", max_instances)
    with pytest.raises(Exception, match="too small"):
        netcalc.check_subnet("subnet_cidr", f"10.0.0.0/{prefix + 1}", max_instances)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"subnet_cidr": "10.8.0.0/33"}, "subnet_cidr"),
        ({"subnet_cidr": "10.8.0.1/26"}, "subnet_cidr"),  # host bits set
        ({"subnet_cidr": "8.8.8.0/24"}, "subnet_cidr"),  # public range
        ({"subnet_cidr": "10.8.0.0/28"}, "subnet_cidr"),  # below /26
        ({"subnet_cidr": "10.8.0.0/26", "max_instances": 40}, "subnet_cidr"),
        ({"subnet_cidr": "10.255.255.192/26"}, "psc.address"),  # overlaps the PSC address
        ({"psc": PscArgs(name="llm-apis")}, "psc.name"),  # hyphen
        ({"psc": PscArgs(name="a" * 21)}, "psc.name"),
        ({"psc": PscArgs(name="1apis")}, "psc.name"),
        ({"existing_network": "projects/p/global/networks/n"}, "existing_subnetwork"),
    ],
)
def test_bad_input_is_a_config_error_before_anything_is_registered(kwargs: dict[str, Any], field: str) -> None:
    args = InferenceNetworkArgs(region="europe-west1", **kwargs)
    with pytest.raises(ConfigErrors) as err:
        build(args)
    assert field in [e.field for e in err.value.errors]
    assert all(e.fix for e in err.value.errors)
