"""Session 4 strength tests for netcalc.py and network/settings.py: every error a user can get, word for word.

The seed-71 sample of netcalc.py found the *fix* and *why* texts unpinned (only field, value and allowed were
asserted): a user who writes a bad range reads exactly these lines, so each raise is pinned here as rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cloudrun_gpu import netcalc
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.network import PscSettings

NETCALC_ERRORS: list[tuple[Callable[..., Any], tuple[Any, ...], str]] = [
    (
        netcalc.parse_cidr,
        ("network.subnet_cidr", "10.8.0.1/26"),
        "network.subnet_cidr = '10.8.0.1/26': is not a valid IPv4 CIDR (10.8.0.1/26 has host bits set)\n"
        "  fix: write it as a network address and prefix, e.g. 10.8.0.0/26",
    ),
    (
        netcalc.parse_cidr,
        ("network.subnet_cidr", "fd00::/64"),
        "network.subnet_cidr = 'fd00::/64': is IPv6\n  fix: Direct VPC egress needs an IPv4 range, e.g. 10.8.0.0/26",
    ),
    (
        netcalc.check_subnet_range,
        ("network.subnet_cidr", "11.0.0.0/26"),
        "network.subnet_cidr = '11.0.0.0/26': is not an RFC 1918, RFC 6598 or Class E range\n"
        "  allowed: 10/8, 172.16/12, 192.168/16, 100.64/10, 240/4\n"
        "  fix: use a private range; 100.64.0.0/10 is recommended first for Cloud Run",
    ),
    (
        netcalc.check_subnet,
        ("network.subnet_cidr", "10.8.0.0/27", 1),
        "network.subnet_cidr = '10.8.0.0/27': /27 is too small for 1 max instances (Direct VPC needs /26 or larger: "
        "~4 IPs per instance in /28 blocks, /26 minimum)\n"
        "  allowed: /26 or larger\n"
        "  fix: use a /26 or larger range, e.g. 10.8.0.0/26",
    ),
    (
        netcalc.check_subnet,
        ("network.subnet_cidr", "10.0.0.0/8", 10**9),
        "network.subnet_cidr = '10.0.0.0/8': no IPv4 subnet holds Direct VPC addresses for 1000000000 max instances\n"
        "  fix: lower the service's max instances (scaling.max_instances allows at most 1000)",
    ),
    (
        netcalc.check_tag,
        ("network.tag", "Bad"),
        "network.tag = 'Bad': is not a valid network tag\n"
        "  allowed: [a-z]([-a-z0-9]{0,61}[a-z0-9])?\n"
        "  fix: use 1-63 lowercase letters, digits and hyphens, starting with a letter, e.g. 'llm-inference'",
    ),
    (
        netcalc.check_no_overlap,
        ({"network.subnet_cidr": "10.8.0.0/26", "network.psc.address": "10.8.0.5/32"},),
        "network.psc.address = '10.8.0.5/32': overlaps network.subnet_cidr (10.8.0.0/26)\n"
        "  fix: choose a range outside 10.8.0.0/26",
    ),
    (
        netcalc.check_psc_address,
        ("network.psc.address", "nope"),
        "network.psc.address = 'nope': is not an IPv4 address\n  fix: use e.g. 10.255.255.254",
    ),
    (
        netcalc.check_psc_address,
        ("network.psc.address", "8.8.8.8"),
        "network.psc.address = '8.8.8.8': must be a private IPv4 address (not loopback, link-local, multicast, "
        "broadcast or public)\n"
        "  allowed: 10/8, 172.16/12, 192.168/16, 100.64/10\n"
        "  fix: use an unused private address outside every subnet, such as 10.255.255.254",
    ),
    (
        netcalc.check_psc_name,
        ("network.psc.name", "bad-name"),
        "network.psc.name = 'bad-name': is not a valid PSC endpoint name\n"
        "  allowed: ^[a-z][a-z0-9]{0,19}$\n"
        "  fix: use 1-20 lowercase letters and digits starting with a letter (no hyphens), e.g. 'llmapis'",
    ),
]


@pytest.mark.parametrize(("check", "args", "rendered"), NETCALC_ERRORS, ids=lambda v: getattr(v, "__name__", None))
def test_every_netcalc_error_reads_exactly_as_the_user_sees_it(
    check: Callable[..., Any], args: tuple[Any, ...], rendered: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check(*args)
    assert str(err.value) == rendered


def test_the_largest_direct_vpc_need_still_names_a_subnet_and_one_more_instance_names_none() -> None:
    """``required_prefix`` reaches /1 at 536,870,908 max instances (about 2^31 addresses): that many still fit a
    subnet, so the error says how large; one more needs all of IPv4 (/0), and the error says no subnet holds them
    (issue 21: a raw ValueError from ``supernet`` before). The seed-71 sample moved this edge both ways."""
    assert netcalc.required_prefix(536_870_908) == 1
    with pytest.raises(ConfigError) as err:
        netcalc.check_subnet("network.subnet_cidr", "10.0.0.0/8", 536_870_908)
    assert (err.value.problem, err.value.fix) == (
        "/8 is too small for 536870908 max instances (Direct VPC needs /1 or larger: ~4 IPs per instance in /28 "
        "blocks, /26 minimum)",
        "use a /1 or larger range, e.g. 0.0.0.0/1",
    )
    assert netcalc.required_prefix(536_870_909) == 0
    with pytest.raises(ConfigError) as err:
        netcalc.check_subnet("network.subnet_cidr", "10.0.0.0/8", 536_870_909)
    assert err.value.problem == "no IPv4 subnet holds Direct VPC addresses for 536870909 max instances"


def test_a_psc_dns_zone_may_be_253_characters_and_no_more() -> None:
    """RFC 1035 section 2.3.4: a name is at most 255 octets on the wire, which is 253 characters written out
    (without the root's trailing dot). The seed-81 sample moved the edge to 252 (``<=`` → ``<``)."""
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 63 × 3 + 61 + 3 dots = 253 characters
    assert len(longest) == 253
    assert PscSettings(dns_zones=[longest + "."]).dns_zones == [longest + "."]
    with pytest.raises(ConfigErrors) as err:
        PscSettings(dns_zones=["c" + longest + "."])
    assert [(e.field, e.value, e.problem) for e in err.value.errors] == [
        ("PscSettings.dns_zones.0", "c" + longest + ".", "is not a DNS zone name")
    ]
