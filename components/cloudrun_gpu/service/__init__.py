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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp
from pulumi_gcp import cloudrunv2 as run

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.loading import ModelDelivery, model_delivery
from cloudrun_gpu.service.plan import MOUNT_PATHS, ServicePlan, ServingSettings, plan_service
from cloudrun_gpu.service.settings import (
    PUBLIC_MEMBERS,
    Accelerator,
    GpuSettings,
    Ingress,
    ResourcesSettings,
    ScalingSettings,
    ServiceSettings,
)
from cloudrun_gpu.settings import args_settings, args_text, args_types, rename_fields
from cloudrun_gpu.sizing.engines import PORT
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingSettings, ModelSettings

TOKEN = "cloudrun-gpu:index:GpuInferenceService"
INVOKER_ROLE = "roles/run.invoker"
ARGS = "GpuInferenceServiceArgs."
_SETTINGS: dict[str, Any] = {
    "model": ModelSettings,
    "engine": EngineSettings,
    "loading": LoadingSettings,
    "gpu": GpuSettings,
    "resources": ResourcesSettings,
    "scaling": ScalingSettings,
    "service": ServiceSettings,
}


@dataclass
class VpcEgressArgs:
    """Direct VPC egress: the network interface the service's instances get."""

    network: pulumi.Input[str]
    """Network id or self-link."""
    subnetwork: pulumi.Input[str]
    """Subnetwork id or self-link (sized for the service's max instances)."""
    tags: list[str] = field(default_factory=list)
    """Network tags on the interface."""


@dataclass
class GpuInferenceServiceArgs:
    """Inputs of :class:`GpuInferenceService`: the model and engine settings it sizes itself from,
    and the wiring (image, network, bucket, identity) other components provide."""

    region: str
    """Cloud Run region (must offer the GPU type)."""
    image: pulumi.Input[str]
    """Serving image (engine, and the model when loading.method is image)."""
    model: ModelSettings
    """Which model and where its files sit."""
    engine: EngineSettings = field(default_factory=EngineSettings)
    """Serving engine and the knobs the memory plan depends on."""
    loading: LoadingSettings = field(default_factory=LoadingSettings)
    """How the weights reach the GPU."""
    gpu: GpuSettings = field(default_factory=GpuSettings)
    """GPU type, redundancy mode and quota."""
    resources: ResourcesSettings = field(default_factory=ResourcesSettings)
    """CPU and memory per instance."""
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    """Instances, timeout, concurrency override."""
    service: ServiceSettings = field(default_factory=ServiceSettings)
    """Name, invokers, ingress, deletion protection."""
    vpc: VpcEgressArgs | None = None
    """Direct VPC egress (ALL_TRAFFIC); required for the gcs-* and internet loading methods."""
    bucket_name: pulumi.Input[str] | None = None
    """The model bucket, for the gcs-fuse and gcs-download methods."""
    service_account_email: pulumi.Input[str] | None = None
    """An existing runtime identity; None creates a dedicated one with no project roles."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels on the service and its revisions."""
    custom_audiences: list[str] = field(default_factory=list)
    """Extra ID-token audiences the service accepts besides its ``run.app`` URL: behind a load balancer in
    several regions a client cannot know which regional URL answers, so it signs for the load balancer's
    URL instead (https://cloud.google.com/run/docs/configuring/custom-audiences)."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes plain input bags: parsed, or refused naming the argument, before any
        # argument is read (issue 21: loading={"method": ""} was an AttributeError).
        errors = args_settings(self, ARGS, _SETTINGS) + args_text(self, ARGS, "region")
        if isinstance(self.vpc, Mapping):
            keys = {f.name for f in dataclasses.fields(VpcEgressArgs)}
            vpc = dict(self.vpc)
            if set(vpc) - keys or not {"network", "subnetwork"} <= set(vpc):
                errors.append(
                    ConfigError(
                        f"{ARGS}vpc",
                        vpc,
                        "must name network and subnetwork (and optionally tags), nothing else",
                        "pass vpc=VpcEgressArgs(network=…, subnetwork=…) from an InferenceNetwork",
                    )
                )
            else:
                self.vpc = VpcEgressArgs(**vpc)
        elif self.vpc is not None and not isinstance(self.vpc, VpcEgressArgs):
            errors.append(
                ConfigError(f"{ARGS}vpc", self.vpc, "is not a VpcEgressArgs or a mapping", "pass VpcEgressArgs(...)")
            )
        if isinstance(self.vpc, VpcEgressArgs):
            errors.extend(args_types(self.vpc, f"{ARGS}vpc."))
        errors.extend(args_types(self, ARGS, skip=[*_SETTINGS, "region", "vpc"]))  # issue 21: plain values, named
        if errors:
            raise ConfigErrors(errors)
        if self.loading.method != "image" and self.vpc is None:
            errors.append(
                ConfigError(
                    f"{ARGS}vpc",
                    None,
                    f"loading.method {self.loading.method} reads over the network, which needs Direct VPC with "
                    "ALL_TRAFFIC egress (L4, L5)",
                    "pass vpc=VpcEgressArgs(network=…, subnetwork=…) from an InferenceNetwork",
                )
            )
        if self.loading.method in ("gcs-fuse", "gcs-download", "gcs-stream") and self.bucket_name is None:
            errors.append(
                ConfigError(
                    f"{ARGS}bucket_name",
                    None,
                    f"loading.method {self.loading.method} reads the model from a bucket",
                    "pass bucket_name (e.g. ModelBucket(...).bucket_name)",
                )
            )
        if errors:
            raise ConfigErrors(errors)
        # The dedicated identity created when no service_account_email is given: checked here, with the other
        # arguments, not when the component registers (issue 21); the component uses this object.
        self.__dict__["_identity"] = RuntimeIdentityArgs(account_id=self.service.account_id, project=self.project)

    def identity_args(self) -> RuntimeIdentityArgs:
        """The dedicated runtime identity's arguments (used when ``service_account_email`` is None)."""
        identity: RuntimeIdentityArgs = self.__dict__["_identity"]
        return identity

    @property
    def serving(self) -> ServingSettings:
        """The serving bundle these arguments describe (what :func:`plan_service` sizes)."""
        return ServingSettings(
            self.region, self.model, self.engine, self.loading, self.gpu, self.resources, self.scaling
        )

    def plan(self, base_dir: Path | None = None) -> ServicePlan:
        """Every number the revision needs, or ConfigErrors naming this class's fields.

        This is the component's validation, callable without registering anything: a stack calls it for every
        region before its first resource (issue 21), and the constructor then reuses the answer (kept for the same
        serving bundle and folder; the wiring fields, image, network and bucket, take no part in it)."""
        serving = self.serving
        cached: tuple[ServingSettings, Path | None, ServicePlan] | None = self.__dict__.get("_planned")
        if cached is not None and cached[0] == serving and cached[1] == base_dir:
            return cached[2]
        try:
            plan = plan_service(serving, base_dir)
        except ConfigErrors as exc:
            raise rename_fields(exc.errors, {}, ARGS) from None
        except ConfigError as exc:
            raise rename_fields([exc], {}, ARGS) from None
        self.__dict__["_planned"] = (serving, base_dir, plan)
        return plan


def _probe(plan: ServicePlan) -> dict[str, int]:
    p = plan.sizing.startup_probe
    return {
        "initial_delay_seconds": p.initial_delay_seconds,
        "period_seconds": p.period_seconds,
        "timeout_seconds": p.timeout_seconds,
        "failure_threshold": p.failure_threshold,
    }


def _volumes(delivery: ModelDelivery) -> list[run.ServiceTemplateVolumeArgs]:
    out = []
    for v in delivery.volumes:
        gcs, mem = v.get("gcs"), v.get("empty_dir")
        out.append(
            run.ServiceTemplateVolumeArgs(
                name=v["name"],
                gcs=run.ServiceTemplateVolumeGcsArgs(
                    bucket=gcs["bucket"], read_only=gcs["read_only"], mount_options=gcs["mount_options"]
                )
                if gcs
                else None,
                empty_dir=run.ServiceTemplateVolumeEmptyDirArgs(medium=mem["medium"], size_limit=mem["size_limit"])
                if mem
                else None,
            )
        )
    return out


def member_key(member: str) -> str:
    """A stable logical-name key for an IAM member: the member itself, so removing one binding never
    renames (and so replaces) the others."""
    return member


class GpuInferenceService(pulumi.ComponentResource):
    """A Cloud Run v2 service with one GPU, sized from its model (D1, D2, R6, A1, A4, L4)."""

    service: gcp.cloudrunv2.Service
    """The Cloud Run v2 service resource."""
    url: pulumi.Output[str]
    """The service's HTTPS URL."""
    service_name: pulumi.Output[str]
    """The Cloud Run service name."""
    service_account_email: pulumi.Output[str]
    """The runtime identity's email."""
    concurrency: int
    """Requests per instance (``max_instance_request_concurrency``), from the sizing plan (A1, A2)."""
    startup_probe: dict[str, Any]
    """The HTTP startup probe from the sizing plan: ``initial_delay_seconds``, ``period_seconds``,
    ``timeout_seconds``, ``failure_threshold`` and ``path``."""

    def __init__(self, name: str, args: GpuInferenceServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = GpuInferenceServiceArgs(**args)
        plan = args.plan(Path.cwd())
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sizing = plan.sizing
        svc = args.service
        gpu = limits.GPU_TYPES[args.gpu.type]
        self.plan = plan
        self.identity: RuntimeIdentity | None = None
        if args.service_account_email is None:
            self.identity = RuntimeIdentity(f"{name}-identity", args.identity_args(), opts=child)
            sa_email: pulumi.Input[str] = self.identity.email
        else:
            sa_email = args.service_account_email
        delivery = model_delivery(
            args.loading.method,
            mount_path=plan.mount_path,
            bucket=args.bucket_name,
            object_prefix=args.model.object_prefix,
            in_memory_gib=plan.in_memory_volume_gib,
            hub_url=args.model.hub_id,
        )
        env = {**sizing.engine_env, **delivery.env}
        if args.engine.name == "ollama":  # Ollama reads its own blob store from the mount (or the image's /models)
            env["OLLAMA_MODELS"] = plan.mount_path
        self.concurrency = plan.concurrency
        self.startup_probe = {**_probe(plan), "path": sizing.startup_probe.path}
        probe = sizing.startup_probe
        health = probe.path
        container = run.ServiceTemplateContainerArgs(
            name=str(args.engine.name).replace(".", ""),
            image=args.image,
            args=sizing.engine_args or None,
            envs=[run.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in env.items()] or None,
            ports=run.ServiceTemplateContainerPortsArgs(container_port=PORT, name="http1"),
            resources=run.ServiceTemplateContainerResourcesArgs(
                limits={"cpu": str(plan.cpu), "memory": f"{plan.memory_gib}Gi", "nvidia.com/gpu": "1"},
                cpu_idle=False,
                startup_cpu_boost=True,
            ),
            startup_probe=run.ServiceTemplateContainerStartupProbeArgs(
                initial_delay_seconds=probe.initial_delay_seconds,
                period_seconds=probe.period_seconds,
                timeout_seconds=probe.timeout_seconds,
                failure_threshold=probe.failure_threshold,
                http_get=run.ServiceTemplateContainerStartupProbeHttpGetArgs(path=health, port=PORT),
            ),
            liveness_probe=run.ServiceTemplateContainerLivenessProbeArgs(
                period_seconds=30,
                timeout_seconds=5,
                failure_threshold=3,
                http_get=run.ServiceTemplateContainerLivenessProbeHttpGetArgs(path=health, port=PORT),
            )
            if svc.liveness_probe
            else None,
            volume_mounts=[
                run.ServiceTemplateContainerVolumeMountArgs(name=m["name"], mount_path=m["mount_path"])
                for m in delivery.mounts
            ]
            or None,
        )
        vpc = (
            run.ServiceTemplateVpcAccessArgs(
                egress="ALL_TRAFFIC",
                network_interfaces=[
                    run.ServiceTemplateVpcAccessNetworkInterfaceArgs(
                        network=args.vpc.network, subnetwork=args.vpc.subnetwork, tags=args.vpc.tags or None
                    )
                ],
            )
            if args.vpc is not None
            else None
        )
        template = run.ServiceTemplateArgs(
            service_account=sa_email,
            execution_environment="EXECUTION_ENVIRONMENT_GEN2",
            timeout=f"{args.scaling.request_timeout_s}s",
            max_instance_request_concurrency=self.concurrency,
            node_selector=run.ServiceTemplateNodeSelectorArgs(accelerator=str(args.gpu.type)),
            gpu_zonal_redundancy_disabled=not args.gpu.zonal_redundancy,
            scaling=run.ServiceTemplateScalingArgs(
                min_instance_count=args.scaling.min_instances, max_instance_count=args.scaling.max_instances
            ),
            containers=[container],
            volumes=_volumes(delivery) or None,
            labels=args.labels or None,
            vpc_access=vpc,
        )
        self.service = gcp.cloudrunv2.Service(
            f"{name}-svc",
            name=svc.name,
            location=args.region,
            ingress=str(svc.ingress),
            deletion_protection=bool(svc.deletion_protection),
            invoker_iam_disabled=False,
            custom_audiences=list(args.custom_audiences) or None,
            launch_stage=gpu.launch_stage,
            labels=args.labels or None,
            template=template,
            project=args.project,
            opts=child,
        )
        self.invoker_bindings = [
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{member_key(member)}",
                name=self.service.name,
                location=args.region,
                role=INVOKER_ROLE,
                member=member,
                project=args.project,
                # Bindings were named by list position before 0.2; the alias adopts them without a replace.
                opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-invoker-{i}")]),
            )
            for i, member in enumerate(svc.invokers)
        ]
        if any(m in PUBLIC_MEMBERS for m in svc.invokers):
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


__all__ = [
    "MOUNT_PATHS",
    "Accelerator",
    "GpuInferenceService",
    "GpuInferenceServiceArgs",
    "GpuSettings",
    "Ingress",
    "ResourcesSettings",
    "ScalingSettings",
    "ServicePlan",
    "ServiceSettings",
    "ServingSettings",
    "VpcEgressArgs",
    "plan_service",
]
