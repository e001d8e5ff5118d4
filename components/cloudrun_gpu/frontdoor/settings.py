"""``FrontDoorSettings``: what ``FrontDoorArgs.settings`` (and a ``cloudrun-gpu:frontdoor`` stack section) holds.

Declared, documented and validated once, here. Sources for every GCP fact are cited next to the
rule that depends on it (see also ``README.md`` in this folder).
"""

import enum
import re

from pydantic import Field

from cloudrun_gpu import limits, netcalc
from cloudrun_gpu.errors import ConfigError, collect
from cloudrun_gpu.settings import nested, settings

SECRET_REF_PATTERN = r"^projects/([a-z0-9-]+|[0-9]+)/secrets/([A-Za-z0-9_-]{1,255})(/versions/(latest|[1-9][0-9]*))?$"
"""A Secret Manager secret (``projects/<project>/secrets/<name>``), optionally one version
(``…/versions/<n>`` or ``…/versions/latest``; latest when left out)."""

OAUTH_CLIENT_ID_SUFFIX = ".apps.googleusercontent.com"
"""Every Google OAuth 2.0 client id ends with this."""

CERT_PATTERN = (
    r"^(https://www\.googleapis\.com/compute/v1/)?projects/[a-z0-9-]+/"
    r"(global|regions/([a-z]+(-[a-z]+)+[0-9]+))/sslCertificates/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
)
"""A Compute Engine SSL certificate id or self link: ``projects/<p>/global/sslCertificates/<name>`` (global,
for ``EXTERNAL_MANAGED``) or ``projects/<p>/regions/<region>/sslCertificates/<name>`` (regional, for
``INTERNAL_MANAGED``)."""

BAN_MAX_PER_MINUTE = 10_000
THROTTLE_MAX_PER_MINUTE = 1_000_000
"""Cloud Armor's bounds on ``rate_limit_threshold.count``: 1…10,000 for rate-based ban rules, 1…1,000,000 for
throttle rules (https://cloud.google.com/armor/docs/rate-limiting-overview, "rate_limit_threshold_count")."""


class FrontDoorScheme(enum.StrEnum):
    """Which Application Load Balancer fronts the services."""

    EXTERNAL_MANAGED = "EXTERNAL_MANAGED"
    """The global external Application Load Balancer: one anycast IP, any number of regions."""
    INTERNAL_MANAGED = "INTERNAL_MANAGED"
    """The regional internal Application Load Balancer, for internal-only stacks: one region, an internal IP
    in your VPC (needs a proxy-only subnet in that region)."""


class ArmorAction(enum.StrEnum):
    """What Cloud Armor does to a client IP over the rate limit."""

    BAN = "ban"
    """``rate_based_ban``: answer 429 over the limit, then ban the IP for ``ban_duration_s``."""
    THROTTLE = "throttle"
    """``throttle``: answer 429 only to the requests over the limit."""


@settings
class ArmorSettings:
    """A Cloud Armor policy with one rate-based rule keyed on the client IP (global external scheme only)."""

    enabled: bool = False
    """True: attach a Cloud Armor security policy to the backend service."""
    rate_limit_per_minute: int = Field(default=60, gt=0)
    """Requests each client IP may send per minute before the action applies (ban: ≤ 10,000; throttle:
    ≤ 1,000,000). LLM requests are expensive: size it from the tokens a client may reasonably ask for."""
    action: ArmorAction = ArmorAction.THROTTLE
    """``throttle`` (429 for the excess only) or ``ban`` (429, then a ban for ``ban_duration_s``)."""
    ban_duration_s: int = Field(default=600, ge=1)
    """With ``action: ban``: how long a client IP stays banned after its rate falls back below the limit."""
    preview: bool = False
    """True: the rule only logs what it would do (Cloud Armor preview mode); nothing is blocked."""

    def problems(self) -> list[ConfigError]:
        if not self.enabled:
            return []
        cap = BAN_MAX_PER_MINUTE if self.action is ArmorAction.BAN else THROTTLE_MAX_PER_MINUTE
        if self.rate_limit_per_minute > cap:
            return [
                ConfigError(
                    "rate_limit_per_minute",
                    self.rate_limit_per_minute,
                    f"is above Cloud Armor's limit for a {self.action.value} rule",
                    f"set rate_limit_per_minute to {cap} or less"
                    + (", or use action: throttle" if self.action is ArmorAction.BAN else ""),
                    f"1…{cap}",
                )
            ]
        return []


@settings
class IapSettings:
    """Identity-Aware Proxy on the backend service: only signed-in, authorised users reach the services."""

    enabled: bool = False
    """True: turn IAP on for the backend service (the load balancer path only; keep the Cloud Run services
    IAM-protected and grant the IAP service agent ``roles/run.invoker``, see README)."""
    oauth2_client_id: str | None = None
    """The OAuth 2.0 client id IAP signs users in with (``<…>.apps.googleusercontent.com``)."""
    oauth2_client_secret_secret: str | None = None
    """A *reference* to the client secret in Secret Manager: ``projects/<project>/secrets/<name>`` (latest
    version) or ``…/versions/<n>``. The secret's value is read at deployment and passed on as a Pulumi secret;
    a plain client secret is refused here."""

    def problems(self) -> list[ConfigError]:
        if not self.enabled:
            return []
        errors: list[ConfigError] = []
        cid = self.oauth2_client_id
        if cid is None or not cid.strip():
            errors.append(
                ConfigError(
                    "oauth2_client_id",
                    cid,
                    "is required when IAP is enabled",
                    "set oauth2_client_id to the OAuth client's id (APIs & Services → Credentials)",
                )
            )
        elif not cid.endswith(OAUTH_CLIENT_ID_SUFFIX) or any(c.isspace() for c in cid):
            errors.append(
                ConfigError(
                    "oauth2_client_id",
                    cid,
                    "is not an OAuth 2.0 client id",
                    f"use the client's id, e.g. 1234-abc{OAUTH_CLIENT_ID_SUFFIX}",
                    f"…{OAUTH_CLIENT_ID_SUFFIX}",
                )
            )
        ref = self.oauth2_client_secret_secret
        if ref is None or not ref.strip():
            errors.append(
                ConfigError(
                    "oauth2_client_secret_secret",
                    ref,
                    "is required when IAP is enabled",
                    "store the client secret in Secret Manager and set oauth2_client_secret_secret to "
                    "projects/<project>/secrets/<name>",
                )
            )
        elif not re.fullmatch(SECRET_REF_PATTERN, ref):
            # Never echo what may be the secret itself.
            errors.append(
                ConfigError(
                    "oauth2_client_secret_secret",
                    "<hidden>",
                    "is not a Secret Manager reference (a plain client secret is never accepted)",
                    "store the client secret in Secret Manager and set oauth2_client_secret_secret to "
                    "projects/<project>/secrets/<name>[/versions/<n>]",
                    "projects/<project>/secrets/<name>[/versions/<n>|latest]",
                )
            )
        return errors


@settings
class OutlierDetectionSettings:
    """Outlier detection on the backend service: a region whose service keeps failing is ejected for a while,
    so requests go to the next region. Serverless NEGs have no health checks; this is how an unhealthy region
    is noticed (https://cloud.google.com/compute/docs/reference/rest/v1/backendServices, ``outlierDetection``:
    applicable endpoints include "Serverless NEGs, that resolve to Cloud Run")."""

    enabled: bool = True
    """False: no outlier detection (traffic keeps going to a failing region)."""
    consecutive_errors: int = Field(default=5, ge=1, le=1000)
    """Consecutive 5xx answers from a region's service before it is ejected."""
    interval_s: int = Field(default=10, ge=1, le=3600)
    """Seconds between ejection sweeps (ejections and returns happen on this clock)."""
    base_ejection_time_s: int = Field(default=30, ge=1, le=3600)
    """Seconds a region is ejected for; the real time is this times the number of times it was ejected."""
    max_ejection_percent: int = Field(default=50, ge=1, le=100)
    """At most this percentage of the backends (regions) is ejected at once."""


@settings
class FrontDoorSettings:
    """One HTTPS entry point for Cloud Run GPU services in one or several regions: serverless NEGs behind an
    Application Load Balancer, with optional Cloud Armor rate limiting and IAP."""

    scheme: FrontDoorScheme = FrontDoorScheme.EXTERNAL_MANAGED
    """``EXTERNAL_MANAGED`` (global external, any regions) or ``INTERNAL_MANAGED`` (regional internal, one
    region, internal-only stacks)."""
    domains: list[str] = Field(default_factory=list)
    """DNS names clients use (``llm.example.com``). External scheme: a Google-managed certificate is created
    for them (point their A records at ``ip_address``). The first one is the ``url``."""
    certificate: str | None = None
    """A self-managed SSL certificate's id instead of (or besides) a managed one: global
    (``projects/p/global/sslCertificates/x``) for the external scheme, regional in the backend's region for the
    internal one (required there)."""
    armor: ArmorSettings = Field(default_factory=ArmorSettings)
    """Cloud Armor rate limiting per client IP."""
    iap: IapSettings = Field(default_factory=IapSettings)
    """Identity-Aware Proxy on the backend service."""
    outlier_detection: OutlierDetectionSettings = Field(default_factory=OutlierDetectionSettings)
    """How a failing region is ejected so that traffic fails over."""
    enable_cdn: bool = False
    """Cloud CDN on the backend service. Off: LLM responses are per request and must not be cached."""
    proxy_only_subnet_cidr: str | None = "10.129.0.0/23"
    """Internal scheme: the proxy-only subnet (``REGIONAL_MANAGED_PROXY``) created in the backend's region for
    the load balancer's Envoy proxies; a private range outside your other subnets, at least 64 addresses (/26
    or larger; Google's example is 10.129.0.0/23). None: the VPC already has an active one in that region (only
    one may be active per VPC and region). Source: https://cloud.google.com/load-balancing/docs/proxy-only-subnets."""

    @property
    def internal(self) -> bool:
        return self.scheme is FrontDoorScheme.INTERNAL_MANAGED

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = [
            *nested(self.armor, "armor"),
            *nested(self.iap, "iap"),
            *nested(self.outlier_detection, "outlier_detection"),
        ]
        for i, domain in enumerate(self.domains):
            if not _is_domain(domain):
                errors.append(
                    ConfigError(
                        f"domains.{i}",
                        domain,
                        "is not a DNS name a certificate can cover",
                        "write a lowercase fully qualified name without scheme, port, wildcard or trailing dot, "
                        "e.g. llm.example.com",
                    )
                )
        most = int(limits.MANAGED_CERT_DOMAINS_MAX.value)
        if len(self.domains) > most:  # one Google-managed certificate covers every domain (limits.py)
            errors.append(
                ConfigError(
                    "domains",
                    f"{len(self.domains)} domains",
                    f"has more than the {most} domains a Google-managed certificate covers",
                    f"keep at most {most}, or bring your own certificate (certificate)",
                )
            )
        if len(set(self.domains)) != len(self.domains):
            dup = next(d for d in self.domains if self.domains.count(d) > 1)
            errors.append(ConfigError("domains", self.domains, f"lists {dup} twice", f"keep one {dup}"))
        if self.certificate is not None and not re.fullmatch(CERT_PATTERN, self.certificate):
            errors.append(
                ConfigError(
                    "certificate",
                    self.certificate,
                    "is not an SSL certificate id",
                    "use projects/<project>/global/sslCertificates/<name> (external) or "
                    "projects/<project>/regions/<region>/sslCertificates/<name> (internal)",
                    CERT_PATTERN,
                )
            )
        elif self.certificate is not None:
            regional = "/regions/" in self.certificate
            if regional != self.internal:
                want = "a regional" if self.internal else "a global"
                errors.append(
                    ConfigError(
                        "certificate",
                        self.certificate,
                        f"scheme {self.scheme.value} needs {want} SSL certificate",
                        "use projects/<project>/regions/<region>/sslCertificates/<name>"
                        if self.internal
                        else "use projects/<project>/global/sslCertificates/<name>",
                    )
                )
        if not self.internal and not self.domains and self.certificate is None:
            errors.append(
                ConfigError(
                    "domains",
                    self.domains,
                    "an HTTPS load balancer needs a certificate: set domains (Google-managed) or certificate",
                    "set domains to the DNS names clients use, e.g. [llm.example.com], or set certificate",
                )
            )
        if self.internal:
            errors.extend(self._internal_problems())
        if self.enable_cdn and self.iap.enabled:
            # "IAP is incompatible with Cloud CDN" (https://cloud.google.com/iap/docs/enabling-cloud-run,
            # Known limitations).
            errors.append(
                ConfigError(
                    "enable_cdn",
                    True,
                    "IAP is incompatible with Cloud CDN",
                    "set enable_cdn to false (LLM responses are per request anyway)",
                )
            )
        return errors

    def _internal_problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        if self.certificate is None:
            # Google-managed ``compute.ManagedSslCertificate`` is a global resource, used by global target
            # proxies; a regional target HTTPS proxy takes regional SSL certificates
            # (https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless:
            # "gcloud compute ssl-certificates create … --region"), so this scheme needs one.
            errors.append(
                ConfigError(
                    "certificate",
                    None,
                    "scheme INTERNAL_MANAGED needs a regional self-managed SSL certificate (Google-managed "
                    "compute certificates are global only)",
                    "create a regional SSL certificate and set certificate to "
                    "projects/<project>/regions/<region>/sslCertificates/<name>",
                )
            )
        if self.armor.enabled:
            errors.append(
                ConfigError(
                    "armor.enabled",
                    True,
                    "this component attaches a global Cloud Armor policy, which a regional backend service cannot take",
                    "set armor.enabled to false for INTERNAL_MANAGED, or use EXTERNAL_MANAGED",
                )
            )
        if self.enable_cdn:
            # Cloud CDN is a feature of the global external Application Load Balancer
            # (https://cloud.google.com/load-balancing/docs/negs/serverless-neg-concepts, "Global external
            # Application Load Balancer and classic Application Load Balancer").
            errors.append(
                ConfigError(
                    "enable_cdn",
                    True,
                    "Cloud CDN only works with the global external Application Load Balancer",
                    "set enable_cdn to false for INTERNAL_MANAGED",
                )
            )
        if self.proxy_only_subnet_cidr is not None:
            net = collect(
                errors, lambda: netcalc.check_subnet_range("proxy_only_subnet_cidr", str(self.proxy_only_subnet_cidr))
            )
            if net is not None and net.prefixlen > 26:
                errors.append(
                    ConfigError(
                        "proxy_only_subnet_cidr",
                        self.proxy_only_subnet_cidr,
                        f"/{net.prefixlen} is smaller than a proxy-only subnet may be (at least 64 addresses: /26 or "
                        "larger)",
                        f"use a /23, e.g. {net.supernet(new_prefix=23)}",
                        "/26 or larger",
                    )
                )
        return errors


def _is_domain(name: str) -> bool:
    return "." in name and netcalc.is_dns_name(name) and not name.split(".")[-1].isdigit()


__all__ = [
    "BAN_MAX_PER_MINUTE",
    "CERT_PATTERN",
    "SECRET_REF_PATTERN",
    "THROTTLE_MAX_PER_MINUTE",
    "ArmorAction",
    "ArmorSettings",
    "FrontDoorScheme",
    "FrontDoorSettings",
    "IapSettings",
    "OutlierDetectionSettings",
]
