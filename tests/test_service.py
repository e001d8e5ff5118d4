"""GpuInferenceService on its own: every input Cloud Run receives comes from the sizing plan."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.service import (
    GpuInferenceService,
    GpuInferenceServiceArgs,
    GpuSettings,
    ResourcesSettings,
    ScalingSettings,
    ServiceSettings,
    VpcEgressArgs,
)
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings, LoadingMethod, LoadingSettings, ModelSettings

from .conftest import Rendered, parent_type, render, urns

SVC = "gcp:cloudrunv2/service:Service"
MODEL = ModelSettings(name="llama-3.1-8b", file="m.gguf")
ENGINE = EngineSettings(name=EngineName.LLAMA_CPP, context_length=8192)
LOADING = LoadingSettings(method=LoadingMethod.GCS_FUSE)
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
        "model": MODEL,
        "engine": ENGINE,
        "loading": LOADING,
        "resources": ResourcesSettings(cpu=8, memory_gib=32),
        "service": ServiceSettings(name="chat"),
        "bucket_name": "models-bucket",
        "vpc": VpcEgressArgs(
            network="projects/p/global/networks/n",
            subnetwork="projects/p/regions/europe-west1/subnetworks/s",
            tags=["llm"],
        ),
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
    assert s["ingress"] == "INGRESS_TRAFFIC_ALL"  # reachable by default; IAM decides who may call


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
    assert sa["accountId"] == "chat-runtime"
    assert r.one(SVC).inputs["template"]["serviceAccount"] == "chat-runtime@test-project.iam.gserviceaccount.com"
    assert not r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert not r.of_type("gcp:projects/iAMMember:IAMMember")  # no project-wide roles


def test_invokers_are_exactly_the_listed_members() -> None:
    r = build(
        service=ServiceSettings(
            name="chat", invokers=["group:ml@example.com", "serviceAccount:gw@p.iam.gserviceaccount.com"]
        ),
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
            service=ServiceSettings(name="chat", deletion_protection=True),
            gpu=GpuSettings(zonal_redundancy=True),
            scaling=ScalingSettings(min_instances=1, max_instances=3, max_concurrency=PLAN.max_parallel_sequences),
        )
        .one(SVC)
        .inputs
    )
    assert s["deletionProtection"] is True
    assert s["template"]["gpuZonalRedundancyDisabled"] is False
    assert s["template"]["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 3}
    assert s["template"]["maxInstanceRequestConcurrency"] == PLAN.max_parallel_sequences


def test_children_are_parented() -> None:
    r = build(service=ServiceSettings(name="chat", invokers=["group:ml@example.com"]))
    assert all(parent_type(u).startswith("cloudrun-gpu:index:GpuInferenceService$") for u in r.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"resources": ResourcesSettings(cpu=4, memory_gib=8)}, "GpuInferenceServiceArgs.resources.memory_gib"),
        ({"scaling": ScalingSettings(max_instances=9)}, "GpuInferenceServiceArgs.scaling.max_instances"),
        ({"scaling": ScalingSettings(max_concurrency=1)}, "GpuInferenceServiceArgs.scaling.max_concurrency"),
        ({"region": "us-west1"}, "GpuInferenceServiceArgs.region"),
        ({"engine": EngineSettings(context_length=400_000)}, "GpuInferenceServiceArgs.engine.context_length"),
        ({"bucket_name": None}, "GpuInferenceServiceArgs.bucket_name"),
        ({"vpc": None}, "GpuInferenceServiceArgs.vpc"),
    ],
)
def test_invalid_args_fail_before_registration(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        build(**overrides)
    assert field in [e.field for e in err.value.errors], err.value.render()


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ResourcesSettings(cpu=7), "ResourcesSettings.cpu"),
        (lambda: ScalingSettings(min_instances=3, max_instances=2), "ScalingSettings.min_instances"),
        (lambda: ServiceSettings(invokers=["bob"]), "ServiceSettings.invokers.0"),
        (lambda: ServiceSettings(name="Bad_Name"), "ServiceSettings.name"),
        (lambda: EngineSettings(image="Not An Image"), "EngineSettings.image"),
        (lambda: EngineSettings(name=EngineName.VLLM, prompt_cache=True), "EngineSettings.prompt_cache"),
        (lambda: GpuSettings(type="nvidia-h100"), "GpuSettings.type"),  # type: ignore[arg-type]
        (lambda: LoadingSettings(method="ftp"), "LoadingSettings.method"),  # type: ignore[arg-type]
        (lambda: ModelSettings(), "ModelSettings.name"),
        (lambda: ModelSettings(name="llama-3.1-8b", file="model.pt"), "ModelSettings.file"),
    ],
)
def test_settings_validate_themselves_for_python_importers(make: Any, field: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        make()
    assert [e.field for e in err.value.errors] == [field], err.value.render()
    assert all(e.fix for e in err.value.errors)


def test_ollama_gets_its_store_and_a_model_name() -> None:
    t = (
        build(
            model=ModelSettings(name="llama-3.1-8b", file="llama3.1:8b", object_prefix="ollama"),
            engine=EngineSettings(name=EngineName.OLLAMA, context_length=8192),
            image="ollama/ollama:0.6.5",
        )
        .one(SVC)
        .inputs["template"]
    )
    env = {e["name"]: e["value"] for e in t["containers"][0]["envs"]}
    assert env["OLLAMA_MODELS"] == "/mnt/models"  # the FUSE mount holds Ollama's manifests/ and blobs/
    vram = limits.GPU_TYPES["nvidia-l4"].vram_bytes
    assert int(env["OLLAMA_GPU_OVERHEAD"]) == int(vram * (1 - 0.95))  # bytes kept free: VRAM × (1 − fraction)
    assert env["OLLAMA_MODEL"] == "llama3.1:8b"  # Ollama gets its model name, not a file path
    # Ollama's entrypoint preloads the model before it serves /api/version (D2)
    assert t["containers"][0]["startupProbe"]["httpGet"] == {"path": "/api/version", "port": 8080}


def test_engine_specific_model_paths() -> None:
    llama = build().one(SVC).inputs["template"]["containers"][0]["args"]
    assert llama[llama.index("-m") + 1] == "/mnt/models/m.gguf"  # llama.cpp: a file under the mount
    vllm = (
        build(
            model=ModelSettings(name="llama-3.1-8b", quantization="awq-int4", file="llama-3.1-8b-awq"),
            engine=EngineSettings(name=EngineName.VLLM, context_length=8192),
        )
        .one(SVC)
        .inputs["template"]["containers"][0]["args"]
    )
    assert vllm[vllm.index("--model") + 1] == "/mnt/models"  # vLLM: the mounted prefix is the model directory


def test_download_method_volume_is_the_weights_plus_five_percent() -> None:
    r = build(
        loading=LoadingSettings(method=LoadingMethod.GCS_DOWNLOAD), resources=ResourcesSettings(cpu=8, memory_gib=32)
    )
    t = r.one(SVC).inputs["template"]
    weights = PLAN.weights_bytes
    want = -(-weights * 105 // 100 // 1024**3)  # ceil(weights × 1.05) in GiB
    assert t["volumes"] == [{"name": "model", "emptyDir": {"medium": "MEMORY", "sizeLimit": f"{want}Gi"}}]
    assert want * 1024**3 >= weights * 1.05
    env = {e["name"]: e["value"] for e in t["containers"][0]["envs"]}
    assert env["MODEL_DOWNLOAD_URI"] == "gs://models-bucket/models/*" and env["MODEL_DIR"] == "/models-mem"


def test_labels_reach_the_service_and_its_revisions() -> None:
    s = build(labels={"team": "ml"}).one(SVC).inputs
    assert s["labels"] == {"team": "ml"} and s["template"]["labels"] == {"team": "ml"}


def test_invoker_bindings_are_named_by_member_not_position() -> None:
    both = build(service=ServiceSettings(name="chat", invokers=["group:a@example.com", "group:b@example.com"]))
    one = build(service=ServiceSettings(name="chat", invokers=["group:b@example.com"]))
    name_of = {m.inputs["member"]: m.name for m in both.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")}
    assert [m.name for m in one.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")] == [
        name_of["group:b@example.com"]
    ]


def test_enums_match_the_facts_they_name() -> None:
    from cloudrun_gpu.service.settings import Accelerator
    from cloudrun_gpu.sizing.engines import ENGINES

    assert {a.value for a in Accelerator} == set(limits.GPU_TYPES)
    assert {e.value for e in EngineName} == set(ENGINES)
    assert {m.value for m in LoadingMethod} == set(limits.LOADING_METHODS)
