"""Mutation-strength tests for frontdoor/settings.py: every rule at its edges, with the exact field, value,
allowed range and fix a user reads."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.frontdoor import FrontDoorArgs
from cloudrun_gpu.frontdoor import settings as F
from cloudrun_gpu.frontdoor.settings import (
    ArmorAction,
    ArmorSettings,
    FrontDoorScheme,
    FrontDoorSettings,
    IapSettings,
    OutlierDetectionSettings,
)
from cloudrun_gpu.settings import parse

CID = "1234-abc.apps.googleusercontent.com"
REF = "projects/p/secrets/iap-client"
GLOBAL_CERT = "projects/p/global/sslCertificates/llm"
REGIONAL_CERT = "projects/p/regions/europe-west1/sslCertificates/llm"


def make(cls: Any, **kw: Any) -> Any:
    return cls(**kw)


def refused(cls: Any, **kw: Any) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as err:
        cls(**kw)
    return err.value.errors


def one(cls: Any, **kw: Any) -> ConfigError:
    errors = refused(cls, **kw)
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


def test_constants_and_defaults() -> None:
    assert (F.BAN_MAX_PER_MINUTE, F.THROTTLE_MAX_PER_MINUTE) == (10_000, 1_000_000)
    assert F.OAUTH_CLIENT_ID_SUFFIX == ".apps.googleusercontent.com"
    a = ArmorSettings()
    assert (a.enabled, a.rate_limit_per_minute, a.action, a.ban_duration_s, a.preview) == (
        False,
        60,
        ArmorAction.THROTTLE,
        600,
        False,
    )
    o = OutlierDetectionSettings()
    assert (o.enabled, o.consecutive_errors, o.interval_s, o.base_ejection_time_s, o.max_ejection_percent) == (
        True,
        5,
        10,
        30,
        50,
    )
    f = FrontDoorSettings(domains=["llm.example.com"])
    assert (f.scheme, f.certificate, f.enable_cdn, f.proxy_only_subnet_cidr, f.internal) == (
        FrontDoorScheme.EXTERNAL_MANAGED,
        None,
        False,
        "10.129.0.0/23",
        False,
    )
    assert IapSettings().enabled is False


@pytest.mark.parametrize(
    ("action", "cap", "fix_tail"),
    [(ArmorAction.BAN, 10_000, ", or use action: throttle"), (ArmorAction.THROTTLE, 1_000_000, "")],
)
def test_armor_caps(action: ArmorAction, cap: int, fix_tail: str) -> None:
    assert ArmorSettings(enabled=True, action=action, rate_limit_per_minute=cap).rate_limit_per_minute == cap
    e = one(ArmorSettings, enabled=True, action=action, rate_limit_per_minute=cap + 1)
    assert (e.field, e.value, e.allowed) == ("ArmorSettings.rate_limit_per_minute", cap + 1, f"1…{cap}")
    assert e.problem == f"is above Cloud Armor's limit for a {action.value} rule"
    assert e.fix == f"set ArmorSettings.rate_limit_per_minute to {cap} or less{fix_tail}"
    assert ArmorSettings(enabled=False, action=action, rate_limit_per_minute=cap + 1).enabled is False


def test_armor_field_bounds() -> None:
    assert ArmorSettings(rate_limit_per_minute=1, ban_duration_s=1).ban_duration_s == 1
    assert one(ArmorSettings, rate_limit_per_minute=0).allowed == "> 0"
    assert one(ArmorSettings, ban_duration_s=0).allowed == "≥ 1"


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("consecutive_errors", 1, 1000),
        ("interval_s", 1, 3600),
        ("base_ejection_time_s", 1, 3600),
        ("max_ejection_percent", 1, 100),
    ],
)
def test_outlier_bounds(field: str, low: int, high: int) -> None:
    assert getattr(make(OutlierDetectionSettings, **{field: low}), field) == low
    assert getattr(make(OutlierDetectionSettings, **{field: high}), field) == high
    assert one(OutlierDetectionSettings, **{field: low - 1}).allowed == f"≥ {low}"
    assert one(OutlierDetectionSettings, **{field: high + 1}).allowed == f"≤ {high}"


def test_iap_enabled_needs_both_exact() -> None:
    assert IapSettings(enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=REF).enabled
    assert IapSettings(enabled=False, oauth2_client_id="x").oauth2_client_id == "x"
    missing = refused(IapSettings, enabled=True, oauth2_client_id="  ", oauth2_client_secret_secret=" ")
    assert [(e.field, e.value, e.problem) for e in missing] == [
        ("IapSettings.oauth2_client_id", "  ", "is required when IAP is enabled"),
        ("IapSettings.oauth2_client_secret_secret", " ", "is required when IAP is enabled"),
    ]
    assert missing[0].fix == "set IapSettings.oauth2_client_id to the OAuth client's id (APIs & Services → Credentials)"
    assert missing[1].fix == (
        "store the client secret in Secret Manager and set IapSettings.oauth2_client_secret_secret to "
        "projects/<project>/secrets/<name>"
    )
    assert [e.field for e in refused(IapSettings, enabled=True)] == [
        "IapSettings.oauth2_client_id",
        "IapSettings.oauth2_client_secret_secret",
    ]


@pytest.mark.parametrize("cid", ["1234-abc", "x.apps.googleusercontent.co", "12 34.apps.googleusercontent.com"])
def test_iap_bad_client_id(cid: str) -> None:
    e = one(IapSettings, enabled=True, oauth2_client_id=cid, oauth2_client_secret_secret=REF)
    assert (e.field, e.value, e.problem, e.allowed) == (
        "IapSettings.oauth2_client_id",
        cid,
        "is not an OAuth 2.0 client id",
        "….apps.googleusercontent.com",
    )
    assert e.fix == f"use the client's id, e.g. 1234-abc{F.OAUTH_CLIENT_ID_SUFFIX}"


@pytest.mark.parametrize(
    "ref", [REF, REF + "/versions/latest", REF + "/versions/7", "projects/123/secrets/a_b-C/versions/10"]
)
def test_iap_secret_references_accepted(ref: str) -> None:
    assert IapSettings(enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=ref).enabled


@pytest.mark.parametrize("ref", ["GOCSPX-plain-secret", REF + "/versions/0", "projects/P/secrets/x", REF + "/"])
def test_iap_secret_never_echoed(ref: str) -> None:
    e = one(IapSettings, enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=ref)
    assert (e.field, e.value) == ("IapSettings.oauth2_client_secret_secret", "<hidden>")
    assert e.problem == "is not a Secret Manager reference (a plain client secret is never accepted)"
    assert e.allowed == "projects/<project>/secrets/<name>[/versions/<n>|latest]"
    assert ref not in e.render()


def test_domains() -> None:
    assert FrontDoorSettings(domains=["llm.example.com", "b.example.org"]).domains[1] == "b.example.org"
    for bad in ("localhost", "LLM.example.com", "*.example.com", "https://a.b", "a.b.", "10.0.0.1"):
        e = one(FrontDoorSettings, domains=["ok.example.com", bad])
        assert (e.field, e.value, e.problem) == (
            "FrontDoorSettings.domains.1",
            bad,
            "is not a DNS name a certificate can cover",
        )
    assert FrontDoorSettings(domains=["llm.123.example"]).domains == ["llm.123.example"]  # digits inside: fine
    e = one(FrontDoorSettings, domains=["llm.example.1"])  # an all-digit top-level label: not a certificate name
    assert e.field == "FrontDoorSettings.domains.0"
    dup = one(FrontDoorSettings, domains=["a.example.com", "b.example.com", "a.example.com"])
    assert (dup.field, dup.problem, dup.fix) == (
        "FrontDoorSettings.domains",
        "lists a.example.com twice",
        "keep one a.example.com",
    )


def test_external_needs_a_certificate_source() -> None:
    e = one(FrontDoorSettings)
    assert (e.field, e.value) == ("FrontDoorSettings.domains", [])
    assert e.problem == "an HTTPS load balancer needs a certificate: set domains (Google-managed) or certificate"
    assert FrontDoorSettings(certificate=GLOBAL_CERT).domains == []
    url = "https://www.googleapis.com/compute/v1/" + GLOBAL_CERT
    assert FrontDoorSettings(certificate=url).certificate == url


def test_certificate_shape_and_scope() -> None:
    bad = one(FrontDoorSettings, domains=["a.example.com"], certificate="projects/p/sslCertificates/x")
    assert (bad.field, bad.problem, bad.allowed) == (
        "FrontDoorSettings.certificate",
        "is not an SSL certificate id",
        F.CERT_PATTERN,
    )
    regional = one(FrontDoorSettings, certificate=REGIONAL_CERT)
    assert (regional.problem, regional.fix) == (
        "scheme EXTERNAL_MANAGED needs a global SSL certificate",
        "use projects/<project>/global/sslCertificates/<name>",
    )
    glob = one(FrontDoorSettings, scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=GLOBAL_CERT)
    assert (glob.problem, glob.fix) == (
        "scheme INTERNAL_MANAGED needs a regional SSL certificate",
        "use projects/<project>/regions/<region>/sslCertificates/<name>",
    )


def test_internal_scheme_rules() -> None:
    ok = FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT)
    assert ok.internal and ok.domains == []
    assert FrontDoorSettings(
        scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT, proxy_only_subnet_cidr=None
    ).internal
    errors = refused(
        FrontDoorSettings, scheme=FrontDoorScheme.INTERNAL_MANAGED, armor=ArmorSettings(enabled=True), enable_cdn=True
    )
    assert [(e.field, e.value) for e in errors] == [
        ("FrontDoorSettings.certificate", None),
        ("FrontDoorSettings.armor.enabled", True),
        ("FrontDoorSettings.enable_cdn", True),
    ]
    assert errors[0].problem.startswith("scheme INTERNAL_MANAGED needs a regional self-managed SSL certificate")
    assert errors[1].fix == "set FrontDoorSettings.armor.enabled to false for INTERNAL_MANAGED, or use EXTERNAL_MANAGED"
    assert errors[2].problem == "Cloud CDN only works with the global external Application Load Balancer"


@pytest.mark.parametrize(("cidr", "ok"), [("10.129.0.0/26", True), ("10.129.0.0/27", False), ("10.0.0.0/8", True)])
def test_proxy_only_subnet_size(cidr: str, ok: bool) -> None:
    kw: dict[str, Any] = {
        "scheme": FrontDoorScheme.INTERNAL_MANAGED,
        "certificate": REGIONAL_CERT,
        "proxy_only_subnet_cidr": cidr,
    }
    if ok:
        assert FrontDoorSettings(**kw).proxy_only_subnet_cidr == cidr
        return
    e = one(FrontDoorSettings, **kw)
    assert (e.field, e.value, e.allowed) == ("FrontDoorSettings.proxy_only_subnet_cidr", cidr, "/26 or larger")
    assert e.problem == "/27 is smaller than a proxy-only subnet may be (at least 64 addresses: /26 or larger)"
    assert e.fix == "use a /23, e.g. 10.129.0.0/23"


def test_proxy_only_subnet_must_be_private() -> None:
    kw: dict[str, Any] = {
        "scheme": FrontDoorScheme.INTERNAL_MANAGED,
        "certificate": REGIONAL_CERT,
        "proxy_only_subnet_cidr": "8.8.0.0/23",
    }
    assert one(FrontDoorSettings, **kw).field == "FrontDoorSettings.proxy_only_subnet_cidr"
    external = FrontDoorSettings(domains=["a.example.com"], proxy_only_subnet_cidr="8.8.0.0/23")
    assert external.proxy_only_subnet_cidr == "8.8.0.0/23"  # only the internal scheme creates it


def test_cdn_and_iap() -> None:
    iap = IapSettings(enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=REF)
    e = one(FrontDoorSettings, domains=["a.example.com"], iap=iap, enable_cdn=True)
    assert (e.field, e.problem) == ("FrontDoorSettings.enable_cdn", "IAP is incompatible with Cloud CDN")
    assert FrontDoorSettings(domains=["a.example.com"], enable_cdn=True).enable_cdn
    assert FrontDoorSettings(domains=["a.example.com"], iap=iap).iap.enabled


def test_nested_problems_through_parse() -> None:
    problems: list[ConfigError] = []
    raw = {
        "domains": ["a.example.com"],
        "armor": {"enabled": True, "action": "ban", "rate_limit_per_minute": 20000},
        "iap": {"enabled": True},
    }
    parse(FrontDoorSettings, raw, "cloudrun-gpu:frontdoor.", problems)
    assert [e.field for e in problems] == [
        "cloudrun-gpu:frontdoor.armor.rate_limit_per_minute",
        "cloudrun-gpu:frontdoor.iap.oauth2_client_id",
        "cloudrun-gpu:frontdoor.iap.oauth2_client_secret_secret",
    ]


# ------------------------------------------------------------------------- frontdoor/__init__.py


def test_backend_services_log_every_request() -> None:
    from .test_frontdoor import _internal, backends, build

    external = build(
        lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(domains=["llm.example.com"]))
    ).one("gcp:compute/backendService:BackendService")
    assert external.inputs["logConfig"] == {"enable": True, "sampleRate": 1.0}
    internal = build(_internal).one("gcp:compute/regionBackendService:RegionBackendService")
    assert internal.inputs["logConfig"] == {"enable": True, "sampleRate": 1.0}


def test_internal_scheme_takes_exactly_one_region() -> None:
    from .test_frontdoor import NET, REGIONAL_CERT, SUB, backends

    settings = FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT)
    one_region = FrontDoorArgs(
        backends=backends({"europe-west1": "llm"}), settings=settings, network=NET, subnetwork=SUB
    )
    assert list(one_region.backends) == ["europe-west1"]
    with pytest.raises(ConfigErrors) as err:
        FrontDoorArgs(
            backends=backends({"europe-west1": "a", "us-central1": "b"}), settings=settings, network=NET, subnetwork=SUB
        )
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == (
        "FrontDoorArgs.backends",
        ["europe-west1", "us-central1"],
        "scheme INTERNAL_MANAGED is a regional internal load balancer: one region only",
    )
