"""Session-5 mutation-strength tests for ``cloudrun_gpu/network/settings.py`` (seed 101's survivors): the NAT
port bounds and messages, an empty bring-your-own id's fix, and the list rules issue 21 added (a DNS zone or a
network tag listed twice, more than 64 tags), each as the user reads it."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.network import NatSettings, NetworkSettings, PscSettings

SUB = "projects/p/regions/europe-west1/subnetworks/run"


def the_error(cls: Any, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigErrors) as err:
        cls(**kw)
    (e,) = err.value.errors
    return e


@pytest.mark.parametrize("dynamic", [True, False])
def test_max_ports_below_64_is_out_of_range_with_or_without_dynamic_allocation(dynamic: bool) -> None:
    """network/settings.py:94 (seed 101, DropKeyword of `ge=64` survived): the bound is the field's own, so a
    user reads it as a range (not, with dynamic allocation, as "must be greater than min_ports_per_vm"), and it
    holds when dynamic allocation is off too."""
    e = the_error(NatSettings, dynamic_port_allocation=dynamic, max_ports_per_vm=32)
    assert vars(e) == {
        "field": "NatSettings.max_ports_per_vm",
        "value": 32,
        "problem": "is out of range",
        "fix": "set NatSettings.max_ports_per_vm to ≥ 64",
        "allowed": "≥ 64",
    }
    lowest = NatSettings(dynamic_port_allocation=dynamic, min_ports_per_vm=32, max_ports_per_vm=64)
    assert lowest.max_ports_per_vm == 64


def test_max_ports_not_above_min_reads_in_full() -> None:
    """network/settings.py:121 (seed 101, ChangeMessage survived)."""
    e = the_error(NatSettings, min_ports_per_vm=128, max_ports_per_vm=128)
    assert vars(e) == {
        "field": "NatSettings.max_ports_per_vm",
        "value": 128,
        "problem": "must be greater than min_ports_per_vm (128) with dynamic port allocation",
        "fix": "set NatSettings.max_ports_per_vm to 256 or more, or turn dynamic_port_allocation off",
        "allowed": "> 128",
    }


@pytest.mark.parametrize("name", ["existing_network", "existing_subnetwork"])
def test_an_empty_bring_your_own_id_says_how_to_fix_it(name: str) -> None:
    """network/settings.py:155 (seed 101, ChangeMessage of the fix survived)."""
    both = {"existing_network": "projects/p/global/networks/vpc", "existing_subnetwork": SUB, name: "  "}
    e = the_error(NetworkSettings, **both)
    assert vars(e) == {
        "field": f"NetworkSettings.{name}",
        "value": "  ",
        "problem": "is empty",
        "fix": f"remove {name} or set it to a resource id",
        "allowed": "",
    }


def test_a_dns_zone_listed_twice_is_refused_naming_both_places() -> None:
    """network/settings.py:77 (seed 101, the repeat-finding loop emptied survived): each zone is one private DNS
    zone resource named after it, so a repeated zone would be a duplicate URN at deployment (issue 21)."""
    e = the_error(PscSettings, dns_zones=["pkg.dev.", "gcr.io.", "pkg.dev."])
    assert vars(e) == {
        "field": "PscSettings.dns_zones.2",
        "value": "pkg.dev.",
        "problem": "is listed twice (also dns_zones.0): each zone is created once",
        "fix": "keep one pkg.dev.",
        "allowed": "",
    }
    assert PscSettings(dns_zones=["pkg.dev.", "gcr.io."]).dns_zones == ["pkg.dev.", "gcr.io."]


def test_a_network_tag_listed_twice_is_refused_once() -> None:
    """The same rule for tags (each tag once on an instance, limits.NETWORK_TAGS_MAX's source): the first repeat is
    named, and only it."""
    e = the_error(NetworkSettings, tags=["llm", "gpu", "llm", "gpu"])
    assert vars(e) == {
        "field": "NetworkSettings.tags.2",
        "value": "llm",
        "problem": "is listed twice (also tags.0): a network tag is set once",
        "fix": "keep one llm",
        "allowed": "",
    }


def test_at_most_64_network_tags() -> None:
    """network/settings.py:180 (seed 101, `> most` → `== most` survived): 64 tags are fine, 65 refused."""
    most = int(limits.NETWORK_TAGS_MAX.value)
    assert most == 64
    assert len(NetworkSettings(tags=[f"t{i}" for i in range(64)]).tags) == 64
    e = the_error(NetworkSettings, tags=[f"t{i}" for i in range(65)])
    assert vars(e) == {
        "field": "NetworkSettings.tags",
        "value": "65 tags",
        "problem": "has more than 64 tags",
        "fix": "keep at most 64",
        "allowed": "",
    }


@pytest.mark.parametrize("field", ["min_ports_per_vm", "max_ports_per_vm"])
def test_at_most_65536_ports_per_vm_even_without_dynamic_allocation(field: str) -> None:
    """network/settings.py:94 (seed 111, `le=65536` → 65537 survived): the fields' upper bound is 65,536 ports
    (the size of a port number's range); without dynamic allocation the power-of-two rule does not run, so only the
    field's bound refuses 65,537."""
    most: dict[str, Any] = {field: 65536}
    assert getattr(NatSettings(dynamic_port_allocation=False, **most), field) == 65536
    e = the_error(NatSettings, dynamic_port_allocation=False, **{field: 65537})
    assert vars(e) == {
        "field": f"NatSettings.{field}",
        "value": 65537,
        "problem": "is out of range",
        "fix": f"set NatSettings.{field} to ≤ 65536",
        "allowed": "≤ 65536",
    }


@pytest.mark.parametrize(
    "given", [{"existing_network": "projects/p/global/networks/vpc"}, {"existing_subnetwork": SUB}]
)
def test_bring_your_own_needs_both_ids(given: dict[str, str]) -> None:
    """network/settings.py:161 (seed 111, ChangeMessage of the problem survived)."""
    e = the_error(NetworkSettings, **given)
    assert vars(e) == {
        "field": "NetworkSettings.existing_subnetwork",
        "value": given.get("existing_subnetwork"),
        "problem": "bring-your-own needs both existing_network and existing_subnetwork",
        "fix": "set both, or neither to let the stack create them",
        "allowed": "",
    }


def test_the_psc_endpoint_may_not_lie_inside_the_subnet() -> None:
    """network/settings.py:173 (seed 111, ChangeMessage of the problem survived): the default endpoint address
    10.255.255.254 inside a subnet the user chose."""
    e = the_error(NetworkSettings, subnet_cidr="10.255.255.192/26")
    assert vars(e) == {
        "field": "NetworkSettings.psc.address",
        "value": "10.255.255.254",
        "problem": "lies inside subnet_cidr (10.255.255.192/26)",
        "fix": "choose an address outside 10.255.255.192/26",
        "allowed": "",
    }
    assert NetworkSettings(subnet_cidr="10.255.255.0/26").subnet_cidr == "10.255.255.0/26"
