"""Session-5 mutation-strength tests for the cache component, ``cloudrun_gpu/cache/__init__.py`` (seed 101's
survivors): a region that is not text, the connection policy's project, the cache service's CPU allocation, and the
component's registered outputs, each as a user or a Pulumi program sees it (resources under Pulumi mocks)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from cloudrun_gpu.cache import TOKEN, CacheSettings, ResponseCache, ResponseCacheArgs
from cloudrun_gpu.errors import ConfigErrors

from .conftest import render
from .test_cache_component import GPU_URL, NETWORK, POLICY, SERVICE, SUBNET, VALKEY_IP, build
from .test_cache_component import memorystore_endpoints as memorystore_endpoints  # autouse: the endpoint IP


def args(**kw: Any) -> ResponseCacheArgs:
    return ResponseCacheArgs(
        **{
            "region": "europe-west1",
            "image": "europe-west1-docker.pkg.dev/p/llm-serving/llm-cache:1",
            "upstream_url": GPU_URL,
            "upstream_service_name": "llm",
            "network": NETWORK,
            "subnetwork": SUBNET,
            "settings": CacheSettings(enabled=True),
            **kw,
        }
    )


@pytest.mark.parametrize("region", [None, 5, ["europe-west1"]])
def test_a_region_that_is_not_text_is_refused_as_a_region_name(region: Any) -> None:
    """cache/__init__.py:144 (seed 101, `skip=["settings", "region"]` dropped survived): the region has its own
    rule, so a region from another Pulumi language that is not text reads as the region rule (with its example),
    together with the other argument problems, not as a bare type error."""
    with pytest.raises(ConfigErrors) as err:
        args(region=region, settings=CacheSettings(enabled=False))
    assert [vars(e) for e in err.value.errors] == [
        {
            "field": "ResponseCacheArgs.region",
            "value": region,
            "problem": "is not a region name",
            "fix": "use e.g. europe-west1",
            "allowed": "",
        },
        {
            "field": "ResponseCacheArgs.settings.enabled",
            "value": False,
            "problem": "is false, so there is nothing to create",
            "fix": "set settings.enabled true, or do not construct ResponseCache",
            "allowed": "",
        },
    ]


def test_an_explicit_project_holds_the_memorystore_connection_policy_too() -> None:
    """cache/__init__.py:262 (seed 101, the policy's `project=` dropped survived): with an explicit project the
    policy goes there like the instance, not into the provider's project."""
    r = build(project="svc-project")
    assert r.one(POLICY).inputs["project"] == "svc-project"
    assert r.one(SERVICE).inputs["project"] == "svc-project"


def test_the_cache_service_gets_cpu_only_while_it_serves() -> None:
    """cache/__init__.py:366 (seed 101, `cpu_idle=True` dropped survived): once `resources` is set, CPU stays
    allocated between requests unless cpu_idle is set true explicitly (pulumi_gcp 10.2.0,
    cloudrunv2 ServiceTemplateContainerResourcesArgs.cpu_idle: "if `resources` is set, this field must be explicitly
    set to true to preserve the default behavior"): an idle cache would be billed as always-on."""
    container = build().one(SERVICE).inputs["template"]["containers"][0]
    assert container["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"}, "cpuIdle": True, "startupCpuBoost": True}


def test_the_component_registers_its_url_valkey_host_and_identity() -> None:
    """cache/__init__.py:404 (seed 101, `service_account_member` dropped from register_outputs survived): a Pulumi
    program in another language reads the component's outputs from what it registers."""
    from .test_strength_outputs import _recording_outputs

    captured: list[tuple[str, str, Any]] = []

    def program() -> Any:
        cache = ResponseCache("cache", args())
        (outputs,) = [o for t, _, o in captured if t == TOKEN]
        return {"registered": outputs, "url": cache.service.uri}

    with _recording_outputs(captured):
        r = render(program)
    member = "serviceAccount:llm-cache@test-project.iam.gserviceaccount.com"
    assert r.one(SERVICE).inputs["template"]["serviceAccount"] == member.removeprefix("serviceAccount:")
    assert r.value["registered"] == {"url": r.value["url"], "valkey_host": VALKEY_IP, "service_account_member": member}


# Seed 111's survivors (cache/__init__.py, blind to the tests above).


def test_the_cache_service_as_registered() -> None:
    """cache/__init__.py:343, :347, :348 (seed 111: the service's `labels=`, `scaling=` and one of its instance
    counts dropped survived): the whole service but its environment (pinned by test_cache_component.py), with
    labels and scaling that are not the defaults so each must come from the settings."""
    settings = CacheSettings(enabled=True, min_instances=1, max_instances=3)
    svc = build(labels={"team": "ml"}, settings=settings).one(SERVICE).inputs
    template = dict(svc["template"])
    container = dict(template["containers"][0])
    assert container.pop("envs")
    assert {**svc, "template": {**template, "containers": [container]}} == {
        "deletionProtection": False,
        "ingress": "INGRESS_TRAFFIC_ALL",
        "invokerIamDisabled": False,
        "labels": {"component": "llm-cache", "team": "ml"},
        "location": "europe-west1",
        "name": "llm-cache",
        "template": {
            "containers": [
                {
                    "image": "europe-west1-docker.pkg.dev/p/llm-serving/llm-cache:1",
                    "name": "cache",
                    "ports": {"containerPort": 8080, "name": "http1"},
                    "resources": {"cpuIdle": True, "limits": {"cpu": "1", "memory": "2Gi"}, "startupCpuBoost": True},
                    "startupProbe": {
                        "failureThreshold": 30,
                        "httpGet": {"path": "/cache/ready", "port": 8080},
                        "initialDelaySeconds": 0,
                        "periodSeconds": 2,
                        "timeoutSeconds": 1,
                    },
                }
            ],
            "maxInstanceRequestConcurrency": 40,
            "scaling": {"maxInstanceCount": 3, "minInstanceCount": 1},
            "serviceAccount": "llm-cache@test-project.iam.gserviceaccount.com",
            "vpcAccess": {
                "egress": "PRIVATE_RANGES_ONLY",
                "networkInterfaces": [{"network": NETWORK, "subnetwork": SUBNET}],
            },
        },
    }


def test_the_caches_identity_is_named_and_lives_in_the_explicit_project() -> None:
    """cache/__init__.py:162 (seed 111, a keyword of the identity's arguments dropped survived): the cache's own
    service account, in the project the cache was given, says what it is in the console."""
    from .test_cache_component import ACCOUNT

    account = build(project="svc-project").one(ACCOUNT).inputs
    assert (account["accountId"], account["displayName"], account["project"]) == (
        "llm-cache",
        "LLM response cache",
        "svc-project",
    )


@pytest.mark.parametrize(("invokers", "warned"), [(["allUsers"], True), (["user:a@example.com"], False), ([], False)])
def test_a_public_cache_is_warned_about_and_only_then(
    monkeypatch: pytest.MonkeyPatch, invokers: list[str], warned: bool
) -> None:
    """cache/__init__.py:397, :398 (seed 111, the condition negated and the warning's words changed survived): the
    warning a `pulumi up` prints when anyone may call the cache (and so the model behind it)."""
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warnings.append(msg))
    build(settings=CacheSettings(enabled=True, invokers=invokers))
    expected = "cache: invokers include a public member; anyone can call the cache and, through it, the model"
    assert warnings == ([expected] if warned else [])


def test_every_cache_resource_goes_into_the_explicit_project() -> None:
    """cache/__init__.py:392 (seed 111, an invoker binding's `project=` dropped survived): with an explicit project
    every resource of the cache goes there, not into the provider's project."""
    r = build(project="svc-project", settings=CacheSettings(enabled=True, invokers=["user:a@example.com"]))
    projects = {x.name: x.inputs.get("project") for x in r.resources if x.custom}
    assert len(projects) == 9 and "cache-invoker-user:a@example.com" in projects
    assert projects == dict.fromkeys(projects, "svc-project")


# Written after seed 111's survivors and before seed 121 was drawn: the cache's other resources as whole inputs.


def test_the_memorystore_policy_instance_and_upstream_grant_as_registered() -> None:
    from .test_cache_component import IAM, INSTANCE

    r = build(labels={"team": "ml"})
    assert r.one(POLICY).inputs == {
        "description": "Lets Memorystore create the Valkey endpoint of the LLM response cache in this network",
        "location": "europe-west1",
        "name": "llm-cache-memorystore",
        "network": NETWORK,
        "pscConfig": {"subnetworks": [SUBNET]},
        "serviceClass": "gcp-memorystore",
    }
    assert r.one(INSTANCE).inputs == {
        "authorizationMode": "IAM_AUTH",
        "deletionProtectionEnabled": False,
        "desiredAutoCreatedEndpoints": [{"network": NETWORK, "projectId": "net-project"}],
        "engineConfigs": {"maxmemory-policy": "volatile-lru"},
        "engineVersion": "VALKEY_8_0",
        "instanceId": "llm-cache-valkey",
        "labels": {"component": "llm-cache", "team": "ml"},
        "location": "europe-west1",
        "mode": "CLUSTER_DISABLED",
        "nodeType": "STANDARD_SMALL",
        "replicaCount": 0,
        "shardCount": 1,
        "transitEncryptionMode": "SERVER_AUTHENTICATION",
    }
    assert r.one(IAM, "cache-upstream-invoker").inputs == {
        "role": "roles/run.invoker",
        "member": "serviceAccount:llm-cache@test-project.iam.gserviceaccount.com",
        "location": "europe-west1",
        "name": "llm",
    }
