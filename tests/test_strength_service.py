"""Mutation-strength tests for service/plan.py, service/settings.py and what the service renders
(model paths, in-memory volume size, labels, the public-invoker warning, ideal batch size)."""

from __future__ import annotations

from math import ceil
from typing import Any

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.service import (
    MOUNT_PATHS,
    GpuInferenceService,
    GpuInferenceServiceArgs,
    GpuSettings,
    ResourcesSettings,
    ScalingSettings,
    ServiceSettings,
    ServingSettings,
    VpcEgressArgs,
    plan_service,
)
from cloudrun_gpu.service.plan import HOST_RAM_RESERVE_GIB, IN_MEMORY_HEADROOM, model_path
from cloudrun_gpu.service.settings import member_problem
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings, LoadingMethod, LoadingSettings, ModelSettings

from .conftest import Rendered, render

SVC = "gcp:cloudrunv2/service:Service"
LLAMA = ModelSettings(name="llama-3.1-8b", file="m.gguf")
VPC = VpcEgressArgs(network="n", subnetwork="s", tags=["llm"])


def plan(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "region": "europe-west1",
        "model": LLAMA,
        "engine": EngineSettings(context_length=4096),
        "loading": LoadingSettings(),
        "gpu": GpuSettings(),
        "resources": ResourcesSettings(),
        "scaling": ScalingSettings(),
        **kw,
    }
    return plan_service(ServingSettings(**args))


def errors_of(**kw: Any) -> list[tuple[str, Any, str]]:
    with pytest.raises(ConfigErrors) as err:
        plan(**kw)
    return [(e.field, e.value, e.allowed) for e in err.value.errors]


# --------------------------------------------------------------------------------- service/plan.py


def test_constants() -> None:
    assert MOUNT_PATHS == {
        "image": "/models",
        "gcs-fuse": "/mnt/models",
        "gcs-download": "/models-mem",
        "internet": "/models-mem",
    }
    assert (HOST_RAM_RESERVE_GIB, IN_MEMORY_HEADROOM) == (4, 1.05)


@pytest.mark.parametrize(
    ("engine", "method", "hub", "path"),
    [
        ("llama.cpp", "image", None, "/models/m.gguf"),
        ("llama.cpp", "gcs-fuse", None, "/mnt/models/m.gguf"),
        ("vllm", "gcs-download", None, "/models-mem/m.gguf"),
        ("llama.cpp", "internet", None, "/models-mem/m.gguf"),
        ("vllm", "internet", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
        ("vllm", "gcs-fuse", "meta-llama/Llama-3.1-8B", "/mnt/models"),  # only-dir mounts the model folder
        ("vllm", "image", None, "/models/m.gguf"),
        ("ollama", "gcs-fuse", None, "m.gguf"),
        ("ollama", "internet", "org/x", "m.gguf"),
    ],
)
def test_engine_specific_model_paths(engine: str, method: str, hub: str | None, path: str) -> None:
    model = ModelSettings(name="llama-3.1-8b", file="m.gguf", hub_id=hub)
    assert (
        model_path(model, EngineSettings(name=EngineName(engine)), LoadingSettings(method=LoadingMethod(method)))
        == path
    )


def test_model_path_reaches_the_engine_flags() -> None:
    p = plan(loading=LoadingSettings(method=LoadingMethod.GCS_FUSE))
    assert p.model_path == "/mnt/models/m.gguf" and p.mount_path == "/mnt/models"
    assert p.sizing.engine_args[p.sizing.engine_args.index("-m") + 1] == "/mnt/models/m.gguf"


@pytest.mark.parametrize("method", [LoadingMethod.GCS_DOWNLOAD, LoadingMethod.INTERNET])
def test_in_memory_volume_is_weights_times_1_05(method: LoadingMethod) -> None:
    p = plan(
        model=ModelSettings(name="llama-3.1-8b", file="m.gguf", quantization="Q8_0"),
        loading=LoadingSettings(method=LoadingMethod(method)),
    )
    weights = p.sizing.weights_bytes
    assert p.in_memory_volume_gib == ceil(weights * 1.05 / GIB) == 9  # 7.95 GiB × 1.05 = 8.34 → 9
    assert ceil(weights / 1.05 / GIB) == 8  # so dividing instead would be caught
    assert p.memory_gib == 32  # max(16 minimum, 9 + 4) below the L4 default of 32


@pytest.mark.parametrize("method", [LoadingMethod.IMAGE, LoadingMethod.GCS_FUSE])
def test_no_in_memory_volume_for_image_and_fuse(method: LoadingMethod) -> None:
    assert plan(loading=LoadingSettings(method=LoadingMethod(method))).in_memory_volume_gib == 0


def test_memory_must_hold_the_in_memory_copy_plus_the_engine() -> None:
    mistral = ModelSettings(name="mistral-7b-v0.3", file="m.gguf", quantization="F16")
    download = LoadingSettings(method=LoadingMethod.GCS_DOWNLOAD)
    ok = plan(model=mistral, loading=download, resources=ResourcesSettings(memory_gib=19))
    assert (ok.in_memory_volume_gib, ok.memory_gib) == (15, 19)
    errs = errors_of(model=mistral, loading=download, resources=ResourcesSettings(memory_gib=18))
    assert errs == [("resources.memory_gib", 18, "19..176")] or errs[0][:2] == ("resources.memory_gib", 18)
    with pytest.raises(ConfigErrors) as err:
        plan(model=mistral, loading=download, resources=ResourcesSettings(memory_gib=18))
    e = err.value.errors[0]
    assert e.fix == "set resources.memory_gib ≥ 19"
    assert "the in-memory model copy needs 15 GiB + 4 GiB for the engine" in e.problem
    with pytest.raises(ConfigErrors) as err:
        plan(resources=ResourcesSettings(memory_gib=15))
    assert err.value.errors[0].problem == "nvidia-l4 needs ≥ 16 GiB"
    assert plan(resources=ResourcesSettings(memory_gib=16)).memory_gib == 16


def test_memory_above_the_largest_instance_is_refused() -> None:
    errs = errors_of(resources=ResourcesSettings(memory_gib=1000))
    assert [e[0] for e in errs] == ["resources.memory_gib"]
    assert errs[0][2].startswith("16..")
    top = int(errs[0][2].split("..")[1])
    assert plan(resources=ResourcesSettings(memory_gib=top)).memory_gib == top


def test_cpu_defaults_and_minimum() -> None:
    assert plan().cpu == 8
    assert plan(resources=ResourcesSettings(cpu=4)).cpu == 4
    rtx = GpuSettings(type="nvidia-rtx-pro-6000")  # type: ignore[arg-type]
    assert plan(region="europe-west4", gpu=rtx).cpu == 20
    errs = errors_of(region="europe-west4", gpu=rtx, resources=ResourcesSettings(cpu=16))
    assert [e[:2] for e in errs] == [("resources.cpu", 16)]
    assert errs[0][2].startswith("20, 22")


def test_region_without_the_gpu() -> None:
    errs = errors_of(region="us-west1")
    assert [e[:2] for e in errs] == [("region", "us-west1")]


@pytest.mark.parametrize(
    ("zonal", "quota_id"),
    [(False, "NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion"), (True, "NvidiaL4GpuAllocPerProjectRegion")],
)
def test_quota(zonal: bool, quota_id: str) -> None:
    gpu = GpuSettings(quota=2, zonal_redundancy=zonal)
    assert plan(gpu=gpu, scaling=ScalingSettings(max_instances=2)).sizing
    with pytest.raises(ConfigErrors) as err:
        plan(gpu=gpu, scaling=ScalingSettings(max_instances=3))
    (e,) = err.value.errors
    assert (e.field, e.allowed) == ("scaling.max_instances", "1..2")
    assert quota_id in e.problem


def test_ideal_batch_size_and_concurrency_override() -> None:
    p = plan(engine=EngineSettings(context_length=4096, parallel=2, ideal_batch_size=3))
    assert (p.sizing.ideal_batch_size, p.concurrency) == (3, 5)
    assert plan(engine=EngineSettings(context_length=4096, parallel=2)).concurrency == 4
    over = plan(engine=EngineSettings(context_length=4096, parallel=2), scaling=ScalingSettings(max_concurrency=2))
    assert over.concurrency == 2
    errs = errors_of(engine=EngineSettings(context_length=4096, parallel=2), scaling=ScalingSettings(max_concurrency=1))
    assert errs[0][:2] == ("scaling.max_concurrency", 1)
    assert errs[0][2].startswith("2..")


def test_engine_knobs_reach_the_sizing() -> None:
    p = plan(
        engine=EngineSettings(context_length=4096, memory_fraction=0.8, max_parallel=3, prompt_cache=True),
        loading=LoadingSettings(method=LoadingMethod.GCS_FUSE, throughput_gib_per_s=0.25),
    )
    assert p.sizing.memory_fraction == 0.8
    assert p.sizing.max_parallel_sequences == 3
    assert p.sizing.engine_args[-2:] == ["--slot-save-path", "/slots"]
    assert "at 0.250 GiB/s (loading.load_bytes_per_s)" in " ".join(p.sizing.explain)
    assert "--slot-save-path" not in plan().sizing.engine_args


def test_model_and_sizing_errors_are_collected() -> None:
    errs = errors_of(region="us-west1", engine=EngineSettings(context_length=1_048_576))
    assert [e[0] for e in errs] == ["region", "engine.context_length"]


# ----------------------------------------------------------------------------- service/settings.py


@pytest.mark.parametrize(
    "member",
    [
        "allUsers",
        "allAuthenticatedUsers",
        "user:a@example.com",
        "serviceAccount:x@p.iam.gserviceaccount.com",
        "group:g@example.com",
        "domain:example.com",
        "principal://iam.googleapis.com/x",
        "principalSet://iam.googleapis.com/y",
        "principal://x",  # the shortest: '//' and one character
    ],
)
def test_valid_members(member: str) -> None:
    assert member_problem(member) is None


@pytest.mark.parametrize(
    ("member", "problem", "fix"),
    [
        ("allusers", "is not an IAM member", "did you mean 'allUsers'?"),
        ("ALLAUTHENTICATEDUSERS", "is not an IAM member", "did you mean 'allAuthenticatedUsers'?"),
        ("alice@example.com", "is not an IAM member", "prefix it with its kind, e.g. 'user:alice@example.com'"),
        ("usr:a@example.com", "has an unknown member kind 'usr'", "did you mean 'user:'?"),
        ("zzz:a@example.com", "has an unknown member kind 'zzz'", "use user:, group:, …"),
        ("user:alice", "is not a valid user member", "write user:name@example.com"),
        ("domain:Example", "is not a valid domain member", "write domain:example.com"),
        ("principal://", "is not a valid principal member", "write principal:name@example.com"),
        ("principalSet:x", "is not a valid principalSet member", "write principalSet:name@example.com"),
    ],
)
def test_invalid_members(member: str, problem: str, fix: str) -> None:
    assert member_problem(member) == (problem, fix)


def test_service_settings_problems() -> None:
    with pytest.raises(ConfigErrors) as err:
        ServiceSettings(invokers=["user:a@example.com", "bad", "user:a@example.com"])
    assert [(e.field, e.problem) for e in err.value.errors] == [
        ("ServiceSettings.invokers.1", "is not an IAM member"),
        ("ServiceSettings.invokers.2", "is listed twice"),
    ]
    assert err.value.errors[0].allowed == "user:, serviceAccount:, group:, …"


@pytest.mark.parametrize(
    ("name", "account"),
    [
        ("llm", "llm-runtime"),
        ("a" * 22, "a" * 22 + "-runtime"),  # exactly 30 characters: kept
        ("a" * 23, "a" * 23 + "-run"),
        ("a" * 25 + "-bcdefgh", "a" * 25 + "-run"),  # no hyphen left before -run
        ("a" * 40, "a" * 26 + "-run"),
    ],
)
def test_account_id(name: str, account: str) -> None:
    assert ServiceSettings(name=name).account_id == account


def test_resource_and_scaling_problems() -> None:
    with pytest.raises(ConfigErrors) as err:
        ResourcesSettings(cpu=5)
    assert err.value.errors[0].field == "ResourcesSettings.cpu"
    assert err.value.errors[0].allowed.startswith("4, 6, 8")
    assert ResourcesSettings(cpu=32).cpu == 32
    with pytest.raises(ConfigErrors) as err:
        ScalingSettings(min_instances=3, max_instances=2)
    assert (err.value.errors[0].field, err.value.errors[0].allowed) == ("ScalingSettings.min_instances", "0..2")
    assert ScalingSettings(min_instances=2, max_instances=2).min_instances == 2


def test_defaults() -> None:
    s = ServiceSettings()
    assert (s.name, s.invokers, s.deletion_protection, s.liveness_probe) == ("llm", [], None, True)
    g = GpuSettings()
    assert (str(g.type), g.zonal_redundancy, g.quota_preflight) == ("nvidia-l4", False, True)
    sc = ScalingSettings()
    assert (sc.min_instances, sc.max_instances, sc.request_timeout_s, sc.max_concurrency) == (0, 1, 600, None)


# ------------------------------------------------------------------------------ the rendered service


def build(**overrides: Any) -> Rendered:
    kwargs: dict[str, Any] = {
        "region": "europe-west1",
        "image": "img",
        "model": LLAMA,
        "engine": EngineSettings(context_length=4096),
        "service": ServiceSettings(name="chat"),
        "bucket_name": "models-bucket",
        "vpc": VPC,
        **overrides,
    }

    def program() -> Any:
        svc = GpuInferenceService("chat", GpuInferenceServiceArgs(**kwargs))
        return svc.service.urn

    return render(program)


def test_labels_reach_the_service_and_its_revisions() -> None:
    s = build(labels={"team": "ml", "env": "dev"}).one(SVC).inputs
    assert s["labels"] == {"team": "ml", "env": "dev"}
    assert s["template"]["labels"] == {"team": "ml", "env": "dev"}
    assert "labels" not in build().one(SVC).inputs


def test_public_invoker_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: said.append(msg))
    build(service=ServiceSettings(name="chat", invokers=["user:a@example.com"]))
    assert said == []
    build(service=ServiceSettings(name="chat", invokers=["user:a@example.com", "allUsers"]))
    assert said == ["chat: invokers include a public member; anyone can call this GPU service"]
    said.clear()
    build(service=ServiceSettings(name="chat", invokers=["allAuthenticatedUsers"]))
    assert len(said) == 1


def test_gcs_download_volume_env_and_mount() -> None:
    model = ModelSettings(name="llama-3.1-8b", file="m.gguf", quantization="Q8_0", object_prefix="/llama/")
    s = build(model=model, loading=LoadingSettings(method=LoadingMethod.GCS_DOWNLOAD)).one(SVC).inputs
    t = s["template"]
    assert t["volumes"] == [{"name": "model", "emptyDir": {"medium": "MEMORY", "sizeLimit": "9Gi"}}]
    c = t["containers"][0]
    assert c["volumeMounts"] == [{"name": "model", "mountPath": "/models-mem"}]
    env = {e["name"]: e["value"] for e in c["envs"]}
    assert env["MODEL_DOWNLOAD_URI"] == "gs://models-bucket/llama/*"
    assert env["MODEL_DIR"] == "/models-mem"
    assert c["args"][c["args"].index("-m") + 1] == "/models-mem/m.gguf"


def test_ollama_reads_its_store_from_the_mount() -> None:
    ollama = EngineSettings(name=EngineName.OLLAMA, context_length=4096)
    s = build(engine=ollama, loading=LoadingSettings(method=LoadingMethod.GCS_FUSE)).one(SVC).inputs
    c = s["template"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["envs"]}
    assert env["OLLAMA_MODELS"] == "/mnt/models"
    assert env["OLLAMA_MODEL"] == "m.gguf"
    assert env["OLLAMA_GPU_OVERHEAD"] == str(int(23034 * 1024**2 * (1 - 0.95)))
    assert c["startupProbe"]["httpGet"]["path"] == "/api/version"
    assert c["livenessProbe"]["httpGet"]["path"] == "/api/version"
    assert c["name"] == "ollama"
    assert "args" not in c


@pytest.mark.parametrize(
    ("cls", "ok", "bad"),
    [
        (ResourcesSettings, {"memory_gib": 1}, {"memory_gib": 0}),
        (ScalingSettings, {"min_instances": 1000, "max_instances": 1000}, {"min_instances": -1}),
        (ScalingSettings, {"max_instances": 1000}, {"max_instances": 1001}),
        (ScalingSettings, {"max_instances": 1}, {"max_instances": 0}),
        (ScalingSettings, {"request_timeout_s": 3600}, {"request_timeout_s": 3601}),
        (ScalingSettings, {"request_timeout_s": 1}, {"request_timeout_s": 0}),
        (ScalingSettings, {"max_concurrency": 1}, {"max_concurrency": 0}),
        (ScalingSettings, {"max_concurrency": 1000}, {"max_concurrency": 1001}),
        (GpuSettings, {"quota": 1}, {"quota": 0}),
        (GpuSettings, {"quota": 1000}, {"quota": 1001}),
        (ServiceSettings, {"name": "a" * 42}, {"name": "a" * 43}),
        (ServiceSettings, {"name": "a-1"}, {"name": "a-"}),
    ],
)
def test_setting_bounds(cls: Any, ok: dict[str, Any], bad: dict[str, Any]) -> None:
    made = cls(**ok)
    assert all(getattr(made, k) == v for k, v in ok.items())
    with pytest.raises(ConfigErrors) as err:
        cls(**bad)
    assert [e.field for e in err.value.errors] == [f"{cls.__name__}.{next(iter(bad))}"]


def test_min_instances_above_1000_is_out_of_range() -> None:
    with pytest.raises(ConfigErrors) as err:
        ScalingSettings(min_instances=1001, max_instances=1000)
    assert [(e.field, e.problem) for e in err.value.errors] == [("ScalingSettings.min_instances", "is out of range")]


# ------------------------------------------------------------------ service/__init__.py, field by field


def test_image_method_without_vpc_renders_every_cloud_run_field() -> None:
    seen: dict[str, Any] = {}

    def program() -> Any:
        svc = GpuInferenceService(
            "chat",
            GpuInferenceServiceArgs(
                region="europe-west1",
                image="img",
                model=LLAMA,
                engine=EngineSettings(context_length=4096),
                service=ServiceSettings(name="chat", invokers=["user:a@example.com"]),
            ),
        )
        seen["svc"] = svc
        return pulumi.Output.all(svc.url, svc.service_account_email, svc.service_name)

    r = render(program)
    svc = seen["svc"]
    plan, probe = svc.plan, svc.plan.sizing.startup_probe
    s = r.one(SVC).inputs
    assert (s["name"], s["location"], s["launchStage"], s["ingress"]) == (
        "chat",
        "europe-west1",
        "GA",
        "INGRESS_TRAFFIC_ALL",
    )
    assert (s["deletionProtection"], s["invokerIamDisabled"]) == (False, False)
    assert "customAudiences" not in s and "labels" not in s
    t = s["template"]
    assert t["serviceAccount"] == "chat-runtime@test-project.iam.gserviceaccount.com"
    assert t["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    assert t["nodeSelector"] == {"accelerator": "nvidia-l4"}
    assert t["gpuZonalRedundancyDisabled"] is True
    assert t["timeout"] == "600s"
    assert t["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 1}
    assert t["maxInstanceRequestConcurrency"] == plan.concurrency == svc.concurrency
    assert "vpcAccess" not in t and "volumes" not in t
    (c,) = t["containers"]
    assert (c["name"], c["image"]) == ("llamacpp", "img")
    assert c["ports"] == {"containerPort": 8080, "name": "http1"}
    assert c["resources"] == {
        "limits": {"cpu": str(plan.cpu), "memory": f"{plan.memory_gib}Gi", "nvidia.com/gpu": "1"},
        "cpuIdle": False,
        "startupCpuBoost": True,
    }
    assert c["startupProbe"] == {
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
        "httpGet": {"path": "/health", "port": 8080},
    }
    assert c["livenessProbe"] == {
        "periodSeconds": 30,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
        "httpGet": {"path": "/health", "port": 8080},
    }
    assert c["args"] == list(plan.sizing.engine_args)
    assert "volumeMounts" not in c
    assert svc.startup_probe == {
        "initial_delay_seconds": probe.initial_delay_seconds,
        "period_seconds": probe.period_seconds,
        "timeout_seconds": probe.timeout_seconds,
        "failure_threshold": probe.failure_threshold,
        "path": "/health",
    }
    (binding,) = r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert binding.name == "chat-invoker-user:a@example.com"
    assert binding.inputs == {
        "name": "chat",
        "location": "europe-west1",
        "role": "roles/run.invoker",
        "member": "user:a@example.com",
    }
    email = "chat-runtime@test-project.iam.gserviceaccount.com"
    assert r.value[1:] == [email, "chat"]
    assert r.value[0].startswith("https://chat-")


def test_vpc_zonal_redundancy_audiences_and_no_liveness() -> None:
    s = build(
        gpu=GpuSettings(zonal_redundancy=True),
        custom_audiences=["https://llm.example.com"],
        service=ServiceSettings(name="chat", liveness_probe=False, deletion_protection=True),
        service_account_email="sa@p.iam.gserviceaccount.com",
        scaling=ScalingSettings(min_instances=1, max_instances=2, request_timeout_s=900),
    ).one(SVC)
    i = s.inputs
    assert i["customAudiences"] == ["https://llm.example.com"]
    assert i["deletionProtection"] is True
    t = i["template"]
    assert t["gpuZonalRedundancyDisabled"] is False
    assert t["serviceAccount"] == "sa@p.iam.gserviceaccount.com"
    assert (t["timeout"], t["scaling"]) == ("900s", {"minInstanceCount": 1, "maxInstanceCount": 2})
    assert t["vpcAccess"] == {
        "egress": "ALL_TRAFFIC",
        "networkInterfaces": [{"network": "n", "subnetwork": "s", "tags": ["llm"]}],
    }
    assert "livenessProbe" not in t["containers"][0]
    untagged = build(vpc=VpcEgressArgs(network="n", subnetwork="s")).one(SVC).inputs["template"]["vpcAccess"]
    assert untagged["networkInterfaces"] == [{"network": "n", "subnetwork": "s"}]


@pytest.mark.parametrize("method", ["gcs-fuse", "gcs-download", "gcs-stream", "internet"])
def test_network_methods_need_a_vpc(method: str) -> None:
    engine = EngineSettings(name=EngineName.VLLM) if method == "gcs-stream" else EngineSettings()
    with pytest.raises(ConfigErrors) as err:
        GpuInferenceServiceArgs(
            region="r",
            image="i",
            model=LLAMA,
            engine=engine,
            loading=LoadingSettings(method=LoadingMethod(method)),
            bucket_name="b",
        )
    (e,) = err.value.errors
    assert (e.field, e.value) == ("GpuInferenceServiceArgs.vpc", None)
    assert e.problem == (
        f"loading.method {method} reads over the network, which needs Direct VPC with ALL_TRAFFIC egress (L4, L5)"
    )
    assert e.fix == "pass vpc=VpcEgressArgs(network=…, subnetwork=…) from an InferenceNetwork"
    assert GpuInferenceServiceArgs(region="r", image="i", model=LLAMA).vpc is None  # image: no VPC needed


@pytest.mark.parametrize("method", ["gcs-fuse", "gcs-download", "gcs-stream"])
def test_bucket_methods_need_a_bucket(method: str) -> None:
    engine = EngineSettings(name=EngineName.VLLM) if method == "gcs-stream" else EngineSettings()
    with pytest.raises(ConfigErrors) as err:
        GpuInferenceServiceArgs(
            region="r",
            image="i",
            model=LLAMA,
            engine=engine,
            loading=LoadingSettings(method=LoadingMethod(method)),
            vpc=VPC,
        )
    (e,) = err.value.errors
    assert (e.field, e.problem, e.fix) == (
        "GpuInferenceServiceArgs.bucket_name",
        f"loading.method {method} reads the model from a bucket",
        "pass bucket_name (e.g. ModelBucket(...).bucket_name)",
    )
    internet = GpuInferenceServiceArgs(
        region="r", image="i", model=LLAMA, loading=LoadingSettings(method=LoadingMethod.INTERNET), vpc=VPC
    )
    assert internet.bucket_name is None


def test_dict_inputs_are_parsed_and_their_errors_collected() -> None:
    args = GpuInferenceServiceArgs(
        region="r",
        image="i",
        model={"name": "llama-3.1-8b"},  # type: ignore[arg-type]
        engine={"name": "vllm"},  # type: ignore[arg-type]
        vpc={"network": "n", "subnetwork": "s"},  # type: ignore[arg-type]
    )
    assert isinstance(args.model, ModelSettings) and args.engine.name == "vllm"
    assert isinstance(args.vpc, VpcEgressArgs) and args.vpc.tags == []
    with pytest.raises(ConfigErrors) as err:
        GpuInferenceServiceArgs(
            region="r",
            image="i",
            model={"name": "x", "gguf": "y"},  # type: ignore[arg-type]
            scaling={"max_instances": 0},  # type: ignore[arg-type]
        )
    assert [e.field for e in err.value.errors] == [
        "GpuInferenceServiceArgs.model.gguf",
        "GpuInferenceServiceArgs.scaling.max_instances",
    ]


def test_plan_errors_name_the_args_fields() -> None:
    args = GpuInferenceServiceArgs(region="antarctica1", image="i", model=LLAMA)
    with pytest.raises(ConfigErrors) as err:
        args.plan()
    assert all(e.field.startswith("GpuInferenceServiceArgs.") for e in err.value.errors)
    assert "GpuInferenceServiceArgs.region" in [e.field for e in err.value.errors]


def test_a_single_plan_error_is_renamed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudrun_gpu.service as service_module
    from cloudrun_gpu.errors import ConfigError

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConfigError("engine.context_length", 9, "is too small", "set engine.context_length")

    monkeypatch.setattr(service_module, "plan_service", refuse)
    with pytest.raises(ConfigErrors) as err:
        GpuInferenceServiceArgs(region="europe-west1", image="i", model=LLAMA).plan()
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == ("GpuInferenceServiceArgs.engine.context_length", 9, "is too small")
    assert e.fix == "set GpuInferenceServiceArgs.engine.context_length"
