"""The real program (``__main__.py``) run under mocks for every committed stack file, and the example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cloudrun_gpu import limits

from stack.config import ValidatedStack, load_stack, read_stack_file, stack_file
from stack.render import render_program

from .conftest import ROOT, Rendered

STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def run(stack: str) -> Rendered:
    return Rendered(render_program(ROOT / "__main__.py", stack, read_stack_file(stack_file(stack, ROOT))))


def test_every_environment_is_committed() -> None:
    assert {"dev", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_program_renders_the_service_the_sizing_plan_describes(stack: str) -> None:
    r = run(stack)
    for vs in load_stack(stack, ROOT).regional:  # one region, or each of cloudrun-gpu:regions
        _check_region(r, vs, stack)


def _check_region(r: Rendered, vs: ValidatedStack, stack: str) -> None:
    name = f"{vs.config.service.name}{vs.suffix}"
    s = r.one("gcp:cloudrunv2/service:Service", f"{name}-svc").inputs
    assert s["location"] == vs.config.region
    t = s["template"]
    c = t["containers"][0]
    gpu = limits.GPU_TYPES[vs.config.gpu.type]
    assert t["nodeSelector"]["accelerator"] == gpu.name
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert int(c["resources"]["limits"]["cpu"]) >= gpu.min_cpu
    assert int(c["resources"]["limits"]["memory"].removesuffix("Gi")) >= gpu.min_memory_gib
    assert c["resources"]["cpuIdle"] is False
    assert t["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    assert t["maxInstanceRequestConcurrency"] == vs.concurrency
    assert vs.concurrency >= vs.sizing.max_parallel_sequences  # R6
    p = vs.sizing.startup_probe
    probe = c["startupProbe"]
    assert (
        probe["initialDelaySeconds"],
        probe["periodSeconds"],
        probe["timeoutSeconds"],
        probe["failureThreshold"],
    ) == (p.initial_delay_seconds, p.period_seconds, p.timeout_seconds, p.failure_threshold)
    assert "httpGet" in probe and "tcpSocket" not in probe
    assert probe["failureThreshold"] * probe["periodSeconds"] <= limits.STARTUP_WINDOW_GPU_S.value
    assert probe["initialDelaySeconds"] <= limits.PROBE_INITIAL_DELAY_MAX
    assert t["vpcAccess"]["egress"] == "ALL_TRAFFIC"
    iface = t["vpcAccess"]["networkInterfaces"][0]
    subnet = r.one("gcp:compute/subnetwork:Subnetwork", f"{vs.config.service.name}-net{vs.suffix}-subnet")
    assert iface["subnetwork"] == f"projects/{vs.config.project}/regions/{vs.config.region}/subnetworks/{subnet.name}"
    sa = r.one("gcp:serviceaccount/account:Account", f"{vs.config.service.name}-sa").inputs["accountId"]
    assert t["serviceAccount"].startswith(f"{sa}@{vs.config.project}.")
    invokers = [
        m.inputs["member"]
        for m in r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
        if m.inputs["location"] == vs.config.region and m.inputs["name"] == s["name"]
    ]
    # the listed invokers, and the response cache's own identity where the stack has one (S1): nobody else
    cache = vs.config.cache
    own = [f"serviceAccount:{cache.account_id}@{vs.config.project}.iam.gserviceaccount.com"] if cache else []
    assert sorted(invokers) == sorted([*vs.config.service.invokers, *own])
    assert "allUsers" not in invokers and "allAuthenticatedUsers" not in invokers
    assert s["deletionProtection"] is (stack == "prod")
    bucket = r.one("gcp:storage/bucket:Bucket", f"{vs.config.service.name}-models{vs.suffix}-bucket").inputs
    assert bucket["forceDestroy"] is (stack != "prod")


def test_prod_uses_zonal_redundancy_and_warm_instance() -> None:
    t = run("prod").one("gcp:cloudrunv2/service:Service", "llm-svc").inputs["template"]
    assert t["gpuZonalRedundancyDisabled"] is False
    assert t["scaling"]["minInstanceCount"] == 1


def test_public_invoker_only_when_configured() -> None:
    flat = read_stack_file(ROOT / "Pulumi.dev.yaml")
    r = Rendered(render_program(ROOT / "__main__.py", "dev", flat))
    assert not r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")  # committed: nobody, not public
    flat["cloudrun-gpu:service"] = json.dumps({"name": "llm-dev", "invokers": ["allUsers"]})
    r = Rendered(render_program(ROOT / "__main__.py", "public", flat))
    members = [m.inputs["member"] for m in r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")]
    assert members == ["allUsers"]


def test_pulumi_up_without_project_or_invoker_says_what_to_set() -> None:
    """Committed stacks name no project and no principal; `pulumi up` (not plan) stops on both."""
    import pulumi

    flat = read_stack_file(ROOT / "Pulumi.dev.yaml")
    with pytest.raises(pulumi.RunError) as err:
        render_program(ROOT / "__main__.py", "dev", flat, plan_only=False)
    assert "pulumi config set gcp:project" in str(err.value)
    flat["gcp:project"] = "my-real-project"
    with pytest.raises(pulumi.RunError) as err:
        render_program(ROOT / "__main__.py", "dev", flat, plan_only=False)
    assert "pulumi config set --path 'cloudrun-gpu:service.invokers[0]'" in str(err.value)
    flat["cloudrun-gpu:service"] = json.dumps({"name": "llm-dev", "invokers": ["user:me@example.com"]})
    r = Rendered(render_program(ROOT / "__main__.py", "dev", flat, plan_only=False))
    assert r.one("gcp:cloudrunv2/service:Service").inputs["project"] == "my-real-project"


def test_the_first_revision_waits_for_iam_propagation() -> None:
    from stack.cli import plan_json

    out = plan_json("staging", ROOT)
    svc = next(r for r in out["resources"] if r["type"] == "gcp:cloudrunv2/service:Service")
    sleep = next(r for r in out["resources"] if r["type"] == "time:index/sleep:Sleep")
    assert sleep["name"] in svc["dependencies"]
    assert int(sleep["inputs"]["createDuration"].removesuffix("s")) >= 120  # IAM: typically 2 min
    readers = [
        r["name"]
        for r in out["resources"]
        if r["type"].endswith(("bucketIAMMember:BucketIAMMember", "repositoryIamMember:RepositoryIamMember"))
    ]
    assert readers and set(readers) <= set(sleep["dependencies"])


def test_invalid_stack_stops_the_program_with_the_message_only(tmp_path: Path) -> None:
    import pulumi

    flat = read_stack_file(ROOT / "Pulumi.dev.yaml")
    flat["gcp:region"] = "us-west1"
    with pytest.raises(pulumi.RunError) as err:
        render_program(ROOT / "__main__.py", "bad", flat)
    assert "region = 'us-west1'" in str(err.value) and "fix:" in str(err.value)


def test_example_stack_imports_the_components() -> None:
    example = ROOT / "examples" / "team_stack"
    flat = read_stack_file(example / "Pulumi.example.yaml")
    r = Rendered(render_program(example / "__main__.py", "example", flat, project="team-llm"))
    assert not r.of_type("gcp:compute/network:Network")  # shared VPC passed in: nothing network-level created
    t = r.one("gcp:cloudrunv2/service:Service").inputs["template"]
    assert t["vpcAccess"]["networkInterfaces"][0]["network"] == "projects/shared-vpc-host/global/networks/corp"
    assert t["containers"][0]["args"][t["containers"][0]["args"].index("--max-model-len") + 1] == "16384"
    # the example builds its own image through the library (cloudrun_gpu.build.image) and deploys that image
    build = r.one("command:local:Command").inputs["environment"]
    image = build["IMAGE"]
    assert image.startswith("us-central1-docker.pkg.dev/team-llm-dev/team-llm/vllm:qwen2.5-7b-")
    assert t["containers"][0]["image"] == image  # the tag offline; by digest once the build printed one
    config = json.loads(build["CLOUDBUILD_CONFIG"])
    steps = {s["id"]: s for s in config["steps"]}
    assert steps["stage-model"]["args"][-2:] == [
        "gs://${_MODEL_BUCKET}/models/qwen2.5-7b-awq",
        "container/model/qwen2.5-7b-instruct-awq/",
    ]
    docker = steps["build-image"]["args"]
    assert docker[:5] == ["build", "-f", "container/vllm/Dockerfile", "-t", image] and docker[-1] == "container"
    assert config["images"] == [image] and set(config["substitutions"]) == {"_MODEL_BUCKET"}
