"""The network a GPU Cloud Run service needs (practices L4, L5).

- Direct VPC egress with ALL_TRAFFIC, into a subnet sized from max instances, with Private
  Google Access on;
- a Private Service Connect endpoint for Google APIs plus private DNS, so ``storage.googleapis.com``
  (model bucket) and ``*.pkg.dev`` (images) resolve to it from inside the VPC;
- Cloud Router + Cloud NAT so ALL_TRAFFIC egress still reaches the internet (model hubs), or
  no NAT at all when nothing outside Google is needed.

Bring your own network: pass ``existing_network``/``existing_subnetwork`` and the component
creates no network or subnet, only what you leave enabled around them.
"""

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.network.settings import (
    PSC_DNS_ZONES,
    NatLogFilter,
    NatSettings,
    NetworkSettings,
    PscSettings,
    PscTarget,
)
from cloudrun_gpu.service.settings import MAX_INSTANCES_MAX
from cloudrun_gpu.settings import args_int, args_settings, args_types, raise_if, with_prefix

TOKEN = "cloudrun-gpu:index:InferenceNetwork"


@dataclass
class InferenceNetworkArgs:
    """Inputs of :class:`InferenceNetwork`: where, how many instances, and its settings."""

    region: str
    """The region of the subnet, router and NAT (the Cloud Run service's region)."""
    settings: NetworkSettings = field(default_factory=NetworkSettings)
    """Subnet, PSC, NAT and tags (the ``cloudrun-gpu:network`` section of a stack file)."""
    max_instances: int = 1
    """The service's max instances: the subnet must hold Direct VPC's addresses for them."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        # From another Pulumi language: a plain input bag, JSON numbers as floats (issue 21: None or 10**12 here
        # were a TypeError or netcalc's raw ValueError). The bound is scaling.max_instances' own.
        raise_if(
            args_settings(self, "InferenceNetworkArgs.", {"settings": NetworkSettings})
            + args_int(self, "InferenceNetworkArgs.", "max_instances", 1, MAX_INSTANCES_MAX, " (scaling.max_instances)")
            + args_types(self, "InferenceNetworkArgs.", skip=["settings", "max_instances"])
        )
        errors = [
            with_prefix(e, "InferenceNetworkArgs.settings.") for e in self.settings.sizing_problems(self.max_instances)
        ]
        if not self.region:
            errors.append(ConfigError("InferenceNetworkArgs.region", self.region, "is empty", "set the region"))
        raise_if(errors)

    @classmethod
    def from_input(cls, args: "InferenceNetworkArgs | dict[str, Any]") -> "InferenceNetworkArgs":
        return args if isinstance(args, InferenceNetworkArgs) else cls(**args)


def zone_slug(zone_dns: str) -> str:
    """``pkg.dev.`` → ``pkg-dev``: what names the zone's resources."""
    return zone_dns.rstrip(".").replace(".", "-")


def zone_name(component: str, zone_dns: str) -> str:
    """The Cloud DNS name of the private zone for ``zone_dns`` in the component named ``component``: the component's
    name cut so the whole stays ≤ 63 characters for the zones the library lists, then the zone's slug. A long or
    unusual ``dns_zones`` entry can still give an invalid name: a stack checks it against
    ``limits.DNS_ZONE_NAME`` before it registers anything (issue 21)."""
    slug = zone_slug(zone_dns)
    return f"{component[: 62 - len(slug)].rstrip('-')}-{slug}"


class InferenceNetwork(pulumi.ComponentResource):
    """The network a GPU Cloud Run service needs: Direct VPC egress into a sized subnet, a Private Service
    Connect endpoint for Google APIs, and Cloud NAT (L4, L5)."""

    network_id: pulumi.Output[str]
    """The VPC network's id (created, or the one brought with ``existing_network``)."""
    subnetwork_id: pulumi.Output[str]
    """The Direct VPC subnetwork's id (created, or the one brought with ``existing_subnetwork``)."""
    psc_ip: pulumi.Output[str] | None
    """The Private Service Connect endpoint's internal address; unset when PSC is disabled."""
    tags: list[str]
    """Network tags for the service's Direct VPC interface."""

    def __init__(self, name: str, args: InferenceNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args = InferenceNetworkArgs.from_input(args)
        super().__init__(TOKEN, name, None, opts)
        net = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.network: gcp.compute.Network | None = None
        self.subnetwork: gcp.compute.Subnetwork | None = None
        if net.existing_network is not None and net.existing_subnetwork is not None:
            network_id = pulumi.Output.from_input(net.existing_network)
            subnet_id = pulumi.Output.from_input(net.existing_subnetwork)
        else:
            self.network = gcp.compute.Network(
                f"{name}-vpc",
                auto_create_subnetworks=False,
                routing_mode="REGIONAL",
                description="VPC for Direct VPC egress of GPU Cloud Run services",
                project=args.project,
                opts=child,
            )
            self.subnetwork = gcp.compute.Subnetwork(
                f"{name}-subnet",
                network=self.network.id,
                region=args.region,
                ip_cidr_range=net.subnet_cidr,
                private_ip_google_access=True,
                stack_type="IPV4_ONLY",
                description=f"Direct VPC egress; sized for {args.max_instances} max instances",
                project=args.project,
                opts=child,
            )
            network_id, subnet_id = self.network.id, self.subnetwork.id
        self.network_id = network_id
        self.subnetwork_id = subnet_id
        self.tags = list(net.tags)

        self.psc_address: gcp.compute.GlobalAddress | None = None
        self.psc_rule: gcp.compute.GlobalForwardingRule | None = None
        self.dns_zones: list[gcp.dns.ManagedZone] = []
        self.dns_records: list[gcp.dns.RecordSet] = []
        self.psc_ip = None
        if net.psc.enabled:
            self._psc(name, net.psc, network_id, args.project, child)

        self.router: gcp.compute.Router | None = None
        self.nat: gcp.compute.RouterNat | None = None
        if net.nat.enabled:
            self._nat(name, args, net.nat, network_id, subnet_id, child)

        self.register_outputs(
            {
                "network_id": self.network_id,
                "subnetwork_id": self.subnetwork_id,
                "psc_ip": self.psc_ip,
                "tags": self.tags,
            }
        )

    def _psc(
        self,
        name: str,
        psc: PscSettings,
        network_id: pulumi.Output[str],
        project: str | None,
        child: pulumi.ResourceOptions,
    ) -> None:
        self.psc_address = gcp.compute.GlobalAddress(
            f"{name}-psc-ip",
            name=f"{psc.name}-ip",
            address_type="INTERNAL",
            purpose="PRIVATE_SERVICE_CONNECT",
            network=network_id,
            address=psc.address,
            project=project,
            opts=child,
        )
        self.psc_rule = gcp.compute.GlobalForwardingRule(
            f"{name}-psc",
            name=psc.name,  # explicit: auto-naming adds '-xxxxxxx', which PSC rules to Google APIs reject
            target=psc.target.value,
            network=network_id,
            ip_address=self.psc_address.id,
            load_balancing_scheme="",
            project=project,
            opts=child,
        )
        self.psc_ip = self.psc_address.address
        for zone_dns in psc.dns_zones:
            slug = zone_slug(zone_dns)
            zone = gcp.dns.ManagedZone(
                f"{name}-dns-{slug}",
                name=zone_name(name, zone_dns),
                dns_name=zone_dns,
                visibility="private",
                description=f"{zone_dns} → Private Service Connect endpoint {psc.name}",
                private_visibility_config=gcp.dns.ManagedZonePrivateVisibilityConfigArgs(
                    networks=[gcp.dns.ManagedZonePrivateVisibilityConfigNetworkArgs(network_url=network_id)]
                ),
                project=project,
                opts=child,
            )
            self.dns_zones.append(zone)
            self.dns_records.append(
                gcp.dns.RecordSet(
                    f"{name}-dns-{slug}-a",
                    managed_zone=zone.name,
                    name=zone_dns,
                    type="A",
                    ttl=300,
                    rrdatas=[self.psc_address.address],
                    project=project,
                    opts=child,
                )
            )
            self.dns_records.append(
                gcp.dns.RecordSet(
                    f"{name}-dns-{slug}-cname",
                    managed_zone=zone.name,
                    name=f"*.{zone_dns}",
                    type="CNAME",
                    ttl=300,
                    rrdatas=[zone_dns],
                    project=project,
                    opts=child,
                )
            )

    def _nat(
        self,
        name: str,
        args: InferenceNetworkArgs,
        nat: NatSettings,
        network_id: pulumi.Output[str],
        subnet_id: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        self.router = gcp.compute.Router(
            f"{name}-router",
            network=network_id,
            region=args.region,
            project=args.project,
            opts=child,
            description="Cloud Router for the inference subnet's Cloud NAT",
        )
        dpa = nat.dynamic_port_allocation
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            router=self.router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(name=subnet_id, source_ip_ranges_to_nats=["ALL_IP_RANGES"])
            ],
            enable_dynamic_port_allocation=dpa,
            enable_endpoint_independent_mapping=False if dpa else None,
            min_ports_per_vm=nat.min_ports_per_vm,
            max_ports_per_vm=nat.max_ports_per_vm if dpa else None,
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter=nat.log_filter.value),
            project=args.project,
            opts=child,
        )


__all__ = [
    "PSC_DNS_ZONES",
    "InferenceNetwork",
    "InferenceNetworkArgs",
    "NatLogFilter",
    "NatSettings",
    "NetworkSettings",
    "PscSettings",
    "PscTarget",
]
