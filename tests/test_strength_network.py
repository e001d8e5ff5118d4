"""Mutation-strength tests for netcalc.py and network/settings.py: exact ranges, boundaries and fixes."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cloudrun_gpu import netcalc
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, NatSettings, NetworkSettings, PscSettings

from .conftest import render


def test_private_ranges_exact() -> None:
    assert [str(r) for r in netcalc.PRIVATE_RANGES] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "240.0.0.0/4",
    ]
    assert [str(r) for r in netcalc.ENDPOINT_RANGES] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]


@pytest.mark.parametrize(
    ("max_instances", "prefix"),
    [(1, 26), (12, 26), (13, 25), (28, 25), (29, 24), (100, 23), (1000, 20)],
)
def test_required_prefix(max_instances: int, prefix: int) -> None:
    # need = ceil(n × 4 / 16) × 16 + 4 addresses → the smallest prefix holding them, /26 at most
    assert netcalc.required_prefix(max_instances) == prefix


@pytest.mark.parametrize(
    "cidr", ["10.8.0.0/26", "172.31.255.192/26", "192.168.1.0/26", "100.127.255.192/26", "240.0.0.0/26"]
)
def test_every_private_subnet_range_edge_is_accepted(cidr: str) -> None:
    assert netcalc.check_subnet_range("subnet_cidr", cidr) == ipaddress.IPv4Network(cidr)


@pytest.mark.parametrize("cidr", ["172.32.0.0/26", "100.128.0.0/26", "192.169.0.0/26", "11.0.0.0/26", "96.0.0.0/4"])
def test_ranges_just_outside_are_refused(cidr: str) -> None:
    with pytest.raises(ConfigError) as err:
        netcalc.check_subnet_range("subnet_cidr", cidr)
    assert (err.value.field, err.value.value) == ("subnet_cidr", cidr)
    assert err.value.allowed == "10/8, 172.16/12, 192.168/16, 100.64/10, 240/4"


def test_parse_cidr_errors() -> None:
    with pytest.raises(ConfigError) as err:
        netcalc.parse_cidr("f", "10.8.0.1/26")
    assert "is not a valid IPv4 CIDR" in err.value.problem
    with pytest.raises(ConfigError) as err:
        netcalc.parse_cidr("f", "fd00::/64")
    assert err.value.problem == "is IPv6"


def test_check_subnet_size() -> None:
    assert netcalc.check_subnet("s", "10.8.0.0/26", 12).prefixlen == 26
    assert netcalc.check_subnet("s", "10.8.0.0/25", 13).prefixlen == 25
    with pytest.raises(ConfigError) as err:
        netcalc.check_subnet("s", "10.8.0.0/26", 13)
    assert err.value.allowed == "/25 or larger"
    assert "e.g. 10.8.0.0/25" in err.value.fix
    assert "/26 is too small for 13 max instances" in err.value.problem


@pytest.mark.parametrize(
    "address", ["10.255.255.254", "172.16.0.1", "172.31.255.254", "192.168.0.1", "100.64.0.1", "100.127.255.254"]
)
def test_psc_address_private_edges_accepted(address: str) -> None:
    netcalc.check_psc_address("address", address)


@pytest.mark.parametrize(
    "address", ["172.32.0.1", "100.128.0.1", "240.0.0.1", "8.8.8.8", "127.0.0.1", "169.254.0.1", "fd00::1"]
)
def test_psc_address_outside_endpoint_ranges_refused(address: str) -> None:
    with pytest.raises(ConfigError) as err:
        netcalc.check_psc_address("address", address)
    assert err.value.allowed == "10/8, 172.16/12, 192.168/16, 100.64/10"
    with pytest.raises(ConfigError) as bad:
        netcalc.check_psc_address("address", "not-an-ip")
    assert (bad.value.field, bad.value.value, bad.value.problem) == ("address", "not-an-ip", "is not an IPv4 address")


def test_overlap_names_the_later_range() -> None:
    netcalc.check_no_overlap({"a": "10.0.0.0/24", "b": "10.0.1.0/24", "c": "10.0.2.0/24"})
    with pytest.raises(ConfigError) as err:
        netcalc.check_no_overlap({"a": "10.0.0.0/24", "b": "10.1.0.0/24", "c": "10.0.0.128/25"})
    assert (err.value.field, err.value.value) == ("c", "10.0.0.128/25")
    assert "overlaps a (10.0.0.0/24)" in err.value.problem


def test_names_tags_and_dns() -> None:
    assert netcalc.is_dns_name("pkg.dev") and netcalc.is_dns_name("a" * 63 + ".com")
    assert not netcalc.is_dns_name("a" * 64 + ".com") and not netcalc.is_dns_name("-a.com")
    assert not netcalc.is_dns_name(".".join(["a" * 63] * 4) + ".b")  # 256 characters
    netcalc.check_tag("t", "a" + "b" * 62)
    for bad in ("a" + "b" * 63, "1a", "a-", "A"):
        with pytest.raises(ConfigError) as err:
            netcalc.check_tag("t", bad)
        assert (err.value.field, err.value.value, err.value.problem) == ("t", bad, "is not a valid network tag")
        assert "1-63 lowercase" in err.value.fix
    netcalc.check_psc_name("n", "a" * 20)
    for bad in ("a" * 21, "a-b", "1a"):
        with pytest.raises(ConfigError) as err:
            netcalc.check_psc_name("n", bad)
        assert (err.value.field, err.value.value) == ("n", bad)
        assert "PSC endpoint name" in err.value.problem and "no hyphens" in err.value.fix


def fields(exc: ConfigErrors) -> list[str]:
    return [e.field for e in exc.errors]


@pytest.mark.parametrize(
    ("kwargs", "field", "fix"),
    [
        ({"min_ports_per_vm": 96}, "NatSettings.min_ports_per_vm", "use 64 or 128"),
        ({"max_ports_per_vm": 5000}, "NatSettings.max_ports_per_vm", "use 4096 or 8192"),
        ({"min_ports_per_vm": 80}, "NatSettings.min_ports_per_vm", "use 64 or 128"),  # 1010000: no adjacent bits
        ({"max_ports_per_vm": 5120}, "NatSettings.max_ports_per_vm", "use 4096 or 8192"),
    ],
)
def test_nat_ports_power_of_two(kwargs: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        NatSettings(**kwargs)
    assert fields(err.value) == [field]
    assert err.value.errors[0].fix == fix
    assert err.value.errors[0].allowed == "32, 64, …, 65536"


def test_nat_ports_max_above_min() -> None:
    with pytest.raises(ConfigErrors) as err:
        NatSettings(min_ports_per_vm=128, max_ports_per_vm=128)
    assert fields(err.value) == ["NatSettings.max_ports_per_vm"]
    assert err.value.errors[0].allowed == "> 128"
    assert "256 or more" in err.value.errors[0].fix
    assert NatSettings(min_ports_per_vm=128, max_ports_per_vm=256).max_ports_per_vm == 256
    # static allocation or no NAT: any counts
    assert NatSettings(dynamic_port_allocation=False, min_ports_per_vm=96, max_ports_per_vm=96).min_ports_per_vm == 96
    assert NatSettings(enabled=False, min_ports_per_vm=96, max_ports_per_vm=96).enabled is False


def test_psc_settings_checks() -> None:
    with pytest.raises(ConfigErrors) as err:
        PscSettings(address="8.8.8.8", name="bad-name", dns_zones=["pkg.dev", "ok.dev.", "bad_zone."])
    assert fields(err.value) == [
        "PscSettings.name",
        "PscSettings.address",
        "PscSettings.dns_zones.0",
        "PscSettings.dns_zones.2",
    ]
    assert PscSettings(enabled=False, address="8.8.8.8", name="bad-name").enabled is False


def test_network_settings_cross_checks() -> None:
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(subnet_cidr="10.0.0.0/8", psc=PscSettings(address="10.1.2.3"))
    assert fields(err.value) == ["NetworkSettings.psc.address"]
    assert "lies inside subnet_cidr (10.0.0.0/8)" in err.value.errors[0].problem
    # a disabled PSC is not checked against the subnet
    assert NetworkSettings(subnet_cidr="10.0.0.0/8", psc=PscSettings(enabled=False, address="10.1.2.3")).subnet_cidr
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(subnet_cidr="8.8.8.0/24", tags=["ok", "Bad"])
    assert fields(err.value) == ["NetworkSettings.subnet_cidr", "NetworkSettings.tags.1"]


def test_bring_your_own_rules() -> None:
    byo = NetworkSettings(existing_network="n", existing_subnetwork="s", subnet_cidr="8.8.8.0/24")
    assert byo.byo is True and byo.sizing_problems(1000) == []
    assert NetworkSettings().byo is False
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(existing_network="n")
    assert fields(err.value) == ["NetworkSettings.existing_subnetwork"]
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(existing_subnetwork="s")
    assert fields(err.value) == ["NetworkSettings.existing_subnetwork"]
    with pytest.raises(ConfigErrors) as err:
        NetworkSettings(existing_network=" ", existing_subnetwork="s")
    assert fields(err.value) == ["NetworkSettings.existing_network"]


def test_sizing_problems() -> None:
    assert NetworkSettings().sizing_problems(12) == []
    (err,) = NetworkSettings().sizing_problems(13)
    assert (err.field, err.allowed) == ("subnet_cidr", "/25 or larger")


def test_subnet_stack_type_and_private_access() -> None:
    def program() -> Any:
        net = InferenceNetwork("n", InferenceNetworkArgs(region="europe-west1"))
        return net.subnetwork.urn if net.subnetwork else None

    sub = render(program).one("gcp:compute/subnetwork:Subnetwork").inputs
    assert sub["stackType"] == "IPV4_ONLY"
    assert sub["ipCidrRange"] == "10.8.0.0/26"
    assert sub["privateIpGoogleAccess"] is True


@pytest.mark.parametrize(
    ("ok", "bad"),
    [
        ({"min_ports_per_vm": 32}, {"min_ports_per_vm": 16}),
        ({"max_ports_per_vm": 65536}, {"max_ports_per_vm": 131072}),
        ({"min_ports_per_vm": 32768, "max_ports_per_vm": 65536}, {"min_ports_per_vm": 65536 * 2}),
    ],
)
def test_nat_port_bounds(ok: dict[str, int], bad: dict[str, int]) -> None:
    made = NatSettings(**ok)  # type: ignore[arg-type]
    assert all(getattr(made, k) == v for k, v in ok.items())
    with pytest.raises(ConfigErrors) as err:
        NatSettings(**bad)  # type: ignore[arg-type]
    assert fields(err.value)[0] == f"NatSettings.{next(iter(bad))}"


def test_nat_defaults() -> None:
    n = NatSettings()
    assert (n.enabled, n.dynamic_port_allocation, n.min_ports_per_vm, n.max_ports_per_vm) == (True, True, 64, 4096)
    assert str(n.log_filter) == "ERRORS_ONLY"
    assert NatSettings(dynamic_port_allocation=False, min_ports_per_vm=65536, max_ports_per_vm=64).min_ports_per_vm


def test_default_max_instances_sizes_the_subnet_description() -> None:
    assert InferenceNetworkArgs(region="r").max_instances == 1
    assert InferenceNetworkArgs(region="r", max_instances=12.0).max_instances == 12  # type: ignore[arg-type]
    sub = render(lambda: InferenceNetwork("n", InferenceNetworkArgs(region="r")).network_id).one(
        "gcp:compute/subnetwork:Subnetwork"
    )
    assert sub.inputs["description"] == "Direct VPC egress; sized for 1 max instances"


def test_dns_zone_names_fit_63_characters_and_records_are_exact() -> None:
    name = "n" * 70
    r = render(lambda: InferenceNetwork(name, InferenceNetworkArgs(region="r", project="p")).network_id)
    zones = {z.inputs["dnsName"]: z.inputs["name"] for z in r.of_type("gcp:dns/managedZone:ManagedZone")}
    assert zones == {
        "googleapis.com.": "n" * 48 + "-googleapis-com",
        "pkg.dev.": "n" * 55 + "-pkg-dev",
        "gcr.io.": "n" * 56 + "-gcr-io",
    }
    assert all(len(z) == 63 for z in zones.values())
    short = render(lambda: InferenceNetwork("ab", InferenceNetworkArgs(region="r")).network_id)
    assert {z.inputs["name"] for z in short.of_type("gcp:dns/managedZone:ManagedZone")} == {
        "ab-googleapis-com",
        "ab-pkg-dev",
        "ab-gcr-io",
    }
    records = {(x.inputs["name"], x.inputs["type"]): x.inputs for x in r.of_type("gcp:dns/recordSet:RecordSet")}
    assert len(records) == 6
    for zone_dns, zone in zones.items():
        a, cname = records[(zone_dns, "A")], records[(f"*.{zone_dns}", "CNAME")]
        assert (a["ttl"], a["rrdatas"], a["managedZone"]) == (300, ["10.255.255.254"], zone)
        assert (cname["ttl"], cname["rrdatas"], cname["managedZone"]) == (300, [zone_dns], zone)


def test_nat_without_dynamic_port_allocation() -> None:
    settings = NetworkSettings(nat=NatSettings(dynamic_port_allocation=False, min_ports_per_vm=128))
    nat = render(lambda: InferenceNetwork("n", InferenceNetworkArgs(region="r", settings=settings)).network_id).one(
        "gcp:compute/routerNat:RouterNat"
    )
    assert nat.inputs["enableDynamicPortAllocation"] is False
    assert nat.inputs["minPortsPerVm"] == 128
    assert "maxPortsPerVm" not in nat.inputs and "enableEndpointIndependentMapping" not in nat.inputs
    assert nat.inputs["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"}
