"""Issue 13: one model in several regions behind one load balancer, under mocks.

The committed ``Pulumi.multi.yaml`` (europe-west1 on L4, us-central1 on RTX PRO 6000) is rendered by the real
program; the tests read the recorded inputs and the dependencies the SDK sent with each registration, so a
region that silently read another region's bucket, or a load-balancer link pointing at the wrong resource,
fails here. Single-region stacks must render exactly as before (also ``tests/test_golden.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors

from stack.cli import main, plan_json
from stack.config import (
    PLAN_DOMAIN,
    ValidatedStack,
    continent,
    load_stack,
    read_config,
    read_stack_file,
    stack_file,
)
from stack.render import render_program

from .conftest import ROOT, Rendered, stack_flat

STACK = "multi"
SVC = "gcp:cloudrunv2/service:Service"
NEG = "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup"
BACKEND = "gcp:compute/backendService:BackendService"
URLMAP = "gcp:compute/uRLMap:URLMap"
PROXY = "gcp:compute/targetHttpsProxy:TargetHttpsProxy"
RULE = "gcp:compute/globalForwardingRule:GlobalForwardingRule"
BUCKET = "gcp:storage/bucket:Bucket"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
COMMAND = "command:local:Command"


MODEL_SOURCE = {
    "source": "hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF@0123456789abcdef0123456789abcdef01234567",
    "files": ["*Q4_K_M.gguf"],
}
"""What the README's multi row has the user set (issue 19: the committed stack names no model source), so each
region's staging build is rendered."""


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("multi")
    doc = yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())
    doc["config"]["cloudrun-gpu:model"].update(MODEL_SOURCE)
    (root / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(doc))
    (root / "__main__.py").symlink_to(ROOT / "__main__.py")
    return plan_json(STACK, root)


@pytest.fixture(scope="module")
def vs() -> ValidatedStack:
    return load_stack(STACK, ROOT)


def _by(plan: dict[str, Any], typ: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in plan["resources"] if r["type"] == typ}


def _flat(**changes: Any) -> dict[str, str]:
    return stack_flat(STACK, **changes)


def _section(name: str) -> Any:
    return json.loads(read_stack_file(stack_file(STACK, ROOT))[f"cloudrun-gpu:{name}"])


def _errors(flat: dict[str, str]) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as err:
        read_config(flat, base_dir=ROOT, plan_only=True)
    assert all(e.fix for e in err.value.errors)
    return err.value.errors


def _one(errors: list[ConfigError], field: str) -> ConfigError:
    found = [e for e in errors if e.field == field]
    assert len(found) == 1, [(e.field, e.value, e.problem) for e in errors]
    return found[0]


# --- the committed two-region stack ---------------------------------------------------------------------------


def test_the_multi_stack_uses_two_regions_with_different_gpus_that_exist_there(vs: ValidatedStack) -> None:
    regions = [(r.config.region, r.config.gpu.type.value) for r in vs.regional]
    assert regions == [("europe-west1", "nvidia-l4"), ("us-central1", "nvidia-rtx-pro-6000")]
    for region, gpu in regions:
        assert region in limits.GPU_TYPES[gpu].regions
    # each region is sized for its own GPU: the RTX PRO 6000's minimum shape and its own parallel sequences
    eu, us = vs.regional
    assert (eu.cpu, eu.memory_gib) == (8, 32) and (us.cpu, us.memory_gib) == (20, 80)
    assert eu.sizing.gpu != us.sizing.gpu and eu.concurrency != us.concurrency


def test_every_region_gets_its_own_service_network_bucket_and_builds(plan: dict[str, Any], vs: ValidatedStack) -> None:
    services, subnets, buckets = _by(plan, SVC), _by(plan, SUBNET), _by(plan, BUCKET)
    commands = _by(plan, COMMAND)
    images = set()
    for r in vs.regional:
        cfg, sfx = r.config, r.suffix
        svc = services[f"llm-multi{sfx}-svc"]
        t = svc["inputs"]["template"]
        assert svc["inputs"]["location"] == cfg.region
        assert t["nodeSelector"]["accelerator"] == cfg.gpu.type.value
        assert t["scaling"] == {
            "minInstanceCount": cfg.scaling.min_instances,
            "maxInstanceCount": cfg.scaling.max_instances,
        }
        assert t["maxInstanceRequestConcurrency"] == r.concurrency
        limits_ = t["containers"][0]["resources"]["limits"]
        assert (limits_["cpu"], limits_["memory"]) == (str(r.cpu), f"{r.memory_gib}Gi")
        # the subnet in this region, sized and addressed as the region entry says, is the service's egress
        subnet = subnets[f"llm-multi-net{sfx}-subnet"]
        assert subnet["inputs"]["region"] == cfg.region
        assert subnet["inputs"]["ipCidrRange"] == cfg.network.subnet_cidr
        iface = t["vpcAccess"]["networkInterfaces"][0]
        assert iface["subnetwork"].endswith(f"/regions/{cfg.region}/subnetworks/llm-multi-net{sfx}-subnet")
        # the bucket it reads sits in the region; the service waits for this bucket and no other
        bucket = buckets[f"llm-multi-models{sfx}-bucket"]
        assert bucket["inputs"]["location"] == cfg.region
        # named after its region beyond the first (the first keeps a single-region stack's name)
        assert bucket["inputs"]["name"] == f"llm-multi-models{sfx}-5eed1e55"  # issue 19: <service>-models
        own = {n for n in svc["dependencies"] if n.startswith("llm-multi-models")}
        assert own == {f"llm-multi-models{sfx}-bucket", f"llm-multi-models{sfx}-reader-runtime"} | {
            f"llm-multi-models{sfx}-suffix"
        }
        # the staging build fills this region's bucket; the image is built for this region's GPU, in its registry
        staging = commands[f"llm-multi-model{sfx}-submit"]
        assert f"llm-multi{sfx}-build-bucket" in staging["dependencies"]
        build = commands[f"llm-multi-image{sfx}-submit"]
        image = build["inputs"]["environment"]["IMAGE"]
        assert image.startswith(f"{cfg.region}-docker.pkg.dev/") and t["containers"][0]["image"] == image
        assert f"llm-multi-image{sfx}-submit" in svc["dependencies"]
        assert f"llm-multi-model{sfx}-submit" in svc["dependencies"]
        images.add(image.rsplit(":", 1)[1])
        # PSC endpoint names are global per project: each region's VPC has its own
        rule = _by(plan, RULE)[f"llm-multi-net{sfx}-psc"]
        assert rule["inputs"]["name"] == cfg.network.psc.name
    assert len(images) == 2  # a different engine build per GPU type → a different image tag
    assert [r.config.network.psc.name for r in vs.regional] == [
        "llmmultiapis",
        "llmmultiapis2",
    ]  # issue 19: <service>apis


def test_no_region_reads_weights_from_a_bucket_on_another_continent(plan: dict[str, Any]) -> None:
    buckets = _by(plan, BUCKET)
    for svc in _by(plan, SVC).values():
        read = [buckets[n] for n in svc["dependencies"] if n in buckets]
        assert len(read) == 1, svc["dependencies"]
        here, there = svc["inputs"]["location"], read[0]["inputs"]["location"]
        assert continent(there) == continent(here), (svc["name"], here, there)
    assert continent("europe-west1") != continent("us-central1")  # the check above can tell them apart


def test_a_bucket_location_across_a_continent_is_refused_and_a_multi_region_on_it_allowed() -> None:
    regions = _section("regions")
    regions[0]["bucket_location"] = "US"
    e = _one(_errors(_flat(regions=regions)), "cloudrun-gpu:regions[0].bucket_location")
    assert e.value == "US" and "across a continent" in e.problem and "EU" in e.fix
    regions[0]["bucket_location"] = "EU"
    flat = _flat(regions=regions)
    assert read_config(flat, base_dir=ROOT, plan_only=True).bucket_location == "EU"
    r = Rendered(render_program(ROOT / "__main__.py", STACK, flat))
    assert r.one(BUCKET, "llm-multi-models-bucket").inputs["location"] == "EU"
    assert r.one(BUCKET, "llm-multi-models-us-central1-bucket").inputs["location"] == "us-central1"


def test_quota_preflight_runs_for_every_region_with_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import stack.compose as compose

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(compose, "preflight", lambda *a, **k: calls.append(a))
    render_program(ROOT / "__main__.py", STACK, read_stack_file(stack_file(STACK, ROOT)))
    assert [(c[1], c[2], c[4], c[5], c[6]) for c in calls] == [
        ("europe-west1", "nvidia-l4", 3, 8, 32),
        ("us-central1", "nvidia-rtx-pro-6000", 2, 20, 80),
    ]


# --- the front door --------------------------------------------------------------------------------------------


def test_front_door_chain_is_complete_and_each_link_points_at_the_one_before(plan: dict[str, Any]) -> None:
    negs, services = _by(plan, NEG), _by(plan, SVC)
    assert sorted(n["inputs"]["region"] for n in negs.values()) == ["europe-west1", "us-central1"]
    for neg in negs.values():
        region = neg["inputs"]["region"]
        assert neg["inputs"]["networkEndpointType"] == "SERVERLESS"
        svc = next(s for s in services.values() if s["inputs"]["location"] == region)
        assert neg["inputs"]["cloudRun"]["service"] == svc["inputs"]["name"]
        assert svc["name"] in neg["dependencies"]  # the NEG is created from that region's service
    backend = _by(plan, BACKEND)["llm-multi-frontdoor-backend"]
    assert backend["inputs"]["loadBalancingScheme"] == "EXTERNAL_MANAGED"
    assert sorted(b["group"] for b in backend["inputs"]["backends"]) == sorted(f"{n}-id" for n in negs)
    assert backend["inputs"]["securityPolicy"] == "llm-multi-frontdoor-armor-id"
    urlmap = _by(plan, URLMAP)["llm-multi-frontdoor-urlmap"]
    assert urlmap["inputs"]["defaultService"] == "llm-multi-frontdoor-backend-id"
    proxy = _by(plan, PROXY)["llm-multi-frontdoor-https"]
    assert proxy["inputs"]["urlMap"] == "llm-multi-frontdoor-urlmap-id"
    assert proxy["inputs"]["sslCertificates"] == ["llm-multi-frontdoor-cert-id"]
    rule = _by(plan, RULE)["llm-multi-frontdoor-https-rule"]
    assert rule["inputs"]["target"] == "llm-multi-frontdoor-https-id"
    assert (rule["inputs"]["portRange"], rule["inputs"]["loadBalancingScheme"]) == ("443", "EXTERNAL_MANAGED")
    # plan --json reports the same chain from the SDK's property dependencies
    chain = [(c["step"], c["name"], c["refers_to"]) for c in plan["frontdoor"]["chain"]]
    assert chain == [
        ("serverless NEG", "llm-multi-frontdoor-neg-europe-west1", []),
        ("serverless NEG", "llm-multi-frontdoor-neg-us-central1", []),
        ("backend service", "llm-multi-frontdoor-backend", sorted(negs)),
        ("URL map", "llm-multi-frontdoor-urlmap", ["llm-multi-frontdoor-backend"]),
        ("HTTPS proxy", "llm-multi-frontdoor-https", ["llm-multi-frontdoor-urlmap"]),
        ("forwarding rule", "llm-multi-frontdoor-https-rule", ["llm-multi-frontdoor-https"]),
    ]


def test_services_take_traffic_only_from_the_load_balancer_and_stay_iam_protected(plan: dict[str, Any]) -> None:
    for svc in _by(plan, SVC).values():
        assert svc["inputs"]["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
        assert svc["inputs"]["invokerIamDisabled"] is False
        assert svc["inputs"]["customAudiences"] == [f"https://{PLAN_DOMAIN}"]  # plan's until a domain is set
    members = [
        r["inputs"]["member"] for r in plan["resources"] if r["type"].endswith("serviceIamMember:ServiceIamMember")
    ]
    assert "allUsers" not in members and "allAuthenticatedUsers" not in members


def test_iap_grants_its_service_agent_the_invoker_role_in_every_region() -> None:
    door = _section("frontdoor") | {
        "iap": {
            "enabled": True,
            "oauth2_client_id": "1234-abc.apps.googleusercontent.com",
            "oauth2_client_secret_secret": "projects/p/secrets/iap-client",
        }
    }
    r = Rendered(render_program(ROOT / "__main__.py", STACK, _flat(frontdoor=door)))
    agent = r.one("gcp:projects/serviceIdentity:ServiceIdentity").inputs
    assert agent["service"] == "iap.googleapis.com"
    grants = {m.inputs["location"]: m.inputs for m in r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")}
    assert sorted(grants) == ["europe-west1", "us-central1"]
    for g in grants.values():
        assert g["role"] == "roles/run.invoker" and g["member"].endswith("@gcp-sa-iap.iam.gserviceaccount.com")
    assert "iap.googleapis.com" in [a.inputs["service"] for a in r.of_type("gcp:projects/service:Service")]
    iap = r.one(BACKEND).inputs["iap"]
    iap = iap.get("value", iap)  # the whole input is a secret (it carries the client secret): unwrap it
    assert iap["enabled"] is True and iap["oauth2ClientId"] == "1234-abc.apps.googleusercontent.com"


# --- single-region stacks are unchanged ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_single_region_stacks_have_no_multi_region_keys_and_no_front_door(stack: str) -> None:
    out = plan_json(stack, ROOT)
    assert not {"regions", "frontdoor", "capacity"} & set(out)
    assert not [r for r in out["resources"] if r["type"] in (NEG, BACKEND, URLMAP, PROXY)]
    assert (ROOT / "tests" / "golden" / f"plan-{stack}.json").is_file()  # byte-level: tests/test_golden.py


def test_listing_the_only_region_changes_nothing() -> None:
    """A stack that spells its one region as ``regions: [{region: …}]`` renders the same resources, names and
    inputs as before: the first region keeps today's names, so nothing would be replaced."""
    flat = read_stack_file(stack_file("prod", ROOT))
    before = {(r.type, r.name): r.inputs for r in render_program(ROOT / "__main__.py", "prod", flat)}
    flat["cloudrun-gpu:regions"] = json.dumps([{"region": "europe-west4"}])
    del flat["gcp:region"]  # the first region is the provider's region too
    after = {(r.type, r.name): r.inputs for r in render_program(ROOT / "__main__.py", "prod", flat)}
    assert after == before


# --- configuration errors name the key the user wrote ----------------------------------------------------------


def _region_change(i: int, **entry: Any) -> dict[str, str]:
    regions = _section("regions")
    regions[i] = {**regions[i], **entry}
    return _flat(regions=regions)


def test_a_wrong_gpu_type_names_the_region_entry() -> None:
    e = _one(_errors(_region_change(1, gpu={"type": "nvidia-rtx-pro-600"})), "cloudrun-gpu:regions[1].gpu.type")
    assert e.value == "nvidia-rtx-pro-600" and "nvidia-rtx-pro-6000" in e.fix and "nvidia-l4" in e.allowed


def test_a_gpu_the_region_does_not_offer_names_the_region_entry() -> None:
    e = _one(_errors(_region_change(1, region="us-east4")), "cloudrun-gpu:regions[1].region")
    assert "nvidia-rtx-pro-6000" in e.problem and "europe-west4" in e.allowed


def test_unknown_keys_in_a_region_get_did_you_mean() -> None:
    errors = _errors(_region_change(1, scalling={"max_instances": 2}))
    assert "did you mean cloudrun-gpu:regions[1].scaling?" in _one(errors, "cloudrun-gpu:regions[1].scalling").fix
    errors = _errors(_region_change(1, scaling={"max_instance": 2}))
    e = _one(errors, "cloudrun-gpu:regions[1].scaling.max_instance")
    assert "did you mean cloudrun-gpu:regions[1].scaling.max_instances?" in e.fix


def test_region_overrides_merge_over_the_stack_sections() -> None:
    vs = read_config(_region_change(1, scaling={"max_instances": 1}), base_dir=ROOT, plan_only=True)
    us = vs.others[0].config
    assert us.scaling.max_instances == 1 and us.scaling.min_instances == 0  # min from the entry, max overridden
    assert us.scaling.request_timeout_s == vs.config.scaling.request_timeout_s  # inherited from the stack section
    assert us.gpu.zonal_redundancy is False and us.network.nat.enabled is False


def test_max_instances_above_a_regions_quota_names_that_region() -> None:
    e = _one(_errors(_region_change(1, scaling={"max_instances": 3})), "cloudrun-gpu:regions[1].scaling.max_instances")
    assert "NvidiaRtxPro6000" in e.problem


def test_rules_across_regions() -> None:
    errors = _errors(_region_change(1, region="europe-west1", gpu={"type": "nvidia-l4"}))
    assert "listed twice" in _one(errors, "cloudrun-gpu:regions[1].region").problem
    e = _one(_errors(_flat(**{"gcp:region": "us-central1"})), "gcp:region")
    assert "europe-west1" in e.fix
    e = _one(
        _errors(_region_change(1, network={"psc": {"name": "llmmultiapis"}})),
        "cloudrun-gpu:regions[1].network.psc.name",
    )
    assert "global" in e.problem
    e = _one(_errors(_flat(regions="europe-west1")), "cloudrun-gpu:regions")
    assert "list" in e.problem


def test_several_regions_need_a_front_door_and_an_internal_one_cannot_serve_them() -> None:
    e = _one(_errors(_flat(frontdoor=None, service={"name": "llm-multi"})), "cloudrun-gpu:frontdoor")
    assert "2 regions" in e.problem and "domains" in e.fix
    internal = {"scheme": "INTERNAL_MANAGED", "certificate": "projects/p/regions/europe-west1/sslCertificates/c"}
    e = _one(_errors(_flat(frontdoor=internal)), "cloudrun-gpu:frontdoor.scheme")
    assert "EXTERNAL_MANAGED" in e.fix


def test_ingress_behind_the_front_door() -> None:
    e = _one(_errors(_flat(service={"name": "llm-multi"})), "cloudrun-gpu:service.ingress")
    assert e.value == "INGRESS_TRAFFIC_ALL" and "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" in e.fix
    internal_only = {"name": "llm-multi", "ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY"}
    e = _one(_errors(_flat(service=internal_only)), "cloudrun-gpu:service.ingress")
    assert "external load balancer" in e.problem
    # one region with a front door: the load-balancer ingress that a stack without one refuses is allowed
    dev = read_stack_file(stack_file("dev", ROOT))
    dev["cloudrun-gpu:service"] = json.dumps({"name": "llm-dev", "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"})
    e = _one(_errors(dev), "cloudrun-gpu:service.ingress")
    assert "creates none" in e.problem
    dev["cloudrun-gpu:frontdoor"] = json.dumps({"domains": ["llm.example.com"]})
    vs = read_config(dev, base_dir=ROOT, plan_only=True)
    assert vs.front_door and not vs.others
    r = Rendered(render_program(ROOT / "__main__.py", "dev", dev))
    assert r.one(NEG).inputs["region"] == "europe-west1"
    assert r.one(SVC).inputs["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


# --- capacity ----------------------------------------------------------------------------------------------------


def test_plan_json_has_both_regions_and_the_capacity_table(plan: dict[str, Any], vs: ValidatedStack) -> None:
    assert [r["region"] for r in plan["regions"]] == ["europe-west1", "us-central1"]
    assert [r["gpu"] for r in plan["regions"]] == ["nvidia-l4", "nvidia-rtx-pro-6000"]
    cap = plan["capacity"]
    rows = {r["region"]: r for r in cap["regions"]}
    # the L4 region fills to its quota first, then the RTX region takes what is left (nearest first)
    assert (rows["europe-west1"]["instances"], rows["europe-west1"]["quota_headroom"]) == (3, 0)
    assert (rows["us-central1"]["instances"], rows["us-central1"]["quota_headroom"]) == (1, 1)
    assert rows["europe-west1"]["concurrency"] == vs.sizing.max_parallel_sequences
    assert cap["requests_per_s"] >= cap["target"]["requests_per_s"] == 3.5
    assert not rows["europe-west1"]["throughput_measured"]  # an estimate, and labelled so


def test_plan_refuses_a_target_the_quotas_cannot_meet_saying_by_how_much() -> None:
    capacity = _section("capacity") | {"target": {"requests_per_s": 12}}
    e = _one(_errors(_flat(capacity=capacity)), "cloudrun-gpu:capacity.target.requests_per_s")
    assert "12 req/s exceeds what the quotas allow (9.062 req/s, 2.938 missing)" in e.problem
    assert "ask for" in e.fix and "lower the target to 9.062 req/s" in e.fix


def test_a_gpu_type_without_throughput_is_named() -> None:
    capacity = _section("capacity")
    del capacity["throughput"]["nvidia-rtx-pro-6000"]
    e = _one(_errors(_flat(capacity=capacity)), "cloudrun-gpu:capacity.throughput.nvidia-rtx-pro-6000")
    assert "us-central1" in e.problem


def test_plan_text_shows_regions_chain_and_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", STACK]) == 0
    text = capsys.readouterr().out
    for needle in (
        "Regions (2",
        "europe-west1: nvidia-l4",
        "us-central1: nvidia-rtx-pro-6000",
        "backend service: llm-multi-frontdoor-backend ← backends:",
        "forwarding rule: llm-multi-frontdoor-https-rule ← target: llm-multi-frontdoor-https",
        "| europe-west1 | nvidia-l4 | 3 (1 / 3) |",
        "quota headroom",
        # each region's quota need, against that region's quotas
        "europe-west1: Quota needed at 3 instance(s): 3 × nvidia-l4 "
        "(NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion)",
        "us-central1: Quota needed at 2 instance(s): 2 × nvidia-rtx-pro-6000 "
        "(NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion), 40 vCPU",
    ):
        assert needle in text, needle


def test_plan_exits_2_with_the_shortfall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "Pulumi.multi.yaml").read_text().replace("requests_per_s: 3.5}", "requests_per_s: 12}")
    (tmp_path / "Pulumi.big.yaml").write_text(text)
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    assert main(["plan", "--stack", "big", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cloudrun-gpu:capacity.target.requests_per_s" in err and "missing" in err


def test_cloudbuild_builds_each_regions_image_for_its_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    arch = {}
    for region in ("europe-west1", "us-central1"):
        assert main(["cloudbuild", "--stack", STACK, "--region", region]) == 0
        text = capsys.readouterr().out
        assert f"{region}-docker.pkg.dev/" in text
        arch[region] = next(line.split("=")[1] for line in text.splitlines() if "CUDA_ARCH=" in line)
    assert arch == {"europe-west1": "89", "us-central1": "120"}  # L4 = sm_89, RTX PRO 6000 = sm_120 (images.py)
    assert main(["cloudbuild", "--stack", STACK, "--region", "asia-east1"]) == 2
    assert "europe-west1, us-central1" in capsys.readouterr().err


def test_a_shared_byo_vpc_gets_one_psc_endpoint() -> None:
    byo = {"existing_network": "projects/p/global/networks/corp"}
    regions = _section("regions")
    regions[0]["network"] = {**byo, "existing_subnetwork": "projects/p/regions/europe-west1/subnetworks/a"}
    regions[1]["network"] = {**byo, "existing_subnetwork": "projects/p/regions/us-central1/subnetworks/b"}
    e = _one(_errors(_flat(regions=regions)), "cloudrun-gpu:regions[1].network.psc.enabled")
    assert "regions[0]" in e.problem and "psc.enabled: false" in e.fix
    regions[1]["network"]["psc"] = {"enabled": False}
    vs = read_config(_flat(regions=regions), base_dir=ROOT, plan_only=True)
    assert [r.config.network.psc.enabled for r in vs.regional] == [True, False]
