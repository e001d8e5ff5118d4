"""S1 in the stack: ``cloudrun-gpu:cache`` composes the response cache in front of the GPU service.

The committed prod stack enables it; the real program is rendered under mocks (``plan_json``) and the tests
read the recorded inputs and the dependencies the SDK sent, so a cache wired to the wrong service, network or
image, or registered before what it needs, fails here. The component itself is tested in
``tests/test_cache_component.py``; the service's behaviour with real parts in ``tests/test_cache.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigError, ConfigErrors

from stack import cloudbuild as cb
from stack.cli import plan_json
from stack.compose import CACHE_APIS, build_stack
from stack.config import read_config, read_stack_file, stack_file

from .conftest import ROOT, render, stack_flat

STACK = "prod"


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_json(STACK, ROOT)


def _by_name(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"]}


def _flat(**changes: Any) -> dict[str, str]:
    return stack_flat(STACK, **changes)


def _cache(**settings: Any) -> dict[str, Any]:
    base: dict[str, Any] = json.loads(read_stack_file(stack_file(STACK, ROOT))["cloudrun-gpu:cache"])
    return {**base, **settings}


def _errors(flat: dict[str, str], *, plan_only: bool = True) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as err:
        read_config(flat, base_dir=ROOT, plan_only=plan_only)
    assert all(e.fix for e in err.value.errors)
    return err.value.errors


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in service["inputs"]["template"]["containers"][0]["envs"]}


# --- the committed stack ----------------------------------------------------------------------------------


def test_the_cache_fronts_the_prod_service_through_its_vpc(plan: dict[str, Any]) -> None:
    res = _by_name(plan)
    gpu, cache = res["llm-svc"], res["llm-cache-svc"]
    env = _env(cache)
    # misses go to this stack's GPU service, signed with the cache's own identity, which may invoke it
    assert env["CACHE_UPSTREAM_URL"] == "https://llm-123456789012.europe-west4.run.app"
    assert env["CACHE_UPSTREAM_AUTH"] == "google-id-token"
    assert env["CACHE_THRESHOLD"] == "0.95" and env["CACHE_TTL_S"] == "3600"
    invoker = res["llm-cache-upstream-invoker"]["inputs"]
    assert invoker == {
        "role": "roles/run.invoker",
        "member": "serviceAccount:llm-cache@your-project-id.iam.gserviceaccount.com",
        "location": "europe-west4",
        "project": "your-project-id",
        "name": gpu["inputs"]["name"],
    }
    assert cache["inputs"]["template"]["serviceAccount"] == "llm-cache@your-project-id.iam.gserviceaccount.com"
    # the cache is a CPU service: no GPU, no node selector
    assert "nodeSelector" not in cache["inputs"]["template"]
    # the same VPC and subnet as the GPU service: the Valkey endpoint is a private IP there
    nic = cache["inputs"]["template"]["vpcAccess"]["networkInterfaces"][0]
    assert nic == {
        k: v for k, v in gpu["inputs"]["template"]["vpcAccess"]["networkInterfaces"][0].items() if k != "tags"
    }
    valkey = res["llm-cache-valkey"]["inputs"]
    assert valkey["desiredAutoCreatedEndpoints"] == [{"projectId": "your-project-id", "network": nic["network"]}]
    assert valkey["location"] == gpu["inputs"]["location"] == "europe-west4"
    # the service waits for the GPU service, the network and its own image; prod protects both from deletion
    assert {"llm-svc", "llm-net-subnet", "llm-cache-image-submit"} <= set(cache["dependencies"])
    assert cache["inputs"]["deletionProtection"] is True and valkey["deletionProtectionEnabled"] is True


def test_the_cache_image_is_built_from_its_own_context_by_its_own_identity(plan: dict[str, Any]) -> None:
    res = _by_name(plan)
    submit = res["llm-cache-image-submit"]["inputs"]
    config = json.loads(submit["environment"]["CLOUDBUILD_CONFIG"])
    uri = config["images"][0]
    assert re.fullmatch(r"europe-west4-docker\.pkg\.dev/your-project-id/llm-serving/llm-cache:[0-9a-f]{12}", uri)
    assert config["steps"][0]["args"] == [
        *("build", "-f", "container/cache/Dockerfile", "-t", uri),
        *("--build-arg", f"PYTHON_IMAGE=docker.io/library/{cb.CACHE_PYTHON_IMAGE}"),
        "container/cache",
    ]
    assert "substitutions" not in config  # MUST_MATCH: none used, none defined
    uploaded = submit["environment"]["SOURCE_FILES"].split("\n")
    assert uploaded == cb.cache_files() and all(f.startswith("container/cache/") for f in uploaded)
    assert "container/cache/Dockerfile" in uploaded and "container/cache/semcache/app.py" in uploaded
    assert submit["environment"]["BUILD_SERVICE_ACCOUNT"].endswith(
        "/llm-cache-build@your-project-id.iam.gserviceaccount.com"
    )
    # the build identity pushes to the stack's registry and reads the uploaded source, nothing more
    push = res["llm-cache-build-push"]["inputs"]
    assert (push["role"], push["repository"]) == ("roles/artifactregistry.writer", "llm-serving")
    read = res["llm-cache-build-bucket"]["inputs"]
    assert read["role"] == "roles/storage.objectViewer"
    # the service runs the image this build pushed
    assert res["llm-cache-svc"]["inputs"]["template"]["containers"][0]["image"].startswith(uri.split(":")[0])


def test_the_dockerfile_default_base_is_the_one_the_build_names() -> None:
    dockerfile = (ROOT / "container" / "cache" / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE={cb.CACHE_PYTHON_IMAGE}\n" in dockerfile


def test_the_cache_tag_follows_its_files_and_not_the_engines(tmp_path: Path) -> None:
    vs = read_config(_flat(), base_dir=ROOT, plan_only=True)
    ctx = tmp_path / "container" / "cache"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM x\n")
    (ctx / "README.md").write_text("docs only\n")
    first = cb.cache_image_uri(vs, ctx)
    assert cb.cache_files(ctx) == ["container/cache/Dockerfile"]  # docs are not uploaded
    (ctx / "README.md").write_text("changed docs\n")
    assert cb.cache_image_uri(vs, ctx) == first
    (ctx / "app.py").write_text("print(1)\n")
    assert cb.cache_image_uri(vs, ctx) != first


def test_the_cache_turns_on_its_apis_first(plan: dict[str, Any]) -> None:
    res = _by_name(plan)
    enabled = {r["inputs"]["service"] for r in plan["resources"] if r["type"] == "gcp:projects/service:Service"}
    assert set(CACHE_APIS) <= enabled
    for name in ("llm-cache-valkey", "llm-cache-memorystore-policy", "llm-cache-svc"):
        assert "llm-apis-memorystore" in res[name]["dependencies"], name
        assert "llm-apis-networkconnectivity" in res[name]["dependencies"], name


def test_the_call_output_goes_through_the_cache() -> None:
    vs = read_config(_flat(**{"service": {"name": "llm", "invokers": ["user:a@example.com"]}}), ROOT, plan_only=True)
    outputs = render(lambda: build_stack(vs), stack="prod").value
    assert outputs["cache_url"] == "https://llm-cache-123456789012.europe-west4.run.app"
    assert outputs["url"] == "https://llm-123456789012.europe-west4.run.app"  # the GPU service, for operators
    assert outputs["call"].startswith('curl -sS -H "Authorization: Bearer $(gcloud auth print-identity-token)"')
    assert "https://llm-cache-123456789012.europe-west4.run.app/v1/chat/completions" in outputs["call"]


# --- stacks without it, and what is refused ------------------------------------------------------------------


def test_a_stack_without_the_section_or_switched_off_has_no_cache() -> None:
    for flat in (_flat(cache=None), _flat(cache=_cache(enabled=False))):
        vs = read_config(flat, base_dir=ROOT, plan_only=True)
        assert vs.config.cache is None
    plan = plan_json("dev", ROOT)
    assert not [r for r in plan["resources"] if "cache" in r["name"]]


def test_a_misspelt_cache_key_gets_did_you_mean() -> None:
    (err,) = _errors(_flat(cache=_cache(treshold=0.9)))
    assert err.field == "cloudrun-gpu:cache.treshold"
    assert "threshold" in err.fix


def test_a_threshold_out_of_range_names_the_key() -> None:
    (err,) = _errors(_flat(cache=_cache(threshold=1.5)))
    assert (err.field, err.value) == ("cloudrun-gpu:cache.threshold", 1.5)


def test_the_cache_behind_a_front_door_is_refused() -> None:
    door = {"domains": ["llm.example.com"]}
    errors = _errors(
        _flat(frontdoor=door, service={"name": "llm", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"})
    )
    (err,) = [e for e in errors if e.field == "cloudrun-gpu:cache.enabled"]
    assert "front door" in err.problem and "cache.enabled: false" in err.fix


def test_an_internal_only_gpu_service_needs_all_traffic_egress_from_the_cache() -> None:
    internal = {"name": "llm", "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"}
    (err,) = _errors(_flat(service=internal))
    assert (err.field, err.value, err.allowed) == (
        "cloudrun-gpu:cache.vpc_egress",
        "PRIVATE_RANGES_ONLY",
        "ALL_TRAFFIC",
    )
    vs = read_config(_flat(service=internal, cache=_cache(vpc_egress="ALL_TRAFFIC")), base_dir=ROOT, plan_only=True)
    assert vs.config.cache is not None and vs.config.cache.vpc_egress == "ALL_TRAFFIC"


def test_cache_invokers_warn_in_plan_and_stop_pulumi_up() -> None:
    vs = read_config(_flat(), base_dir=ROOT, plan_only=True)
    assert any("cloudrun-gpu:cache.invokers is empty" in w for w in vs.warnings)
    flat = _flat(**{"gcp:project": "p-123456", "service": {"name": "llm", "invokers": ["user:a@example.com"]}})
    (err,) = _errors(flat, plan_only=False)
    assert err.field == "cloudrun-gpu:cache.invokers"
    account = '"user:$(gcloud config get-value account)"'
    assert err.fix == f"add yourself: pulumi config set --path 'cloudrun-gpu:cache.invokers[0]' {account}"
    ok = read_config({**flat, "cloudrun-gpu:cache": json.dumps(_cache(invokers=["user:a@example.com"]))}, ROOT)
    assert ok.config.cache is not None and ok.config.cache.invokers == ["user:a@example.com"]
