"""``NetworkSettings``: what the ``cloudrun-gpu:network`` stack section and ``InferenceNetworkArgs`` hold.

Declared, documented and validated once, here; the component and the stack file both use it.
"""

import enum
import ipaddress

from pydantic import Field

from cloudrun_gpu import limits, netcalc
from cloudrun_gpu.errors import ConfigError, collect
from cloudrun_gpu.settings import nested, settings

PSC_DNS_ZONES = ["googleapis.com.", "pkg.dev.", "gcr.io."]
"""Private zones that point Google API hostnames at the PSC endpoint: apex A record → endpoint,
wildcard CNAME → apex (facts §5.4). pkg.dev and gcr.io keep image pulls private."""


class PscTarget(enum.StrEnum):
    """Which Google API bundle a Private Service Connect endpoint serves."""

    ALL_APIS = "all-apis"
    """Every Google API in the bundle."""
    VPC_SC = "vpc-sc"
    """Only APIs that VPC Service Controls supports (for perimeters)."""


class NatLogFilter(enum.StrEnum):
    """Which Cloud NAT events are logged."""

    ERRORS_ONLY = "ERRORS_ONLY"
    """Dropped connections only (cheap; what matters when a hub download fails)."""
    TRANSLATIONS_ONLY = "TRANSLATIONS_ONLY"
    """Successful translations only."""
    ALL = "ALL"
    """Every event."""


@settings
class PscSettings:
    """A Private Service Connect endpoint for Google APIs, so model and image pulls stay private (L4)."""

    enabled: bool = True
    """False: no endpoint (e.g. the VPC already has one)."""
    address: str = "10.255.255.254"
    """The endpoint's internal IPv4 address: unused, private, outside every subnet of the VPC."""
    target: PscTarget = PscTarget.ALL_APIS
    """The API bundle: ``all-apis`` or ``vpc-sc``."""
    name: str = "llmapis"
    """Forwarding-rule name: 1-20 lowercase letters/digits starting with a letter (GCP rule for PSC
    endpoints to Google APIs; set explicitly because auto-naming adds a hyphen)."""
    dns_zones: list[str] = Field(default_factory=lambda: list(PSC_DNS_ZONES))
    """Private DNS zones whose names resolve to the endpoint."""

    def problems(self) -> list[ConfigError]:
        if not self.enabled:
            return []
        errors: list[ConfigError] = []
        collect(errors, lambda: netcalc.check_psc_name("name", self.name))
        collect(errors, lambda: netcalc.check_psc_address("address", self.address))
        for i, zone in enumerate(self.dns_zones):
            if not zone.endswith(".") or not netcalc.is_dns_name(zone.rstrip(".")):
                errors.append(
                    ConfigError(
                        f"dns_zones.{i}", zone, "is not a DNS zone name", "write it fully qualified, e.g. 'pkg.dev.'"
                    )
                )
        # Each zone is one private DNS zone resource named after it: listed twice, two resources share one URN.
        errors.extend(_twice("dns_zones", self.dns_zones, "each zone is created once"))
        return errors


def _twice(field: str, values: list[str], why: str) -> list[ConfigError]:
    """A list that names one value twice (issue 21: a repeated DNS zone was a duplicate URN at deploy)."""
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            return [ConfigError(f"{field}.{i}", v, f"is listed twice (also {field}.{seen[v]}): {why}", f"keep one {v}")]
        seen[v] = i
    return []


@settings
class NatSettings:
    """Cloud Router + Cloud NAT, so ALL_TRAFFIC egress still reaches the internet (L5)."""

    enabled: bool = True
    """False: no NAT, no internet from the service (fine when the model comes from the image or a bucket)."""
    dynamic_port_allocation: bool = True
    """Grow each instance's ports from min to max on demand (needs endpoint-independent mapping off)."""
    min_ports_per_vm: int = Field(default=64, ge=32, le=65536)
    """Ports each instance always holds (a power of two with dynamic allocation)."""
    max_ports_per_vm: int = Field(default=4096, ge=64, le=65536)
    """Upper bound with dynamic allocation: a power of two strictly above ``min_ports_per_vm``."""
    log_filter: NatLogFilter = NatLogFilter.ERRORS_ONLY
    """Which NAT events reach Cloud Logging."""

    def problems(self) -> list[ConfigError]:
        if not (self.enabled and self.dynamic_port_allocation):
            return []
        errors: list[ConfigError] = []
        for name in ("min_ports_per_vm", "max_ports_per_vm"):
            v = getattr(self, name)
            if v & (v - 1):
                lo, hi = 1 << (v.bit_length() - 1), 1 << v.bit_length()
                errors.append(
                    ConfigError(
                        name,
                        v,
                        "must be a power of two with dynamic port allocation",
                        f"use {lo} or {hi}",
                        "32, 64, …, 65536",
                    )
                )
        if not errors and self.max_ports_per_vm <= self.min_ports_per_vm:
            errors.append(
                ConfigError(
                    "max_ports_per_vm",
                    self.max_ports_per_vm,
                    f"must be greater than min_ports_per_vm ({self.min_ports_per_vm}) with dynamic port allocation",
                    f"set max_ports_per_vm to {self.min_ports_per_vm * 2} or more, or turn dynamic_port_allocation off",
                    f"> {self.min_ports_per_vm}",
                )
            )
        return errors


@settings
class NetworkSettings:
    """Direct VPC egress with ALL_TRAFFIC, a subnet sized from max instances, PSC and NAT (L4, L5)."""

    existing_network: str | None = None
    """Bring your own: a network id or self-link; then no network or subnet is created."""
    existing_subnetwork: str | None = None
    """Bring your own: the subnetwork id or self-link (set together with ``existing_network``)."""
    subnet_cidr: str = "10.8.0.0/26"
    """The Direct VPC subnet: a private IPv4 range, large enough for max instances (checked)."""
    psc: PscSettings = Field(default_factory=PscSettings)
    """Private Service Connect endpoint for Google APIs."""
    nat: NatSettings = Field(default_factory=NatSettings)
    """Cloud NAT for internet egress."""
    tags: list[str] = Field(default_factory=lambda: ["llm-inference"])
    """Network tags on the service's Direct VPC interface (firewall rules can target them)."""

    @property
    def byo(self) -> bool:
        return self.existing_network is not None

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = [*nested(self.psc, "psc"), *nested(self.nat, "nat")]
        for name in ("existing_network", "existing_subnetwork"):
            v = getattr(self, name)
            if v is not None and not v.strip():
                errors.append(ConfigError(name, v, "is empty", f"remove {name} or set it to a resource id"))
        if (self.existing_network is None) != (self.existing_subnetwork is None):
            errors.append(
                ConfigError(
                    "existing_subnetwork",
                    self.existing_subnetwork,
                    "bring-your-own needs both existing_network and existing_subnetwork",
                    "set both, or neither to let the stack create them",
                )
            )
        if not self.byo:
            net = collect(errors, lambda: netcalc.check_subnet_range("subnet_cidr", self.subnet_cidr))
            psc_ok = self.psc.enabled and not any(e.field.startswith("psc.") for e in errors)
            if net is not None and psc_ok and ipaddress.ip_address(self.psc.address) in net:
                errors.append(
                    ConfigError(
                        "psc.address",
                        self.psc.address,
                        f"lies inside subnet_cidr ({self.subnet_cidr})",
                        f"choose an address outside {self.subnet_cidr}",
                    )
                )
        for i, tag in enumerate(self.tags):
            collect(errors, lambda i=i, tag=tag: netcalc.check_tag(f"tags.{i}", tag))  # type: ignore[misc]
        most = int(limits.NETWORK_TAGS_MAX.value)
        if len(self.tags) > most:  # limits.NETWORK_TAGS_MAX: at most 64, each once
            errors.append(
                ConfigError("tags", f"{len(self.tags)} tags", f"has more than {most} tags", f"keep at most {most}")
            )
        errors.extend(_twice("tags", self.tags, "a network tag is set once"))
        return errors

    def sizing_problems(self, max_instances: int) -> list[ConfigError]:
        """The subnet must hold Direct VPC's addresses at ``max_instances`` (a rule across components:
        the service's scaling decides the network's size)."""
        if self.byo:
            return []
        errors: list[ConfigError] = []
        collect(errors, lambda: netcalc.check_subnet("subnet_cidr", self.subnet_cidr, max_instances))
        return errors


__all__ = ["PSC_DNS_ZONES", "NatLogFilter", "NatSettings", "NetworkSettings", "PscSettings", "PscTarget"]
