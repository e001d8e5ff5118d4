"""Pure network arithmetic and checks (no Pulumi): subnet sizing, CIDR overlap, PSC names.

Shared by config validation (before anything is registered) and the network component.
"""

from __future__ import annotations

import ipaddress
import re
from math import ceil, log2

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError


def required_prefix(max_instances: int) -> int:
    """Smallest subnet (largest prefix) that holds Direct VPC addresses for ``max_instances``.

    Cloud Run uses about ``instances × multiplier`` addresses (§9.5: ×2 or ×4; we take ×4),
    reserved in /28 blocks, plus the 4 addresses GCP keeps in every subnet; never smaller
    than the documented /26 minimum.
    """
    need = max_instances * int(limits.DIRECT_VPC_IP_MULTIPLIER.value)
    need = ceil(need / limits.DIRECT_VPC_IP_BLOCK) * limits.DIRECT_VPC_IP_BLOCK + 4
    prefix = 32 - ceil(log2(need))
    return min(prefix, limits.SUBNET_MIN_PREFIX)


def parse_cidr(field: str, value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(
            field,
            value,
            f"is not a valid IPv4 CIDR ({exc})",
            "write it as a network address and prefix, e.g. 10.8.0.0/26",
        ) from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise ConfigError(field, value, "is IPv6", "Direct VPC egress needs an IPv4 range, e.g. 10.8.0.0/26")
    return net


PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "240.0.0.0/4")
)
"""Ranges Cloud Run Direct VPC subnets may use: RFC 1918, RFC 6598 and Class E (facts §5.1)."""
ENDPOINT_RANGES = PRIVATE_RANGES[:4]
"""Ranges we accept for a PSC endpoint address: the private subnet ranges minus Class E. GCP takes an
endpoint address from the VPC's internal space; loopback, link-local, multicast, broadcast and
public addresses are never valid for it, and Class E is not routable from every peer."""


def check_subnet_range(field: str, cidr: str) -> ipaddress.IPv4Network:
    """A parseable IPv4 CIDR inside a range Cloud Run Direct VPC accepts."""
    net = parse_cidr(field, cidr)
    if not any(net.subnet_of(a) for a in PRIVATE_RANGES):
        raise ConfigError(
            field,
            cidr,
            "is not an RFC 1918, RFC 6598 or Class E range",
            "use a private range; 100.64.0.0/10 is recommended first for Cloud Run",
            "10/8, 172.16/12, 192.168/16, 100.64/10, 240/4",
        )
    return net


def check_subnet(field: str, cidr: str, max_instances: int) -> ipaddress.IPv4Network:
    """The subnet must be a private range big enough for Direct VPC at ``max_instances``."""
    net = check_subnet_range(field, cidr)
    need = required_prefix(max_instances)
    if need < 1:  # more addresses than IPv4 has: no subnet can hold them (issue 21: a raw ValueError from supernet)
        raise ConfigError(
            field,
            cidr,
            f"no IPv4 subnet holds Direct VPC addresses for {max_instances} max instances",
            "lower the service's max instances (scaling.max_instances allows at most 1000)",
        )
    if net.prefixlen > need:
        raise ConfigError(
            field,
            cidr,
            f"/{net.prefixlen} is too small for {max_instances} max instances (Direct VPC needs /{need} or larger: "
            f"~{int(limits.DIRECT_VPC_IP_MULTIPLIER.value)} IPs per instance in /28 blocks, /26 minimum)",
            f"use a /{need} or larger range, e.g. {net.supernet(new_prefix=need)}",
            f"/{need} or larger",
        )
    return net


TAG_PATTERN = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
"""GCP network tags: 1-63 characters, lowercase letters, digits and hyphens, starting with a letter and
not ending with a hyphen (RFC 1035 label)."""


def check_tag(field: str, tag: str) -> None:
    if not re.fullmatch(TAG_PATTERN, tag):
        raise ConfigError(
            field,
            tag,
            "is not a valid network tag",
            "use 1-63 lowercase letters, digits and hyphens, starting with a letter, e.g. 'llm-inference'",
            TAG_PATTERN,
        )


def is_dns_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", lab) for lab in labels)


def check_no_overlap(ranges: dict[str, str]) -> None:
    """No two named CIDRs (subnet, PSC address, …) may overlap."""
    parsed = {k: ipaddress.ip_network(v, strict=False) for k, v in ranges.items()}
    keys = list(parsed)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if parsed[a].overlaps(parsed[b]):
                raise ConfigError(b, ranges[b], f"overlaps {a} ({ranges[a]})", f"choose a range outside {ranges[a]}")


def check_psc_address(field: str, address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise ConfigError(field, address, "is not an IPv4 address", "use e.g. 10.255.255.254") from exc
    if ip.version != 4 or not any(ip in r for r in ENDPOINT_RANGES):
        raise ConfigError(
            field,
            address,
            "must be a private IPv4 address (not loopback, link-local, multicast, broadcast or public)",
            "use an unused private address outside every subnet, such as 10.255.255.254",
            "10/8, 172.16/12, 192.168/16, 100.64/10",
        )


def check_psc_name(field: str, name: str) -> None:
    """GCP: PSC forwarding rules to Google APIs are 1-20 lowercase letters/digits, starting with a letter."""
    if not re.fullmatch(limits.PSC_NAME_PATTERN, name):
        raise ConfigError(
            field,
            name,
            "is not a valid PSC endpoint name",
            "use 1-20 lowercase letters and digits starting with a letter (no hyphens), e.g. 'llmapis'",
            limits.PSC_NAME_PATTERN,
        )
