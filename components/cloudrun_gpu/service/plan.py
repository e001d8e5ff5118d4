"""From a service's settings to every number its revision needs (pure: no Pulumi).

``GpuInferenceService`` calls :func:`plan_service` before it registers anything, and the stack's
``plan`` command calls the same function to explain the numbers, so the rules that span the GPU,
the model, the engine, loading, resources and scaling are written once, here. Errors name fields
relative to the service's arguments (``engine.context_length``, ``resources.memory_gib``, ``region``);
each boundary renames them to what its user wrote.
"""

import dataclasses
from dataclasses import dataclass
from math import ceil
from pathlib import Path

from cloudrun_gpu import limits
from cloudrun_gpu.engines import profile
from cloudrun_gpu.errors import ConfigError, ConfigErrors, collect
from cloudrun_gpu.images import pinned_image
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.loading import MOUNT_PATHS as LOADING_MOUNT_PATHS
from cloudrun_gpu.service.settings import GpuSettings, ResourcesSettings, ScalingSettings
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, size
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingSettings, ModelSettings
from cloudrun_gpu.sizing.spec import ModelSpec

HOST_RAM_RESERVE_GIB = 4
"""Instance memory the engine process itself needs besides any in-memory model copy."""
IN_MEMORY_HEADROOM = 1.05
"""An in-memory volume 5 % larger than the weights: file-system overhead and tokenizer/config files."""
MOUNT_PATHS = LOADING_MOUNT_PATHS
"""Where each loading method puts the model inside the container (gcs-stream puts it nowhere: see below); defined
in ``loading.py``, where the engine flags read it too (mmap per method, R7)."""
STREAM_BUCKET_REF = "$(MODEL_BUCKET)"
"""gcs-stream's bucket in the engine's args: Cloud Run expands it from the MODEL_BUCKET env (``loading.py``)."""


@dataclass(frozen=True)
class ServingSettings:
    """The one bundle a GPU service is sized and rendered from: where, which model, which engine, how the weights
    arrive, on which GPU, with what resources and scaling. The library component, the stack's config reader and
    the plan command pass this one value instead of its seven groups."""

    region: str
    model: ModelSettings
    engine: EngineSettings
    loading: LoadingSettings
    gpu: GpuSettings
    resources: ResourcesSettings
    scaling: ScalingSettings


@dataclass(frozen=True)
class ServicePlan:
    """A service configuration that passed every check, with the numbers derived from it."""

    sizing: SizingPlan
    cpu: int
    memory_gib: int
    in_memory_volume_gib: int
    mount_path: str
    model_path: str
    concurrency: int
    served_model_name: str
    """The name the engine serves the model under, which clients send as ``model`` (its profile's rule)."""


def model_path(model: ModelSettings, engine: EngineSettings, loading: LoadingSettings) -> str:
    """What the engine is told to load: a file under the method's mount, an Ollama model name (its
    store is found through OLLAMA_MODELS), or the hub id for the internet method."""
    if engine.name == "ollama":
        return model.file
    if loading.method == "internet" and model.hub_id:
        return model.hub_id
    if loading.method == "gcs-stream":  # vLLM's Run:ai Model Streamer reads the model folder in the bucket
        return f"gs://{STREAM_BUCKET_REF}/{model.object_prefix.strip('/')}"
    if engine.name == "vllm" and loading.method == "gcs-fuse":
        return MOUNT_PATHS["gcs-fuse"]  # only-dir=<object_prefix> mounts the model directory itself
    return f"{MOUNT_PATHS[loading.method]}/{model.file}"


def plan_service(serving: ServingSettings, base_dir: Path | None = None) -> ServicePlan:
    """Cross-setting checks and the sizing plan; raises ConfigErrors listing every problem found.

    The seams: where the service may run (:func:`_placement_problems`), what the engine can load
    (its profile), the sizing request (:func:`_sizing_request`), the instance memory (:func:`_memory`) and the
    Cloud Run concurrency (:func:`_concurrency`)."""
    model, engine, loading, gpu = serving.model, serving.engine, serving.loading, serving.gpu
    errors = _placement_problems(serving)
    engine_profile = collect(errors, lambda: profile(engine.name))
    if engine_profile is not None and (bad := engine_profile.check_loading(loading.method)) is not None:
        errors.append(bad)
    pinned = None
    if engine.image is None:  # we build the image: its pinned engine must run on this GPU's driver
        pinned = collect(errors, lambda: pinned_image(engine.name, gpu.type))
    spec = collect(errors, lambda: model.spec(base_dir))
    if spec is None or engine_profile is None:
        raise ConfigErrors(errors)
    path = model_path(model, engine, loading)
    served = engine_profile.served_model_name(path, model.file, model.hub_id, loading.method)
    req = _sizing_request(serving, spec, path, served, pinned.version if pinned is not None else None)
    if engine_profile.sizing_name != engine.name:  # an engine that follows another engine's memory rules
        req = dataclasses.replace(req, engine=engine_profile.sizing_name, profile=engine.name)
    plan = collect(errors, lambda: size(req))
    if plan is None:
        raise ConfigErrors(errors)
    volume_gib, memory = _memory(serving, plan, errors)
    concurrency = _concurrency(serving, plan, errors)
    if errors:
        raise ConfigErrors(errors)
    return ServicePlan(
        sizing=plan,
        cpu=serving.resources.cpu or limits.GPU_TYPES[gpu.type].default_cpu,
        memory_gib=memory,
        in_memory_volume_gib=volume_gib,
        mount_path=MOUNT_PATHS.get(loading.method, ""),
        model_path=path,
        concurrency=concurrency,
        served_model_name=served,
    )


def _placement_problems(serving: ServingSettings) -> list[ConfigError]:
    """Where the service may run: the GPU's regions, its CPU floor, the stated quota."""
    region, gpu, resources, scaling = serving.region, serving.gpu, serving.resources, serving.scaling
    errors: list[ConfigError] = []
    facts = limits.GPU_TYPES[gpu.type]
    if region not in facts.regions:
        errors.append(
            ConfigError(
                "region",
                region,
                f"has no {facts.name} GPUs on Cloud Run",
                f"deploy to one of {', '.join(facts.regions)}",
                ", ".join(facts.regions),
            )
        )
    cpu = resources.cpu or facts.default_cpu
    if cpu < facts.min_cpu and cpu in limits.ALLOWED_CPU:  # not-allowed values are reported by the settings
        errors.append(
            ConfigError(
                "resources.cpu",
                cpu,
                f"{facts.name} needs at least {facts.min_cpu} vCPU",
                f"set resources.cpu ≥ {facts.min_cpu}",
                ", ".join(str(c) for c in limits.ALLOWED_CPU if c >= facts.min_cpu),
            )
        )
    if scaling.max_instances > gpu.quota:
        quota_id = facts.quota_zonal if gpu.zonal_redundancy else facts.quota_no_zonal
        errors.append(
            ConfigError(
                "scaling.max_instances",
                scaling.max_instances,
                f"exceeds the stated GPU quota ({gpu.quota}, quota {quota_id})",
                "lower scaling.max_instances, or request more quota and raise gpu.quota",
                f"1..{gpu.quota}",
            )
        )
    return errors


def _sizing_request(
    serving: ServingSettings, spec: ModelSpec, path: str, served: str, pinned_version: str | None
) -> SizingRequest:
    """The sizing engine's question for this service (the engine's version: the setting, else the pin's)."""
    model, engine, loading = serving.model, serving.engine, serving.loading
    rate = loading.throughput_gib_per_s * GIB if loading.throughput_gib_per_s else None
    return SizingRequest(
        model=spec,
        engine=engine.name,
        gpu=serving.gpu.type,
        context_length=engine.context_length,
        kv_cache_type=engine.kv_cache_type,
        weights_quant=model.quantization,
        parallel=engine.parallel,
        max_parallel=engine.max_parallel,
        ideal_batch_size=engine.ideal_batch_size,
        memory_fraction=engine.memory_fraction,
        loading_method=loading.method,
        load_bytes_per_s=rate,
        model_path=path,
        slot_save_path="/slots" if engine.prompt_cache else None,
        served_model_name=served,
        engine_version=engine.version or pinned_version,
        max_num_batched_tokens=engine.max_num_batched_tokens,
    )


def _memory(serving: ServingSettings, plan: SizingPlan, errors: list[ConfigError]) -> tuple[int, int]:
    """(in-memory volume GiB, instance memory GiB): the methods that copy the model into memory need room for it
    besides the engine; errors on ``resources.memory_gib``."""
    facts = limits.GPU_TYPES[serving.gpu.type]
    volume_gib = 0
    if serving.loading.method in ("gcs-download", "internet"):
        volume_gib = ceil(plan.weights_bytes * IN_MEMORY_HEADROOM / GIB)
    need_mem = max(facts.min_memory_gib, volume_gib + HOST_RAM_RESERVE_GIB)
    memory = serving.resources.memory_gib or max(need_mem, facts.default_memory_gib)
    if memory < need_mem:
        why = f"{facts.name} needs ≥ {facts.min_memory_gib} GiB"
        if volume_gib:
            why += f"; the in-memory model copy needs {volume_gib} GiB + {HOST_RAM_RESERVE_GIB} GiB for the engine"
        errors.append(
            ConfigError(
                "resources.memory_gib",
                memory,
                why,
                f"set resources.memory_gib ≥ {need_mem}",
                f"{need_mem}..{int(limits.MAX_MEMORY_GIB.value)}",
            )
        )
    elif memory > limits.MAX_MEMORY_GIB.value:
        errors.append(
            ConfigError(
                "resources.memory_gib",
                memory,
                "is above the largest GPU instance we allow",
                f"set resources.memory_gib ≤ {int(limits.MAX_MEMORY_GIB.value)}",
                f"{need_mem}..{int(limits.MAX_MEMORY_GIB.value)}",
            )
        )
    return volume_gib, memory


def _concurrency(serving: ServingSettings, plan: SizingPlan, errors: list[ConfigError]) -> int:
    """Cloud Run's request concurrency: the plan's (A2), or the user's override if it keeps every slot busy (R6)."""
    concurrency = plan.max_instance_request_concurrency
    override = serving.scaling.max_concurrency
    if override is not None:
        if override < plan.max_parallel_sequences:
            errors.append(
                ConfigError(
                    "scaling.max_concurrency",
                    override,
                    f"is below the engine's {plan.max_parallel_sequences} parallel sequences, so GPU slots idle (R6)",
                    f"set scaling.max_concurrency ≥ {plan.max_parallel_sequences}, or lower engine.parallel to match",
                    f"{plan.max_parallel_sequences}..{int(limits.CONCURRENCY_MAX.value)}",
                )
            )
        concurrency = override
    return concurrency
