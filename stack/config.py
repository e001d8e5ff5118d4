"""The stack's typed configuration, validated before any resource is registered.

A stack file holds one object per concern under the project namespace
(``cloudrun-gpu:model``, ``cloudrun-gpu:engine`` …) plus ``gcp:project``/``gcp:region``.
:func:`load_stack` turns that into a :class:`StackConfig` and a sizing plan, or raises
:class:`ConfigErrors` listing every bad field with its value, what is allowed and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any, Literal

import yaml
from cloudrun_gpu import limits, netcalc
from cloudrun_gpu.errors import ConfigError, ConfigErrors, collect
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, catalogue_model, read_gguf, read_hf, refuse_pickle, size
from cloudrun_gpu.sizing.spec import ModelSpec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROJECT = "cloudrun-gpu"
"""The Pulumi project name, and so the config namespace (``cloudrun-gpu:<section>``)."""
SECTIONS = (
    "environment",
    "gpu",
    "model",
    "engine",
    "loading",
    "resources",
    "scaling",
    "network",
    "service",
    "registry",
    "bucket",
)
HOST_RAM_RESERVE_GIB = 4
"""Instance memory the engine process itself needs besides any in-memory model copy."""

EngineName = Literal["llama.cpp", "ollama", "vllm"]
LoadingMethod = Literal["image", "gcs-fuse", "gcs-download", "internet"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuConfig(_Model):
    type: str = "nvidia-l4"
    zonal_redundancy: bool = False
    """False = cheaper best-effort GPUs with their own quota (``…NoZonalRedundancy…``)."""
    quota: int = Field(default=int(limits.DEFAULT_GPU_QUOTA.value), ge=1, le=1000)
    """The project's GPU quota in this region for the chosen redundancy mode: bounds max instances."""


class ModelConfig(_Model):
    name: str | None = None
    """A built-in catalogue model (``python -m stack size --list``)."""
    gguf: str | None = None
    """A local GGUF file read for its real geometry and tensor sizes."""
    hf_config: str | None = None
    """A local Hugging Face config.json (safetensors beside it are read for sizes)."""
    quantization: str | None = None
    """Weight format when no file is given; 4-bit by default (B2)."""
    file: str = "model.gguf"
    """File or directory the engine loads under the loading method's mount path; for Ollama, the model
    name in its store (e.g. ``llama3.1:8b-instruct-q4_K_M``)."""
    object_prefix: str = "models"
    """Bucket folder holding the model for the gcs-* methods."""
    hub_id: str | None = None
    """Hub reference for the internet method (e.g. an HF repo or an Ollama tag)."""


class EngineConfig(_Model):
    name: EngineName = "llama.cpp"
    context_length: int | None = Field(default=None, ge=256, le=1_048_576)
    kv_cache_type: str | None = None
    parallel: int | None = Field(default=None, ge=1, le=1000)
    max_parallel: int | None = Field(default=None, ge=1, le=1000)
    ideal_batch_size: int | None = Field(default=None, ge=0, le=1000)
    memory_fraction: float | None = Field(default=None, gt=0.5, le=0.98)
    image: str | None = None
    """Serving image; defaults to the image built from ``container/<engine>`` in our registry."""
    prompt_cache: bool = False
    """llama.cpp: restore the slot cache saved at build time (B4, R2)."""


class LoadingConfig(_Model):
    method: LoadingMethod = "image"
    throughput_gib_per_s: float | None = Field(default=None, ge=0.001, le=100)
    """Override the method's assumed read rate after measuring your own (L2)."""


class ResourcesConfig(_Model):
    cpu: int | None = None
    memory_gib: int | None = Field(default=None, ge=1)


class ScalingConfig(_Model):
    min_instances: int = Field(default=0, ge=0, le=1000)
    max_instances: int = Field(default=1, ge=1, le=1000)
    request_timeout_s: int = Field(default=600, ge=1, le=limits.REQUEST_TIMEOUT_MAX_S)
    max_concurrency: int | None = Field(default=None, ge=limits.CONCURRENCY_MIN, le=int(limits.CONCURRENCY_MAX.value))
    """Override the A2-derived value (e.g. with a load-test result, A3); must still cover the engine."""


class PscConfig(_Model):
    enabled: bool = True
    address: str = "10.255.255.254"
    target: Literal["all-apis", "vpc-sc"] = "all-apis"
    name: str = "llmapis"


class NatConfig(_Model):
    enabled: bool = True
    dynamic_port_allocation: bool = True
    min_ports_per_vm: int = Field(default=64, ge=32, le=65536)
    max_ports_per_vm: int = Field(default=4096, ge=64, le=65536)
    log_filter: Literal["ERRORS_ONLY", "TRANSLATIONS_ONLY", "ALL"] = "ERRORS_ONLY"


class NetworkConfig(_Model):
    existing_network: str | None = None
    """Bring your own: a network id/self-link; nothing network-level is created then."""
    existing_subnetwork: str | None = None
    subnet_cidr: str = "10.8.0.0/26"
    psc: PscConfig = PscConfig()
    nat: NatConfig = NatConfig()
    tags: list[str] = Field(default_factory=lambda: ["llm-inference"])


class ServiceConfig(_Model):
    name: str = Field(default="llm", pattern=r"^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$")
    invokers: list[str] = Field(default_factory=list)
    """IAM members allowed to call the service; empty by default (nobody public)."""
    ingress: Literal[
        "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    ] = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    deletion_protection: bool | None = None
    """Defaults to true in prod, false elsewhere."""
    liveness_probe: bool = True


RemoteCache = Literal["docker-hub", "ghcr"]


def _all_remote_caches() -> list[RemoteCache]:
    return ["docker-hub", "ghcr"]


class RegistryConfig(_Model):
    repository_id: str = Field(default="llm-serving", pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    keep_versions: int = Field(default=5, ge=1, le=100)
    delete_untagged_after_days: int = Field(default=7, ge=1, le=365)
    remote_caches: list[RemoteCache] = Field(default_factory=_all_remote_caches)


class BucketConfig(_Model):
    name_prefix: str = Field(default="llm-models", pattern=r"^[a-z0-9][-a-z0-9]{2,40}$")
    versioning: bool = False
    soft_delete_days: int = Field(default=7, ge=0, le=90)
    """0 disables soft delete; otherwise GCS accepts 7-90 days."""
    force_destroy: bool | None = None
    """Defaults to false in prod, true elsewhere."""


class StackConfig(_Model):
    project: str = Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    region: str
    environment: Literal["dev", "staging", "prod"] = "dev"
    gpu: GpuConfig = GpuConfig()
    model: ModelConfig = ModelConfig(name="gemma-3-4b")
    engine: EngineConfig = EngineConfig()
    loading: LoadingConfig = LoadingConfig()
    resources: ResourcesConfig = ResourcesConfig()
    scaling: ScalingConfig = ScalingConfig()
    network: NetworkConfig = NetworkConfig()
    service: ServiceConfig = ServiceConfig()
    registry: RegistryConfig = RegistryConfig()
    bucket: BucketConfig = BucketConfig()

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


@dataclass(frozen=True)
class ValidatedStack:
    """A config that passed every check, with the numbers derived from it."""

    config: StackConfig
    sizing: SizingPlan
    cpu: int
    memory_gib: int
    in_memory_volume_gib: int
    model_path: str
    deletion_protection: bool
    force_destroy: bool
    concurrency: int


MOUNT_PATHS = {"image": "/models", "gcs-fuse": "/mnt/models", "gcs-download": "/models-mem", "internet": "/models-mem"}


def _pydantic_errors(exc: ValidationError) -> ConfigErrors:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        allowed = ", ".join(f"{k} {v}" for k, v in ctx.items() if k in ("ge", "gt", "le", "lt", "pattern", "expected"))
        fix = (
            "remove this key (it is not a known setting)"
            if err["type"] == "extra_forbidden"
            else (f"set {loc} to a valid value" + (f" ({allowed})" if allowed else ""))
        )
        errors.append(ConfigError(loc, err.get("input"), err["msg"], fix, allowed))
    return ConfigErrors(errors)


def parse_config(raw: dict[str, Any]) -> StackConfig:
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise _pydantic_errors(exc) from None


def model_spec(cfg: StackConfig, base_dir: Path | None = None) -> ModelSpec:
    m = cfg.model
    given = [k for k in ("name", "gguf", "hf_config") if getattr(m, k)]
    if len(given) != 1:
        raise ConfigError(
            "model",
            {k: getattr(m, k) for k in given} or None,
            "exactly one of model.name, model.gguf, model.hf_config must be set",
            "keep one model source",
        )
    refuse_pickle("model.file", m.file)
    if m.name:
        return catalogue_model(m.name)
    path = Path(m.gguf or m.hf_config or "")
    if base_dir and not path.is_absolute():
        path = base_dir / path
    return read_gguf(path) if m.gguf else read_hf(path)


def validate(cfg: StackConfig, base_dir: Path | None = None) -> ValidatedStack:
    """Cross-field checks and the sizing plan; raises ConfigErrors listing every problem found."""
    errors: list[ConfigError] = []

    gpu = limits.GPU_TYPES.get(cfg.gpu.type)
    if gpu is None:
        errors.append(
            ConfigError(
                "gpu.type",
                cfg.gpu.type,
                "is not a Cloud Run GPU type",
                "set gpu.type to a supported accelerator",
                ", ".join(limits.GPU_TYPES),
            )
        )
        raise ConfigErrors(errors)
    if cfg.region not in gpu.regions:
        errors.append(
            ConfigError(
                "region",
                cfg.region,
                f"has no {gpu.name} GPUs on Cloud Run",
                f"deploy to one of {', '.join(gpu.regions)}",
                ", ".join(gpu.regions),
            )
        )
    cpu = cfg.resources.cpu or gpu.default_cpu
    if cpu < gpu.min_cpu or cpu not in limits.ALLOWED_CPU:
        errors.append(
            ConfigError(
                "resources.cpu",
                cpu,
                f"{gpu.name} needs at least {gpu.min_cpu} vCPU from the allowed values",
                f"set resources.cpu to ≥ {gpu.min_cpu}",
                ", ".join(str(c) for c in limits.ALLOWED_CPU if c >= gpu.min_cpu),
            )
        )
    if cfg.scaling.max_instances > cfg.gpu.quota:
        quota_id = gpu.quota_zonal if cfg.gpu.zonal_redundancy else gpu.quota_no_zonal
        errors.append(
            ConfigError(
                "scaling.max_instances",
                cfg.scaling.max_instances,
                f"exceeds the stated GPU quota ({cfg.gpu.quota}, quota {quota_id})",
                "lower scaling.max_instances, or request more quota and raise gpu.quota",
                f"1..{cfg.gpu.quota}",
            )
        )
    if cfg.scaling.min_instances > cfg.scaling.max_instances:
        errors.append(
            ConfigError(
                "scaling.min_instances",
                cfg.scaling.min_instances,
                "is above max_instances",
                f"set it ≤ {cfg.scaling.max_instances}",
            )
        )
    if cfg.loading.method == "internet" and not cfg.network.nat.enabled:
        errors.append(
            ConfigError(
                "loading.method",
                "internet",
                "needs Cloud NAT to reach the hub (L5)",
                "set network.nat.enabled: true, or load from your own bucket (gcs-download)",
            )
        )
    if cfg.engine.prompt_cache and cfg.engine.name != "llama.cpp":
        errors.append(
            ConfigError(
                "engine.prompt_cache",
                True,
                "is implemented for llama.cpp's slot cache only",
                "set engine.name: llama.cpp or engine.prompt_cache: false",
            )
        )
    if cfg.is_prod and cfg.bucket.force_destroy:
        errors.append(
            ConfigError(
                "bucket.force_destroy",
                True,
                "would delete the production model with the stack",
                "remove bucket.force_destroy from the prod stack (empty the bucket by hand if "
                "you really mean to destroy it)",
            )
        )
    if 0 < cfg.bucket.soft_delete_days < 7:
        errors.append(
            ConfigError(
                "bucket.soft_delete_days",
                cfg.bucket.soft_delete_days,
                "Cloud Storage keeps soft-deleted objects 7-90 days, or not at all",
                "set 0 (off) or 7..90",
                "0, 7..90",
            )
        )
    collect(errors, lambda: _check_network(cfg))

    spec = collect(errors, lambda: model_spec(cfg, base_dir))
    if spec is None:
        raise ConfigErrors(errors)
    model_path = f"{MOUNT_PATHS[cfg.loading.method]}/{cfg.model.file}"
    if cfg.engine.name == "ollama":
        model_path = cfg.model.file  # an Ollama model name; OLLAMA_MODELS points at the mount
    elif cfg.loading.method == "internet" and cfg.model.hub_id:
        model_path = cfg.model.hub_id
    rate = cfg.loading.throughput_gib_per_s * GIB if cfg.loading.throughput_gib_per_s else None
    req = SizingRequest(
        model=spec,
        engine=cfg.engine.name,
        gpu=cfg.gpu.type,
        context_length=cfg.engine.context_length,
        kv_cache_type=cfg.engine.kv_cache_type,
        weights_quant=cfg.model.quantization,
        parallel=cfg.engine.parallel,
        max_parallel=cfg.engine.max_parallel,
        ideal_batch_size=cfg.engine.ideal_batch_size,
        memory_fraction=cfg.engine.memory_fraction,
        loading_method=cfg.loading.method,
        load_bytes_per_s=rate,
        model_path=model_path,
        slot_save_path="/slots" if cfg.engine.prompt_cache else None,
    )
    plan = collect(errors, lambda: size(req))
    if plan is None:
        raise ConfigErrors(errors)

    volume_gib = 0
    if cfg.loading.method in ("gcs-download", "internet"):
        volume_gib = ceil(plan.weights_bytes * 1.05 / GIB)
    need_mem = max(gpu.min_memory_gib, volume_gib + HOST_RAM_RESERVE_GIB)
    memory = cfg.resources.memory_gib or max(need_mem, gpu.default_memory_gib)
    if memory < need_mem:
        why = f"{gpu.name} needs ≥ {gpu.min_memory_gib} GiB"
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
            )
        )
    concurrency = plan.max_instance_request_concurrency
    if cfg.scaling.max_concurrency is not None:
        if cfg.scaling.max_concurrency < plan.max_parallel_sequences:
            errors.append(
                ConfigError(
                    "scaling.max_concurrency",
                    cfg.scaling.max_concurrency,
                    f"is below the engine's {plan.max_parallel_sequences} parallel sequences, so GPU slots idle (R6)",
                    f"set it ≥ {plan.max_parallel_sequences}, or lower engine.parallel to match",
                    f"{plan.max_parallel_sequences}..{int(limits.CONCURRENCY_MAX.value)}",
                )
            )
        concurrency = cfg.scaling.max_concurrency
    if errors:
        raise ConfigErrors(errors)
    return ValidatedStack(
        config=cfg,
        sizing=plan,
        cpu=cpu,
        memory_gib=memory,
        in_memory_volume_gib=volume_gib,
        model_path=model_path,
        deletion_protection=cfg.service.deletion_protection
        if cfg.service.deletion_protection is not None
        else cfg.is_prod,
        force_destroy=cfg.bucket.force_destroy if cfg.bucket.force_destroy is not None else not cfg.is_prod,
        concurrency=concurrency,
    )


def _check_network(cfg: StackConfig) -> None:
    net = cfg.network
    errs = netcalc.network_errors(
        prefix="network.",
        subnet_cidr=net.subnet_cidr,
        max_instances=cfg.scaling.max_instances,
        existing_network=net.existing_network,
        existing_subnetwork=net.existing_subnetwork,
        psc_name=net.psc.name if net.psc.enabled else None,
        psc_address=net.psc.address if net.psc.enabled else None,
    )
    if net.nat.enabled:
        collect(errs, lambda: _check_nat(net.nat))
    if errs:
        raise ConfigErrors(errs)


def _check_nat(nat: NatConfig) -> None:
    for name in ("min_ports_per_vm", "max_ports_per_vm"):
        v = getattr(nat, name)
        if nat.dynamic_port_allocation and v & (v - 1):
            raise ConfigError(
                f"network.nat.{name}",
                v,
                "must be a power of two with dynamic port allocation",
                f"use {1 << (v.bit_length() - 1)} or {1 << v.bit_length()}",
            )
    if nat.dynamic_port_allocation and nat.max_ports_per_vm < nat.min_ports_per_vm:
        raise ConfigError(
            "network.nat.max_ports_per_vm",
            nat.max_ports_per_vm,
            "is below min_ports_per_vm",
            f"set it ≥ {nat.min_ports_per_vm}",
        )


# --- Reading config ---------------------------------------------------------------------------


def raw_from_sections(project: str | None, region: str | None, sections: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {k: v for k, v in sections.items() if v is not None}
    raw["project"] = project
    raw["region"] = region
    return raw


def stack_file(stack: str, root: Path) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> dict[str, str]:
    """A stack file's ``config:`` as Pulumi hands it to a program: fully-qualified keys, JSON strings."""
    if not path.is_file():
        raise ConfigError(
            "--stack",
            path.name,
            "stack file not found",
            f"create {path.name} (see Pulumi.dev.yaml) or pick an existing stack",
        )
    data = yaml.safe_load(path.read_text()) or {}
    out: dict[str, str] = {}
    for key, value in (data.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = "[secret]"
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = json.dumps(value)
    return out


def raw_from_flat(flat: dict[str, str]) -> dict[str, Any]:
    """Flat Pulumi config (``ns:key`` → string) into the raw dict :class:`StackConfig` reads."""
    sections: dict[str, Any] = {}
    for key, value in flat.items():
        ns, _, name = key.partition(":")
        if ns != PROJECT:
            continue
        try:
            sections[name] = json.loads(value)
        except json.JSONDecodeError:
            sections[name] = value
    return raw_from_sections(flat.get("gcp:project"), flat.get("gcp:region"), sections)


def load_stack(stack: str, root: Path) -> ValidatedStack:
    """Offline: read ``Pulumi.<stack>.yaml`` and validate it (what ``plan`` uses)."""
    flat = read_stack_file(stack_file(stack, root))
    return validate(parse_config(raw_from_flat(flat)), base_dir=root)
