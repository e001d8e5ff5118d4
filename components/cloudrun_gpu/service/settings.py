"""The GPU service's own settings: GPU, resources, scaling, and the service itself.

They are the ``cloudrun-gpu:gpu``, ``:resources``, ``:scaling`` and ``:service`` stack sections and
fields of ``GpuInferenceServiceArgs``: declared, documented and validated once, here.
"""

import enum
import re

from pydantic import Field

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import settings, suggest


class Accelerator(enum.StrEnum):
    """Cloud Run GPU types (``node_selector.accelerator``; ``limits.GPU_TYPES`` holds their facts, and a
    test keeps the two equal)."""

    NVIDIA_L4 = "nvidia-l4"
    """NVIDIA L4, 24 GB."""
    NVIDIA_RTX_PRO_6000 = "nvidia-rtx-pro-6000"
    """NVIDIA RTX PRO 6000 Blackwell, 96 GB."""


class Ingress(enum.StrEnum):
    """Where requests may come from."""

    INGRESS_TRAFFIC_ALL = "INGRESS_TRAFFIC_ALL"
    """Internet and internal (still IAM-protected unless a public invoker is listed)."""
    INGRESS_TRAFFIC_INTERNAL_ONLY = "INGRESS_TRAFFIC_INTERNAL_ONLY"
    """Only from the project's VPC networks (and Shared VPC / VPC-SC perimeters)."""
    INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    """Internal traffic and Cloud Load Balancing only."""


SERVICE_NAME_PATTERN = r"[a-z]([-a-z0-9]{0,40}[a-z0-9])?"
"""Cloud Run service names: lowercase letters, digits and hyphens, starting with a letter and not ending
with a hyphen (≤ 49 characters on Cloud Run; we keep ≤ 42 so derived names stay valid)."""
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
MEMBER_KINDS = ("user", "serviceAccount", "group", "domain", "principal", "principalSet")
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_DOMAIN = r"([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,}"


def member_problem(member: str) -> tuple[str, str] | None:
    """Why ``member`` is not an IAM principal GCP accepts (problem, fix), or None when it is.

    The forms are IAM's: ``user:EMAIL``, ``serviceAccount:EMAIL``, ``group:EMAIL``, ``domain:DOMAIN``,
    ``principal://…``, ``principalSet://…``, ``allUsers``, ``allAuthenticatedUsers``.
    """
    if member in PUBLIC_MEMBERS:
        return None
    kind, sep, rest = member.partition(":")
    if not sep:
        guess = suggest(member, PUBLIC_MEMBERS) or next(
            (p for p in PUBLIC_MEMBERS if p.lower() == member.lower()), None
        )
        fix = f"did you mean {guess!r}?" if guess else "prefix it with its kind, e.g. 'user:alice@example.com'"
        return "is not an IAM member", fix
    if kind not in MEMBER_KINDS:
        guess = suggest(kind, MEMBER_KINDS)
        return f"has an unknown member kind {kind!r}", (
            f"did you mean '{guess}:'?" if guess else "use user:, group:, …"
        )
    if kind in ("principal", "principalSet"):
        ok = rest.startswith("//") and len(rest) > 2
    elif kind == "domain":
        ok = re.fullmatch(_DOMAIN, rest) is not None
    else:
        ok = re.fullmatch(_EMAIL, rest) is not None
    if not ok:
        return f"is not a valid {kind} member", f"write {kind}:" + (
            "example.com" if kind == "domain" else "name@example.com"
        )
    return None


@settings
class GpuSettings:
    """The GPU and the quota it draws on."""

    type: Accelerator = Accelerator.NVIDIA_L4
    """Cloud Run GPU type (``node_selector.accelerator``)."""
    zonal_redundancy: bool = False
    """False = cheaper best-effort GPUs with their own quota (``…NoZonalRedundancy…``); true reserves
    failover capacity in another zone at a higher price."""
    quota: int = Field(default=int(limits.DEFAULT_GPU_QUOTA.value), ge=1, le=1000)
    """The project's GPU quota in this region for the chosen redundancy mode: bounds max instances offline
    (``plan``); ``pulumi up`` also reads the real quotas (see ``quota_preflight``)."""
    quota_preflight: bool = True
    """Before registering anything, read the project's Cloud Run GPU, CPU and memory quotas for the region
    (Cloud Quotas API) and stop, naming the quota, when max instances would not fit. Needs
    ``roles/cloudquotas.viewer``; turn off only where the deploying identity cannot read quotas."""


@settings
class ResourcesSettings:
    """CPU and memory of one instance; the GPU type's minimums and defaults apply when unset."""

    cpu: int | None = None
    """vCPU per instance (4, 6, 8, … 32; at least the GPU type's minimum)."""
    memory_gib: int | None = Field(default=None, ge=1)
    """Memory per instance in GiB (covers an in-memory model copy for the download methods)."""

    def problems(self) -> list[ConfigError]:
        if self.cpu is not None and self.cpu not in limits.ALLOWED_CPU:
            allowed = ", ".join(str(c) for c in limits.ALLOWED_CPU)
            return [
                ConfigError(
                    "cpu", self.cpu, "is not a CPU count Cloud Run allows", f"set cpu to one of {allowed}", allowed
                )
            ]
        return []


MAX_INSTANCES_MAX = 1000
"""The most max instances a stack may ask for (``scaling.max_instances``, and the network sized for them)."""


@settings
class ScalingSettings:
    """Instances, request timeout and per-instance concurrency (A1-A4)."""

    min_instances: int = Field(default=0, ge=0, le=1000)
    """Warm instances kept running (billed all the time with a GPU)."""
    max_instances: int = Field(default=1, ge=1, le=MAX_INSTANCES_MAX)
    """Upper bound on instances; must fit under the GPU quota."""
    request_timeout_s: int = Field(default=600, ge=1, le=limits.REQUEST_TIMEOUT_MAX_S)
    """Per-request timeout in seconds (long generations need minutes)."""
    max_concurrency: int | None = Field(default=None, ge=limits.CONCURRENCY_MIN, le=int(limits.CONCURRENCY_MAX.value))
    """Override the A2-derived value (e.g. with a load-test result, A3); must still cover the engine."""

    def problems(self) -> list[ConfigError]:
        if self.min_instances > self.max_instances:
            return [
                ConfigError(
                    "min_instances",
                    self.min_instances,
                    f"is above max_instances ({self.max_instances})",
                    f"set min_instances ≤ {self.max_instances}",
                    f"0..{self.max_instances}",
                )
            ]
        return []


@settings
class ServiceSettings:
    """The Cloud Run service: its name, who may call it, and how it is protected."""

    name: str = Field(default="llm", pattern=f"^{SERVICE_NAME_PATTERN}$")
    """Service name; the runtime service account id is derived from it."""
    invokers: list[str] = Field(default_factory=list)
    """IAM members allowed to call the service; empty by default (nobody public)."""
    ingress: Ingress = Ingress.INGRESS_TRAFFIC_ALL
    """Where requests may come from; the default is reachable, and IAM still decides who may call."""
    deletion_protection: bool | None = None
    """Refuse to delete the service; the stack defaults it to true in prod, false elsewhere."""
    liveness_probe: bool = True
    """Restart an instance whose engine stops answering its health path."""

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        seen: set[str] = set()
        for i, member in enumerate(self.invokers):
            why = member_problem(member)
            if why is not None:
                errors.append(ConfigError(f"invokers.{i}", member, why[0], why[1], "user:, serviceAccount:, group:, …"))
            if member in seen:
                errors.append(ConfigError(f"invokers.{i}", member, "is listed twice", "remove the duplicate"))
            seen.add(member)
        return errors

    @property
    def account_id(self) -> str:
        """The runtime service account id derived from ``name``: always a valid id (6-30 characters,
        no trailing hyphen), and unchanged for names that fit (``llm`` → ``llm-runtime``)."""
        full = f"{self.name}-runtime"
        return full if len(full) <= 30 else f"{self.name[:26].rstrip('-')}-run"


__all__ = [
    "PUBLIC_MEMBERS",
    "Accelerator",
    "GpuSettings",
    "Ingress",
    "ResourcesSettings",
    "ScalingSettings",
    "ServiceSettings",
    "member_problem",
]
