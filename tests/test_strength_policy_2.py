"""Mutation-strength tests for the policy pack, second pass (issue 23: a fresh sample, seed 24, scored
``policy/cloudrun_gpu_policy/rules.py`` at 58 %; 7 of its 11 survivors were changed messages that the tests only
checked by substring).

A policy's message is its user interface: it is what ``pulumi preview`` prints under the resource, and what a
platform team reads to fix the stack. So every message each policy can report is pinned here **whole**, by exact
equality, on a realistic resource (the GPU service of ``tests/test_policy.py`` with one thing wrong), together with
the fact that no other policy fires on it. The pack's metadata (what ``pulumi policy ls`` and the Pulumi Cloud show:
descriptions, tags, config schemas) is pinned whole as well, through the SDK's own analyzer, and the startup-probe
limits are checked at each edge (the value Cloud Run accepts and the first it refuses).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from google.protobuf import json_format

from .conftest import ROOT
from .test_policy import CASES, GPU_SERVICE, PRIVATE_BUCKET, Resource, ctr, edit, res, tmpl

sys.path.insert(0, str(ROOT / "policy"))

from cloudrun_gpu_policy import rules
from cloudrun_gpu_policy.offline import check
from pulumi_policy.policy import _PolicyAnalyzerServicer

BAD = {policy: bad for policy, _, bad, _ in CASES}
"""The violating resource of each policy in tests/test_policy.py (one thing wrong on a compliant resource)."""
SVC = "Service 'svc': "
"""``_where`` of the fixture: the resource type's last segment and the resource name."""
SIDECAR = {"name": "side", "image": "x", "resources": {"cpuIdle": False, "limits": {"nvidia.com/gpu": "1"}}}
PUBLIC_RUN = (
    ": a public grant on a Cloud Run service lets anyone on the internet call (or manage) a GPU endpoint that bills "
    "per instance; Google's samples all deploy with --no-allow-unauthenticated. Fix: grant roles/run.invoker to a "
    "gateway service account or a group instead."
)
PUBLIC_BUCKET = (
    ": this makes the bucket's objects (the model weights) readable by anyone. Fix: grant "
    "roles/storage.objectViewer to the service's runtime service account only."
)
CPU_IDLE = (
    "; a GPU service must have CPU always allocated, because Cloud Run requires instance-based billing for GPUs "
    "(A4, facts §1.2). Fix: set resources.cpu_idle=False on every container (gcloud: --no-cpu-throttling)."
)
NOT_HTTP = (
    "; a GPU service needs an HTTP startup probe that passes only once the model can serve, and a TCP probe passes "
    "when the port opens, which Ollama does before loading (D2). Fix: "
)
PROBE_TAIL = "Fix: keep each field in range and lengthen the window with failureThreshold, not the period."

# (case id, resource, production, policy, its messages in order)
MESSAGES: list[tuple[str, Resource, bool, str, list[str]]] = [
    (
        "cpu-idle-unset",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"].pop("cpuIdle")),
        False,
        "gpu-cpu-always-allocated",
        [
            SVC + "template.containers[0].resources.cpuIdle is not set (Cloud Run may then throttle CPU between "
            "requests)" + CPU_IDLE
        ],
    ),
    (
        "cpu-idle-true",
        BAD["gpu-cpu-always-allocated"],
        False,
        "gpu-cpu-always-allocated",
        [SVC + "template.containers[0].resources.cpuIdle is True" + CPU_IDLE],
    ),
    (
        "probe-absent",
        edit(GPU_SERVICE, lambda r: ctr(r).pop("startupProbe")),
        False,
        "gpu-http-startup-probe",
        [
            SVC + "template.containers[0].startupProbe is not set, so Cloud Run adds a default TCP probe that passes "
            "as soon as the port opens, before the model is in GPU memory (D2). Fix: set startup_probe.http_get to "
            "the engine's readiness path (llama.cpp: /health, ollama: /api/version, vllm: /health) with a window "
            "long enough to load."
        ],
    ),
    (
        "probe-tcp",
        BAD["gpu-http-startup-probe"],
        False,
        "gpu-http-startup-probe",
        [
            SVC + "template.containers[0].startupProbe uses tcpSocket" + NOT_HTTP + "replace "
            "template.containers[0].startupProbe.tcpSocket with http_get on the engine's readiness path."
        ],
    ),
    (
        "probe-grpc",
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(httpGet=None, grpc={"port": 8080})),
        False,
        "gpu-http-startup-probe",
        [
            SVC + "template.containers[0].startupProbe uses grpc" + NOT_HTTP + "replace "
            "template.containers[0].startupProbe.grpc with http_get on the engine's readiness path."
        ],
    ),
    (
        # this message read "uses no handler … Fix: replace template.containers[0].startupProbe.no handler with
        # http_get" before this test
        "probe-without-handler",
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(httpGet=None)),
        False,
        "gpu-http-startup-probe",
        [
            SVC + "template.containers[0].startupProbe sets no handler" + NOT_HTTP + "add http_get to "
            "template.containers[0].startupProbe on the engine's readiness path."
        ],
    ),
    (
        "concurrency-unset",
        BAD["gpu-explicit-concurrency"],
        False,
        "gpu-explicit-concurrency",
        [
            SVC + "template.maxInstanceRequestConcurrency is not set, so the default applies (80 or 80 × vCPU, "
            "depending on the tool; facts §3.1), unrelated to what the engine can run at once and so wrong for "
            "scaling (D1, A1, A2). Fix: set max_instance_request_concurrency from the engine's parallel slots "
            "(A2 rule), then load-test it (A3)."
        ],
    ),
    (
        "concurrency-above-1000",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(maxInstanceRequestConcurrency=1001)),
        False,
        "gpu-explicit-concurrency",
        [
            SVC + "template.maxInstanceRequestConcurrency is 1001; Cloud Run accepts an integer from 1 to 1000 "
            "(https://docs.cloud.google.com/run/docs/about-concurrency (facts §3.1)). Fix: set it from the engine's "
            "parallel slots (A2)."
        ],
    ),
    (
        "accelerator-missing",
        BAD["gpu-limit-and-accelerator"],
        False,
        "gpu-limit-and-accelerator",
        [
            SVC + "template.containers[0].resources.limits['nvidia.com/gpu'] is set but "
            "template.nodeSelector.accelerator is not; Cloud Run needs both (facts §1.1). Fix: set "
            "template.node_selector.accelerator to one of: nvidia-l4, nvidia-rtx-pro-6000."
        ],
    ),
    (
        "gpu-limit-missing",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].pop("nvidia.com/gpu")),
        False,
        "gpu-limit-and-accelerator",
        [
            SVC + "template.nodeSelector.accelerator is 'nvidia-l4' but no container sets "
            "resources.limits['nvidia.com/gpu']; Cloud Run needs both halves of the GPU syntax (facts §1.1). "
            "Fix: add 'nvidia.com/gpu': '1' to the serving container's resources.limits."
        ],
    ),
    (
        "accelerator-unknown",
        edit(GPU_SERVICE, lambda r: tmpl(r)["nodeSelector"].update(accelerator="nvidia-h100")),
        False,
        "gpu-limit-and-accelerator",
        [
            SVC + "template.nodeSelector.accelerator is 'nvidia-h100', not a Cloud Run GPU type we know "
            "(cloudrun_gpu.limits.GPU_TYPES: nvidia-l4, nvidia-rtx-pro-6000). Fix: use one of those, or add the new "
            "type with its CPU/memory minimums to limits.GPU_TYPES first."
        ],
    ),
    (
        "two-gpus",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update({"nvidia.com/gpu": "2"})),
        False,
        "gpu-limit-and-accelerator",
        [
            SVC + "template.containers[0].resources.limits['nvidia.com/gpu'] is '2'; Cloud Run attaches exactly one "
            "GPU per instance (facts §1.1). Fix: set it to '1' and scale out with instances."
        ],
    ),
    (
        "gpu-limit-on-two-containers",
        edit(GPU_SERVICE, lambda r: tmpl(r)["containers"].append({**SIDECAR, "startupProbe": {"httpGet": {}}})),
        False,
        "gpu-limit-and-accelerator",
        [
            SVC + "containers [0, 1] each set resources.limits['nvidia.com/gpu']; the GPU attaches to one container "
            "only (facts §1.1). Fix: keep the limit on the serving container alone."
        ],
    ),
    (
        "fuse-on-gen1",
        BAD["gpu-gcs-volume-gen2"],
        False,
        "gpu-gcs-volume-gen2",
        [
            SVC + "template.volumes ['model'] mount Cloud Storage (FUSE) but template.executionEnvironment is "
            "'EXECUTION_ENVIRONMENT_GEN1'; FUSE volumes need the gen2 environment (facts §1.2). Fix: set "
            "template.execution_environment='EXECUTION_ENVIRONMENT_GEN2'."
        ],
    ),
    (
        "cloud-storage-over-private-ranges",
        BAD["gpu-model-loading-egress"],
        False,
        "gpu-model-loading-egress",
        [
            SVC + "loads the model from Cloud Storage (containers[0] env MODEL_DOWNLOAD_URI='gs://b/m/*') but "
            "template.vpcAccess.egress is 'PRIVATE_RANGES_ONLY' with 1 Direct VPC network interface(s); Cloud "
            "Storage loading needs Direct VPC with egress ALL_TRAFFIC plus Private Service Connect for Google APIs "
            "(L4). Fix: set template.vpc_access.network_interfaces to the service's subnet and egress='ALL_TRAFFIC'."
        ],
    ),
    (
        "internet-with-egress-unset",
        edit(
            GPU_SERVICE,
            lambda r: (
                ctr(r)["envs"].append({"name": "MODEL_DOWNLOAD_URL", "value": "https://e.org/m"}),
                tmpl(r)["vpcAccess"].pop("egress"),
            ),
        ),
        False,
        "gpu-model-loading-egress",
        [
            SVC + "loads the model from the internet (containers[0] env MODEL_DOWNLOAD_URL) but "
            "template.vpcAccess.egress is not set (Cloud Run's default is PRIVATE_RANGES_ONLY); route all traffic "
            "through the VPC and its Cloud NAT for bandwidth (L5). Fix: set template.vpc_access egress='ALL_TRAFFIC' "
            "with Direct VPC interfaces and a Cloud NAT."
        ],
    ),
    (
        "too-few-vcpus",
        BAD["gpu-min-cpu-memory"],
        False,
        "gpu-min-cpu-memory",
        [
            SVC + "the instance has 2 vCPU and 32 GiB (sum of the containers' resources.limits; unset means Cloud "
            "Run's 1 vCPU / 512 MiB); NVIDIA L4 (24 GB) needs at least 4 vCPU and 16 GiB "
            "(https://cloud.google.com/run/docs/configuring/services/gpu (facts §1.1, §1.4)). Fix: set "
            "resources.limits cpu >= '4' and memory >= '16Gi' (defaults we use: 8 / 32Gi)."
        ],
    ),
    (
        "memory-unparsable",
        edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update(memory="lots")),
        False,
        "gpu-min-cpu-memory",
        [SVC + "cannot parse resources.limits cpu='8' memory='lots'."],
    ),
    (
        "max-instances-unset",
        BAD["gpu-max-instances"],
        False,
        "gpu-max-instances",
        [
            SVC + "neither template.scaling.maxInstanceCount nor scaling.maxInstanceCount is set, so Cloud Run's "
            "default of 100 instances applies; each GPU instance counts against the regional GPU quota (observed "
            "default 3) and the deploy fails with 'Max instances must be set to 3 or fewer' (facts §1.1, §1.3). "
            "Fix: set template.scaling.max_instance_count to at most your GPU quota for the zonal-redundancy mode "
            "in use."
        ],
    ),
    (
        "min-instances-above-max",
        edit(GPU_SERVICE, lambda r: tmpl(r)["scaling"].update(minInstanceCount=5)),
        False,
        "gpu-max-instances",
        [
            SVC + "template.scaling.minInstanceCount 5 exceeds maxInstanceCount 3. Fix: keep min_instance_count <= "
            "max_instance_count."
        ],
    ),
    (
        "service-account-unset",
        BAD["gpu-dedicated-service-account"],
        False,
        "gpu-dedicated-service-account",
        [
            SVC + "template.serviceAccount is not set, so the service runs as the Compute Engine default service "
            "account, which usually holds Editor on the whole project. Fix: create a dedicated service account with "
            "only what serving needs (e.g. roles/storage.objectViewer on the model bucket) and set "
            "template.service_account to its email."
        ],
    ),
    (
        "default-compute-account",
        edit(GPU_SERVICE, lambda r: tmpl(r).update(serviceAccount="123456-compute@developer.gserviceaccount.com")),
        False,
        "gpu-dedicated-service-account",
        [
            SVC + "template.serviceAccount is '123456-compute@developer.gserviceaccount.com', the Compute Engine "
            "default service account (usually Editor on the project). Fix: use a dedicated, least-privilege "
            "service account."
        ],
    ),
    (
        "probe-every-field-out-of-range",
        edit(
            GPU_SERVICE,
            lambda r: ctr(r)["startupProbe"].update(
                initialDelaySeconds=300, periodSeconds=300, timeoutSeconds=0, failureThreshold=0
            ),
        ),
        False,
        "startup-probe-limits",
        [
            SVC + "template.containers[0].startupProbe is outside Cloud Run's limits: initialDelaySeconds 300 is "
            "outside 0..240; periodSeconds 300 is outside 1..240; timeoutSeconds 0 must be >= 1 and smaller than "
            "periodSeconds 300 (google/cloud/run/v2/k8s.min.proto: timeout 'Must be smaller than period_seconds'); "
            "failureThreshold 0 is below 1. The startup window is initialDelaySeconds + failureThreshold × "
            "periodSeconds = 300 s (D2). " + PROBE_TAIL
        ],
    ),
    (
        "probe-non-numeric",
        edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(periodSeconds="ten")),
        False,
        "startup-probe-limits",
        [
            SVC + "template.containers[0].startupProbe has a non-numeric field: {'initialDelaySeconds': 10.0, "
            "'periodSeconds': 'ten', 'timeoutSeconds': 5.0, 'failureThreshold': 30.0}."
        ],
    ),
    (
        "invoker-iam-disabled",
        edit(GPU_SERVICE, lambda r: r.update(invokerIamDisabled=True)),
        False,
        "no-public-invoker",
        [
            SVC + "invokerIamDisabled is true, so Cloud Run skips the invoker IAM check and anyone who can reach the "
            "URL can run inference on a GPU billed per instance. Fix: remove invoker_iam_disabled and grant "
            "roles/run.invoker to the callers (a gateway service account or a group)."
        ],
    ),
    (
        "invoker-binding-to-all-authenticated-users",
        res(
            "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
            "inv",
            role="roles/run.invoker",
            members=["group:team@example.com", "allAuthenticatedUsers"],
            name="llm",
        ),
        False,
        "no-public-invoker",
        [
            "ServiceIamBinding 'inv': members contains 'allAuthenticatedUsers' with role 'roles/run.invoker'"
            + PUBLIC_RUN
        ],
    ),
    (
        "invoker-policy-data",
        res(
            "gcp:cloudrun/iamPolicy:IamPolicy",
            "pol",
            policyData='{"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}',
        ),
        False,
        "no-public-invoker",
        ["IamPolicy 'pol': policyData binds 'allUsers' to 'roles/run.invoker'" + PUBLIC_RUN],
    ),
    (
        "bucket-without-ubla-or-pap",
        res("gcp:storage/bucket:Bucket", "b", uniformBucketLevelAccess=False, publicAccessPrevention="inherited"),
        False,
        "bucket-private",
        [
            "Bucket 'b': uniformBucketLevelAccess is False; without it object ACLs can make single model files "
            "public behind the bucket's IAM. Fix: set uniform_bucket_level_access=True.",
            "Bucket 'b': publicAccessPrevention is 'inherited'; model weights (and anything else stored beside them) "
            "must not become public by a later IAM or ACL change. Fix: set public_access_prevention='enforced'.",
        ],
    ),
    (
        "bucket-acl",
        res(
            "gcp:storage/bucketACL:BucketACL",
            "acl",
            bucket="b",
            roleEntities=["READER:allUsers"],
            predefinedAcl="publicRead",
        ),
        False,
        "no-public-bucket-access",
        [
            "BucketACL 'acl': roleEntities contains 'READER:allUsers'" + PUBLIC_BUCKET,
            "BucketACL 'acl': predefinedAcl 'publicRead'" + PUBLIC_BUCKET,
        ],
    ),
    (
        "bucket-member-entity",
        res(
            "gcp:storage/objectAccessControl:ObjectAccessControl",
            "oac",
            bucket="b",
            object="m.gguf",
            entity="allUsers",
            role="READER",
        ),
        False,
        "no-public-bucket-access",
        ["ObjectAccessControl 'oac': entity 'allUsers' with role 'READER'" + PUBLIC_BUCKET],
    ),
    (
        "pickle-object",
        BAD["no-pickle-model-files"],
        False,
        "no-pickle-model-files",
        [
            "BucketObject 'weights': name is 'models/llama.pt', a pickle-format checkpoint (.bin, .pt, .pth, .pkl, "
            ".ckpt, .pickle), which can execute code when loaded (B3). Fix: convert the model to GGUF or safetensors "
            "and point at that file; if this string is not a model file, add it to this policy's allowedValues "
            "config."
        ],
    ),
    (
        "production-service-unprotected",
        BAD["production-deletion-safety"],
        True,
        "production-deletion-safety",
        [
            SVC + "production (policy config production=true) but deletionProtection is False; a stray `pulumi "
            "destroy` or a replacement would delete the serving endpoint. Fix: set deletion_protection=True."
        ],
    ),
    (
        "production-template-label",
        edit(
            GPU_SERVICE,
            lambda r: (r.update(deletionProtection=None), tmpl(r).update(labels={"environment": "production"})),
        ),
        False,
        "production-deletion-safety",
        [
            SVC + "production (label template.labels.environment='production') but deletionProtection is None; a "
            "stray `pulumi destroy` or a replacement would delete the serving endpoint. Fix: set "
            "deletion_protection=True."
        ],
    ),
    (
        "production-bucket-force-destroy",
        edit(PRIVATE_BUCKET, lambda r: r.update(forceDestroy=True, labels={"environment": "prod"})),
        False,
        "production-deletion-safety",
        [
            "Bucket 'models': production (label labels.environment='prod') but forceDestroy is true, so deleting "
            "the stack also deletes every model object in the bucket. Fix: set force_destroy=False (empty the "
            "bucket deliberately if needed)."
        ],
    ),
]


@pytest.mark.parametrize(
    ("resource", "production", "policy", "expected"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES]
)
def test_each_message_is_reported_word_for_word_by_its_policy_alone(
    resource: Resource, production: bool, policy: str, expected: list[str]
) -> None:
    found = check([resource], production=production)
    assert [v.message for v in found] == expected
    assert {v.policy for v in found} == {policy}


def test_every_policy_has_a_pinned_message() -> None:
    assert {m[3] for m in MESSAGES} == {p.name for p in rules.POLICIES}


# --- The pack's metadata, as the SDK's analyzer reports it to the Pulumi CLI -------------------------------------

DESCRIPTIONS = {
    "gpu-cpu-always-allocated": (
        "A4 / facts §1.2: every container of a Cloud Run GPU service sets resources.cpuIdle=false (GPU services need "
        "instance-based billing, CPU always allocated).",
        ["cloud-run", "gpu"],
    ),
    "gpu-http-startup-probe": (
        "D2: each serving container of a Cloud Run GPU service has an HTTP startup probe (never TCP, never absent), "
        "so the instance takes traffic only once the model is loaded.",
        ["cloud-run", "gpu"],
    ),
    "gpu-explicit-concurrency": (
        "D1, A1, A2 / facts §3.1: a Cloud Run GPU service sets template.maxInstanceRequestConcurrency explicitly, "
        "within 1..1000.",
        ["cloud-run", "gpu"],
    ),
    "gpu-model-loading-egress": (
        "L4, L5: a GPU service that loads its model from Cloud Storage uses Direct VPC with egress ALL_TRAFFIC; one "
        "that downloads it from the internet (MODEL_DOWNLOAD_URL) routes ALL_TRAFFIC through the VPC.",
        ["cloud-run", "gpu"],
    ),
    "gpu-limit-and-accelerator": (
        "facts §1.1: a GPU service sets the nvidia.com/gpu limit to '1' and template.nodeSelector.accelerator "
        "together, on one container, with a GPU type from cloudrun_gpu.limits.GPU_TYPES.",
        ["cloud-run", "gpu"],
    ),
    "gpu-gcs-volume-gen2": (
        "facts §1.2: a GPU service with a Cloud Storage FUSE volume sets executionEnvironment "
        "EXECUTION_ENVIRONMENT_GEN2.",
        ["cloud-run", "gpu"],
    ),
    "gpu-min-cpu-memory": (
        "facts §1.1 / limits.GPU_TYPES: a GPU service's instance has at least the GPU type's minimum CPU and memory "
        "(L4: 4 vCPU / 16 GiB; RTX PRO 6000: 20 vCPU / 80 GiB).",
        ["cloud-run", "gpu"],
    ),
    "gpu-max-instances": (
        "facts §1.1, §1.3: a GPU service sets its maximum instance count (GPU quota is small and the API rejects the "
        "default of 100).",
        ["cloud-run", "gpu"],
    ),
    "gpu-dedicated-service-account": (
        "facts §3.4, §4.1: a GPU service runs as a dedicated service account (template.serviceAccount set, not the "
        "Compute Engine default account), which alone is granted read access to the model bucket.",
        ["cloud-run", "gpu", "security"],
    ),
    "startup-probe-limits": (
        "D2 / facts §2.1-2.2: every Cloud Run service's startup probe stays inside Cloud Run's limits (delay and "
        "period <= 240 s, timeout < period, failureThreshold × period <= 1800 s with GPU, 240 s without).",
        ["cloud-run"],
    ),
    "no-public-invoker": (
        "facts §3.3-3.4 (Google deploys with --no-allow-unauthenticated): no Cloud Run service IAM grant to "
        "allUsers/allAuthenticatedUsers (roles/run.invoker or any role) and no invokerIamDisabled.",
        ["cloud-run", "security"],
    ),
    "bucket-private": (
        "facts §4.1 (model access by IAM to the service identity only): every Cloud Storage bucket sets "
        "uniformBucketLevelAccess=true and publicAccessPrevention='enforced'.",
        ["storage", "security"],
    ),
    "no-public-bucket-access": (
        "facts §4.1: no Cloud Storage IAM member/binding/policy or ACL grants anything to "
        "allUsers/allAuthenticatedUsers; only the service identity reads the model.",
        ["storage", "security"],
    ),
    "no-pickle-model-files": (
        "B3: no resource input names a pickle-format checkpoint (.bin .pt .pth .pkl .pickle .ckpt); pickle can "
        "execute code when loaded.",
        ["model", "security"],
    ),
    "production-deletion-safety": (
        "Repo rule (prod stack: deletion protection on): in production a Cloud Run service has "
        "deletionProtection=true and a bucket does not set forceDestroy=true. Production = policy config "
        "production=true, or a resource label environment=prod.",
        ["production"],
    ),
}
"""What ``pulumi policy ls`` and the Pulumi Cloud's policy pages show for each policy, in the pack's order."""

SCHEMAS = {
    "no-pickle-model-files": {
        "properties": {
            "allowedValues": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Exact input strings that end in a pickle suffix but are not model files.",
            }
        }
    },
    "production-deletion-safety": {
        "properties": {
            "production": {
                "type": "boolean",
                "default": False,
                "description": "Treat every resource as production (set it in the prod stack's pack config).",
            },
            "productionLabelValues": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["prod", "production"],
                "description": "Values of the 'environment' label that mark a resource as production.",
            },
        }
    },
}
"""The pack config a team may set (``pulumi preview --policy-pack-config``); the other policies take none."""


def test_the_analyzer_reports_each_policys_description_tags_and_config_schema() -> None:
    servicer: Any = _PolicyAnalyzerServicer(  # its gRPC methods are untyped
        rules.PACK_NAME, "0.0.1", list(rules.POLICIES), rules.DEFAULT_ENFORCEMENT
    )
    info = servicer.GetAnalyzerInfo(None, None)
    assert info.name == "cloudrun-gpu-policies"
    assert [(p.name, p.description) for p in info.policies] == [(n, d) for n, (d, _) in DESCRIPTIONS.items()]
    assert {p.name: list(p.tags) for p in info.policies} == {n: t for n, (_, t) in DESCRIPTIONS.items()}
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies if p.HasField("configSchema")}
    assert schemas == SCHEMAS


# --- startup-probe-limits at each edge ----------------------------------------------------------------------------


def _probe(resource: Resource) -> list[str]:
    return [v.message for v in check([resource], production=False) if v.policy == "startup-probe-limits"]


def _with_probe(**fields: Any) -> Resource:
    return edit(GPU_SERVICE, lambda r: ctr(r)["startupProbe"].update(fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"failureThreshold": 1},  # the minimum itself
        {"initialDelaySeconds": 0},
        {"initialDelaySeconds": 240},
        {"periodSeconds": 240, "failureThreshold": 7, "timeoutSeconds": 239},  # 7 × 240 = 1680 s
        {"periodSeconds": 2, "timeoutSeconds": 1},
        {"periodSeconds": 60, "failureThreshold": 30},  # a window of exactly 1800 s
        {"timeoutSeconds": 9},  # one below the period
    ],
    ids=str,
)
def test_a_probe_at_each_accepted_edge_passes(fields: dict[str, Any]) -> None:
    assert _probe(_with_probe(**fields)) == []


@pytest.mark.parametrize(
    ("fields", "problem", "window"),
    [
        ({"initialDelaySeconds": -1}, "initialDelaySeconds -1 is outside 0..240", 299),
        ({"initialDelaySeconds": 241}, "initialDelaySeconds 241 is outside 0..240", 541),
        ({"failureThreshold": 0.5}, "failureThreshold 0.5 is below 1", 15),
        ({"timeoutSeconds": 0.5}, "timeoutSeconds 0.5 must be >= 1 and smaller than periodSeconds 10 (PROTO)", 310),
        (
            {"periodSeconds": 61},
            "failureThreshold × periodSeconds = 30 × 61 = 1830 s exceeds 1800 s for a GPU service (facts §2.2)",
            1840,
        ),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_a_probe_just_past_each_edge_is_refused_with_its_window(
    fields: dict[str, Any], problem: str, window: int
) -> None:
    proto = "google/cloud/run/v2/k8s.min.proto: timeout 'Must be smaller than period_seconds'"
    assert _probe(_with_probe(**fields)) == [
        SVC + f"template.containers[0].startupProbe is outside Cloud Run's limits: {problem.replace('PROTO', proto)}. "
        f"The startup window is initialDelaySeconds + failureThreshold × periodSeconds = {window} s (D2). " + PROBE_TAIL
    ]


def test_a_service_without_gpu_gets_the_240_s_window() -> None:
    cpu = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r).pop("nodeSelector"),
            ctr(r)["resources"]["limits"].pop("nvidia.com/gpu"),
            ctr(r)["startupProbe"].update(initialDelaySeconds=0, periodSeconds=10, failureThreshold=25),
        ),
    )
    assert _probe(cpu) == [
        SVC + "template.containers[0].startupProbe is outside Cloud Run's limits: failureThreshold × periodSeconds = "
        "25 × 10 = 250 s exceeds 240 s for a non-GPU service (facts §2.2). The startup window is initialDelaySeconds "
        "+ failureThreshold × periodSeconds = 250 s (D2). " + PROBE_TAIL
    ]
    ok = edit(cpu, lambda r: ctr(r)["startupProbe"].update(failureThreshold=24))
    assert _probe(ok) == []


# --- which containers serve ------------------------------------------------------------------------------------


def test_without_ports_or_gpu_limits_every_container_is_held_to_the_http_probe_rule() -> None:
    """A GPU service (accelerator set) whose containers declare neither ports nor the GPU limit: none stands out as
    the serving one, so each is asked for an HTTP startup probe (none is skipped as a sidecar)."""
    bare = edit(
        GPU_SERVICE,
        lambda r: (
            ctr(r).pop("ports"),
            ctr(r).pop("startupProbe"),
            ctr(r)["resources"]["limits"].pop("nvidia.com/gpu"),
        ),
    )
    found = [v.message for v in check([bare], production=False) if v.policy == "gpu-http-startup-probe"]
    assert [m.split(" is not set")[0] for m in found] == [SVC + "template.containers[0].startupProbe"]


def test_a_sidecar_without_ports_is_not_asked_for_a_startup_probe() -> None:
    two = edit(GPU_SERVICE, lambda r: tmpl(r)["containers"].append({"name": "side", "image": "x"}))
    assert [v.policy for v in check([two], production=False)] == ["gpu-cpu-always-allocated"]


# --- survivors of the seed-42 re-score: milli-CPU quantities and which container the accelerator rule names ------


@pytest.mark.parametrize(("cpu", "ok"), [("8000m", True), ("4000m", True), (" 4000m ", True), ("3999m", False)])
def test_milli_cpu_quantities_are_read_in_thousandths_of_a_vcpu(cpu: str, ok: bool) -> None:
    """Kubernetes writes CPU as ``"4"`` or ``"4000m"`` (https://kubernetes.io/docs/reference/kubernetes-api/common-
    definitions/quantity/); an L4 needs 4 vCPU, so 4000m passes and 3999m does not."""
    svc = edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update(cpu=cpu))
    found = [v.message for v in check([svc], production=False) if v.policy == "gpu-min-cpu-memory"]
    assert found == (
        []
        if ok
        else [
            SVC + "the instance has 3.999 vCPU and 32 GiB (sum of the containers' resources.limits; unset means Cloud "
            "Run's 1 vCPU / 512 MiB); NVIDIA L4 (24 GB) needs at least 4 vCPU and 16 GiB "
            "(https://cloud.google.com/run/docs/configuring/services/gpu (facts §1.1, §1.4)). Fix: set "
            "resources.limits cpu >= '4' and memory >= '16Gi' (defaults we use: 8 / 32Gi)."
        ]
    )


def test_a_milli_cpu_quantity_that_is_no_number_cannot_be_parsed() -> None:
    svc = edit(GPU_SERVICE, lambda r: ctr(r)["resources"]["limits"].update(cpu="eightm"))
    found = [v.message for v in check([svc], production=False) if v.policy == "gpu-min-cpu-memory"]
    assert found == [SVC + "cannot parse resources.limits cpu='eightm' memory='32Gi'."]
    assert rules._cpu("m") is None and rules._cpu("1500m") == 1.5


def test_without_an_accelerator_the_first_container_with_the_gpu_limit_is_named() -> None:
    two = edit(
        GPU_SERVICE,
        lambda r: (
            tmpl(r).pop("nodeSelector"),
            tmpl(r)["containers"].append({**SIDECAR, "startupProbe": {"httpGet": {}}}),
        ),
    )
    found = [v.message for v in check([two], production=False) if v.policy == "gpu-limit-and-accelerator"]
    assert found[0] == (
        SVC + "template.containers[0].resources.limits['nvidia.com/gpu'] is set but template.nodeSelector.accelerator "
        "is not; Cloud Run needs both (facts §1.1). Fix: set template.node_selector.accelerator to one of: "
        "nvidia-l4, nvidia-rtx-pro-6000."
    )
