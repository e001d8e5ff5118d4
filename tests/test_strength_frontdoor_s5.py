"""Session-5 mutation-strength tests for the front door, ``frontdoor/settings.py`` and ``frontdoor/__init__.py``
(seed 101's survivors): the whole error a user reads for each refused input, which domain a duplicate-domain error
names, and the Cloud Armor policy's descriptions as registered (under Pulumi mocks)."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.frontdoor import REGION_PATTERN, FrontDoorArgs, FrontDoorBackend
from cloudrun_gpu.frontdoor.settings import ArmorAction, ArmorSettings, FrontDoorScheme, FrontDoorSettings, IapSettings

from .test_frontdoor import secret_manager as secret_manager  # a fixture: answers the IAP secret's invoke

CID = "1234-abc.apps.googleusercontent.com"
REF = "projects/p/secrets/iap-client"
NET = "projects/p/global/networks/vpc"
SUB = "projects/p/regions/europe-west1/subnetworks/run"
EXTERNAL = FrontDoorSettings(domains=["llm.example.com"])
INTERNAL = FrontDoorSettings(
    scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate="projects/p/regions/europe-west1/sslCertificates/llm"
)


def test_no_certificate_source_names_both_ways_to_get_one() -> None:
    """frontdoor/settings.py:267 (seed 101, ChangeMessage survived): the fix of an external front door with
    neither domains nor a certificate is read in full, not only its field."""
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings()
    (e,) = err.value.errors
    assert e.fix == (
        "set FrontDoorSettings.domains to the DNS names clients use, e.g. [llm.example.com], or set certificate"
    )


def test_cdn_with_iap_says_to_turn_cdn_off() -> None:
    """frontdoor/settings.py:280 (seed 101, ChangeMessage survived): Cloud CDN with IAP is refused with the fix
    that turns CDN off, and why that costs nothing."""
    iap = IapSettings(enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=REF)
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings(domains=["a.example.com"], iap=iap, enable_cdn=True)
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == ("FrontDoorSettings.enable_cdn", True, "IAP is incompatible with Cloud CDN")
    assert e.fix == "set FrontDoorSettings.enable_cdn to false (LLM responses are per request anyway)"


def test_a_duplicate_domain_is_named_even_when_it_is_not_the_first() -> None:
    """frontdoor/settings.py:234 (seed 101, `count(d) > 1` → `> 0` survived): the error names the domain that is
    listed twice, not whichever domain comes first."""
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings(domains=["a.example.com", "b.example.com", "c.example.com", "b.example.com"])
    (e,) = err.value.errors
    assert (e.field, e.problem, e.fix) == (
        "FrontDoorSettings.domains",
        "lists b.example.com twice",
        "keep one b.example.com",
    )


# ------------------------------------------------------------------------- frontdoor/__init__.py


def args_error(**kw: Any) -> dict[str, Any]:
    with pytest.raises(ConfigErrors) as err:
        FrontDoorArgs(**kw)
    (e,) = err.value.errors
    return vars(e)


BACKEND_REFUSALS: list[tuple[Any, str, Any, str, str, str]] = [
    # frontdoor/__init__.py:109 (seed 101, ChangeMessage of the fix survived)
    (
        {"Europe": FrontDoorBackend(service_name="llm")},
        "FrontDoorArgs.backends.Europe",
        "Europe",
        "is not a region name",
        "key each backend by its Cloud Run region, e.g. europe-west1",
        REGION_PATTERN,
    ),
    # :123 (seed 101, ChangeMessage survived)
    (
        {"europe-west1": "llm"},
        "FrontDoorArgs.backends.europe-west1",
        "llm",
        "is not a backend",
        "pass FrontDoorBackend(service_name=…)",
        "",
    ),
    # :128 (seed 101, ChangeMessage survived)
    (
        {"europe-west1": FrontDoorBackend(service_name=" ")},
        "FrontDoorArgs.backends.europe-west1.service_name",
        " ",
        "is empty",
        "set the Cloud Run service's name",
        "",
    ),
]


FIX_BACKENDS = 'set backends to {"<region>": FrontDoorBackend(service_name=…)}'
BACKEND_REFUSALS += [
    # written before seed 111 was drawn
    (
        {},
        "FrontDoorArgs.backends",
        {},
        "is empty: the front door needs at least one Cloud Run service",
        FIX_BACKENDS,
        "",
    ),
    (["llm-eu"], "FrontDoorArgs.backends", ["llm-eu"], "must be a mapping of region to backend", FIX_BACKENDS, ""),
    # from another Pulumi language a backend is a plain bag: an unknown key is refused with the TypeError's words
    (
        {"europe-west1": {"name": "x"}},
        "FrontDoorArgs.backends.europe-west1",
        {"name": "x"},
        "is not a backend (FrontDoorBackend.__init__() got an unexpected keyword argument 'name')",
        "set service_name (and project)",
        "",
    ),
]


@pytest.mark.parametrize(("backends", "field", "value", "problem", "fix", "allowed"), BACKEND_REFUSALS)
def test_a_bad_backend_is_refused_in_full(
    backends: Any, field: str, value: Any, problem: str, fix: str, allowed: str
) -> None:
    assert args_error(backends=backends, settings=EXTERNAL) == {
        "field": field,
        "value": value,
        "problem": problem,
        "fix": fix,
        "allowed": allowed,
    }


def test_an_internal_front_doors_certificate_from_another_region_names_the_backends_region() -> None:
    """frontdoor/__init__.py:176 (seed 101, ChangeMessage survived): a regional certificate must be in the one
    backend's region."""
    settings = FrontDoorSettings(
        scheme=FrontDoorScheme.INTERNAL_MANAGED, certificate="projects/p/regions/us-central1/sslCertificates/llm"
    )
    backends = {"europe-west1": FrontDoorBackend(service_name="llm")}
    assert args_error(backends=backends, settings=settings, network=NET, subnetwork=SUB) == {
        "field": "FrontDoorArgs.settings.certificate",
        "value": "projects/p/regions/us-central1/sslCertificates/llm",
        "problem": "is not in the backend's region (europe-west1)",
        "fix": "use a regional SSL certificate in europe-west1",
        "allowed": "",
    }


@pytest.mark.parametrize(("action", "limit"), [(ArmorAction.THROTTLE, 120), (ArmorAction.BAN, 30)])
def test_the_armor_policy_and_its_rules_say_what_they_do(action: ArmorAction, limit: int) -> None:
    """frontdoor/__init__.py:447 and :463 (seed 101, the policy's description dropped and the rate rule's
    description changed survived): what an operator reads in the Cloud Armor console for the policy and each
    rule."""
    from .test_frontdoor import ARMOR, backends, build

    armor = ArmorSettings(enabled=True, rate_limit_per_minute=limit, action=action)
    settings = FrontDoorSettings(domains=["llm.example.com"], armor=armor)
    policy = build(lambda: FrontDoorArgs(backends=backends(), settings=settings)).one(ARMOR)
    assert policy.inputs["type"] == "CLOUD_ARMOR"
    assert policy.inputs["description"] == f"Per-client-IP rate limit: {limit}/min ({action.value})"
    rules = {rule["priority"]: rule["description"] for rule in policy.inputs["rules"]}
    assert rules == {1000: "Rate limit per client IP", 2147483647: "Default: allow"}


# Written after seed 101's survivors and before seed 111 was drawn: the rest of the component's words a user reads,
# pinned the same way (every resource description in both chains, every refusal of FrontDoorArgs in full).


def descriptions(args: Any) -> dict[str, str | None]:
    from .test_frontdoor import build

    return {x.name: x.inputs.get("description") for x in build(args).resources if x.name != "door"}


def test_every_external_resource_says_what_it_is_in_the_console() -> None:
    from .test_frontdoor import backends

    armor = ArmorSettings(enabled=True)
    settings = FrontDoorSettings(domains=["llm.example.com"], armor=armor)
    assert descriptions(lambda: FrontDoorArgs(backends=backends(), settings=settings)) == {
        "door-neg-asia-southeast1": "Serverless NEG for the Cloud Run service in asia-southeast1",
        "door-neg-europe-west1": "Serverless NEG for the Cloud Run service in europe-west1",
        "door-neg-us-central1": "Serverless NEG for the Cloud Run service in us-central1",
        "door-armor": "Per-client-IP rate limit: 60/min (throttle)",
        "door-cert": "Google-managed certificate for the front door's domains",
        "door-ip": "The front door's anycast IP",
        "door-backend": "Cloud Run GPU services, one serverless NEG per region",
        "door-urlmap": "Every path to the inference backend service",
        "door-https": None,
        "door-https-rule": None,
    }


def test_every_internal_resource_says_what_it_is_in_the_console() -> None:
    from .test_frontdoor import _internal

    assert descriptions(_internal) == {
        "door-neg-europe-west1": "Serverless NEG for the Cloud Run service in europe-west1",
        "door-proxy-only-europe-west1": "Proxy-only subnet for the front door's regional internal load balancer",
        "door-ip": "The front door's internal IP",
        "door-backend": "Cloud Run GPU service behind the internal front door",
        "door-urlmap": "Every path to the inference backend service",
        "door-https": None,
        "door-https-rule": None,
    }


def test_an_internal_front_door_over_two_regions_is_refused_in_full() -> None:
    two = {r: FrontDoorBackend(service_name="llm") for r in ("europe-west1", "us-central1")}
    assert args_error(backends=two, settings=INTERNAL, network=NET, subnetwork=SUB) == {
        "field": "FrontDoorArgs.backends",
        "value": ["europe-west1", "us-central1"],
        "problem": "scheme INTERNAL_MANAGED is a regional internal load balancer: one region only",
        "fix": "keep one region in backends, or use scheme EXTERNAL_MANAGED for several regions",
        "allowed": "",
    }


def test_an_internal_front_door_without_its_vpc_names_both_missing_ids() -> None:
    with pytest.raises(ConfigErrors) as err:
        FrontDoorArgs(backends={"europe-west1": FrontDoorBackend(service_name="llm")}, settings=INTERNAL)
    assert [vars(e) for e in err.value.errors] == [
        {
            "field": f"FrontDoorArgs.{name}",
            "value": None,
            "problem": f"scheme INTERNAL_MANAGED puts the load balancer in your VPC: it needs the {name}",
            "fix": f"pass {name} (e.g. InferenceNetwork(...).{name}_id)",
            "allowed": "",
        }
        for name in ("network", "subnetwork")
    ]


# Seed 111's survivors (frontdoor/__init__.py, blind to the tests above).


def registered_outputs(args: Any) -> dict[str, Any]:
    """What the component handed to ``register_outputs``, resolved, beside its own attributes of the same names."""
    from cloudrun_gpu.frontdoor import TOKEN, FrontDoor

    from .conftest import render
    from .test_strength_outputs import _recording_outputs

    captured: list[tuple[str, str, Any]] = []

    def program() -> Any:
        door = FrontDoor("door", args())
        (outputs,) = [o for t, _, o in captured if t == TOKEN]
        own = {"ip_address": door.ip_address, "url": door.url, "backend_service_id": door.backend_service_id}
        return {"registered": outputs, "own": own}

    with _recording_outputs(captured):
        value: dict[str, Any] = render(program).value
    return value


@pytest.mark.parametrize("scheme", ["external", "internal"])
def test_the_front_door_registers_its_ip_url_and_backend_service(scheme: str) -> None:
    """frontdoor/__init__.py:230 (seed 111, each key dropped from register_outputs survived): another Pulumi
    language reads the component's outputs from what it registers."""
    from .test_frontdoor import _internal, backends

    def external() -> FrontDoorArgs:
        return FrontDoorArgs(backends=backends(), settings=EXTERNAL)

    value = registered_outputs(external if scheme == "external" else _internal)
    assert value["registered"] == value["own"]
    assert set(value["registered"]) == {"ip_address", "url", "backend_service_id"}
    assert value["registered"]["backend_service_id"] == "door-backend-id"
    assert value["registered"]["url"] == (
        "https://llm.example.com" if scheme == "external" else f"https://{value['registered']['ip_address']}"
    )


def test_every_external_resource_goes_into_the_front_doors_project_under_the_component() -> None:
    """frontdoor/__init__.py:315 and :470 (seed 111, the global forwarding rule's `project=` and the Cloud Armor
    policy's `opts=child` dropped survived)."""
    from .test_frontdoor import TOKEN, build

    armor = ArmorSettings(enabled=True)
    r = build(
        lambda: FrontDoorArgs(
            backends={"europe-west1": FrontDoorBackend(service_name="llm")},
            settings=FrontDoorSettings(domains=["llm.example.com"], armor=armor),
            project="main",
        )
    )
    custom = [x for x in r.resources if x.custom]
    assert len(custom) == 8  # NEG, armor, backend, URL map, certificate, proxy, address, forwarding rule
    for x in custom:
        assert x.inputs.get("project") == "main", x.name
        assert x.registration is not None and x.registration.parent.endswith(f"{TOKEN}::door"), x.name


def test_every_internal_resource_goes_into_the_front_doors_project_under_the_component() -> None:
    """frontdoor/__init__.py:403 and :363 (seed 111, the forwarding rule's `parent=self` and the regional backend
    service's `opts=child` dropped survived): the internal
    chain's resources are the component's children (a stack's `pulumi destroy` of the component takes them) and sit
    in its project."""
    from .test_frontdoor import TOKEN, build

    r = build(
        lambda: FrontDoorArgs(
            backends={"europe-west1": FrontDoorBackend(service_name="llm")},
            settings=INTERNAL,
            network=NET,
            subnetwork=SUB,
            project="main",
        )
    )
    custom = [x for x in r.resources if x.custom]
    assert len(custom) == 7  # NEG, proxy-only subnet, backend, URL map, proxy, address, forwarding rule
    for x in custom:
        assert x.inputs.get("project") == "main", x.name
        assert x.registration is not None and x.registration.parent.endswith(f"{TOKEN}::door"), x.name


def test_an_internal_front_door_turns_iap_on_with_the_client_and_its_secret(secret_manager: Any) -> None:
    """frontdoor/__init__.py:356 (seed 111, a keyword of the regional backend service's IAP block dropped
    survived): the internal scheme's IAP block is the external one's."""
    from .test_frontdoor import CLIENT_ID, RBS, SECRET_REF, SECRET_VALUE, _internal, build, unwrap

    iap = IapSettings(enabled=True, oauth2_client_id=CLIENT_ID, oauth2_client_secret_secret=SECRET_REF)
    r = build(lambda: _internal(iap=iap))
    raw = r.one(RBS).inputs["iap"]
    assert raw != unwrap(raw), "the IAP block must travel as a Pulumi secret"
    assert unwrap(raw) == {"enabled": True, "oauth2ClientId": CLIENT_ID, "oauth2ClientSecret": SECRET_VALUE}


def test_child_names_lists_every_name_the_component_gives() -> None:
    """frontdoor/__init__.py:485 (seed 111, `+` → `>>` in child_names survived: no test of this module called it):
    a stack checks these names' lengths before it registers anything (issue 21), so they must be exactly the
    component's."""
    from cloudrun_gpu.frontdoor import child_names

    from .test_frontdoor import _internal, backends, build

    names = child_names("door", ["europe-west1", "us-central1"])
    assert names == [
        "door-backend",
        "door-urlmap",
        "door-cert",
        "door-https",
        "door-ip",
        "door-https-rule",
        "door-armor",
        "door-neg-europe-west1",
        "door-neg-us-central1",
        "door-proxy-only-europe-west1",
        "door-proxy-only-us-central1",
    ]
    armor = ArmorSettings(enabled=True)
    external = build(
        lambda: FrontDoorArgs(
            backends=backends({"europe-west1": "a", "us-central1": "b"}),
            settings=FrontDoorSettings(domains=["llm.example.com"], armor=armor),
        )
    )
    internal = build(_internal)
    used = {x.name for r in (external, internal) for x in r.resources if x.custom}
    assert used == set(names) - {"door-proxy-only-us-central1"}  # the internal scheme takes one region


def test_the_iap_secret_is_read_through_the_front_doors_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """frontdoor/__init__.py:425 (seed 111, the invoke's `parent=` dropped survived): given an explicit provider
    (another project's credentials), the Secret Manager read goes through it like the component's resources, not
    through the default provider."""
    import pulumi
    import pulumi_gcp as gcp
    from cloudrun_gpu.frontdoor import SECRET_VERSION_TOKEN, FrontDoor
    from pulumi.runtime import MockCallArgs

    from stack.render import RecordingMocks

    from .conftest import render
    from .test_frontdoor import CLIENT_ID, SECRET_REF, backends

    providers: list[str] = []
    original = RecordingMocks.call

    def call(self: RecordingMocks, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == SECRET_VERSION_TOKEN:
            providers.append(args.provider)
            return {"secretData": "s", "secret": args.args["secret"], "version": "3"}, []
        return original(self, args)

    monkeypatch.setattr(RecordingMocks, "call", call)
    iap = IapSettings(enabled=True, oauth2_client_id=CLIENT_ID, oauth2_client_secret_secret=SECRET_REF)

    def program() -> Any:
        other = gcp.Provider("other-project", project="other")
        door = FrontDoor(
            "door",
            FrontDoorArgs(backends=backends(), settings=FrontDoorSettings(domains=["llm.example.com"], iap=iap)),
            opts=pulumi.ResourceOptions(providers={"gcp": other}),
        )
        return door.url

    render(program)
    assert len(providers) == 1 and "other-project" in providers[0], providers


# Written after seed 111's survivors and before seed 121 was drawn: the load balancers' front ends as whole inputs.


def test_the_external_front_end_is_an_ipv4_anycast_address_taking_tcp_443() -> None:
    from .test_frontdoor import GADDR, GRULE, PROXY, URLMAP, backends, build

    r = build(lambda: FrontDoorArgs(backends=backends(), settings=EXTERNAL))
    assert r.one(GADDR).inputs == {
        "ipVersion": "IPV4",
        "description": "The front door's anycast IP",
        "addressType": "EXTERNAL",
    }
    assert r.one(GRULE).inputs == {
        "target": "door-https-id",
        "ipAddress": "projects/test-project/global/addresses/door-ip",
        "portRange": "443",
        "ipProtocol": "TCP",
        "loadBalancingScheme": "EXTERNAL_MANAGED",
    }
    assert r.one(PROXY).inputs == {"sslCertificates": ["door-cert-id"], "urlMap": "door-urlmap-id"}
    assert r.one(URLMAP).inputs == {
        "description": "Every path to the inference backend service",
        "defaultService": "door-backend-id",
    }


def test_the_internal_front_end_is_a_premium_tier_address_in_the_subnet_taking_tcp_443() -> None:
    from .test_frontdoor import ADDR, RBS, RPROXY, RULE, RURLMAP, _internal, build

    r = build(_internal)
    assert r.one(ADDR).inputs == {
        "description": "The front door's internal IP",
        "region": "europe-west1",
        "addressType": "INTERNAL",
        "subnetwork": SUB,
    }
    assert r.one(RULE).inputs == {
        "portRange": "443",
        "ipProtocol": "TCP",
        "network": NET,
        "loadBalancingScheme": "INTERNAL_MANAGED",
        "target": "door-https-id",
        "ipAddress": "door-ip-id",
        "region": "europe-west1",
        "subnetwork": SUB,
        "networkTier": "PREMIUM",
    }
    assert r.one(RPROXY).inputs == {
        "sslCertificates": ["projects/p/regions/europe-west1/sslCertificates/llm"],
        "urlMap": "door-urlmap-id",
        "region": "europe-west1",
    }
    assert r.one(RURLMAP).inputs == {
        "description": "Every path to the inference backend service",
        "region": "europe-west1",
        "defaultService": "door-backend-id",
    }
    assert r.one(RBS).inputs == {
        "protocol": "HTTPS",
        "logConfig": {"sampleRate": 1, "enable": True},
        "region": "europe-west1",
        "description": "Cloud Run GPU service behind the internal front door",
        "backends": [{"group": "door-neg-europe-west1-id"}],
        "loadBalancingScheme": "INTERNAL_MANAGED",
    }
