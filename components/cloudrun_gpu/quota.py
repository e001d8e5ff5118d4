"""Quota preflight: does the project's Cloud Run quota in the region cover the service at max instances?

Cloud Run checks three per-project, per-region quotas when a GPU revision is deployed, each against
``max_instances × per-instance amount`` (a 3 × 20 vCPU / 80 GiB RTX service asks for
``CpuAllocPerProjectRegion requested: 60000`` milli-vCPU and ``MemAllocPerProjectRegion requested:
257698037760`` bytes, googlecodelabs/feedback#1856):

- the GPU quota of the chosen type and redundancy mode (``limits.GPU_TYPES[...].quota_zonal`` /
  ``quota_no_zonal``, e.g. ``NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion``), 0 until requested
  (https://docs.cloud.google.com/run/docs/configuring/services/gpu-zonal-redundancy);
- ``CpuAllocPerProjectRegion``, total vCPU in milli-vCPU (https://docs.cloud.google.com/run/quotas: "CPU,
  per project and region, total CPU allocated to all instances, in milli vCPU"), 20 vCPU on fresh projects;
- ``MemAllocPerProjectRegion``, total memory in bytes, 40 GiB (42949672960) on fresh projects.

The logic is pure (:class:`QuotaNeed`, :func:`quota_problems`); :func:`read_quotas` is the one Pulumi call:
the pulumi-gcp Cloud Quotas data source ``gcp.cloudquota.get_s_quota_info`` (invoke token
``gcp:cloudquota/getSQuotaInfo:getSQuotaInfo``, arguments ``parent="projects/<project>"``,
``service="run.googleapis.com"``, ``quota_id``), whose ``dimensions_infos[]`` each carry ``dimensions``
(``{"region": "us-central1"}``, or ``{}`` for the default that applies to every other region) and
``details[0].value`` (a string, in the quota's ``metric_unit``).

It uses the *direct* (synchronous) form on purpose: the project and region are plain strings, so the
engine runs the invoke during ``pulumi preview`` as well as ``pulumi up``, and a shortage raises
:class:`~cloudrun_gpu.errors.ConfigErrors` before any resource is registered, which the stack turns into a
clean ``pulumi.RunError``. The ``_output`` form would raise inside an ``apply``, after registrations began.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.limits import GIB

SERVICE = "run.googleapis.com"
"""The service whose quotas these are (``--service`` of ``gcloud beta quotas ...``)."""
CPU_QUOTA_ID = "CpuAllocPerProjectRegion"
MEMORY_QUOTA_ID = "MemAllocPerProjectRegion"
INVOKE_TOKEN = "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo"
"""What ``pulumi_gcp.cloudquota.get_s_quota_info`` invokes; mocks answer it in ``Mocks.call``."""
CONSOLE_QUOTAS_URL = "https://console.cloud.google.com/iam-admin/quotas"
DEFAULT_SCALE: dict[str, float] = {CPU_QUOTA_ID: 1000, MEMORY_QUOTA_ID: GIB}
"""Raw quota units per unit we compare in (vCPU, GiB), when the answer names no unit we recognise."""


@dataclass(frozen=True)
class QuotaNeed:
    """What a service needs from the region's quotas when it runs ``max_instances`` instances."""

    gpu_type: str
    zonal_redundancy: bool
    max_instances: int
    cpu_per_instance: int
    memory_gib_per_instance: int

    @property
    def gpu_quota_id(self) -> str:
        facts = limits.GPU_TYPES[self.gpu_type]
        return facts.quota_zonal if self.zonal_redundancy else facts.quota_no_zonal

    @property
    def gpus(self) -> int:
        return self.max_instances  # Cloud Run attaches exactly one GPU per instance

    @property
    def vcpu(self) -> int:
        return self.max_instances * self.cpu_per_instance

    @property
    def memory_gib(self) -> int:
        return self.max_instances * self.memory_gib_per_instance

    def items(self) -> list[tuple[str, int, int, str]]:
        """``(quota id, total need, need per instance, unit)`` for each quota checked."""
        redundancy = "zonal redundancy" if self.zonal_redundancy else "no zonal redundancy"
        return [
            (self.gpu_quota_id, self.gpus, 1, f"{self.gpu_type} GPU ({redundancy})"),
            (CPU_QUOTA_ID, self.vcpu, self.cpu_per_instance, "vCPU"),
            (MEMORY_QUOTA_ID, self.memory_gib, self.memory_gib_per_instance, "GiB"),
        ]

    def to_dict(self) -> dict[str, Any]:
        """For ``plan --json`` (``quota_need``): what to have granted before ``pulumi up``."""
        return {
            "max_instances": self.max_instances,
            "gpu_type": self.gpu_type,
            "zonal_redundancy": self.zonal_redundancy,
            "gpus": self.gpus,
            "vcpu": self.vcpu,
            "memory_gib": self.memory_gib,
            "quota_ids": {"gpu": self.gpu_quota_id, "cpu": CPU_QUOTA_ID, "memory": MEMORY_QUOTA_ID},
        }

    def summary(self) -> str:
        """One line for ``plan``'s text output."""
        return (
            f"Quota needed at {self.max_instances} instance(s): {self.gpus} × {self.gpu_type} "
            f"({self.gpu_quota_id}), {self.vcpu} vCPU ({CPU_QUOTA_ID}), {self.memory_gib} GiB ({MEMORY_QUOTA_ID})"
        )


def quota_need(gpu_type: str, zonal_redundancy: bool, max_instances: int, cpu: int, memory_gib: int) -> QuotaNeed:
    return QuotaNeed(str(gpu_type), bool(zonal_redundancy), int(max_instances), int(cpu), int(memory_gib))


@dataclass(frozen=True)
class QuotaAnswer:
    """One quota's value for the region, converted to the unit we compare in (GPUs, vCPU, GiB).

    ``value`` None means there was no answer: the lookup failed (``detail`` says why) or the quota has
    no value for the region. A negative value means unlimited."""

    quota_id: str
    value: float | None
    raw: str = ""
    unit: str = ""
    detail: str = ""


def _scale(quota_id: str, unit: str) -> float:
    """Raw units per compared unit, from the quota's ``metric_unit`` (``milli-vCPU``, ``By``, ``1``)."""
    u = unit.strip().lower()
    if "milli" in u:
        return 1000
    if u in ("by", "byte", "bytes"):
        return GIB
    if u in ("mib", "miby"):
        return 1024
    if u in ("gib", "giby"):
        return 1
    return DEFAULT_SCALE.get(quota_id, 1)


def answer_from_info(quota_id: str, region: str, info: Mapping[str, Any]) -> QuotaAnswer:
    """The region's value out of one QuotaInfo (snake_case keys, as ``get_s_quota_info`` returns them):
    the ``dimensions_infos`` entry for the region, else the default entry (no ``region`` dimension)."""
    unit = str(info.get("metric_unit") or "")
    infos = list(info.get("dimensions_infos") or [])
    chosen: Mapping[str, Any] | None = None
    for entry in infos:
        dims = dict(entry.get("dimensions") or {})
        if dims.get("region") == region:
            chosen = entry
            break
        if "region" not in dims and chosen is None:
            chosen = entry
    if chosen is None:
        regions = sorted({str(dict(e.get("dimensions") or {}).get("region")) for e in infos})
        return QuotaAnswer(quota_id, None, unit=unit, detail=f"no value for {region} (values for: {regions or 'none'})")
    details = chosen.get("details") or []
    first = details[0] if isinstance(details, list) and details else details
    raw = str((first or {}).get("value", "")) if isinstance(first, Mapping) else ""
    try:
        number = float(raw)
    except ValueError:
        return QuotaAnswer(quota_id, None, raw=raw, unit=unit, detail=f"unreadable value {raw!r} for {region}")
    value = number if number < 0 else number / _scale(quota_id, unit)
    return QuotaAnswer(quota_id, value, raw=raw, unit=unit)


def request_command(project: str, region: str, quota_id: str, preferred_raw: int) -> str:
    """How to ask for more from a shell (the value in the quota's own unit)."""
    return (
        f"gcloud beta quotas preferences create --service={SERVICE} --project={project} --quota-id={quota_id} "
        f"--preferred-value={preferred_raw} --dimensions=region={region} --email=<you@example.com>"
    )


def check_command(project: str, quota_id: str) -> str:
    return f"gcloud beta quotas info describe {quota_id} --service={SERVICE} --project={project} --format=json"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def quota_problems(
    need: QuotaNeed, answers: Mapping[str, QuotaAnswer], project: str = "<project>", region: str = "<region>"
) -> list[ConfigError]:
    """Every quota that cannot cover ``need``: missing, 0, or below the need. Empty when all fit."""
    errors: list[ConfigError] = []
    console = f"{CONSOLE_QUOTAS_URL}?project={project}"
    for quota_id, total, per_instance, unit in need.items():
        ans = answers.get(quota_id)
        if ans is None or ans.value is None:
            why = f" ({ans.detail})" if ans is not None and ans.detail else ""
            errors.append(
                ConfigError(
                    "scaling.max_instances",
                    need.max_instances,
                    f"quota {quota_id} of project {project} in {region} could not be read{why}; "
                    f"the service needs {total} {unit} of it",
                    f"check it with `{check_command(project, quota_id)}` (look for region {region}) or at {console}; "
                    "the deploying identity needs cloudquotas.quotas.get (roles/cloudquotas.viewer) and "
                    "the cloudquotas.googleapis.com API enabled",
                )
            )
            continue
        if ans.value < 0:  # -1: unlimited
            continue
        if ans.value >= total:
            continue
        fits = math.floor(ans.value / per_instance)
        scale = _scale(quota_id, ans.unit)
        preferred = math.ceil(total * scale)
        shown = f"{_fmt(ans.value)} {unit}" + (f" (raw {ans.raw} {ans.unit})" if ans.raw and scale != 1 else "")
        problem = (
            f"quota {quota_id} of project {project} in {region} is 0: none granted, the service needs {total} {unit}"
            if ans.value == 0
            else f"needs {total} {unit} of quota {quota_id} ({need.max_instances} × {per_instance}) "
            f"but project {project} has {shown} in {region}"
        )
        errors.append(
            ConfigError(
                "scaling.max_instances",
                need.max_instances,
                problem,
                f"request {_fmt(total)} {unit} at {console} (filter {quota_id}, region {region}) or run "
                f"`{request_command(project, region, quota_id, preferred)}`"
                + (f"; or lower scaling.max_instances to {fits}" if fits >= 1 else ""),
                f"1..{fits}" if fits >= 1 else "none until quota is granted",
            )
        )
    return errors


def read_quotas(project: str, region: str, gpu_type: str, zonal_redundancy: bool) -> dict[str, QuotaAnswer]:
    """Read the GPU, CPU and memory quotas of ``project`` for ``region`` through the Cloud Quotas data
    source (one ``getSQuotaInfo`` invoke each). A failed lookup becomes an answer without a value."""
    from pulumi_gcp import cloudquota  # imported here: the pure functions above need no Pulumi

    facts = limits.GPU_TYPES[str(gpu_type)]
    gpu_id = facts.quota_zonal if zonal_redundancy else facts.quota_no_zonal
    answers: dict[str, QuotaAnswer] = {}
    for quota_id in (gpu_id, CPU_QUOTA_ID, MEMORY_QUOTA_ID):
        try:
            res = cloudquota.get_s_quota_info(parent=f"projects/{project}", service=SERVICE, quota_id=quota_id)
        except Exception as exc:  # the provider's 404/403 comes back as an invoke error
            answers[quota_id] = QuotaAnswer(quota_id, None, detail=f"lookup failed: {exc}".splitlines()[0])
            continue
        info = {
            "metric_unit": res.metric_unit,
            "dimensions_infos": [
                {"dimensions": dict(d.dimensions or {}), "details": [{"value": x.value} for x in (d.details or [])]}
                for d in (res.dimensions_infos or [])
            ],
        }
        answers[quota_id] = answer_from_info(quota_id, region, info)
    return answers


def preflight(
    project: str,
    region: str,
    gpu_type: str,
    zonal_redundancy: bool,
    max_instances: int,
    cpu: int,
    memory_gib: int,
    warn: Callable[[str], None] | None = None,
) -> QuotaNeed:
    """Raise ConfigErrors naming every quota that cannot hold the service at ``max_instances``;
    return the need when all fit.

    With ``warn``, a quota that could not be *read* is reported through it instead of stopping the run:
    on a fresh project the Cloud Quotas API is itself one of the APIs the same ``pulumi up`` enables, so
    the first run cannot read quotas yet; a quota that was read and is short always stops the run."""
    need = quota_need(gpu_type, zonal_redundancy, max_instances, cpu, memory_gib)
    answers = read_quotas(project, region, gpu_type, zonal_redundancy)
    problems = quota_problems(need, answers, project, region)
    if warn is not None:
        unread = {q for q, a in answers.items() if a.value is None}
        for e in problems:
            if any(q in e.problem and "could not be read" in e.problem for q in unread):
                warn(e.render())
        problems = [e for e in problems if "could not be read" not in e.problem]
    if problems:
        raise ConfigErrors(problems)
    return need


def quota_info_wire(quota_id: str, values: Mapping[str, str], unit: str = "") -> dict[str, Any]:
    """A ``getSQuotaInfo`` answer as the engine sends it (camelCase wire names), for ``Mocks.call``:
    ``values`` maps a region (``""`` for the default entry) to the raw value string."""
    default_units = {CPU_QUOTA_ID: "milli-vCPU", MEMORY_QUOTA_ID: "By"}
    return {
        "service": SERVICE,
        "quotaId": quota_id,
        "name": f"projects/123/locations/global/services/{SERVICE}/quotaInfos/{quota_id}",
        "metricUnit": unit or default_units.get(quota_id, "1"),
        "containerType": "PROJECT",
        "dimensions": ["region"],
        "dimensionsInfos": [
            {
                "dimensions": {"region": r} if r else {},
                "details": [{"value": v}],
                "applicableLocations": [r] if r else ["global"],
            }
            for r, v in values.items()
        ],
    }
