"""``GpuInferenceService``: a Cloud Run v2 service with one GPU, built from a sizing plan.

What it guarantees (practices D1, D2, R6, A1, A4, L4):

- GPU via ``node_selector.accelerator`` and an ``nvidia.com/gpu`` limit of 1; CPU and memory at
  least the GPU type's minimum; ``cpu_idle=False`` (GPU services are billed per instance, A4),
  startup CPU boost, execution environment gen2 (needed by FUSE volumes and Direct VPC).
- ``max_instance_request_concurrency`` and the HTTP startup probe come from the sizing plan, and
  the engine gets flags from the same plan, so the engine's and Cloud Run's concurrency agree.
- Direct VPC egress ALL_TRAFFIC; a dedicated runtime identity; invokers only as listed.

``gpu_zonal_redundancy_disabled=True`` (the default here) buys best-effort GPU capacity at a
lower price and draws on the ``…NoZonalRedundancy…`` quota; False reserves failover capacity
in another zone at a higher price and uses the zonal-redundancy quota (``limits.GPU_TYPES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.loading import ModelDelivery
from cloudrun_gpu.sizing import SizingPlan
from cloudrun_gpu.sizing.engines import PORT

TOKEN = "cloudrun-gpu:index:GpuInferenceService"
INVOKER_ROLE = "roles/run.invoker"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


@dataclass
class VpcEgressArgs:
    network: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    tags: list[str] = field(default_factory=list)
    egress: str = "ALL_TRAFFIC"


@dataclass
class GpuInferenceServiceArgs:
    region: str
    image: pulumi.Input[str]
    sizing: SizingPlan
    cpu: int
    memory_gib: int
    service_name: str = "llm"
    gpu_type: str = "nvidia-l4"
    gpu_zonal_redundancy_disabled: bool = True
    concurrency: int | None = None
    """Override the plan's A2 value (e.g. after a load test); must cover the engine's parallel slots."""
    min_instances: int = 0
    max_instances: int = 1
    gpu_quota: int = int(limits.DEFAULT_GPU_QUOTA.value)
    request_timeout_s: int = 600
    vpc: VpcEgressArgs | None = None
    delivery: ModelDelivery | None = None
    service_account_email: pulumi.Input[str] | None = None
    """An existing identity; None creates a dedicated one with no project roles."""
    invokers: list[str] = field(default_factory=list)
    ingress: str = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    deletion_protection: bool = False
    liveness_probe: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    project: str | None = None

    def validate(self) -> None:
        errors: list[ConfigError] = []
        gpu = limits.GPU_TYPES.get(self.gpu_type)
        if gpu is None:
            raise ConfigError(
                "gpu_type",
                self.gpu_type,
                "not a Cloud Run GPU type",
                "use a supported GPU",
                ", ".join(limits.GPU_TYPES),
            )
        if self.sizing.gpu != self.gpu_type:
            errors.append(
                ConfigError(
                    "sizing",
                    self.sizing.gpu,
                    f"was computed for another GPU than {self.gpu_type}",
                    "size the model for the GPU the service uses",
                )
            )
        if self.cpu < gpu.min_cpu:
            errors.append(
                ConfigError("cpu", self.cpu, f"{gpu.name} needs ≥ {gpu.min_cpu} vCPU", f"set cpu ≥ {gpu.min_cpu}")
            )
        if self.memory_gib < gpu.min_memory_gib:
            errors.append(
                ConfigError(
                    "memory_gib",
                    self.memory_gib,
                    f"{gpu.name} needs ≥ {gpu.min_memory_gib} GiB",
                    f"set memory_gib ≥ {gpu.min_memory_gib}",
                )
            )
        if self.max_instances > self.gpu_quota:
            errors.append(
                ConfigError(
                    "max_instances",
                    self.max_instances,
                    f"exceeds the GPU quota ({self.gpu_quota})",
                    "lower it or raise the quota",
                )
            )
        c = self.concurrency
        if c is not None and not (self.sizing.max_parallel_sequences <= c <= limits.CONCURRENCY_MAX.value):
            errors.append(
                ConfigError(
                    "concurrency",
                    c,
                    "must cover the engine's parallel slots and stay ≤ 1000 (R6)",
                    f"use {self.sizing.max_parallel_sequences}..{int(limits.CONCURRENCY_MAX.value)}",
                )
            )
        if errors:
            raise ConfigErrors(errors)


def _probe_timing(plan: SizingPlan) -> dict[str, int]:
    p = plan.startup_probe
    return {
        "initial_delay_seconds": p.initial_delay_seconds,
        "period_seconds": p.period_seconds,
        "timeout_seconds": p.timeout_seconds,
        "failure_threshold": p.failure_threshold,
    }


class GpuInferenceService(pulumi.ComponentResource):
    service: gcp.cloudrunv2.Service
    url: pulumi.Output[str]
    service_name: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    concurrency: int
    startup_probe: dict[str, Any]

    def __init__(self, name: str, args: GpuInferenceServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        args.validate()
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = args.sizing
        gpu = limits.GPU_TYPES[args.gpu_type]
        self.identity: RuntimeIdentity | None = None
        if args.service_account_email is None:
            self.identity = RuntimeIdentity(
                f"{name}-identity",
                RuntimeIdentityArgs(account_id=f"{args.service_name}-run"[:30], project=args.project),
                opts=child,
            )
            sa_email: pulumi.Input[str] = self.identity.email
        else:
            sa_email = args.service_account_email
        delivery = args.delivery or ModelDelivery("image")
        self.concurrency = args.concurrency or plan.max_instance_request_concurrency
        self.startup_probe = {**_probe_timing(plan), "path": plan.startup_probe.path}
        env = {**plan.engine_env, **delivery.env}
        container: dict[str, Any] = {
            "name": plan.engine.replace(".", ""),
            "image": args.image,
            "args": plan.engine_args or None,
            "envs": [{"name": k, "value": v} for k, v in env.items()] or None,
            "ports": {"container_port": PORT, "name": "http1"},
            "resources": {
                "limits": {"cpu": str(args.cpu), "memory": f"{args.memory_gib}Gi", "nvidia.com/gpu": "1"},
                "cpu_idle": False,
                "startup_cpu_boost": True,
            },
            "startup_probe": {**_probe_timing(plan), "http_get": {"path": plan.startup_probe.path, "port": PORT}},
            "volume_mounts": delivery.mounts or None,
        }
        if args.liveness_probe:
            container["liveness_probe"] = {
                "period_seconds": 30,
                "timeout_seconds": 5,
                "failure_threshold": 3,
                "http_get": {"path": plan.startup_probe.path, "port": PORT},
            }
        template: dict[str, Any] = {
            "service_account": sa_email,
            "execution_environment": "EXECUTION_ENVIRONMENT_GEN2",
            "timeout": f"{args.request_timeout_s}s",
            "max_instance_request_concurrency": self.concurrency,
            "node_selector": {"accelerator": args.gpu_type},
            "gpu_zonal_redundancy_disabled": args.gpu_zonal_redundancy_disabled,
            "scaling": {"min_instance_count": args.min_instances, "max_instance_count": args.max_instances},
            "containers": [container],
            "volumes": delivery.volumes or None,
            "labels": args.labels or None,
        }
        if args.vpc is not None:
            template["vpc_access"] = {
                "egress": args.vpc.egress,
                "network_interfaces": [
                    {"network": args.vpc.network, "subnetwork": args.vpc.subnetwork, "tags": args.vpc.tags or None}
                ],
            }
        self.service = gcp.cloudrunv2.Service(
            f"{name}-svc",
            name=args.service_name,
            location=args.region,
            ingress=args.ingress,
            deletion_protection=args.deletion_protection,
            invoker_iam_disabled=False,
            launch_stage=gpu.launch_stage,
            labels=args.labels or None,
            template=cast(gcp.cloudrunv2.ServiceTemplateArgsDict, template),
            project=args.project,
            opts=child,
        )
        self.invoker_bindings = [
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{i}",
                name=self.service.name,
                location=args.region,
                role=INVOKER_ROLE,
                member=member,
                project=args.project,
                opts=child,
            )
            for i, member in enumerate(args.invokers)
        ]
        if any(m in PUBLIC_MEMBERS for m in args.invokers):
            pulumi.log.warn(f"{name}: invokers include a public member; anyone can call this GPU service", self)
        self.url = self.service.uri
        self.service_name = self.service.name
        self.service_account_email = pulumi.Output.from_input(sa_email)
        self.register_outputs(
            {
                "url": self.url,
                "service_name": self.service_name,
                "service_account_email": self.service_account_email,
                "concurrency": self.concurrency,
                "startup_probe": self.startup_probe,
            }
        )
