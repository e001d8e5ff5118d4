"""InferenceNetwork: the real inputs of every child, parenting, bring-your-own, and validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from cloudrun_gpu import netcalc
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.network import (
    InferenceNetwork,
    InferenceNetworkArgs,
    NatLogFilter,
    NatSettings,
    NetworkSettings,
    PscSettings,
    PscTarget,
)

from .conftest import Rendered, parent_type, refused, render, the_error, urns

NET = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
ADDR = "gcp:compute/globalAddress:GlobalAddress"
RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
ZONE = "gcp:dns/managedZone:ManagedZone"
RECORD = "gcp:dns/recordSet:RecordSet"
ROUTER = "gcp:compute/router:Router"
NAT = "gcp:compute/routerNat:RouterNat"
DNS_ZONE_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
"""Cloud DNS managed zone names: 1-63 lowercase letters, digits and dashes, starting with a letter and
ending with a letter or digit."""


def build(args: InferenceNetworkArgs, name: str = "inet") -> Rendered:
    def program() -> Any:
        net = InferenceNetwork(name, args)
        children = [c for c in (net.network, net.subnetwork, net.psc_address, net.psc_rule, net.router, net.nat) if c]
        return urns(*children, *net.dns_zones, *net.dns_records)

    return render(program)


def network(settings: Callable[[], NetworkSettings], max_instances: int = 1) -> Callable[[], Any]:
    """A program that builds the settings, the args and the component, in that order."""

    def program() -> Any:
        return InferenceNetwork(
            "inet", InferenceNetworkArgs(region="europe-west1", settings=settings(), max_instances=max_instances)
        ).network_id

    return program


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


@pytest.mark.parametrize("length", [4, 40, 51, 62, 63, 70])
def test_dns_zone_names_are_valid_and_distinct_for_any_component_name(length: int) -> None:
    # Cloud DNS: zone names end with a letter or digit and are unique per project. The component
    # truncates "<name>-<zone slug>" to 63 characters itself, so it must keep both rules.
    r = build(InferenceNetworkArgs(region="europe-west1"), name="n" * length)
    names = [z.inputs["name"] for z in r.of_type(ZONE)]
    assert len(names) == 3 and len(set(names)) == 3, names
    for zone_name in names:
        assert re.fullmatch(DNS_ZONE_NAME, zone_name), zone_name


def test_children_are_parented_to_the_component() -> None:
    r = build(InferenceNetworkArgs(region="europe-west1"))
    chains = {parent_type(u) for u in r.value}
    assert chains and all(c.startswith("cloudrun-gpu:index:InferenceNetwork$") for c in chains), chains
    assert len(r.value) == len(r.types()) == 6 + 3 + 6


def test_vpc_sc_target_and_custom_nat() -> None:
    r = build(
        InferenceNetworkArgs(
            region="us-central1",
            settings=NetworkSettings(
                psc=PscSettings(target=PscTarget.VPC_SC, name="apis2"),
                nat=NatSettings(dynamic_port_allocation=False, min_ports_per_vm=1024, log_filter=NatLogFilter.ALL),
            ),
        )
    )
    assert r.one(RULE).inputs["target"] == "vpc-sc"
    assert r.one(RULE).inputs["name"] == "apis2"
    assert r.one(ADDR).inputs["name"] == "apis2-ip"
    nat = r.one(NAT).inputs
    assert nat["enableDynamicPortAllocation"] is False
    assert "maxPortsPerVm" not in nat and "enableEndpointIndependentMapping" not in nat
    assert nat["minPortsPerVm"] == 1024
    assert nat["logConfig"]["filter"] == "ALL"


def test_static_port_allocation_takes_any_port_count() -> None:
    # Power-of-two and max > min only bind with dynamic port allocation.
    r = build(
        InferenceNetworkArgs(
            region="europe-west1",
            settings=NetworkSettings(
                nat=NatSettings(dynamic_port_allocation=False, min_ports_per_vm=1000, max_ports_per_vm=100)
            ),
        )
    )
    nat = r.one(NAT).inputs
    assert nat["minPortsPerVm"] == 1000 and "maxPortsPerVm" not in nat


def test_nat_and_psc_can_be_turned_off() -> None:
    off = NetworkSettings(nat=NatSettings(enabled=False), psc=PscSettings(enabled=False))
    r = build(InferenceNetworkArgs(region="europe-west1", settings=off))
    assert set(r.types()) == {NET, SUBNET}


def test_disabled_parts_are_not_validated() -> None:
    # Settings of a part that is off cannot break the stack (e.g. left over in a stack file).
    off = NetworkSettings(
        nat=NatSettings(enabled=False, min_ports_per_vm=100, max_ports_per_vm=100),
        psc=PscSettings(enabled=False, address="8.8.8.8", name="not-valid"),
        subnet_cidr="10.255.255.192/26",
    )
    r = build(InferenceNetworkArgs(region="europe-west1", settings=off))
    assert set(r.types()) == {NET, SUBNET}
    assert r.one(SUBNET).inputs["ipCidrRange"] == "10.255.255.192/26"


def test_bring_your_own_network_creates_no_network() -> None:
    byo_net = "projects/shared-vpc/global/networks/corp"
    byo_sub = "projects/shared-vpc/regions/europe-west1/subnetworks/run"
    r = build(
        InferenceNetworkArgs(
            region="europe-west1",
            settings=NetworkSettings(existing_network=byo_net, existing_subnetwork=byo_sub, subnet_cidr="ignored"),
            max_instances=500,  # the subnet is the owner's: not sized here
        )
    )
    assert not r.of_type(NET) and not r.of_type(SUBNET)
    assert r.one(ADDR).inputs["network"] == byo_net
    assert r.one(RULE).inputs["network"] == byo_net
    assert r.one(NAT).inputs["subnetworks"][0]["name"] == byo_sub
    assert r.one(ROUTER).inputs["network"] == byo_net
    for zone in r.of_type(ZONE):
        assert zone.inputs["privateVisibilityConfig"]["networks"] == [{"networkUrl": byo_net}]


def test_tags_reach_the_component() -> None:
    def program() -> Any:
        net = InferenceNetwork(
            "inet", InferenceNetworkArgs(region="europe-west1", settings=NetworkSettings(tags=["llm", "a-1"]))
        )
        return net.tags

    assert render(program).value == ["llm", "a-1"]


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
    with pytest.raises(ConfigError, match="too small"):
        netcalc.check_subnet("subnet_cidr", f"10.0.0.0/{prefix + 1}", max_instances)
    InferenceNetworkArgs(
        region="europe-west1", settings=NetworkSettings(subnet_cidr=f"10.0.0.0/{prefix}"), max_instances=max_instances
    )


@pytest.mark.parametrize(
    ("settings", "max_instances", "field", "value"),
    [
        (lambda: NetworkSettings(subnet_cidr="10.8.0.0/33"), 1, "NetworkSettings.subnet_cidr", "10.8.0.0/33"),
        (lambda: NetworkSettings(subnet_cidr="10.8.0.1/26"), 1, "NetworkSettings.subnet_cidr", "10.8.0.1/26"),
        (lambda: NetworkSettings(subnet_cidr="fd00::/64"), 1, "NetworkSettings.subnet_cidr", "fd00::/64"),
        # below the /26 minimum: only the component knows the instance count, so the Args refuse it
        (
            lambda: NetworkSettings(subnet_cidr="10.8.0.0/28"),
            1,
            "InferenceNetworkArgs.settings.subnet_cidr",
            "10.8.0.0/28",
        ),
        (
            lambda: NetworkSettings(subnet_cidr="10.255.255.192/26"),
            1,
            "NetworkSettings.psc.address",
            "10.255.255.254",
        ),
        (lambda: NetworkSettings(psc=PscSettings(name="a" * 21)), 1, "PscSettings.name", "a" * 21),
        (lambda: NetworkSettings(psc=PscSettings(name="1apis")), 1, "PscSettings.name", "1apis"),
        (lambda: NetworkSettings(psc=PscSettings(dns_zones=["pkg.dev"])), 1, "PscSettings.dns_zones.0", "pkg.dev"),
        (lambda: NetworkSettings(psc=PscSettings(address="10.1")), 1, "PscSettings.address", "10.1"),
    ],
)
def test_bad_input_is_a_config_error_before_anything_is_registered(
    settings: Callable[[], NetworkSettings], max_instances: int, field: str, value: str
) -> None:
    err = the_error(refused(network(settings, max_instances)), field)
    assert err.value == value


# --- the settings' own rules, each named by the field the user wrote ---------------------------


@pytest.mark.parametrize(("lo", "hi"), [(64, 64), (1024, 512), (32768, 32768)])
def test_dynamic_ports_need_max_strictly_above_min(lo: int, hi: int) -> None:
    errors = refused(network(lambda: NetworkSettings(nat=NatSettings(min_ports_per_vm=lo, max_ports_per_vm=hi))))
    err = the_error(errors, "NatSettings.max_ports_per_vm")
    assert err.value == hi
    assert str(lo) in err.problem
    assert err.fix == f"set NatSettings.max_ports_per_vm to {lo * 2} or more, or turn dynamic_port_allocation off"
    assert err.allowed == f"> {lo}"


def test_dynamic_ports_just_above_min_are_accepted() -> None:
    nat = NatSettings(min_ports_per_vm=32, max_ports_per_vm=64)
    r = build(InferenceNetworkArgs(region="europe-west1", settings=NetworkSettings(nat=nat)))
    assert (r.one(NAT).inputs["minPortsPerVm"], r.one(NAT).inputs["maxPortsPerVm"]) == (32, 64)


@pytest.mark.parametrize(
    ("kwargs", "field", "value", "fix"),
    [
        ({"min_ports_per_vm": 100}, "NatSettings.min_ports_per_vm", 100, "use 64 or 128"),
        ({"max_ports_per_vm": 1000}, "NatSettings.max_ports_per_vm", 1000, "use 512 or 1024"),
        ({"min_ports_per_vm": 48, "max_ports_per_vm": 4096}, "NatSettings.min_ports_per_vm", 48, "use 32 or 64"),
    ],
)
def test_dynamic_ports_must_be_powers_of_two(kwargs: dict[str, Any], field: str, value: int, fix: str) -> None:
    errors = refused(network(lambda: NetworkSettings(nat=NatSettings(**kwargs))))
    err = the_error(errors, field)
    assert err.value == value and err.fix == fix
    assert "power of two" in err.problem
    assert len(errors) == 1  # no second, misleading "max must exceed min" error


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "169.254.1.1",  # link-local
        "255.255.255.255",  # broadcast
        "8.8.8.8",  # public
        "240.0.0.1",  # Class E
        "224.0.0.1",  # multicast
        "0.0.0.0",  # unspecified
    ],
)
def test_psc_address_must_be_private(address: str) -> None:
    errors = refused(network(lambda: NetworkSettings(psc=PscSettings(address=address))))
    err = the_error(errors, "PscSettings.address")
    assert err.value == address
    assert "10.255.255.254" in err.fix
    assert err.allowed == "10/8, 172.16/12, 192.168/16, 100.64/10"


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.0.1", "192.168.255.254", "100.64.0.1"])
def test_psc_address_in_every_private_range_is_accepted(address: str) -> None:
    r = build(InferenceNetworkArgs(region="europe-west1", settings=NetworkSettings(psc=PscSettings(address=address))))
    assert r.one(ADDR).inputs["address"] == address
    assert resolve(r, "storage.googleapis.com.") == address


def test_psc_address_inside_the_subnet_is_refused() -> None:
    errors = refused(network(lambda: NetworkSettings(subnet_cidr="10.8.0.0/24", psc=PscSettings(address="10.8.0.17"))))
    err = the_error(errors, "NetworkSettings.psc.address")
    assert err.value == "10.8.0.17"
    assert "10.8.0.0/24" in err.problem and "outside 10.8.0.0/24" in err.fix


def test_psc_name_with_a_hyphen_is_refused() -> None:
    errors = refused(network(lambda: NetworkSettings(psc=PscSettings(name="llm-apis"))))
    err = the_error(errors, "PscSettings.name")
    assert err.value == "llm-apis"
    assert "no hyphens" in err.fix
    assert err.allowed == r"^[a-z][a-z0-9]{0,19}$"


def test_errors_are_named_by_their_path_inside_network_settings() -> None:
    raw: dict[str, Any] = {"psc": {"name": "llm-apis"}, "nat": {"min_ports_per_vm": 100}}
    errors = refused(network(lambda: NetworkSettings(**raw)))
    assert {(e.field, e.value) for e in errors} == {
        ("NetworkSettings.psc.name", "llm-apis"),
        ("NetworkSettings.nat.min_ports_per_vm", 100),
    }


@pytest.mark.parametrize("tag", ["Bad Tag", "-x", "a" * 64, "x-", "1abc", ""])
def test_invalid_network_tag_is_refused(tag: str) -> None:
    errors = refused(network(lambda: NetworkSettings(tags=["ok", tag])))
    err = the_error(errors, "NetworkSettings.tags.1")
    assert err.value == tag
    assert "llm-inference" in err.fix and "1-63" in err.fix


def test_longest_network_tag_is_accepted() -> None:
    """63 characters is the longest tag GCP allows; one more is refused (test above), so the edge is pinned."""
    assert NetworkSettings(tags=["a" * 63]).tags == ["a" * 63]
    errors = refused(network(lambda: NetworkSettings(tags=["a" * 64])))
    assert the_error(errors, "NetworkSettings.tags.0").value == "a" * 64


def test_empty_existing_network_is_refused() -> None:
    errors = refused(
        network(lambda: NetworkSettings(existing_network="", existing_subnetwork="projects/p/regions/r/subnetworks/s"))
    )
    err = the_error(errors, "NetworkSettings.existing_network")
    assert err.value == "" and err.problem == "is empty"
    assert "existing_network" in err.fix


@pytest.mark.parametrize(
    ("kwargs", "value"),
    [
        ({"existing_network": "projects/p/global/networks/n"}, None),
        ({"existing_subnetwork": "projects/p/regions/r/subnetworks/s"}, "projects/p/regions/r/subnetworks/s"),
    ],
)
def test_bring_your_own_needs_both_network_and_subnetwork(kwargs: dict[str, Any], value: str | None) -> None:
    errors = refused(network(lambda: NetworkSettings(**kwargs)))
    err = the_error(errors, "NetworkSettings.existing_subnetwork")
    assert err.value == value
    assert err.fix == "set both, or neither to let the stack create them"


def test_public_subnet_is_refused() -> None:
    errors = refused(network(lambda: NetworkSettings(subnet_cidr="8.8.8.0/24")))
    err = the_error(errors, "NetworkSettings.subnet_cidr")
    assert err.value == "8.8.8.0/24"
    assert "100.64.0.0/10" in err.fix
    assert err.allowed == "10/8, 172.16/12, 192.168/16, 100.64/10, 240/4"


@pytest.mark.parametrize("cidr", ["10.8.0.0/24", "172.20.0.0/24", "192.168.4.0/24", "100.64.0.0/24", "240.0.0.0/24"])
def test_every_private_subnet_range_is_accepted(cidr: str) -> None:
    r = build(InferenceNetworkArgs(region="europe-west1", settings=NetworkSettings(subnet_cidr=cidr)))
    assert r.one(SUBNET).inputs["ipCidrRange"] == cidr


def test_subnet_too_small_for_max_instances_is_refused_by_the_args() -> None:
    settings = NetworkSettings(subnet_cidr="10.8.0.0/26")  # valid on its own
    errors = refused(network(lambda: settings, max_instances=40))
    err = the_error(errors, "InferenceNetworkArgs.settings.subnet_cidr")
    assert err.value == "10.8.0.0/26"
    assert "40 max instances" in err.problem
    assert err.fix == "use a /24 or larger range, e.g. 10.8.0.0/24"


def test_unknown_key_suggests_the_known_one() -> None:
    raw: dict[str, Any] = {"subnet_cid": "10.0.0.0/24"}
    errors = refused(network(lambda: NetworkSettings(**raw)))
    err = the_error(errors, "NetworkSettings.subnet_cid")
    assert err.value == "10.0.0.0/24"
    assert err.problem == "is not a known setting"
    assert err.fix == "did you mean NetworkSettings.subnet_cidr?"
    assert "subnet_cidr" in err.allowed.split(", ")


def test_unknown_nested_key_suggests_the_known_one() -> None:
    raw: dict[str, Any] = {"nat": {"max_port_per_vm": 128}}
    errors = refused(network(lambda: NetworkSettings(**raw)))
    err = the_error(errors, "NetworkSettings.nat.max_port_per_vm")
    assert err.value == 128
    assert err.fix == "did you mean NetworkSettings.nat.max_ports_per_vm?"


def test_input_bag_from_another_language_is_validated_with_args_field_names() -> None:
    bag: Any = {"subnet_cidr": "8.8.8.0/24", "psc": {"name": "llm-apis"}}
    errors = refused(lambda: InferenceNetwork("inet", InferenceNetworkArgs(region="europe-west1", settings=bag)))
    assert {(e.field, e.value) for e in errors} == {
        ("InferenceNetworkArgs.settings.subnet_cidr", "8.8.8.0/24"),
        ("InferenceNetworkArgs.settings.psc.name", "llm-apis"),
    }


def test_empty_region_is_refused() -> None:
    errors = refused(lambda: InferenceNetwork("inet", InferenceNetworkArgs(region="")))
    err = the_error(errors, "InferenceNetworkArgs.region")
    assert err.value == "" and err.fix == "set the region"
