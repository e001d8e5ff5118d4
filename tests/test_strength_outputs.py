"""Outputs pinned (issue 23): every stack output and every component's ``register_outputs``, for every committed
stack, checked against the resources the program registered — never against a recording of itself.

A user reads these outputs (``pulumi stack output call``, ``frontdoor_ip`` for the DNS record, ``model_bucket`` for
the upload); a mutant that drops one, swaps two regions' values or leaves the front door's URL ``None`` renders the
same resources and so survives every resource test. Each expectation here comes from another place: the recorded
resource inputs (what ``pulumi up`` would send), the mocks' documented computed outputs (stack/render.py), or the
stack file.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from stack.compose import build_stack
from stack.config import ValidatedStack, read_config
from stack.render import MOCK_PROJECT_NUMBER, Recorded

from .conftest import ROOT, render, stack_flat

STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
SERVICE = "gcp:cloudrunv2/service:Service"
BASE_KEYS = {
    "call",
    "url",
    "service_name",
    "service_account",
    "concurrency",
    "startup_probe",
    "engine_args",
    "image",
    "registry_uri",
    "model_bucket",
    "psc_ip",
    "enabled_apis",
}
COMPONENT_KEYS = {
    "ProjectApis": {"services"},
    "RuntimeIdentity": {"email", "member"},
    "BuildIdentity": {"email", "member"},
    "InferenceNetwork": {"network_id", "subnetwork_id", "psc_ip", "tags"},
    "ModelRegistry": {"registry_uri", "remote_uris"},
    "ModelBucket": {"bucket_name", "url"},
    "ImageBuild": {"digest", "image_ref"},
    "GpuInferenceService": {"url", "service_name", "service_account_email", "concurrency", "startup_probe"},
    "FrontDoor": {"ip_address", "url", "backend_service_id"},
    "ResponseCache": {"url", "valkey_host", "service_account_member"},
}
"""What each component registers: a dropped or renamed output is a change every consumer sees."""
MOCK_EMPTY = {("ImageBuild", "digest"), ("ResponseCache", "valkey_host")}
"""Outputs only the provider computes (a pushed digest, Memorystore's endpoint): the mocks leave them empty."""


@dataclass
class Run:
    vs: ValidatedStack
    outputs: dict[str, Any]
    components: dict[tuple[str, str], dict[str, Any]]
    resources: list[Recorded]

    def service(self, name: str, region: str) -> Recorded:
        """The Cloud Run service ``name`` in ``region`` (each region's service has the stack's service name)."""
        found = [
            r
            for r in self.resources
            if r.type == SERVICE and (r.inputs.get("name"), r.inputs["location"]) == (name, region)
        ]
        assert len(found) == 1, (name, region)
        return found[0]

    def component(self, kind: str, name: str) -> dict[str, Any]:
        return self.components[(kind, name)]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [v for (k, _), v in self.components.items() if k == kind]


@contextmanager
def _recording_outputs(into: list[tuple[str, str, Any]]) -> Iterator[None]:
    """Record every component's ``register_outputs`` call (the mocks' RegisterResourceOutputs drops them)."""
    original = pulumi.ComponentResource.register_outputs

    def record(self: pulumi.ComponentResource, outputs: Any) -> None:
        into.append((str(getattr(self, "_type", "")), str(getattr(self, "_name", "")), outputs))
        original(self, outputs)

    pulumi.ComponentResource.register_outputs = record  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.ComponentResource.register_outputs = original  # type: ignore[method-assign]


def run_stack(stack: str, **changes: Any) -> Run:
    vs = read_config(stack_flat(stack, **changes), ROOT, plan_only=True)
    captured: list[tuple[str, str, Any]] = []

    def build() -> Any:
        outputs = build_stack(vs)
        comps = {f"{t}|{n}": pulumi.Output.from_input(o) for t, n, o in captured if t.startswith("cloudrun-gpu:")}
        return {"stack": outputs, "components": comps}

    with _recording_outputs(captured):
        r = render(build, stack=stack)
    components = {}
    for key, value in r.value["components"].items():
        typ, name = key.split("|", 1)
        components[(typ.rsplit(":", 1)[1], name)] = value
    return Run(vs, r.value["stack"], components, r.resources)


_RUNS: dict[str, Run] = {}


def run_of(stack: str) -> Run:
    if stack not in _RUNS:
        _RUNS[stack] = run_stack(stack)
    return _RUNS[stack]


def _walk_none(value: Any, path: str) -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _walk_none(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _walk_none(v, f"{path}[{i}]")]
    return []


def _run_url(name: str, region: str) -> str:
    """The URL the mocks give a Cloud Run service (stack/render.py), i.e. what the service's ``uri`` resolves to."""
    return f"https://{name}-{MOCK_PROJECT_NUMBER}.{region}.run.app"


def _call_parts(call: str) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of the ``call`` output, parsed as a shell would."""
    words = shlex.split(call.replace("$(gcloud auth print-identity-token)", "TOKEN"))
    assert words[:2] == ["curl", "-sS"], call
    assert "Authorization: Bearer TOKEN" in words and "Content-Type: application/json" in words, call
    url = next(w for w in words if w.startswith("https://"))
    return url, json.loads(words[words.index("-d") + 1])


# --- the stack outputs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_exports_exactly_its_outputs_and_none_is_none(stack: str) -> None:
    r = run_of(stack)
    cfg = r.vs.config
    expected = set(BASE_KEYS) | {"build_service_account"}
    if cfg.cache is not None:
        expected |= {"cache_url", "cache_valkey_host"}
    if cfg.frontdoor is not None:
        expected |= {"frontdoor_url", "frontdoor_ip", "frontdoor_certificate"}
    if len(r.vs.regional) > 1:
        expected.add("regions")
    assert set(r.outputs) == expected
    assert _walk_none(r.outputs, "outputs") == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_primary_region_outputs_are_what_its_resources_say(stack: str) -> None:
    r = run_of(stack)
    cfg = r.vs.config
    svc = r.service(cfg.service.name, cfg.region)
    template = svc.inputs["template"]
    container = template["containers"][0]
    assert svc.inputs["location"] == cfg.region
    assert r.outputs["url"] == _run_url(cfg.service.name, cfg.region)
    assert r.outputs["service_name"] == cfg.service.name
    assert r.outputs["service_account"] == template["serviceAccount"]
    assert r.outputs["service_account"].endswith(f"@{cfg.project}.iam.gserviceaccount.com")
    assert r.outputs["concurrency"] == template["maxInstanceRequestConcurrency"] > 0
    probe = container["startupProbe"]
    assert r.outputs["startup_probe"] == {
        "path": probe["httpGet"]["path"],
        "initial_delay_seconds": probe["initialDelaySeconds"],
        "period_seconds": probe["periodSeconds"],
        "timeout_seconds": probe["timeoutSeconds"],
        "failure_threshold": probe["failureThreshold"],
    }
    assert r.outputs["image"] == container["image"]
    args = container.get("args", [])
    assert r.outputs["engine_args"] == list(r.vs.sizing.engine_args)
    if r.outputs["engine_args"]:  # engines configured by flags run exactly those flags
        assert args[-len(r.outputs["engine_args"]) :] == r.outputs["engine_args"] or args == r.outputs["engine_args"]
    # every lookup by the primary region: a multi-region stack registers one of each per region, in any order
    (bucket,) = [b for b in r.resources if b.type == "gcp:storage/bucket:Bucket" and b.inputs["location"] == cfg.region]
    assert r.outputs["model_bucket"] == bucket.inputs["name"]
    assert bucket.inputs["name"].startswith(f"{cfg.service.name}-")
    (repo,) = [
        x
        for x in r.resources
        if x.type == "gcp:artifactregistry/repository:Repository"
        and x.inputs["mode"] == "STANDARD_REPOSITORY"
        and x.inputs["location"] == cfg.region
    ]
    assert r.outputs["registry_uri"] == f"{cfg.region}-docker.pkg.dev/{cfg.project}/{repo.inputs['repositoryId']}"
    assert r.outputs["image"].startswith(r.outputs["registry_uri"] + "/")
    network = r.service(cfg.service.name, cfg.region).inputs["template"]["vpcAccess"]["networkInterfaces"][0]
    (psc,) = [
        a
        for a in r.resources
        if a.type == "gcp:compute/globalAddress:GlobalAddress"
        and a.inputs.get("purpose") == "PRIVATE_SERVICE_CONNECT"
        and a.inputs["network"] == network["network"]
    ]
    assert r.outputs["psc_ip"] == psc.inputs["address"]
    enabled = [x.inputs["service"] for x in r.resources if x.type == "gcp:projects/service:Service"]
    assert sorted(r.outputs["enabled_apis"]) == sorted(enabled)
    assert len(set(enabled)) == len(enabled)
    builder = [
        a.inputs["accountId"]
        for a in r.resources
        if a.type == "gcp:serviceaccount/account:Account" and a.name == f"{cfg.service.name}-build-sa"
    ]
    assert r.outputs["build_service_account"] == f"{builder[0]}@{cfg.project}.iam.gserviceaccount.com"


@pytest.mark.parametrize("stack", STACKS)
def test_the_call_output_reaches_the_front_most_url_with_the_served_model(stack: str) -> None:
    """``call`` goes through the front door when there is one, else the cache, else the GPU service; the model it
    names is one the engine serves (it appears in the service's container definition)."""
    r = run_of(stack)
    url, body = _call_parts(r.outputs["call"])
    front = r.outputs.get("frontdoor_url") or r.outputs.get("cache_url") or r.outputs["url"]
    assert url.startswith(front + "/")
    assert url.removeprefix(front) in {"/v1/chat/completions", "/api/chat"}
    assert body["messages"] == [{"role": "user", "content": "Say hello."}] and body["max_tokens"] == 32
    served = json.dumps(r.service(r.vs.config.service.name, r.vs.config.region).inputs["template"]["containers"])
    assert body["model"] and (body["model"] in served or r.vs.config.engine.name.value == "ollama")


def test_the_front_door_url_is_the_https_url_of_its_domain() -> None:
    """The front door's public URL is ``https://`` + the first domain (never None, never the IP), and the
    certificate output names the managed certificate that covers the domains."""
    domains = ["llm.example.com", "api.example.com"]
    r = run_stack("multi", frontdoor={"domains": domains, "armor": {"enabled": True}})
    assert r.outputs["frontdoor_url"] == "https://llm.example.com"
    assert r.component("FrontDoor", "llm-multi-frontdoor")["url"] == "https://llm.example.com"
    assert _call_parts(r.outputs["call"])[0] == "https://llm.example.com/v1/chat/completions"
    cert = [x for x in r.resources if x.type == "gcp:compute/managedSslCertificate:ManagedSslCertificate"]
    assert len(cert) == 1 and cert[0].inputs["managed"]["domains"] == domains
    assert r.outputs["frontdoor_certificate"] == cert[0].inputs.get("name", cert[0].name)
    addr = [x for x in r.resources if x.type == "gcp:compute/globalAddress:GlobalAddress" and "frontdoor" in x.name]
    assert len(addr) == 1
    assert r.outputs["frontdoor_ip"] == "203.0.113.10"  # the mocks' computed address (stack/render.py)
    assert r.component("FrontDoor", "llm-multi-frontdoor")["ip_address"] == r.outputs["frontdoor_ip"]


def test_the_committed_multi_stack_front_door_url_is_its_placeholder_domain() -> None:
    r = run_of("multi")
    assert r.vs.config.frontdoor is not None
    assert r.outputs["frontdoor_url"] == f"https://{r.vs.config.frontdoor.domains[0]}"
    assert r.outputs["frontdoor_url"] != f"https://{r.outputs['frontdoor_ip']}"


def test_the_cache_outputs_are_the_cache_service() -> None:
    r = run_of("prod")
    assert r.vs.config.cache is not None
    cache = [x for x in r.resources if x.type == SERVICE and x.inputs["name"] != r.vs.config.service.name]
    assert len(cache) == 1
    name, region = cache[0].inputs["name"], cache[0].inputs["location"]
    assert r.outputs["cache_url"] == _run_url(name, region) != r.outputs["url"]
    comp = r.component("ResponseCache", "llm-cache")
    assert comp["url"] == r.outputs["cache_url"]
    assert comp["valkey_host"] == r.outputs["cache_valkey_host"]
    assert comp["service_account_member"] == f"serviceAccount:{cache[0].inputs['template']['serviceAccount']}"


def test_the_regions_output_maps_each_region_to_its_own_resources() -> None:
    r = run_of("multi")
    assert set(r.outputs["regions"]) == {v.config.region for v in r.vs.regional}
    for v in r.vs.regional:
        out = r.outputs["regions"][v.config.region]
        assert set(out) == {"url", "gpu", "image", "model_bucket", "concurrency"}
        svc = r.service(v.config.service.name, v.config.region)
        assert out["url"] == _run_url(v.config.service.name, v.config.region)
        assert out["gpu"] == v.config.gpu.type.value == svc.inputs["template"]["nodeSelector"]["accelerator"]
        assert out["image"] == svc.inputs["template"]["containers"][0]["image"]
        assert out["image"].startswith(f"{v.config.region}-docker.pkg.dev/")
        assert out["concurrency"] == svc.inputs["template"]["maxInstanceRequestConcurrency"]
        bucket = [
            b for b in r.resources if b.type == "gcp:storage/bucket:Bucket" and b.inputs["name"] == out["model_bucket"]
        ]
        assert len(bucket) == 1 and bucket[0].inputs["location"] == v.config.region
    primary = r.outputs["regions"][r.vs.config.region]
    assert (primary["url"], primary["image"], primary["model_bucket"]) == (
        r.outputs["url"],
        r.outputs["image"],
        r.outputs["model_bucket"],
    )


# --- each component's register_outputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_component_registers_its_outputs_and_they_agree_with_its_resources(stack: str) -> None:
    r = run_of(stack)
    registered = {(rec.type.rsplit(":", 1)[1], rec.name) for rec in r.resources if not rec.custom}
    registered = {k for k in registered if k[0] in COMPONENT_KEYS}
    assert registered == set(r.components), "a component that registers no outputs"
    for (kind, name), out in r.components.items():
        assert set(out) == COMPONENT_KEYS[kind], (kind, name)
        for key, value in out.items():
            if (kind, key) not in MOCK_EMPTY:
                assert value not in (None, "", [], {}), (kind, name, key)
    for ident in [*r.of_kind("RuntimeIdentity"), *r.of_kind("BuildIdentity")]:
        assert ident["member"] == f"serviceAccount:{ident['email']}"
        assert ident["email"].endswith(f"@{r.vs.config.project}.iam.gserviceaccount.com")
    for bucket in r.of_kind("ModelBucket"):
        assert bucket["url"] == f"gs://{bucket['bucket_name']}"
    apis = r.of_kind("ProjectApis")
    assert len(apis) == 1 and apis[0]["services"] == r.outputs["enabled_apis"]
    for v in r.vs.regional:
        cfg = v.config
        name = f"{cfg.service.name}{v.suffix}"
        service = r.component("GpuInferenceService", name)
        if v is r.vs.regional[0]:
            assert service["url"] == r.outputs["url"] and service["startup_probe"] == r.outputs["startup_probe"]
            assert service["service_name"] == r.outputs["service_name"]
            assert service["service_account_email"] == r.outputs["service_account"]
            assert service["concurrency"] == r.outputs["concurrency"]
        assert service["url"] == _run_url(cfg.service.name, cfg.region)
        net = r.component("InferenceNetwork", f"{cfg.service.name}-net{v.suffix}")
        assert net["network_id"].startswith(f"projects/{cfg.project}/global/networks/")
        assert net["subnetwork_id"].startswith(f"projects/{cfg.project}/regions/{cfg.region}/subnetworks/")
        vpc = r.service(cfg.service.name, cfg.region).inputs["template"]["vpcAccess"]["networkInterfaces"][0]
        assert (vpc["network"], vpc["subnetwork"], vpc["tags"]) == (
            net["network_id"],
            net["subnetwork_id"],
            net["tags"],
        )
        registry = r.component("ModelRegistry", f"{cfg.service.name}-registry{v.suffix}")
        assert registry["registry_uri"].startswith(f"{cfg.region}-docker.pkg.dev/{cfg.project}/")
        for upstream, uri in registry["remote_uris"].items():
            assert uri == f"{registry['registry_uri']}-{upstream}"
    for door in r.of_kind("FrontDoor"):
        assert door["url"] == r.outputs["frontdoor_url"] and door["ip_address"] == r.outputs["frontdoor_ip"]
        backend = [x for x in r.resources if x.type == "gcp:compute/backendService:BackendService"]
        assert len(backend) == 1 and door["backend_service_id"] == f"{backend[0].name}-id"


@pytest.mark.parametrize(("length", "regional"), [(3, True), (29, True), (30, False), (41, False)])
def test_a_multi_region_bucket_prefix_takes_the_region_only_while_the_component_accepts_it(
    length: int, regional: bool
) -> None:
    """The second region's bucket prefix is ``<prefix>-us-central1`` while ``BucketSettings.name_prefix`` (3-41
    characters) accepts it, else the prefix alone (the random suffix keeps the two apart). Before, a 30-41
    character prefix stopped the program with an error naming ``BucketSettings.name_prefix``, a field the user
    never wrote; every length the stack key allows now plans. Bucket names stay within 63 characters
    (https://cloud.google.com/storage/docs/buckets#naming)."""
    prefix = "m" * length
    r = run_stack("multi", bucket={"name_prefix": prefix})
    names = {b.inputs["location"]: b.inputs["name"] for b in r.resources if b.type == "gcp:storage/bucket:Bucket"}
    assert names["europe-west1"] == f"{prefix}-5eed1e55"  # the first region keeps its name
    second = names["us-central1"]
    assert second == (f"{prefix}-us-central1-5eed1e55" if regional else f"{prefix}-5eed1e55")
    assert len(second) <= 63 and r.outputs["regions"]["us-central1"]["model_bucket"] == second
