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

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu import netcalc
from cloudrun_gpu.errors import ConfigErrors

TOKEN = "cloudrun-gpu:index:InferenceNetwork"

# Private zones that point Google API hostnames at the PSC endpoint: apex A record → endpoint,
# wildcard CNAME → apex (the gcloud recipe in facts §5.4). pkg.dev and gcr.io keep image pulls private.
PSC_DNS_ZONES = ("googleapis.com.", "pkg.dev.", "gcr.io.")


@dataclass
class PscArgs:
    address: str = "10.255.255.254"
    target: Literal["all-apis", "vpc-sc"] = "all-apis"
    name: str = "llmapis"
    """Forwarding-rule name: 1-20 lowercase letters/digits starting with a letter (set explicitly)."""
    dns_zones: tuple[str, ...] = PSC_DNS_ZONES


@dataclass
class NatArgs:
    dynamic_port_allocation: bool = True
    min_ports_per_vm: int = 64
    max_ports_per_vm: int = 4096
    log_filter: Literal["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"] = "ERRORS_ONLY"


@dataclass
class InferenceNetworkArgs:
    region: str
    max_instances: int = 1
    subnet_cidr: str = "10.8.0.0/26"
    existing_network: pulumi.Input[str] | None = None
    existing_subnetwork: pulumi.Input[str] | None = None
    psc: PscArgs | None = field(default_factory=PscArgs)
    """None: no PSC endpoint (e.g. when the VPC already has one)."""
    nat: NatArgs | None = field(default_factory=NatArgs)
    """None: no Cloud NAT (no internet from the service)."""
    tags: list[str] = field(default_factory=lambda: ["llm-inference"])
    project: str | None = None

    def validate(self) -> None:
        """Raise every problem at once, before any child is registered."""
        errors = netcalc.network_errors(
            prefix="",
            subnet_cidr=self.subnet_cidr,
            max_instances=self.max_instances,
            existing_network=self.existing_network,
            existing_subnetwork=self.existing_subnetwork,
            psc_name=self.psc.name if self.psc else None,
            psc_address=self.psc.address if self.psc else None,
        )
        if errors:
            raise ConfigErrors(errors)


class InferenceNetwork(pulumi.ComponentResource):
    network_id: pulumi.Output[str]
    subnetwork_id: pulumi.Output[str]
    psc_ip: pulumi.Output[str] | None
    tags: list[str]

    def __init__(self, name: str, args: InferenceNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network: gcp.compute.Network | None = None
        self.subnetwork: gcp.compute.Subnetwork | None = None
        if args.existing_network is not None and args.existing_subnetwork is not None:
            network_id = pulumi.Output.from_input(args.existing_network)
            subnet_id = pulumi.Output.from_input(args.existing_subnetwork)
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
                ip_cidr_range=args.subnet_cidr,
                private_ip_google_access=True,
                stack_type="IPV4_ONLY",
                description=f"Direct VPC egress; sized for {args.max_instances} max instances",
                project=args.project,
                opts=child,
            )
            network_id, subnet_id = self.network.id, self.subnetwork.id
        self.network_id = network_id
        self.subnetwork_id = subnet_id
        self.tags = list(args.tags)

        self.psc_address: gcp.compute.GlobalAddress | None = None
        self.psc_rule: gcp.compute.GlobalForwardingRule | None = None
        self.dns_zones: list[gcp.dns.ManagedZone] = []
        self.dns_records: list[gcp.dns.RecordSet] = []
        self.psc_ip = None
        if args.psc is not None:
            self._psc(name, args.psc, network_id, args.project, child)

        self.router: gcp.compute.Router | None = None
        self.nat: gcp.compute.RouterNat | None = None
        if args.nat is not None:
            self._nat(name, args, args.nat, network_id, subnet_id, child)

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
        psc: PscArgs,
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
            target=psc.target,
            network=network_id,
            ip_address=self.psc_address.id,
            load_balancing_scheme="",
            project=project,
            opts=child,
        )
        self.psc_ip = self.psc_address.address
        for zone_dns in psc.dns_zones:
            slug = zone_dns.rstrip(".").replace(".", "-")
            zone = gcp.dns.ManagedZone(
                f"{name}-dns-{slug}",
                name=f"{name}-{slug}"[:63],
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
        nat: NatArgs,
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
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter=nat.log_filter),
            project=args.project,
            opts=child,
        )
