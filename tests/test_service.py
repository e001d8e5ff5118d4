"""GpuInferenceService on its own: every input Cloud Run receives comes from the sizing plan."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.loading import model_delivery
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size

from .conftest import Rendered, parent_type, render, urns

SVC = "gcp:cloudrunv2/service:Service"
PLAN = size(
    SizingRequest(
        model=catalogue_model("llama-3.1-8b"),
        engine="llama.cpp",
        context_length=8192,
        loading_method="gcs-fuse",
        model_path="/mnt/models/m.gguf",
    )
)


def build(**overrides: Any) -> Rendered:
    kwargs: dict[str, Any] = {
        "region": "europe-west1",
        "image": "europe-west1-docker.pkg.dev/p/r/llama-cpp:x",
        "sizing": PLAN,
        "cpu": 8,
        "memory_gib": 32,
        "service_name": "chat",
        "vpc": VpcEgressArgs(
            network="projects/p/global/networks/n",
            subnetwork="projects/p/regions/europe-west1/subnetworks/s",
            tags=["llm"],
        ),
        "delivery": model_delivery("gcs-fuse", mount_path="/mnt/models", bucket="models-bucket"),
        **overrides,
    }

    def program() -> Any:
        svc = GpuInferenceService("chat", GpuInferenceServiceArgs(**kwargs))
        kids = [svc.service, *svc.invoker_bindings, *([svc.identity] if svc.identity else [])]
        return urns(*kids)

    return render(program)


def test_gpu_resources_billing_and_execution_environment() -> None:
    s = build().one(SVC).inputs
    t = s["template"]
    c = t["containers"][0]
    assert t["nodeSelector"] == {"accelerator": "nvidia-l4"}
    assert c["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    assert c["resources"]["cpuIdle"] is False  # instance-based billing, required with a GPU (A4)
    assert c["resources"]["startupCpuBoost"] is True
    assert t["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    assert t["gpuZonalRedundancyDisabled"] is True
    assert t["timeout"] == "600s"
    assert s["deletionProtection"] is False
    assert s["launchStage"] == "GA"
    assert s["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"


def test_concurrency_probe_and_engine_flags_come_from_the_plan() -> None:
    t = build().one(SVC).inputs["template"]
    c = t["containers"][0]
    assert t["maxInstanceRequestConcurrency"] == PLAN.max_instance_request_concurrency  # D1, A2
    probe = c["startupProbe"]
    p = PLAN.startup_probe
    assert probe == {
        "initialDelaySeconds": p.initial_delay_seconds,
        "periodSeconds": p.period_seconds,
        "timeoutSeconds": p.timeout_seconds,
        "failureThreshold": p.failure_threshold,
        "httpGet": {"path": "/health", "port": 8080},
    }  # HTTP readiness, never a bare TCP probe (D2)
    assert probe["initialDelaySeconds"] <= limits.PROBE_INITIAL_DELAY_MAX
    assert probe["periodSeconds"] <= limits.PROBE_PERIOD_MAX and probe["timeoutSeconds"] < probe["periodSeconds"]
    assert probe["failureThreshold"] * probe["periodSeconds"] <= limits.STARTUP_WINDOW_GPU_S.value
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert c["args"] == PLAN.engine_args  # R6: the engine's -np is the plan's parallel
    assert c["args"][c["args"].index("-np") + 1] == str(PLAN.max_parallel_sequences)
    assert c["ports"] == {"containerPort": 8080, "name": "http1"}


def test_direct_vpc_egress_all_traffic_and_model_volume() -> None:
    t = build().one(SVC).inputs["template"]
    assert t["vpcAccess"] == {
        "egress": "ALL_TRAFFIC",
        "networkInterfaces": [
            {
                "network": "projects/p/global/networks/n",
                "subnetwork": "projects/p/regions/europe-west1/subnetworks/s",
                "tags": ["llm"],
            }
        ],
    }
    assert t["volumes"][0]["gcs"]["bucket"] == "models-bucket"
    assert t["containers"][0]["volumeMounts"] == [{"name": "model", "mountPath": "/mnt/models"}]


def test_dedicated_identity_and_no_public_invoker_by_default() -> None:
    r = build()
    sa = r.one("gcp:serviceaccount/account:Account").inputs
    assert sa["accountId"] == "chat-run"
    assert r.one(SVC).inputs["template"]["serviceAccount"] == "chat-run@test-project.iam.gserviceaccount.com"
    assert not r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert not r.of_type("gcp:projects/iAMMember:IAMMember")  # no project-wide roles


def test_invokers_are_exactly_the_listed_members() -> None:
    r = build(
        invokers=["group:ml@example.com", "serviceAccount:gw@p.iam.gserviceaccount.com"],
        service_account_email="existing@p.iam.gserviceaccount.com",
    )
    members = [
        (m.inputs["name"], m.inputs["role"], m.inputs["member"])
        for m in r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    ]
    assert sorted(members) == [
        ("chat", "roles/run.invoker", "group:ml@example.com"),
        ("chat", "roles/run.invoker", "serviceAccount:gw@p.iam.gserviceaccount.com"),
    ]
    assert not r.of_type("gcp:serviceaccount/account:Account")  # an existing identity was given
    assert r.one(SVC).inputs["template"]["serviceAccount"] == "existing@p.iam.gserviceaccount.com"


def test_production_settings() -> None:
    s = (
        build(
            deletion_protection=True,
            gpu_zonal_redundancy_disabled=False,
            min_instances=1,
            max_instances=3,
            concurrency=PLAN.max_parallel_sequences,
        )
        .one(SVC)
        .inputs
    )
    assert s["deletionProtection"] is True
    assert s["template"]["gpuZonalRedundancyDisabled"] is False
    assert s["template"]["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 3}
    assert s["template"]["maxInstanceRequestConcurrency"] == PLAN.max_parallel_sequences


def test_children_are_parented() -> None:
    r = build(invokers=["group:ml@example.com"])
    assert all(parent_type(u).startswith("cloudrun-gpu:index:GpuInferenceService$") for u in r.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"cpu": 2}, "cpu"),
        ({"memory_gib": 8}, "memory_gib"),
        ({"max_instances": 9}, "max_instances"),
        ({"concurrency": 1}, "concurrency"),
        ({"concurrency": 5000}, "concurrency"),
        ({"gpu_type": "nvidia-rtx-pro-6000", "cpu": 20, "memory_gib": 80}, "sizing"),
    ],
)
def test_invalid_args_fail_before_registration(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        build(**overrides)
    assert field in [e.field for e in err.value.errors]
