"""FrontDoor: the NEG → backend service → URL map → proxy → forwarding rule chain, armor, IAP, outlier
detection, the internal scheme, and every bad input refused before anything registers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cloudrun_gpu.frontdoor import SECRET_VERSION_TOKEN as SECRET_TOKEN
from cloudrun_gpu.frontdoor import (
    ArmorAction,
    ArmorSettings,
    FrontDoor,
    FrontDoorArgs,
    FrontDoorBackend,
    FrontDoorScheme,
    FrontDoorSettings,
    IapSettings,
    OutlierDetectionSettings,
)
from pulumi.runtime import MockCallArgs

from stack.render import Recorded, RecordingMocks

from .conftest import Rendered, parent_type, refused, render, the_error, urns

NEG = "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup"
BS = "gcp:compute/backendService:BackendService"
RBS = "gcp:compute/regionBackendService:RegionBackendService"
URLMAP = "gcp:compute/uRLMap:URLMap"
RURLMAP = "gcp:compute/regionUrlMap:RegionUrlMap"
PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
RPROXY = "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy"
CERT = "gcp:compute/managedSslCertificate:ManagedSslCertificate"
GADDR = "gcp:compute/globalAddress:GlobalAddress"
ADDR = "gcp:compute/address:Address"
GRULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
RULE = "gcp:compute/forwardingRule:ForwardingRule"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
TOKEN = "cloudrun-gpu:index:FrontDoor"

REGIONS = {"europe-west1": "llm-eu", "us-central1": "llm-us", "asia-southeast1": "llm-asia"}
CLIENT_ID = "1234-abc.apps.googleusercontent.com"
SECRET_REF = "projects/sec-proj/secrets/iap-client/versions/3"
SECRET_VALUE = "GOCSPX-from-secret-manager"
NET = "projects/p/global/networks/vpc"
SUB = "projects/p/regions/europe-west1/subnetworks/run"
REGIONAL_CERT = "projects/p/regions/europe-west1/sslCertificates/llm"


def backends(regions: dict[str, str] = REGIONS) -> dict[str, FrontDoorBackend]:
    return {r: FrontDoorBackend(service_name=s) for r, s in regions.items()}


def build(args: Callable[[], FrontDoorArgs], name: str = "door") -> Rendered:
    def program() -> Any:
        door = FrontDoor(name, args())
        return {
            "url": door.url,
            "backend_service_id": door.backend_service_id,
            "urns": urns(*door.negs.values(), door.backend_service, door.url_map, door.https_proxy, door.address),
        }

    return render(program)


def unwrap(value: Any) -> Any:
    """A recorded input without Pulumi's secret envelope."""
    if isinstance(value, dict) and "value" in value and any(len(k) == 32 for k in value):
        return unwrap(value["value"])
    return value


def by_id(r: Rendered, typ: str) -> dict[str, Recorded]:
    """Resources of ``typ`` by the id the mocks gave them (``<logical name>-id``)."""
    return {f"{x.name}-id": x for x in r.of_type(typ)}


@pytest.fixture
def secret_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Answer the Secret Manager invoke like the real one would; record what was asked."""
    asked: list[dict[str, Any]] = []
    original = RecordingMocks.call

    def call(self: RecordingMocks, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == SECRET_TOKEN:
            asked.append(dict(args.args))
            return {"secretData": SECRET_VALUE, "secret": args.args["secret"], "version": "3"}, []
        return original(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    yield asked


# --- the external chain -------------------------------------------------------------------------------


def test_external_chain_is_complete_and_every_reference_lines_up() -> None:
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(domains=["llm.example.com"])))
    negs = by_id(r, NEG)
    assert {n.inputs["region"]: n.inputs["cloudRun"]["service"] for n in negs.values()} == REGIONS
    for neg in negs.values():
        assert neg.inputs["networkEndpointType"] == "SERVERLESS"
        assert neg.name == f"door-neg-{neg.inputs['region']}"  # keyed by region, never by position

    bs = r.one(BS)
    assert bs.inputs["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert bs.inputs["protocol"] == "HTTPS"
    groups = [b["group"] for b in bs.inputs["backends"]]
    assert sorted(groups) == sorted(negs) and len(groups) == 3
    for b in bs.inputs["backends"]:  # serverless NEGs take no balancing mode or capacity
        assert set(b) == {"group"}
    assert bs.inputs["enableCdn"] is False
    assert "iap" not in bs.inputs and "securityPolicy" not in bs.inputs

    urlmap = r.one(URLMAP)
    assert urlmap.inputs["defaultService"] == f"{bs.name}-id"
    cert = r.one(CERT)
    assert cert.inputs["managed"]["domains"] == ["llm.example.com"]
    proxy = r.one(PROXY)
    assert proxy.inputs["urlMap"] == f"{urlmap.name}-id"
    assert proxy.inputs["sslCertificates"] == [f"{cert.name}-id"]
    addr = r.one(GADDR)
    assert addr.inputs["addressType"] == "EXTERNAL"
    rule = r.one(GRULE)
    assert rule.inputs["target"] == f"{proxy.name}-id"
    assert rule.inputs["ipAddress"] == f"projects/test-project/global/addresses/{addr.name}"
    assert rule.inputs["portRange"] == "443"
    assert rule.inputs["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert not r.of_type(RBS) and not r.of_type(SUBNET) and not r.of_type(ARMOR)

    assert r.value["url"] == "https://llm.example.com"
    assert r.value["backend_service_id"] == f"{bs.name}-id"


def test_the_chain_waits_for_each_link() -> None:
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(domains=["llm.example.com"])))

    def deps(typ: str) -> set[str]:
        reg = r.one(typ).registration
        assert reg is not None
        return {d.rsplit("::", 1)[1] for d in reg.dependencies}

    assert deps(BS) == {f"door-neg-{region}" for region in REGIONS}
    assert deps(URLMAP) == {"door-backend"}
    assert deps(PROXY) == {"door-urlmap", "door-cert"}
    assert deps(GRULE) == {"door-https", "door-ip"}


def test_children_are_parented_to_the_component() -> None:
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(domains=["llm.example.com"])))
    chains = {parent_type(u) for u in r.value["urns"]}
    assert chains and all(c.startswith(f"{TOKEN}$") for c in chains), chains
    assert {x.type for x in r.resources if not x.custom} == {TOKEN}
    for x in r.resources:
        if x.custom:
            assert x.registration is not None and x.registration.parent.endswith(f"{TOKEN}::door")


def test_adding_a_region_keeps_the_other_negs_names() -> None:
    two = build(lambda: FrontDoorArgs(backends=backends({"europe-west1": "a", "us-central1": "b"}), settings=_ext()))
    three = build(
        lambda: FrontDoorArgs(
            backends=backends({"asia-east1": "c", "europe-west1": "a", "us-central1": "b"}), settings=_ext()
        )
    )
    assert {n.name for n in two.of_type(NEG)} < {n.name for n in three.of_type(NEG)}


def test_self_managed_certificate_alone_or_beside_the_managed_one() -> None:
    own = "projects/p/global/sslCertificates/mine"
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(certificate=own)))
    assert r.one(PROXY).inputs["sslCertificates"] == [own]
    assert not r.of_type(CERT)
    both = build(
        lambda: FrontDoorArgs(
            backends=backends(), settings=FrontDoorSettings(domains=["a.example.com"], certificate=own)
        )
    )
    assert both.one(PROXY).inputs["sslCertificates"] == ["door-cert-id", own]


def test_backend_project_overrides_the_front_doors() -> None:
    r = build(
        lambda: FrontDoorArgs(
            backends={
                "europe-west1": FrontDoorBackend(service_name="a", project="other"),
                "us-central1": FrontDoorBackend(service_name="b"),
            },
            settings=_ext(),
            project="main",
        )
    )
    projects = {n.inputs["region"]: n.inputs.get("project") for n in r.of_type(NEG)}
    assert projects == {"europe-west1": "other", "us-central1": "main"}
    assert r.one(BS).inputs["project"] == "main"


# --- armor, IAP, outlier detection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "wire", "ban"), [(ArmorAction.THROTTLE, "throttle", None), (ArmorAction.BAN, "rate_based_ban", 900)]
)
def test_armor_rate_rule_keyed_on_ip(action: ArmorAction, wire: str, ban: int | None) -> None:
    armor = ArmorSettings(enabled=True, rate_limit_per_minute=120, action=action, ban_duration_s=900, preview=True)
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=_ext(armor=armor)))
    policy = r.one(ARMOR)
    assert r.one(BS).inputs["securityPolicy"] == f"{policy.name}-id"
    rules = {rule["priority"]: rule for rule in policy.inputs["rules"]}
    assert set(rules) == {1000, 2147483647}
    rate = rules[1000]
    assert rate["action"] == wire and rate["preview"] is True
    assert rate["match"] == {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}
    opts = rate["rateLimitOptions"]
    assert opts["enforceOnKey"] == "IP"
    assert opts["rateLimitThreshold"] == {"count": 120, "intervalSec": 60}
    assert opts["conformAction"] == "allow" and opts["exceedAction"] == "deny(429)"
    assert opts.get("banDurationSec") == ban
    assert rules[2147483647]["action"] == "allow"


def test_iap_secret_is_read_by_reference_and_never_plain(secret_manager: list[dict[str, Any]]) -> None:
    iap = IapSettings(enabled=True, oauth2_client_id=CLIENT_ID, oauth2_client_secret_secret=SECRET_REF)
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=iap)))
    assert secret_manager == [{"project": "sec-proj", "secret": "iap-client", "version": "3"}]
    raw = r.one(BS).inputs["iap"]
    assert raw != unwrap(raw), "the IAP block must travel as a Pulumi secret"
    assert unwrap(raw) == {"enabled": True, "oauth2ClientId": CLIENT_ID, "oauth2ClientSecret": SECRET_VALUE}
    assert SECRET_REF not in str(r.resources)  # the reference is looked up, not passed on as the secret


def test_iap_secret_reference_without_version_reads_latest(secret_manager: list[dict[str, Any]]) -> None:
    iap = IapSettings(
        enabled=True, oauth2_client_id=CLIENT_ID, oauth2_client_secret_secret="projects/sec-proj/secrets/iap"
    )
    build(lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=iap)))
    assert secret_manager == [{"project": "sec-proj", "secret": "iap", "version": "latest"}]


def test_outlier_detection_values() -> None:
    od = OutlierDetectionSettings(consecutive_errors=3, interval_s=5, base_ejection_time_s=60, max_ejection_percent=100)
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=_ext(outlier_detection=od)))
    assert r.one(BS).inputs["outlierDetection"] == {
        "consecutiveErrors": 3,
        "interval": {"seconds": 5},
        "baseEjectionTime": {"seconds": 60},
        "maxEjectionPercent": 100,
    }


def test_outlier_detection_defaults_and_off() -> None:
    r = build(lambda: FrontDoorArgs(backends=backends(), settings=_ext()))
    assert r.one(BS).inputs["outlierDetection"] == {
        "consecutiveErrors": 5,
        "interval": {"seconds": 10},
        "baseEjectionTime": {"seconds": 30},
        "maxEjectionPercent": 50,
    }
    off = build(
        lambda: FrontDoorArgs(
            backends=backends(), settings=_ext(outlier_detection=OutlierDetectionSettings(enabled=False))
        )
    )
    assert "outlierDetection" not in off.one(BS).inputs


# --- the internal scheme ------------------------------------------------------------------------------


def _internal(**kw: Any) -> FrontDoorArgs:
    settings = FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT, **kw)
    return FrontDoorArgs(backends=backends({"europe-west1": "llm-eu"}), settings=settings, network=NET, subnetwork=SUB)


def test_internal_regional_chain_and_proxy_only_subnet() -> None:
    r = build(_internal)
    neg = r.one(NEG)
    assert neg.inputs["region"] == "europe-west1" and neg.inputs["cloudRun"] == {"service": "llm-eu"}
    subnet = r.one(SUBNET)
    assert subnet.inputs == {
        "network": NET,
        "region": "europe-west1",
        "ipCidrRange": "10.129.0.0/23",
        "purpose": "REGIONAL_MANAGED_PROXY",
        "role": "ACTIVE",
        "description": subnet.inputs["description"],
    }
    bs = r.one(RBS)
    assert bs.inputs["loadBalancingScheme"] == "INTERNAL_MANAGED" and bs.inputs["protocol"] == "HTTPS"
    assert bs.inputs["region"] == "europe-west1"
    assert bs.inputs["backends"] == [{"group": f"{neg.name}-id"}]
    # compute.v1: outlierDetection on a regional backend service is "Not supported for Serverless NEGs" (issue 19).
    assert "outlierDetection" not in bs.inputs
    urlmap = r.one(RURLMAP)
    assert urlmap.inputs["defaultService"] == f"{bs.name}-id" and urlmap.inputs["region"] == "europe-west1"
    proxy = r.one(RPROXY)
    assert proxy.inputs["urlMap"] == f"{urlmap.name}-id"
    assert proxy.inputs["sslCertificates"] == [REGIONAL_CERT]
    addr = r.one(ADDR)
    assert addr.inputs["addressType"] == "INTERNAL" and addr.inputs["subnetwork"] == SUB
    rule = r.one(RULE)
    assert rule.inputs["target"] == f"{proxy.name}-id"
    assert rule.inputs["ipAddress"] == f"{addr.name}-id"
    assert rule.inputs["loadBalancingScheme"] == "INTERNAL_MANAGED"
    assert (rule.inputs["network"], rule.inputs["subnetwork"]) == (NET, SUB)
    assert rule.inputs["portRange"] == "443" and rule.inputs["region"] == "europe-west1"
    # the proxy-only subnet must exist before the forwarding rule
    assert rule.registration is not None and subnet.urn in rule.registration.dependencies
    assert not r.of_type(BS) and not r.of_type(GRULE) and not r.of_type(CERT) and not r.of_type(GADDR)
    assert r.value["backend_service_id"] == f"{bs.name}-id"


def test_internal_with_an_existing_proxy_only_subnet_creates_none() -> None:
    r = build(lambda: _internal(proxy_only_subnet_cidr=None, domains=["llm.internal.example.com"]))
    assert not r.of_type(SUBNET)
    assert r.value["url"] == "https://llm.internal.example.com"


def test_args_from_a_plain_input_bag() -> None:
    """Another Pulumi language hands over plain dicts (snake_case after the provider host maps them)."""
    bag: dict[str, Any] = {
        "backends": {"europe-west1": {"service_name": "llm-eu"}, "us-central1": {"service_name": "llm-us"}},
        "settings": {"domains": ["llm.example.com"], "armor": {"enabled": True, "rate_limit_per_minute": 30}},
    }
    r = render(lambda: FrontDoor("door", bag).url)  # type: ignore[arg-type]
    assert {n.inputs["cloudRun"]["service"] for n in r.of_type(NEG)} == {"llm-eu", "llm-us"}
    assert r.one(ARMOR).inputs["rules"][0]["rateLimitOptions"]["rateLimitThreshold"]["count"] == 30
    assert r.value == "https://llm.example.com"


# --- refused before anything registers ----------------------------------------------------------------


def _ext(**kw: Any) -> FrontDoorSettings:
    return FrontDoorSettings(domains=kw.pop("domains", ["llm.example.com"]), **kw)


def door(args: Callable[[], FrontDoorArgs]) -> Callable[[], Any]:
    def program() -> Any:
        return FrontDoor("door", args()).url

    return program


IAP_OK: dict[str, Any] = {"enabled": True, "oauth2_client_id": CLIENT_ID, "oauth2_client_secret_secret": SECRET_REF}


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (lambda: FrontDoorArgs(backends=backends(), settings=FrontDoorSettings()), "FrontDoorSettings.domains", []),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["https://llm.example.com"])),
            "FrontDoorSettings.domains.0",
            "https://llm.example.com",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["ok.example.com", "*.example.com"])),
            "FrontDoorSettings.domains.1",
            "*.example.com",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["LLM.Example.com"])),
            "FrontDoorSettings.domains.0",
            "LLM.Example.com",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["localhost"])),
            "FrontDoorSettings.domains.0",
            "localhost",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(certificate="my-cert")),
            "FrontDoorSettings.certificate",
            "my-cert",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(certificate=REGIONAL_CERT)),
            "FrontDoorSettings.certificate",
            REGIONAL_CERT,
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=IapSettings(enabled=True))),
            "IapSettings.oauth2_client_id",
            None,
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=IapSettings(enabled=True))),
            "IapSettings.oauth2_client_secret_secret",
            None,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(),
                settings=_ext(iap=IapSettings(**{**IAP_OK, "oauth2_client_id": "not-a-client"})),
            ),
            "IapSettings.oauth2_client_id",
            "not-a-client",
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=IapSettings(**IAP_OK), enable_cdn=True)),
            "FrontDoorSettings.enable_cdn",
            True,
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(armor=ArmorSettings(rate_limit_per_minute=0))),
            "ArmorSettings.rate_limit_per_minute",
            0,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(), settings=_ext(armor=ArmorSettings(enabled=True, rate_limit_per_minute=-5))
            ),
            "ArmorSettings.rate_limit_per_minute",
            -5,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(),
                settings=_ext(armor=ArmorSettings(enabled=True, action=ArmorAction.BAN, rate_limit_per_minute=10_001)),
            ),
            "ArmorSettings.rate_limit_per_minute",
            10_001,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(), settings=_ext(outlier_detection=OutlierDetectionSettings(consecutive_errors=0))
            ),
            "OutlierDetectionSettings.consecutive_errors",
            0,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(), settings=_ext(outlier_detection=OutlierDetectionSettings(max_ejection_percent=101))
            ),
            "OutlierDetectionSettings.max_ejection_percent",
            101,
        ),
        (lambda: FrontDoorArgs(backends={}, settings=_ext()), "FrontDoorArgs.backends", {}),
        (lambda: FrontDoorArgs(backends=["llm-eu"], settings=_ext()), "FrontDoorArgs.backends", ["llm-eu"]),  # type: ignore[arg-type]
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["a.example.com", "a.example.com"])),
            "FrontDoorSettings.domains",
            ["a.example.com", "a.example.com"],
        ),
        (
            lambda: FrontDoorArgs(backends=backends(), settings=_ext(domains=["10.0.0.1"])),
            "FrontDoorSettings.domains.0",
            "10.0.0.1",
        ),
        (
            lambda: FrontDoorArgs(backends=backends({"Europe West 1": "x"}), settings=_ext()),
            "FrontDoorArgs.backends.Europe West 1",
            "Europe West 1",
        ),
        (
            lambda: FrontDoorArgs(backends=backends({"europe-west": "x"}), settings=_ext()),
            "FrontDoorArgs.backends.europe-west",
            "europe-west",
        ),
        (
            lambda: FrontDoorArgs(backends=backends({"europe-west1": ""}), settings=_ext()),
            "FrontDoorArgs.backends.europe-west1.service_name",
            "",
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends(),
                settings=FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT),
                network=NET,
                subnetwork=SUB,
            ),
            "FrontDoorArgs.backends",
            sorted(REGIONS),
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends({"europe-west1": "x"}),
                settings=FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT),
            ),
            "FrontDoorArgs.network",
            None,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends({"europe-west1": "x"}),
                settings=FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, domains=["llm.example.com"]),
                network=NET,
                subnetwork=SUB,
            ),
            "FrontDoorSettings.certificate",
            None,
        ),
        (
            lambda: FrontDoorArgs(
                backends=backends({"us-east1": "x"}),
                settings=FrontDoorSettings(scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate=REGIONAL_CERT),
                network=NET,
                subnetwork=SUB,
            ),
            "FrontDoorArgs.settings.certificate",
            REGIONAL_CERT,
        ),
        (
            lambda: _internal(proxy_only_subnet_cidr="10.129.0.0/27"),
            "FrontDoorSettings.proxy_only_subnet_cidr",
            "10.129.0.0/27",
        ),
        (
            lambda: _internal(proxy_only_subnet_cidr="8.8.8.0/23"),
            "FrontDoorSettings.proxy_only_subnet_cidr",
            "8.8.8.0/23",
        ),
        (
            lambda: _internal(armor=ArmorSettings(enabled=True)),
            "FrontDoorSettings.armor.enabled",
            True,
        ),
        (lambda: _internal(enable_cdn=True), "FrontDoorSettings.enable_cdn", True),
    ],
)
def test_bad_input_is_refused_before_anything_registers(
    args: Callable[[], FrontDoorArgs], field: str, value: Any
) -> None:
    err = the_error(refused(door(args)), field)
    assert err.value == value


@pytest.mark.parametrize(
    "plain",
    ["GOCSPX-1a2b3c4d5e6f7g8h9i0j", "secrets/iap", "projects/p/secrets/iap/versions/first", "projects//secrets/x"],
)
def test_iap_secret_must_be_a_secret_manager_reference_and_is_never_echoed(plain: str) -> None:
    iap = {**IAP_OK, "oauth2_client_secret_secret": plain}
    errors = refused(door(lambda: FrontDoorArgs(backends=backends(), settings=_ext(iap=IapSettings(**iap)))))
    err = the_error(errors, "IapSettings.oauth2_client_secret_secret")
    assert err.value == "<hidden>" and plain not in str(err)
    assert "projects/<project>/secrets/<name>" in err.fix


def test_rate_limit_bounds_follow_the_action() -> None:
    ArmorSettings(enabled=True, action=ArmorAction.BAN, rate_limit_per_minute=10_000)
    ArmorSettings(enabled=True, action=ArmorAction.THROTTLE, rate_limit_per_minute=1_000_000)
    errors = refused(
        door(
            lambda: FrontDoorArgs(
                backends=backends(),
                settings=_ext(armor=ArmorSettings(enabled=True, rate_limit_per_minute=1_000_001)),
            )
        )
    )
    err = the_error(errors, "ArmorSettings.rate_limit_per_minute")
    assert err.allowed == "1…1000000"


def test_errors_from_a_bag_are_named_by_their_path() -> None:
    bag: dict[str, Any] = {
        "backends": {"europe-west1": {"service_name": "x"}},
        "settings": {"iap": {"enabled": True}, "domains": ["bad domain"], "armor": {"rate_limit_per_minute": 0}},
    }
    errors = refused(lambda: FrontDoor("door", bag).url)  # type: ignore[arg-type]
    assert {e.field for e in errors} == {"FrontDoorArgs.settings.armor.rate_limit_per_minute"}
    bag["settings"]["armor"] = {}
    errors = refused(lambda: FrontDoor("door", bag).url)  # type: ignore[arg-type]
    assert {e.field for e in errors} == {
        "FrontDoorArgs.settings.iap.oauth2_client_id",
        "FrontDoorArgs.settings.iap.oauth2_client_secret_secret",
        "FrontDoorArgs.settings.domains.0",
    }
