"""A front door for Cloud Run GPU services in one or several regions (issue 13).

``EXTERNAL_MANAGED`` (global external Application Load Balancer)::

    RegionNetworkEndpointGroup (SERVERLESS, one per region) → BackendService (EXTERNAL_MANAGED, HTTPS,
    outlier detection, optional IAP and Cloud Armor) → URLMap → TargetHttpsProxy (ManagedSslCertificate for
    ``domains`` and/or ``certificate``) → GlobalForwardingRule :443 on a GlobalAddress

``INTERNAL_MANAGED`` (regional internal Application Load Balancer, one region)::

    proxy-only Subnetwork (REGIONAL_MANAGED_PROXY) ┐
    RegionNetworkEndpointGroup → RegionBackendService (INTERNAL_MANAGED) → RegionUrlMap →
    RegionTargetHttpsProxy (regional ``certificate``) → ForwardingRule :443 on an internal Address

The pieces a regional internal Application Load Balancer with Cloud Run needs (serverless NEG, regional
backend service, URL map, target HTTPS proxy with a regional SSL certificate, a forwarding rule in a subnet
of the VPC, and a proxy-only subnet in the region), and that "the serverless NEG, the load balancer, and
any client VMs must be in the same region as the Cloud Run service", come from
https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.frontdoor.settings import (
    SECRET_REF_PATTERN,
    ArmorAction,
    ArmorSettings,
    FrontDoorScheme,
    FrontDoorSettings,
    IapSettings,
    OutlierDetectionSettings,
)
from cloudrun_gpu.settings import args_settings, args_types

TOKEN = "cloudrun-gpu:index:FrontDoor"
ARGS = "FrontDoorArgs."
REGION_PATTERN = r"^[a-z]+(-[a-z]+)+[0-9]+$"
"""A Google Cloud region name (``europe-west1``, ``northamerica-northeast2``)."""
SECRET_VERSION_TOKEN = "gcp:secretmanager/getSecretVersion:getSecretVersion"
"""The invoke that reads the IAP client secret (what the tests' mocks answer)."""
ARMOR_RULE_PRIORITY = 1000
DEFAULT_RULE_PRIORITY = 2147483647
"""Cloud Armor's default rule: the lowest priority, matching every request."""


@dataclass
class FrontDoorBackend:
    """One region's Cloud Run service behind the front door."""

    service_name: pulumi.Input[str]
    """The Cloud Run service's name in that region (e.g. ``GpuInferenceService(...).service_name``)."""
    project: str | None = None
    """The service's project; defaults to ``FrontDoorArgs.project`` (then the provider's)."""


@dataclass
class FrontDoorArgs:
    """Inputs of :class:`FrontDoor`: the regional services, the settings, and (internal scheme) the VPC."""

    backends: dict[str, FrontDoorBackend]
    """The Cloud Run services keyed by region (``{"europe-west1": FrontDoorBackend(service_name=…)}``); every
    service must be functionally the same, any of them may answer any request."""
    settings: FrontDoorSettings = field(default_factory=FrontDoorSettings)
    """Scheme, domains/certificate, Cloud Armor, IAP, outlier detection, CDN."""
    network: pulumi.Input[str] | None = None
    """Internal scheme: the VPC network's id (``InferenceNetwork(...).network_id``)."""
    subnetwork: pulumi.Input[str] | None = None
    """Internal scheme: the subnetwork the load balancer's internal IP comes from (not the proxy-only one)."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        errors: list[ConfigError] = []
        # From another Pulumi language: a plain input bag, parsed; anything else refused naming it (issue 21).
        errors.extend(args_settings(self, ARGS, {"settings": FrontDoorSettings}))
        raw: Any = self.backends
        if not isinstance(raw, dict) or not raw:
            problem = (
                "is empty: the front door needs at least one Cloud Run service"
                if isinstance(raw, dict) or not raw
                else "must be a mapping of region to backend"
            )
            raise ConfigErrors(
                [
                    *errors,
                    ConfigError(
                        f"{ARGS}backends",
                        raw,
                        problem,
                        'set backends to {"<region>": FrontDoorBackend(service_name=…)}',
                    ),
                ]
            )
        backends: dict[str, FrontDoorBackend] = {}
        for region, backend in raw.items():
            where = f"{ARGS}backends.{region}"
            if not isinstance(region, str) or not re.fullmatch(REGION_PATTERN, region):
                errors.append(
                    ConfigError(
                        where,
                        region,
                        "is not a region name",
                        "key each backend by its Cloud Run region, e.g. europe-west1",
                        REGION_PATTERN,
                    )
                )
                continue
            if isinstance(backend, dict):
                try:
                    backend = FrontDoorBackend(**backend)
                except TypeError as exc:
                    errors.append(
                        ConfigError(where, backend, f"is not a backend ({exc})", "set service_name (and project)")
                    )
                    continue
            if not isinstance(backend, FrontDoorBackend):
                errors.append(ConfigError(where, backend, "is not a backend", "pass FrontDoorBackend(service_name=…)"))
                continue
            name = backend.service_name
            if name is None or (isinstance(name, str) and not name.strip()):
                errors.append(
                    ConfigError(f"{where}.service_name", name, "is empty", "set the Cloud Run service's name")
                )
            else:
                errors.extend(args_types(backend, f"{where}."))
            backends[region] = backend
        self.backends = backends
        errors.extend(args_types(self, ARGS, skip=["backends", "settings"]))  # issue 21: plain values, named
        if isinstance(self.settings, FrontDoorSettings) and self.settings.internal:
            errors.extend(self._internal_problems())
        if errors:
            raise ConfigErrors(errors)

    def _internal_problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        if len(self.backends) > 1:
            # Decision: INTERNAL_MANAGED is the *regional* internal Application Load Balancer. "The serverless
            # NEG, the load balancer, and any client VMs must be in the same region as the Cloud Run service"
            # (https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless).
            # The cross-region internal ALB does take several regions, but with serverless NEGs it prefers the
            # NEG in the proxy's own region, fails over only with outlier detection, spreads evenly when no NEG
            # is local, and with IAP uses a single NEG only
            # (https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-cross-reg-serverless):
            # not built here.
            errors.append(
                ConfigError(
                    f"{ARGS}backends",
                    sorted(self.backends),
                    "scheme INTERNAL_MANAGED is a regional internal load balancer: one region only",
                    "keep one region in backends, or use scheme EXTERNAL_MANAGED for several regions",
                )
            )
        for name in ("network", "subnetwork"):
            if getattr(self, name) is None:
                errors.append(
                    ConfigError(
                        f"{ARGS}{name}",
                        None,
                        f"scheme INTERNAL_MANAGED puts the load balancer in your VPC: it needs the {name}",
                        f"pass {name} (e.g. InferenceNetwork(...).{name}_id)",
                    )
                )
        cert = self.settings.certificate
        region = next(iter(self.backends), None)
        if cert is not None and region is not None and "/regions/" in cert and f"/regions/{region}/" not in cert:
            errors.append(
                ConfigError(
                    f"{ARGS}settings.certificate",
                    cert,
                    f"is not in the backend's region ({region})",
                    f"use a regional SSL certificate in {region}",
                )
            )
        return errors

    @classmethod
    def from_input(cls, args: "FrontDoorArgs | dict[str, Any]") -> "FrontDoorArgs":
        return args if isinstance(args, FrontDoorArgs) else cls(**args)


class FrontDoor(pulumi.ComponentResource):
    """One HTTPS entry point for Cloud Run GPU services in one or several regions: serverless NEGs behind a
    global external (or regional internal) Application Load Balancer, with outlier-detection failover,
    optional Cloud Armor rate limiting per client IP and optional IAP."""

    ip_address: pulumi.Output[str]
    """The load balancer's IP address (point the domains' A records here)."""
    url: pulumi.Output[str]
    """``https://`` + the first domain, or the IP address when there is none."""
    backend_service_id: pulumi.Output[str]
    """The backend service's id (global for EXTERNAL_MANAGED, regional for INTERNAL_MANAGED)."""

    def __init__(self, name: str, args: FrontDoorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args = FrontDoorArgs.from_input(args)
        super().__init__(TOKEN, name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.negs: dict[str, gcp.compute.RegionNetworkEndpointGroup] = {}
        for region in sorted(args.backends):
            backend = args.backends[region]
            self.negs[region] = gcp.compute.RegionNetworkEndpointGroup(
                f"{name}-neg-{region}",
                region=region,
                network_endpoint_type="SERVERLESS",
                cloud_run=gcp.compute.RegionNetworkEndpointGroupCloudRunArgs(service=backend.service_name),
                description=f"Serverless NEG for the Cloud Run service in {region}",
                project=backend.project or args.project,
                opts=child,
            )
        secret = _iap_secret(s.iap, child) if s.iap.enabled else None
        self.security_policy: gcp.compute.SecurityPolicy | None = None
        self.proxy_subnet: gcp.compute.Subnetwork | None = None
        self.managed_certificate: gcp.compute.ManagedSslCertificate | None = None
        self.backend_service: gcp.compute.BackendService | gcp.compute.RegionBackendService
        self.url_map: gcp.compute.URLMap | gcp.compute.RegionUrlMap
        self.https_proxy: gcp.compute.TargetHttpsProxy | gcp.compute.RegionTargetHttpsProxy
        self.address: gcp.compute.GlobalAddress | gcp.compute.Address
        self.forwarding_rule: gcp.compute.GlobalForwardingRule | gcp.compute.ForwardingRule
        if s.internal:
            self._internal(name, args, secret, child)
        else:
            self._external(name, args, secret, child)
        self.register_outputs(
            {"ip_address": self.ip_address, "url": self.url, "backend_service_id": self.backend_service_id}
        )

    # --- global external Application Load Balancer -----------------------------------------------------

    def _external(
        self, name: str, args: FrontDoorArgs, secret: pulumi.Output[str] | None, child: pulumi.ResourceOptions
    ) -> None:
        s = args.settings
        if s.armor.enabled:
            self.security_policy = _armor(name, s.armor, args.project, child)
        od = s.outlier_detection
        self.backend_service = gcp.compute.BackendService(
            f"{name}-backend",
            load_balancing_scheme="EXTERNAL_MANAGED",
            protocol="HTTPS",
            # Only ``group``: serverless NEGs take no balancing mode, capacity scaler or max utilization
            # (API: "Balancing mode is not supported for Serverless network endpoint groups",
            # https://github.com/GoogleCloudPlatform/cloud-foundation-fabric/pull/1801; "Max utilization is not
            # supported for Serverless network endpoint groups",
            # https://github.com/hashicorp/terraform-provider-google/issues/7167), and no health checks.
            backends=[gcp.compute.BackendServiceBackendArgs(group=self.negs[r].id) for r in sorted(self.negs)],
            outlier_detection=gcp.compute.BackendServiceOutlierDetectionArgs(
                consecutive_errors=od.consecutive_errors,
                interval=gcp.compute.BackendServiceOutlierDetectionIntervalArgs(seconds=od.interval_s),
                base_ejection_time=gcp.compute.BackendServiceOutlierDetectionBaseEjectionTimeArgs(
                    seconds=od.base_ejection_time_s
                ),
                max_ejection_percent=od.max_ejection_percent,
            )
            if od.enabled
            else None,
            iap=gcp.compute.BackendServiceIapArgs(
                enabled=True, oauth2_client_id=s.iap.oauth2_client_id, oauth2_client_secret=secret
            )
            if s.iap.enabled
            else None,
            security_policy=self.security_policy.id if self.security_policy is not None else None,
            enable_cdn=s.enable_cdn,
            log_config=gcp.compute.BackendServiceLogConfigArgs(enable=True, sample_rate=1.0),
            description="Cloud Run GPU services, one serverless NEG per region",
            project=args.project,
            opts=child,
        )
        self.url_map = gcp.compute.URLMap(
            f"{name}-urlmap",
            default_service=self.backend_service.id,
            description="Every path to the inference backend service",
            project=args.project,
            opts=child,
        )
        certificates: list[pulumi.Input[str]] = []
        if s.domains:
            self.managed_certificate = gcp.compute.ManagedSslCertificate(
                f"{name}-cert",
                managed=gcp.compute.ManagedSslCertificateManagedArgs(domains=list(s.domains)),
                description="Google-managed certificate for the front door's domains",
                project=args.project,
                opts=child,
            )
            certificates.append(self.managed_certificate.id)
        if s.certificate is not None:
            certificates.append(s.certificate)
        self.https_proxy = gcp.compute.TargetHttpsProxy(
            f"{name}-https",
            url_map=self.url_map.id,
            ssl_certificates=certificates,
            project=args.project,
            opts=child,
        )
        self.address = gcp.compute.GlobalAddress(
            f"{name}-ip",
            address_type="EXTERNAL",
            ip_version="IPV4",
            description="The front door's anycast IP",
            project=args.project,
            opts=child,
        )
        self.forwarding_rule = gcp.compute.GlobalForwardingRule(
            f"{name}-https-rule",  # not "-https": that is the proxy's name, and a plan lists dependencies by name
            target=self.https_proxy.id,
            ip_address=self.address.id,
            ip_protocol="TCP",
            port_range="443",
            load_balancing_scheme="EXTERNAL_MANAGED",
            project=args.project,
            opts=child,
        )
        self.backend_service_id = self.backend_service.id
        self.ip_address = self.address.address
        self.url = _url(s, self.ip_address)

    # --- regional internal Application Load Balancer ----------------------------------------------------

    def _internal(
        self, name: str, args: FrontDoorArgs, secret: pulumi.Output[str] | None, child: pulumi.ResourceOptions
    ) -> None:
        s = args.settings
        region = next(iter(self.negs))
        assert args.network is not None and args.subnetwork is not None and s.certificate is not None
        if s.proxy_only_subnet_cidr is not None:
            # Regional internal ALBs run Envoy proxies in a proxy-only subnet of the region
            # (purpose REGIONAL_MANAGED_PROXY, role ACTIVE; one active per region and VPC).
            self.proxy_subnet = gcp.compute.Subnetwork(
                f"{name}-proxy-only-{region}",
                network=args.network,
                region=region,
                ip_cidr_range=s.proxy_only_subnet_cidr,
                purpose="REGIONAL_MANAGED_PROXY",
                role="ACTIVE",
                description="Proxy-only subnet for the front door's regional internal load balancer",
                project=args.project,
                opts=child,
            )
        # No outlierDetection here (issue 19): compute.v1 BackendService.outlierDetection lists "A regional backend
        # service with the serviceProtocol set to HTTP, HTTPS, HTTP2 or H2C, and loadBalancingScheme set to
        # INTERNAL_MANAGED or EXTERNAL_MANAGED. Not supported for Serverless NEGs."
        # (https://cloud.google.com/compute/docs/reference/rest/v1/regionBackendServices), and this backend is the
        # region's one serverless NEG (nothing to fail over to: one region only, _internal_problems).
        self.backend_service = gcp.compute.RegionBackendService(
            f"{name}-backend",
            region=region,
            load_balancing_scheme="INTERNAL_MANAGED",
            protocol="HTTPS",
            backends=[gcp.compute.RegionBackendServiceBackendArgs(group=self.negs[region].id)],
            iap=gcp.compute.RegionBackendServiceIapArgs(
                enabled=True, oauth2_client_id=s.iap.oauth2_client_id, oauth2_client_secret=secret
            )
            if s.iap.enabled
            else None,
            log_config=gcp.compute.RegionBackendServiceLogConfigArgs(enable=True, sample_rate=1.0),
            description="Cloud Run GPU service behind the internal front door",
            project=args.project,
            opts=child,
        )
        self.url_map = gcp.compute.RegionUrlMap(
            f"{name}-urlmap",
            region=region,
            default_service=self.backend_service.id,
            description="Every path to the inference backend service",
            project=args.project,
            opts=child,
        )
        self.https_proxy = gcp.compute.RegionTargetHttpsProxy(
            f"{name}-https",
            region=region,
            url_map=self.url_map.id,
            ssl_certificates=[s.certificate],
            project=args.project,
            opts=child,
        )
        self.address = gcp.compute.Address(
            f"{name}-ip",
            region=region,
            address_type="INTERNAL",
            subnetwork=args.subnetwork,
            description="The front door's internal IP",
            project=args.project,
            opts=child,
        )
        waits = [self.proxy_subnet] if self.proxy_subnet is not None else []
        self.forwarding_rule = gcp.compute.ForwardingRule(
            f"{name}-https-rule",
            region=region,
            load_balancing_scheme="INTERNAL_MANAGED",
            network=args.network,
            subnetwork=args.subnetwork,
            ip_address=self.address.id,
            ip_protocol="TCP",
            port_range="443",
            target=self.https_proxy.id,
            network_tier="PREMIUM",
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits),
        )
        self.backend_service_id = self.backend_service.id
        self.ip_address = self.address.address
        self.url = _url(s, self.ip_address)


def _url(s: FrontDoorSettings, ip: pulumi.Output[str]) -> pulumi.Output[str]:
    if s.domains:
        return pulumi.Output.from_input(f"https://{s.domains[0]}")
    return ip.apply(lambda a: f"https://{a}")


def _iap_secret(iap: IapSettings, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """The OAuth client secret, read from Secret Manager by reference and kept a Pulumi secret."""
    ref = iap.oauth2_client_secret_secret
    m = re.fullmatch(SECRET_REF_PATTERN, ref or "")
    assert m is not None  # IapSettings.problems refused anything else
    version = gcp.secretmanager.get_secret_version_output(
        project=m.group(1),
        secret=m.group(2),
        version=m.group(4) or "latest",
        opts=pulumi.InvokeOutputOptions(parent=child.parent),
    )
    return pulumi.Output.secret(version.secret_data)


def _armor(
    name: str, armor: ArmorSettings, project: str | None, child: pulumi.ResourceOptions
) -> gcp.compute.SecurityPolicy:
    """A Cloud Armor policy with one rate-based rule keyed on the client IP, and the default allow rule.

    Rule shape (``throttle`` / ``rate_based_ban``, ``enforce_on_key: IP``, ``rate_limit_threshold``
    count per ``interval_sec``, ``exceed_action: deny(429)``, ``ban_duration_sec`` for bans only):
    https://cloud.google.com/armor/docs/rate-limiting-overview and
    https://cloud.google.com/armor/docs/configure-rate-limiting.
    """
    ban = armor.action is ArmorAction.BAN
    every = gcp.compute.SecurityPolicyRuleMatchArgs(
        versioned_expr="SRC_IPS_V1", config=gcp.compute.SecurityPolicyRuleMatchConfigArgs(src_ip_ranges=["*"])
    )
    return gcp.compute.SecurityPolicy(
        f"{name}-armor",
        type="CLOUD_ARMOR",
        description=f"Per-client-IP rate limit: {armor.rate_limit_per_minute}/min ({armor.action.value})",
        rules=[
            gcp.compute.SecurityPolicyRuleArgs(
                priority=ARMOR_RULE_PRIORITY,
                action="rate_based_ban" if ban else "throttle",
                preview=armor.preview,
                match=every,
                rate_limit_options=gcp.compute.SecurityPolicyRuleRateLimitOptionsArgs(
                    conform_action="allow",
                    exceed_action="deny(429)",
                    enforce_on_key="IP",
                    rate_limit_threshold=gcp.compute.SecurityPolicyRuleRateLimitOptionsRateLimitThresholdArgs(
                        count=armor.rate_limit_per_minute, interval_sec=60
                    ),
                    ban_duration_sec=armor.ban_duration_s if ban else None,
                ),
                description="Rate limit per client IP",
            ),
            gcp.compute.SecurityPolicyRuleArgs(
                priority=DEFAULT_RULE_PRIORITY, action="allow", match=every, description="Default: allow"
            ),
        ],
        project=project,
        opts=child,
    )


CHILD_SUFFIXES = ("-backend", "-urlmap", "-cert", "-https", "-ip", "-https-rule", "-armor")
"""What :class:`FrontDoor` appends to its name for each child it names once (none sets ``name=``, so each
physical name is the logical one plus Pulumi's 8-character suffix, ``limits.AUTONAME_SUFFIX``)."""
REGIONAL_CHILD_SUFFIXES = ("-neg-", "-proxy-only-")
"""…and for each child it names per region (``<name>-neg-<region>``, ``<name>-proxy-only-<region>``)."""


def child_names(name: str, regions: list[str]) -> list[str]:
    """Every logical name a front door called ``name`` may give its children in ``regions`` (a superset: the
    certificate, Cloud Armor and proxy-only subnet exist only with their settings). A stack checks their
    length before it registers anything (issue 21); tests check that the component uses no other."""
    return [name + s for s in CHILD_SUFFIXES] + [f"{name}{s}{r}" for s in REGIONAL_CHILD_SUFFIXES for r in regions]


__all__ = [
    "ArmorAction",
    "ArmorSettings",
    "FrontDoor",
    "FrontDoorArgs",
    "FrontDoorBackend",
    "FrontDoorScheme",
    "FrontDoorSettings",
    "IapSettings",
    "OutlierDetectionSettings",
]
