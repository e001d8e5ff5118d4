"""The policy pack (policy/): each policy passes a compliant resource and flags exactly its own violation.

Resources are raw ``{"type", "name", "inputs"}`` dicts with wire (camelCase) names, as any stack
would register them, not our components: the pack must hold for stacks that bypass the library.
Every committed stack must pass, and the offline checker must agree with the SDK's own analyzer.
"""

from __future__ import annotations

import copy
import re
import runpy
import sys
from collections.abc import Callable
from typing import Any

import pulumi_policy
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy.policy import _POLICY_PACK_NAME_RE, _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "policy"))  # as the CLI runs the pack: its directory on sys.path

from cloudrun_gpu_policy import offline, rules
from cloudrun_gpu_policy.offline import Violation, check

Resource = dict[str, Any]
SERVICE = "gcp:cloudrunv2/service:Service"
BUCKET = "gcp:storage/bucket:Bucket"

GPU_SERVICE: Resource = {
    "type": SERVICE,
    "name": "svc",
    "inputs": {
        "name": "llm",
        "location": "europe-west1",
        "deletionProtection": True,
        "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        "labels": {"app": "llm", "environment": "test"},
        "template": {
            "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
            "nodeSelector": {"accelerator": "nvidia-l4"},
            "serviceAccount": "llm-runtime@p.iam.gserviceaccount.com",
            "maxInstanceRequestConcurrency": 8,
            "scaling": {"minInstanceCount": 0, "maxInstanceCount": 3},
            "vpcAccess": {
                "egress": "ALL_TRAFFIC",
                "networkInterfaces": [{"network": "vpc", "subnetwork": "subnet"}],
            },
            "containers": [
                {
                    "name": "engine",
                    "image": "europe-west1-docker.pkg.dev/p/r/vllm:1",
                    "ports": {"containerPort": 8080, "name": "http1"},
                    "args": ["--model", "/models/model.gguf"],
                    "envs": [{"name": "MODEL_DIR", "value": "/models"}],
                    "resources": {
                        "cpuIdle": False,
                        "startupCpuBoost": True,
                        "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                    },
                    "startupProbe": {
                        "httpGet": {"path": "/health", "port": 8080},
                        "initialDelaySeconds": 10,
                        "periodSeconds": 10,
                        "timeoutSeconds": 5,
                        "failureThreshold": 30,
                    },
                }
            ],
        },
    },
}
PRIVATE_BUCKET: Resource = {
    "type": BUCKET,
    "name": "models",
    "inputs": {
        "name": "models-1234",
        "location": "europe-west1",
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
        "forceDestroy": False,
        "labels": {"environment": "test"},
    },
}


def res(typ: str, resource_name: str, /, **inputs: Any) -> Resource:
    return {"type": typ, "name": resource_name, "inputs": inputs}


def edit(base: Resource, change: Callable[[dict[str, Any]], Any]) -> Resource:
    """A deep copy of ``base`` with ``change`` applied to its inputs."""
    out = copy.deepcopy(base)
    change(out["inputs"])
    return out


def tmpl(r: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = r["template"]
    return t


def ctr(r: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = r["template"]["containers"][0]
    return c


def fired(resources: list[Resource], production: bool = False, **kw: Any) -> list[str]:
    return sorted({v.policy for v in check(resources, production=production, **kw)})


# (policy, passing resource, violating resource, production)
CASES: list[tuple[str, Resource, Resource, bool]] = [
    (
        "gpu-cpu-always-allocated",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"].update(cpuIdle=True)),
        False,
    ),
    (
        "gpu-http-startup-probe",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(httpGet=None, tcpSocket={"port": 8080})),
        False,
    ),
    (
        "gpu-explicit-concurrency",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: tmpl(r).pop("maxInstanceRequestConcurrency")),
        False,
    ),
    (
        "gpu-model-loading-egress",
        edit(GPU_SERVICE, lambda r: ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URI", "value": "gs://b/m/*"})),
        edit(
            GPU_SERVICE,
            lambda r: (
                ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URI", "value": "gs://b/m/*"}),
                tmpl(r)["vpcAccess"].update(egress="PRIVATE_RANGES_ONLY"),
            ),
        ),
        False,
    ),
    (
        "gpu-limit-and-accelerator",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: tmpl(r).pop("nodeSelector")),
        False,
    ),
    (
        "gpu-gcs-volume-gen2",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(volumes=[{"name": "model", "gcs": {"bucket": "b"}}])),
        edit(
            GPU_SERVICE,
            lambda r: tmpl(r).update(
                volumes=[{"name": "model", "gcs": {"bucket": "b"}}], executionEnvironment="EXECUTION_ENVIRONMENT_GEN1"
            ),
        ),
        False,
    ),
    (
        "gpu-min-cpu-memory",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update(cpu="2")),
        False,
    ),
    (
        "gpu-max-instances",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: tmpl(r).pop("scaling")),
        False,
    ),
    (
        "gpu-dedicated-service-account",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: tmpl(r).pop("serviceAccount")),
        False,
    ),
    (
        "startup-probe-limits",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(failureThreshold=200)),
        False,
    ),
    (
        "no-public-invoker",
        res(
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            "invoker",
            role="roles/run.invoker",
            member="group:llm-users@example.com",
            name="llm",
        ),
        res(
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            "invoker",
            role="roles/run.invoker",
            member="allUsers",
            name="llm",
        ),
        False,
    ),
    (
        "bucket-private",
        PRIVATE_BUCKET,
        edit(PRIVATE_BUCKET, lambda r: r.update(publicAccessPrevention="inherited")),
        False,
    ),
    (
        "no-public-bucket-access",
        res(
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            "reader",
            bucket="models-1234",
            role="roles/storage.objectViewer",
            member="serviceAccount:llm-runtime@p.iam.gserviceaccount.com",
        ),
        res(
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            "reader",
            bucket="models-1234",
            role="roles/storage.objectViewer",
            member="allUsers",
        ),
        False,
    ),
    (
        "no-pickle-model-files",
        res("gcp:storage/bucketObject:BucketObject", "weights", bucket="b", name="models/llama.gguf"),
        res("gcp:storage/bucketObject:BucketObject", "weights", bucket="b", name="models/llama.pt"),
        False,
    ),
    (
        "production-deletion-safety",
        GPU_SERVICE,
        edit(GPU_SERVICE, lambda r: r.update(deletionProtection=False)),
        True,
    ),
]


def test_every_policy_has_a_case() -> None:
    assert [c[0] for c in CASES] == [p.name for p in rules.POLICIES]


@pytest.mark.parametrize(("policy", "good", "bad", "production"), CASES, ids=[c[0] for c in CASES])
def test_policy_passes_compliant_and_flags_only_its_own_violation(
    policy: str, good: Resource, bad: Resource, production: bool
) -> None:
    assert fired([good], production) == []
    violations = check([bad], production=production)
    assert {v.policy for v in violations} == {policy}
    for v in violations:
        assert v.resource == bad["name"]
        assert v.enforcement_level == "mandatory"
        assert "Fix:" in v.message, v.message
        assert f"'{bad['name']}'" in v.message  # names the resource


# --- More violations per policy, each firing that policy alone --------------------------------

MORE: list[tuple[str, Resource, bool]] = [
    ("gpu-cpu-always-allocated", edit(GPU_SERVICE, lambda r: ctr(r)["resources"].pop("cpuIdle")), False),
    ("gpu-http-startup-probe", edit(GPU_SERVICE, lambda r: ctr(r).pop("startupProbe")), False),
    (
        "gpu-explicit-concurrency",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(maxInstanceRequestConcurrency=1001)),
        False,
    ),
    (
        "gpu-model-loading-egress",
        edit(GPU_SERVICE, lambda r: (ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URL"}), tmpl(r).pop("vpcAccess"))),
        False,
    ),
    (
        "gpu-model-loading-egress",
        edit(
            GPU_SERVICE,
            lambda r: (
                tmpl(r).update(volumes=[{"name": "model", "gcs": {"bucket": "b"}}]),
                tmpl(r)["vpcAccess"].pop("networkInterfaces"),
                tmpl(r)["vpcAccess"].update(connector="projects/p/locations/l/connectors/c"),
            ),
        ),
        False,
    ),
    (
        "gpu-model-loading-egress",
        edit(
            GPU_SERVICE,
            lambda r: (ctr(r)["args"].extend(["--model", "gs://b/m"]), tmpl(r)["vpcAccess"].update(egress=None)),
        ),
        False,
    ),
    (
        "gpu-limit-and-accelerator",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].pop("nvidia.com/gpu")),
        False,
    ),
    (
        "gpu-limit-and-accelerator",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update({"nvidia.com/gpu": "2"})),
        False,
    ),
    (
        "gpu-limit-and-accelerator",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(nodeSelector={"accelerator": "tpu"})),
        False,
    ),
    (
        "gpu-gcs-volume-gen2",
        edit(
            GPU_SERVICE,
            lambda r: (
                tmpl(r).pop("executionEnvironment"),
                tmpl(r).update(volumes=[{"name": "m", "gcs": {"bucket": "b"}}]),
            ),
        ),
        False,
    ),
    ("gpu-min-cpu-memory", edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update(memory="16000Mi")), False),
    (
        "gpu-min-cpu-memory",
        edit(
            GPU_SERVICE,
            lambda r: (
                tmpl(r).update(nodeSelector={"accelerator": "nvidia-rtx-pro-6000"}),
                ctr(r)["resources"]["limits"].update(cpu="20000m", memory="64Gi"),
            ),
        ),
        False,
    ),
    ("gpu-max-instances", edit(GPU_SERVICE, lambda r: tmpl(r)["scaling"].update(minInstanceCount=5)), False),
    (
        "gpu-dedicated-service-account",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(serviceAccount="123456789-compute@developer.gserviceaccount.com")),
        False,
    ),
    ("startup-probe-limits", edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(timeoutSeconds=10)), False),
    (
        "startup-probe-limits",
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(initialDelaySeconds=300)),
        False,
    ),
    (
        "startup-probe-limits",  # without a GPU the window is 240 s
        res(
            SERVICE,
            "cpu-svc",
            template={
                "containers": [
                    {
                        "image": "x",
                        "startupProbe": {"httpGet": {"path": "/"}, "periodSeconds": 10, "failureThreshold": 30},
                    }
                ]
            },
        ),
        False,
    ),
    (
        "no-public-invoker",
        res(
            "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
            "invokers",
            role="roles/run.invoker",
            members=["group:a@example.com", "allAuthenticatedUsers"],
            name="llm",
        ),
        False,
    ),
    (
        "no-public-invoker",
        res("gcp:cloudrun/iamMember:IamMember", "v1", role="roles/run.invoker", member="allUsers"),
        False,
    ),
    (
        "no-public-invoker",
        res(
            "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
            "policy",
            name="llm",
            policyData='{"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}',
        ),
        False,
    ),
    ("no-public-invoker", edit(GPU_SERVICE, lambda r: r.update(invokerIamDisabled=True)), False),
    ("bucket-private", edit(PRIVATE_BUCKET, lambda r: r.pop("uniformBucketLevelAccess")), False),
    (
        "no-public-bucket-access",
        res(
            "gcp:storage/bucketIAMBinding:BucketIAMBinding",
            "b",
            bucket="x",
            role="roles/storage.objectViewer",
            members=["allUsers"],
        ),
        False,
    ),
    (
        "no-public-bucket-access",
        res("gcp:storage/bucketACL:BucketACL", "acl", bucket="x", roleEntities=["READER:allUsers"]),
        False,
    ),
    (
        "no-public-bucket-access",
        res("gcp:storage/bucketObject:BucketObject", "o", bucket="x", name="a.gguf", predefinedAcl="publicRead"),
        False,
    ),
    (
        "no-pickle-model-files",
        edit(GPU_SERVICE, lambda r: ctr(r)["envs"].append({"name": "M", "value": "/m/w.BIN"})),
        False,
    ),
    ("no-pickle-model-files", edit(GPU_SERVICE, lambda r: ctr(r)["args"].extend(["--ckpt", "gs://b/x.ckpt"])), False),
    ("no-pickle-model-files", res("gcp:storage/bucketObject:BucketObject", "o", bucket="b", name="m.pickle"), False),
    (
        "production-deletion-safety",  # production by label, not by config
        edit(GPU_SERVICE, lambda r: r.update(deletionProtection=False, labels={"environment": "prod"})),
        False,
    ),
    ("production-deletion-safety", edit(PRIVATE_BUCKET, lambda r: r.update(forceDestroy=True)), True),
]


@pytest.mark.parametrize(("policy", "bad", "production"), MORE, ids=[f"{m[0]}-{i}" for i, m in enumerate(MORE)])
def test_more_violations_fire_only_their_policy(policy: str, bad: Resource, production: bool) -> None:
    assert fired([bad], production) == [policy]


def test_gcs_loading_with_direct_vpc_all_traffic_passes() -> None:
    ok = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r).update(volumes=[{"name": "model", "gcs": {"bucket": "b"}}]),
            ctr(r)["args"].extend(["--model", "gs://b/m"]),
            ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URL", "value": "https://hf.co/x.gguf"}),
        ),
    )
    assert fired([ok]) == []


def test_production_is_off_without_config_or_label() -> None:
    assert fired([edit(GPU_SERVICE, lambda r: r.update(deletionProtection=False))]) == []
    assert fired([edit(PRIVATE_BUCKET, lambda r: r.update(forceDestroy=True))]) == []


def test_pack_config_sets_production_and_enforcement_level() -> None:
    risky = edit(GPU_SERVICE, lambda r: r.update(deletionProtection=False))
    cfg = {"production-deletion-safety": {"production": True, "enforcementLevel": "advisory"}}
    [v] = check([risky], production=False, config=cfg)
    assert (v.policy, v.enforcement_level, v.mandatory) == ("production-deletion-safety", "advisory", False)
    assert check([risky], production=True, config={"production-deletion-safety": "disabled"}) == []


def test_allowed_values_exempt_a_string_from_the_pickle_check() -> None:
    obj = res("gcp:storage/bucketObject:BucketObject", "o", bucket="b", name="site/example.pt")
    assert fired([obj]) == ["no-pickle-model-files"]
    assert fired([obj], config={"no-pickle-model-files": {"allowedValues": ["site/example.pt"]}}) == []


def test_a_service_without_gpu_is_not_held_to_gpu_rules() -> None:
    cpu = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r).pop("nodeSelector"),
            ctr(r)["resources"]["limits"].pop("nvidia.com/gpu"),
            ctr(r)["resources"].pop("cpuIdle"),
            ctr(r).pop("startupProbe"),
            tmpl(r).pop("maxInstanceRequestConcurrency"),
            tmpl(r).pop("scaling"),
            tmpl(r).pop("serviceAccount"),
        ),
    )
    assert fired([cpu]) == []


def test_values_unknown_during_preview_are_skipped_not_guessed() -> None:
    preview = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r).update(serviceAccount=UNKNOWN_STRING_VALUE, volumes=[{"name": "m", "gcs": {"bucket": "b"}}]),
            tmpl(r)["vpcAccess"]["networkInterfaces"][0].update(subnetwork=UNKNOWN_STRING_VALUE),
            ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URI", "value": UNKNOWN_STRING_VALUE}),
        ),
    )
    assert check([preview], production=True) == []


def test_messages_name_path_value_and_practice() -> None:
    bad = edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(httpGet=None, tcpSocket={"port": 8080}))
    [v] = check([bad], production=False)
    assert "template.containers[0].startupProbe" in v.message
    assert "tcpSocket" in v.message and "(D2)" in v.message
    assert v.policy == "gpu-http-startup-probe"


def test_every_description_cites_a_practice_or_fact() -> None:
    cite = re.compile(r"\b(L[1-5]|B[1-5]|D[12]|R[1-7]|S[12]|A[1-4])\b|facts §\d|Repo rule")
    for p in rules.POLICIES:
        assert cite.search(p.description), p.name


# --- The offline checker agrees with the SDK's analyzer ---------------------------------------


def _sdk_analyze(resource: Resource, config: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """What ``pulumi preview`` would get back: the SDK's own Analyze, fed a protobuf request."""
    servicer: Any = _PolicyAnalyzerServicer(  # its gRPC methods are untyped
        rules.PACK_NAME, "0.0.1", list(rules.POLICIES), rules.DEFAULT_ENFORCEMENT
    )
    if config:
        request = proto.ConfigureAnalyzerRequest()
        for name, props in config.items():
            request.policyConfig[name].CopyFrom(
                proto.PolicyConfig(
                    enforcementLevel=proto.MANDATORY, properties=json_format.ParseDict(props, struct_pb2.Struct())
                )
            )
        servicer.Configure(request, None)
    props = json_format.ParseDict(resource["inputs"], struct_pb2.Struct())
    urn = f"urn:pulumi:test::p::{resource['type']}::{resource['name']}"
    response = servicer.Analyze(
        proto.AnalyzeRequest(type=resource["type"], name=resource["name"], urn=urn, properties=props), None
    )
    return sorted((d.policyName, d.message.split("\n", 1)[1]) for d in response.diagnostics)


@pytest.mark.parametrize(
    ("policy", "bad", "production"), [(c[0], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_offline_check_matches_the_sdk_analyzer(policy: str, bad: Resource, production: bool) -> None:
    config = {"production-deletion-safety": {"production": True}} if production else None
    offline_found = sorted((v.policy, v.message) for v in check([bad], production=production))
    assert offline_found == _sdk_analyze(bad, config)
    assert _sdk_analyze(CASES[[c[0] for c in CASES].index(policy)][1], config) == []


def test_sdk_reports_the_pack_metadata_and_config_schemas() -> None:
    servicer: Any = _PolicyAnalyzerServicer(  # its gRPC methods are untyped
        rules.PACK_NAME, "0.0.1", list(rules.POLICIES), rules.DEFAULT_ENFORCEMENT
    )
    info = servicer.GetAnalyzerInfo(None, None)
    assert [p.name for p in info.policies] == [p.name for p in rules.POLICIES]
    assert all(p.enforcementLevel == proto.MANDATORY for p in info.policies)
    schema = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    assert schema["production-deletion-safety"]["properties"]["production"]["type"] == "boolean"


# --- The pack the CLI runs ----------------------------------------------------------------------


def test_pack_entry_point_serves_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policy/__main__.py as the CLI does (``runpy.run_path`` on the directory), with PolicyPack
    replaced by a recorder so no server starts."""
    built: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, name: str, policies: list[pulumi_policy.Policy], **kw: Any) -> None:
            built.append({"name": name, "policies": policies, **kw})

    monkeypatch.setattr(pulumi_policy, "PolicyPack", Recorder)
    runpy.run_path(str(ROOT / "policy"), run_name="__main__")
    [pack] = built
    assert _POLICY_PACK_NAME_RE.match(pack["name"])
    assert [id(p) for p in pack["policies"]] == [id(p) for p in rules.POLICIES]
    assert len({p.name for p in pack["policies"]}) == len(rules.POLICIES)
    assert pack["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY


def test_importing_the_policies_starts_no_server() -> None:
    import ast

    for path in (ROOT / "policy" / "cloudrun_gpu_policy").glob("*.py"):
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PolicyPack"]
        assert calls == [], path


# --- Every committed stack passes -----------------------------------------------------------------

STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stack_has_no_violations(stack: str) -> None:
    resources = offline.stack_resources(stack, ROOT)
    production = offline.stack_is_production(stack, ROOT)
    assert production == (stack == "prod")
    violations: list[Violation] = check(resources, production=production, stack=stack)
    assert violations == [], "\n".join(f"{v.policy} {v.resource}: {v.message}" for v in violations)
    assert any(r["type"] == SERVICE for r in resources)


def test_offline_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert offline.main(["--stack", "dev", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == [] and out["policies"] == [p.name for p in rules.POLICIES]


def test_the_probe_rule_names_every_registered_engines_readiness_path() -> None:
    from cloudrun_gpu.engines import PROFILES

    for name, p in PROFILES.items():  # the pack derives its engine list from the registry (issue 18)
        assert f"{name}: {p.readiness_path}" in rules.READINESS_PATHS
