"""Pure network arithmetic and checks (no Pulumi): subnet sizing, CIDR overlap, PSC names.

Shared by config validation (before anything is registered) and the network component.
"""

from __future__ import annotations

import ipaddress
import re
from math import ceil, log2

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, collect


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


def check_subnet(field: str, cidr: str, max_instances: int) -> ipaddress.IPv4Network:
    """The subnet must be a private range big enough for Direct VPC at ``max_instances``."""
    net = parse_cidr(field, cidr)
    need = required_prefix(max_instances)
    if net.prefixlen > need:
        raise ConfigError(
            field,
            cidr,
            f"/{net.prefixlen} is too small for {max_instances} max instances (Direct VPC needs /{need} or larger: "
            f"~{int(limits.DIRECT_VPC_IP_MULTIPLIER.value)} IPs per instance in /28 blocks, /26 minimum)",
            f"use a /{need} or larger range, e.g. {net.supernet(new_prefix=need)}",
            f"/{need} or larger",
        )
    allowed = [
        ipaddress.IPv4Network(r)
        for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "240.0.0.0/4")
    ]
    if not any(net.subnet_of(a) for a in allowed):
        raise ConfigError(
            field,
            cidr,
            "is not an RFC 1918, RFC 6598 or Class E range",
            "use a private range; 100.64.0.0/10 is recommended first for Cloud Run",
            "10/8, 172.16/12, 192.168/16, 100.64/10, 240/4",
        )
    return net


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
    if not ip.is_private or ip.version != 4:
        raise ConfigError(
            field,
            address,
            "must be an internal IPv4 address outside every subnet",
            "use an unused private address such as 10.255.255.254",
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


def network_errors(
    *,
    prefix: str,
    subnet_cidr: str,
    max_instances: int,
    existing_network: object | None,
    existing_subnetwork: object | None,
    psc_name: str | None,
    psc_address: str | None,
) -> list[ConfigError]:
    """Every network problem at once (field names under ``prefix``); shared by config and component."""
    errors: list[ConfigError] = []
    byo = existing_network is not None
    if byo != (existing_subnetwork is not None):
        errors.append(
            ConfigError(
                f"{prefix}existing_subnetwork",
                existing_subnetwork,
                "bring-your-own needs both existing_network and existing_subnetwork",
                "set both, or neither to let the stack create them",
            )
        )
    if not byo:
        collect(errors, lambda: check_subnet(f"{prefix}subnet_cidr", subnet_cidr, max_instances))
    if psc_name is not None:
        collect(errors, lambda: check_psc_name(f"{prefix}psc.name", psc_name))
    if psc_address is not None:
        collect(errors, lambda: check_psc_address(f"{prefix}psc.address", psc_address))
        if not byo and not errors:
            collect(
                errors,
                lambda: check_no_overlap(
                    {f"{prefix}subnet_cidr": subnet_cidr, f"{prefix}psc.address": f"{psc_address}/32"}
                ),
            )
    return errors
