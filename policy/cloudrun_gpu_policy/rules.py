"""The pack's policies: checks on raw resource inputs, so they hold for any stack.

A stack may build its Cloud Run GPU service with our components, with plain ``pulumi_gcp`` or
with another library; the engine hands every policy the same thing, the resource's inputs under
their wire (camelCase) names. So nothing here imports our component classes or the stack
program; the numbers come from ``cloudrun_gpu.limits``, the one place the library keeps
Cloud Run's limits with their sources.

During ``pulumi preview`` some inputs are unknown (they depend on another resource's outputs,
e.g. a service account's email). The SDK's proxy raises on reading one, which would skip the
whole policy for that resource; :func:`_item` turns such a value into :data:`UNKNOWN` instead,
and each check treats it as "cannot judge yet" so the rest of the resource is still checked.
``pulumi up`` runs the policies again once the values are known.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import pulumi
from cloudrun_gpu import limits
from cloudrun_gpu.engines import PROFILES
from cloudrun_gpu.sizing.readers import _PICKLE_SUFFIXES
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)
from pulumi_policy.proxy import UnknownValueError

READINESS_PATHS: Final = ", ".join(f"{name}: {p.readiness_path}" for name, p in PROFILES.items())
"""Each registered engine's readiness path (``cloudrun_gpu.engines``), named in the probe rule's fix."""

PACK_NAME: Final = "cloudrun-gpu-policies"
DEFAULT_ENFORCEMENT: Final = EnforcementLevel.MANDATORY
"""Every policy blocks by default; a team can lower one in the pack config (``enforcementLevel``)."""

SERVICE: Final = "gcp:cloudrunv2/service:Service"
BUCKET: Final = "gcp:storage/bucket:Bucket"
GPU_LIMIT: Final = "nvidia.com/gpu"
GEN2: Final = "EXECUTION_ENVIRONMENT_GEN2"
ALL_TRAFFIC: Final = "ALL_TRAFFIC"

# Same principals as cloudrun_gpu.service.settings.PUBLIC_MEMBERS; not imported from there
# because that package pulls in pulumi_gcp and the component classes.
PUBLIC_PRINCIPALS: Final = ("allUsers", "allAuthenticatedUsers")
PUBLIC_PREDEFINED_ACLS: Final = ("publicRead", "publicReadWrite", "authenticatedRead")

# Practice B3: the library's own list (cloudrun_gpu.sizing.readers), plus ``.pickle``, which it lacks.
PICKLE_SUFFIXES: Final = tuple(dict.fromkeys((*_PICKLE_SUFFIXES, ".pickle")))

# Cloud Run's defaults when a container sets no limits (cpu 1, memory 512Mi).
DEFAULT_CPU: Final = 1.0
DEFAULT_MEMORY_BYTES: Final = 512 * limits.MIB
# Probe defaults from google/cloud/run/v2/k8s.min.proto (facts §2.1), used when a field is unset.
PROBE_DEFAULTS: Final = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
DEFAULT_COMPUTE_SA: Final = re.compile(r"^\d+-compute@developer\.gserviceaccount\.com$")


class _Unknown:
    """A value the engine cannot know during preview; checks skip it rather than guess."""

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Final = _Unknown()

Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


# --- Reading raw inputs ----------------------------------------------------------------------


def _item(container: Any, key: str | int) -> Any:
    """``container[key]``; None when absent or the container is not a collection; UNKNOWN if unknown.

    Works on plain dicts/lists and on the SDK's read-only proxies (``Mapping``/``Sequence``, not
    ``dict``/``list``), whose ``in`` and iteration raise on unknown values, hence key access only.
    """
    try:
        if isinstance(container, Mapping) and isinstance(key, str):
            return container[key]
        if isinstance(container, Sequence) and not isinstance(container, str) and isinstance(key, int):
            return container[key] if 0 <= key < len(container) else None
    except KeyError:
        return None
    except UnknownValueError:
        return UNKNOWN
    return None


def _dig(value: Any, *path: str | int) -> Any:
    for key in path:
        if value is UNKNOWN or value is None:
            return value
        value = _item(value, key)
    return value


def _elements(value: Any) -> list[Any]:
    """The elements of a list input (a single object counts as one; absent or unknown: none)."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_item(value, i) for i in range(len(value))]
    return []


def _keys(value: Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, Mapping) else []


def _containers(props: Mapping[str, Any]) -> list[tuple[int, Any]]:
    return [(i, c) for i, c in enumerate(_elements(_dig(props, "template", "containers"))) if isinstance(c, Mapping)]


def _gpu_limits(props: Mapping[str, Any]) -> list[tuple[int, Any]]:
    """``(container index, value)`` for each container that declares an ``nvidia.com/gpu`` limit."""
    found = []
    for i, c in _containers(props):
        lim = _dig(c, "resources", "limits")
        if GPU_LIMIT in _keys(lim):
            found.append((i, _item(lim, GPU_LIMIT)))
    return found


def _accelerator(props: Mapping[str, Any]) -> Any:
    return _dig(props, "template", "nodeSelector", "accelerator")


def _is_gpu_service(args: ResourceValidationArgs) -> bool:
    """A Cloud Run v2 service asking for a GPU by either half of the GPU syntax (facts §1.1)."""
    if args.resource_type != SERVICE:
        return False
    accel = _accelerator(args.props)
    return (accel is not None and accel != "") or bool(_gpu_limits(args.props))


def _serving_containers(props: Mapping[str, Any]) -> list[tuple[int, Any]]:
    """Containers that serve or hold the GPU: those with ``ports`` or a GPU limit, else all of them.

    In a multi-container service only the ingress container declares ports; sidecars do not and
    are not asked for an HTTP startup probe.
    """
    containers = _containers(props)
    gpu = {i for i, _ in _gpu_limits(props)}
    serving = [(i, c) for i, c in containers if _item(c, "ports") is not None or i in gpu]
    return serving or containers


def _envs(container: Any) -> list[tuple[str, Any]]:
    """``(name, value)`` of each env var (value UNKNOWN if computed; None for secret references)."""
    out = []
    for env in _elements(_item(container, "envs")):
        name = _item(env, "name")
        if isinstance(name, str):
            out.append((name, _item(env, "value")))
    return out


def _gcs_volumes(props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(volume name, bucket)`` of each Cloud Storage FUSE volume in the template."""
    out = []
    for vol in _elements(_dig(props, "template", "volumes")):
        gcs = _item(vol, "gcs")
        if gcs is not None:
            name = _item(vol, "name")
            out.append((name if isinstance(name, str) else "?", _item(gcs, "bucket")))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is UNKNOWN:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _show(value: Any) -> str:
    """A value for a message; whole floats print as integers (the engine sends every number as a double)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _cpu(value: Any) -> float | None:
    """Kubernetes CPU quantity: ``"8"``, ``8``, ``"8000m"``."""
    if isinstance(value, str) and value.strip().endswith("m"):
        n = _number(value.strip()[:-1])
        return None if n is None else n / 1000
    return _number(value)


_MEMORY_UNITS: Final = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
}


def _memory(value: Any) -> float | None:
    """Kubernetes memory quantity in bytes: ``"32Gi"``, ``"512Mi"``, ``"16G"``, ``17179869184``."""
    if isinstance(value, str):
        s = value.strip()
        for unit in sorted(_MEMORY_UNITS, key=len, reverse=True):
            if s.endswith(unit):
                n = _number(s[: -len(unit)])
                return None if n is None else n * _MEMORY_UNITS[unit]
    return _number(value)


def _gib(n: float) -> str:
    return f"{n / limits.GIB:g} GiB"


def _where(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}'"


def _say(report: ReportViolation, args: ResourceValidationArgs, text: str) -> None:
    # ReportViolation's second parameter (a URN) is ignored for resource policies but is not optional in the type.
    report(f"{_where(args)}: {text}", None)


def _gpu_only(check: Callable[[ResourceValidationArgs, ReportViolation], None]) -> Validate:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if _is_gpu_service(args):
            check(args, report)

    return validate


# --- GPU service shape -----------------------------------------------------------------------


def _check_cpu_always_allocated(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for i, c in _containers(args.props):
        idle = _dig(c, "resources", "cpuIdle")
        if idle is UNKNOWN or idle is False:
            continue
        shown = "not set (Cloud Run may then throttle CPU between requests)" if idle is None else repr(idle)
        _say(
            report,
            args,
            f"template.containers[{i}].resources.cpuIdle is {shown}; a GPU service must have CPU always "
            "allocated, because Cloud Run requires instance-based billing for GPUs (A4, facts §1.2). "
            "Fix: set resources.cpu_idle=False on every container (gcloud: --no-cpu-throttling).",
        )


def _check_http_startup_probe(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for i, c in _serving_containers(args.props):
        probe = _item(c, "startupProbe")
        where = f"template.containers[{i}].startupProbe"
        if probe is UNKNOWN:
            continue
        if probe is None:
            _say(
                report,
                args,
                f"{where} is not set, so Cloud Run adds a default TCP probe that passes as soon as the port "
                "opens, before the model is in GPU memory (D2). Fix: set startup_probe.http_get to the "
                f"engine's readiness path ({READINESS_PATHS}) with a window long enough to load.",
            )
            continue
        http = _item(probe, "httpGet")
        if http is not None:
            continue
        kind = next((k for k in ("tcpSocket", "grpc") if _item(probe, k) is not None), None)
        # A probe with no handler used to read "uses no handler … Fix: replace <where>.no handler with http_get".
        uses, fix = (
            (f"uses {kind}", f"replace {where}.{kind} with http_get")
            if kind
            else ("sets no handler", f"add http_get to {where}")
        )
        _say(
            report,
            args,
            f"{where} {uses}; a GPU service needs an HTTP startup probe that passes only once the model "
            "can serve, and a TCP probe passes when the port opens, which Ollama does before loading (D2). "
            f"Fix: {fix} on the engine's readiness path.",
        )


def _check_explicit_concurrency(args: ResourceValidationArgs, report: ReportViolation) -> None:
    value = _dig(args.props, "template", "maxInstanceRequestConcurrency")
    if value is UNKNOWN:
        return
    lo, hi = limits.CONCURRENCY_MIN, int(limits.CONCURRENCY_MAX.value)
    if value is None:
        _say(
            report,
            args,
            "template.maxInstanceRequestConcurrency is not set, so the default applies (80 or 80 × vCPU, "
            "depending on the tool; facts §3.1), unrelated to what the engine can run at once and so "
            "wrong for scaling (D1, A1, A2). Fix: set max_instance_request_concurrency from the engine's "
            "parallel slots (A2 rule), then load-test it (A3).",
        )
    elif (n := _number(value)) is None or n != int(n) or not lo <= n <= hi:
        _say(
            report,
            args,
            f"template.maxInstanceRequestConcurrency is {_show(value)}; Cloud Run accepts an integer from {lo} to "
            f"{hi} ({limits.CONCURRENCY_MAX.source}). Fix: set it from the engine's parallel slots (A2).",
        )


def _check_limit_and_accelerator(args: ResourceValidationArgs, report: ReportViolation) -> None:
    accel = _accelerator(args.props)
    gpus = _gpu_limits(args.props)
    known = ", ".join(sorted(limits.GPU_TYPES))
    if not gpus:
        _say(
            report,
            args,
            f"template.nodeSelector.accelerator is {accel!r} but no container sets resources.limits"
            f"['{GPU_LIMIT}']; Cloud Run needs both halves of the GPU syntax (facts §1.1). "
            f"Fix: add '{GPU_LIMIT}': '1' to the serving container's resources.limits.",
        )
    if accel is None or accel == "":
        _say(
            report,
            args,
            f"template.containers[{gpus[0][0]}].resources.limits['{GPU_LIMIT}'] is set but "
            "template.nodeSelector.accelerator is not; Cloud Run needs both (facts §1.1). "
            f"Fix: set template.node_selector.accelerator to one of: {known}.",
        )
    elif accel is not UNKNOWN and accel not in limits.GPU_TYPES:
        _say(
            report,
            args,
            f"template.nodeSelector.accelerator is {accel!r}, not a Cloud Run GPU type we know "
            f"(cloudrun_gpu.limits.GPU_TYPES: {known}). Fix: use one of those, or add the new type "
            "with its CPU/memory minimums to limits.GPU_TYPES first.",
        )
    for i, value in gpus:
        if value is not UNKNOWN and _number(value) != 1:
            _say(
                report,
                args,
                f"template.containers[{i}].resources.limits['{GPU_LIMIT}'] is {_show(value)}; Cloud Run attaches "
                "exactly one GPU per instance (facts §1.1). Fix: set it to '1' and scale out with instances.",
            )
    if len(gpus) > 1:
        _say(
            report,
            args,
            f"containers {[i for i, _ in gpus]} each set resources.limits['{GPU_LIMIT}']; the GPU attaches "
            "to one container only (facts §1.1). Fix: keep the limit on the serving container alone.",
        )


def _check_gcs_volume_gen2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    volumes = _gcs_volumes(args.props)
    env = _dig(args.props, "template", "executionEnvironment")
    if not volumes or env is UNKNOWN or env == GEN2:
        return
    _say(
        report,
        args,
        f"template.volumes {[n for n, _ in volumes]} mount Cloud Storage (FUSE) but "
        f"template.executionEnvironment is {env!r}; FUSE volumes need the gen2 environment (facts §1.2). "
        f"Fix: set template.execution_environment='{GEN2}'.",
    )


def _check_model_loading_egress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    gcs: list[str] = [f"volume '{n}' (bucket {b!r})" for n, b in _gcs_volumes(args.props)]
    internet: list[str] = []
    for i, c in _containers(args.props):
        for name, value in _envs(c):
            if name == "MODEL_DOWNLOAD_URI" and isinstance(value, str) and value.startswith("gs://"):
                gcs.append(f"containers[{i}] env MODEL_DOWNLOAD_URI={value!r}")
            elif name == "MODEL_DOWNLOAD_URL":
                internet.append(f"containers[{i}] env MODEL_DOWNLOAD_URL")
        for j, arg in enumerate(_elements(_item(c, "args"))):
            if isinstance(arg, str) and arg.startswith("gs://"):
                gcs.append(f"containers[{i}].args[{j}]={arg!r}")
    if not gcs and not internet:
        return
    vpc = _dig(args.props, "template", "vpcAccess")
    egress = _item(vpc, "egress")
    nics = _item(vpc, "networkInterfaces")
    if egress is UNKNOWN or vpc is UNKNOWN:
        return
    shown = "not set (Cloud Run's default is PRIVATE_RANGES_ONLY)" if egress is None else repr(egress)
    if gcs and (egress != ALL_TRAFFIC or (nics is not UNKNOWN and not _elements(nics))):
        _say(
            report,
            args,
            f"loads the model from Cloud Storage ({'; '.join(gcs)}) but template.vpcAccess.egress is "
            f"{shown} with {len(_elements(nics))} Direct VPC network interface(s); Cloud Storage loading "
            f"needs Direct VPC with egress {ALL_TRAFFIC} plus Private Service Connect for Google APIs (L4). "
            "Fix: set template.vpc_access.network_interfaces to the service's subnet and egress='ALL_TRAFFIC'.",
        )
    if internet and egress != ALL_TRAFFIC:
        _say(
            report,
            args,
            f"loads the model from the internet ({'; '.join(internet)}) but template.vpcAccess.egress is "
            f"{shown}; route all traffic through the VPC and its Cloud NAT for bandwidth (L5). "
            "Fix: set template.vpc_access egress='ALL_TRAFFIC' with Direct VPC interfaces and a Cloud NAT.",
        )


def _check_min_cpu_memory(args: ResourceValidationArgs, report: ReportViolation) -> None:
    accel = _accelerator(args.props)
    gpu = limits.GPU_TYPES.get(accel) if isinstance(accel, str) else None
    if gpu is None:
        return  # unknown or missing type: gpu-limit-and-accelerator reports it
    cpu = memory = 0.0
    for _, c in _containers(args.props):
        lim = _dig(c, "resources", "limits")
        raw_cpu, raw_mem = _item(lim, "cpu"), _item(lim, "memory")
        if any(x is UNKNOWN for x in (lim, raw_cpu, raw_mem)):
            return
        c_cpu = DEFAULT_CPU if raw_cpu is None else _cpu(raw_cpu)
        c_mem = DEFAULT_MEMORY_BYTES if raw_mem is None else _memory(raw_mem)
        if c_cpu is None or c_mem is None:
            _say(report, args, f"cannot parse resources.limits cpu={raw_cpu!r} memory={raw_mem!r}.")
            return
        cpu, memory = cpu + c_cpu, memory + c_mem
    need_mem = gpu.min_memory_gib * limits.GIB
    if cpu < gpu.min_cpu or memory < need_mem:
        _say(
            report,
            args,
            f"the instance has {cpu:g} vCPU and {_gib(memory)} (sum of the containers' resources.limits; "
            f"unset means Cloud Run's 1 vCPU / 512 MiB); {gpu.display} needs at least {gpu.min_cpu} vCPU and "
            f"{gpu.min_memory_gib} GiB ({gpu.source}). Fix: set resources.limits cpu >= '{gpu.min_cpu}' and "
            f"memory >= '{gpu.min_memory_gib}Gi' (defaults we use: {gpu.default_cpu} / {gpu.default_memory_gib}Gi).",
        )


def _check_max_instances(args: ResourceValidationArgs, report: ReportViolation) -> None:
    value = _dig(args.props, "template", "scaling", "maxInstanceCount")
    if value is None:
        value = _dig(args.props, "scaling", "maxInstanceCount")
    minimum = _dig(args.props, "template", "scaling", "minInstanceCount")
    if value is UNKNOWN:
        return
    if value is None:
        _say(
            report,
            args,
            "neither template.scaling.maxInstanceCount nor scaling.maxInstanceCount is set, so Cloud Run's "
            "default of 100 instances applies; each GPU instance counts against the regional GPU quota "
            f"(observed default {limits.DEFAULT_GPU_QUOTA.value:g}) and the deploy fails with 'Max instances "
            "must be set to 3 or fewer' (facts §1.1, §1.3). Fix: set template.scaling.max_instance_count "
            "to at most your GPU quota for the zonal-redundancy mode in use.",
        )
        return
    n = _number(value)
    if n is None or n < 1 or n != int(n):
        _say(report, args, f"max instance count is {_show(value)}; it must be a whole number >= 1.")
        return
    low = _number(minimum)
    if low is not None and low > n:
        _say(
            report,
            args,
            f"template.scaling.minInstanceCount {_show(minimum)} exceeds maxInstanceCount {_show(value)}. "
            "Fix: keep min_instance_count <= max_instance_count.",
        )


def _check_service_account(args: ResourceValidationArgs, report: ReportViolation) -> None:
    sa = _dig(args.props, "template", "serviceAccount")
    if sa is UNKNOWN:
        return
    if not sa:
        _say(
            report,
            args,
            "template.serviceAccount is not set, so the service runs as the Compute Engine default service "
            "account, which usually holds Editor on the whole project. Fix: create a dedicated service "
            "account with only what serving needs (e.g. roles/storage.objectViewer on the model bucket) and "
            "set template.service_account to its email.",
        )
    elif isinstance(sa, str) and DEFAULT_COMPUTE_SA.match(sa):
        _say(
            report,
            args,
            f"template.serviceAccount is {sa!r}, the Compute Engine default service account (usually Editor "
            "on the project). Fix: use a dedicated, least-privilege service account.",
        )


def _check_startup_probe_limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    gpu = _is_gpu_service(args)
    window_max = (limits.STARTUP_WINDOW_GPU_S if gpu else limits.STARTUP_WINDOW_CPU_S).value
    for i, c in _containers(args.props):
        probe = _item(c, "startupProbe")
        if not isinstance(probe, Mapping):
            continue
        where = f"template.containers[{i}].startupProbe"
        raw = {k: _item(probe, k) for k in PROBE_DEFAULTS}
        if any(x is UNKNOWN for x in raw.values()):
            continue
        v = {k: (PROBE_DEFAULTS[k] if raw[k] is None else _number(raw[k])) for k in PROBE_DEFAULTS}
        if any(x is None for x in v.values()):
            _say(report, args, f"{where} has a non-numeric field: {raw!r}.")
            continue
        delay, period, timeout, failures = (
            float(v[k] or 0) for k in ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold")
        )
        problems = []
        if not 0 <= delay <= limits.PROBE_INITIAL_DELAY_MAX:
            problems.append(f"initialDelaySeconds {delay:g} is outside 0..{limits.PROBE_INITIAL_DELAY_MAX}")
        if not limits.PROBE_PERIOD_MIN <= period <= limits.PROBE_PERIOD_MAX:
            problems.append(f"periodSeconds {period:g} is outside {limits.PROBE_PERIOD_MIN}..{limits.PROBE_PERIOD_MAX}")
        if timeout < limits.PROBE_TIMEOUT_MIN or timeout >= period:
            problems.append(
                f"timeoutSeconds {timeout:g} must be >= {limits.PROBE_TIMEOUT_MIN} and smaller than periodSeconds "
                f"{period:g} ({limits.PROBE_TIMEOUT_STRICTLY_BELOW_PERIOD.source})"
            )
        if failures < limits.PROBE_FAILURE_THRESHOLD_MIN:
            problems.append(f"failureThreshold {failures:g} is below {limits.PROBE_FAILURE_THRESHOLD_MIN}")
        if failures * period > window_max:
            kind = "a GPU" if gpu else "a non-GPU"
            problems.append(
                f"failureThreshold × periodSeconds = {failures:g} × {period:g} = {failures * period:g} s exceeds "
                f"{window_max:g} s for {kind} service (facts §2.2)"
            )
        if problems:
            _say(
                report,
                args,
                f"{where} is outside Cloud Run's limits: {'; '.join(problems)}. The startup window is "
                f"initialDelaySeconds + failureThreshold × periodSeconds = {delay + failures * period:g} s (D2). "
                "Fix: keep each field in range and lengthen the window with failureThreshold, not the period.",
            )


# --- Access -----------------------------------------------------------------------------------

RUN_IAM_TYPES: Final = (
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
    "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
    "gcp:cloudrun/iamMember:IamMember",
    "gcp:cloudrun/iamBinding:IamBinding",
    "gcp:cloudrun/iamPolicy:IamPolicy",
)
STORAGE_ACCESS_TYPES: Final = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
    "gcp:storage/managedFolderIamMember:ManagedFolderIamMember",
    "gcp:storage/managedFolderIamBinding:ManagedFolderIamBinding",
    "gcp:storage/managedFolderIamPolicy:ManagedFolderIamPolicy",
    "gcp:storage/bucketAccessControl:BucketAccessControl",
    "gcp:storage/bucketACL:BucketACL",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
    "gcp:storage/defaultObjectACL:DefaultObjectACL",
    "gcp:storage/objectAccessControl:ObjectAccessControl",
    "gcp:storage/objectACL:ObjectACL",
    "gcp:storage/bucketObject:BucketObject",
)


def _public_grants(props: Mapping[str, Any]) -> list[str]:
    """Every public grant an IAM member/binding/policy or ACL resource makes, described with its input path."""
    found: list[str] = []
    role = _item(props, "role")
    member = _item(props, "member")
    if member in PUBLIC_PRINCIPALS:
        found.append(f"member {member!r} with role {role!r}")
    for m in _elements(_item(props, "members")):
        if m in PUBLIC_PRINCIPALS:
            found.append(f"members contains {m!r} with role {role!r}")
    entity = _item(props, "entity")
    if entity in PUBLIC_PRINCIPALS:
        found.append(f"entity {entity!r} with role {role!r}")
    for key in ("roleEntities", "defaultAcl"):
        for re_ in _elements(_item(props, key)):
            if isinstance(re_, str) and re_.rpartition(":")[2] in PUBLIC_PRINCIPALS:
                found.append(f"{key} contains {re_!r}")
    acl = _item(props, "predefinedAcl")
    if acl in PUBLIC_PREDEFINED_ACLS:
        found.append(f"predefinedAcl {acl!r}")
    policy = _item(props, "policyData")
    if isinstance(policy, str):
        try:
            bindings = json.loads(policy).get("bindings", [])
        except (ValueError, AttributeError):
            bindings = []
        for b in bindings if isinstance(bindings, list) else []:
            for m in b.get("members", []) if isinstance(b, dict) else []:
                if m in PUBLIC_PRINCIPALS:
                    found.append(f"policyData binds {m!r} to {b.get('role')!r}")
    return found


def _check_no_public_invoker(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == SERVICE:
        if _item(args.props, "invokerIamDisabled") is True:
            _say(
                report,
                args,
                "invokerIamDisabled is true, so Cloud Run skips the invoker IAM check and anyone who can reach "
                "the URL can run inference on a GPU billed per instance. Fix: remove invoker_iam_disabled and "
                "grant roles/run.invoker to the callers (a gateway service account or a group).",
            )
        return
    if args.resource_type not in RUN_IAM_TYPES:
        return
    for grant in _public_grants(args.props):
        _say(
            report,
            args,
            f"{grant}: a public grant on a Cloud Run service lets anyone on the internet call (or manage) a GPU "
            "endpoint that bills per instance; Google's samples all deploy with --no-allow-unauthenticated. "
            "Fix: grant roles/run.invoker to a gateway service account or a group instead.",
        )


def _check_bucket_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUCKET:
        return
    ubla = _item(args.props, "uniformBucketLevelAccess")
    pap = _item(args.props, "publicAccessPrevention")
    if ubla is not UNKNOWN and ubla is not True:
        _say(
            report,
            args,
            f"uniformBucketLevelAccess is {ubla!r}; without it object ACLs can make single model files public "
            "behind the bucket's IAM. Fix: set uniform_bucket_level_access=True.",
        )
    if pap is not UNKNOWN and pap != "enforced":
        _say(
            report,
            args,
            f"publicAccessPrevention is {pap!r}; model weights (and anything else stored beside them) must not "
            "become public by a later IAM or ACL change. Fix: set public_access_prevention='enforced'.",
        )


def _check_no_public_bucket_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in STORAGE_ACCESS_TYPES:
        return
    for grant in _public_grants(args.props):
        _say(
            report,
            args,
            f"{grant}: this makes the bucket's objects (the model weights) readable by anyone. "
            "Fix: grant roles/storage.objectViewer to the service's runtime service account only.",
        )


# --- Model files ------------------------------------------------------------------------------


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in an input tree with its dotted path; unknown values are skipped, not fatal."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return [(path, str(value.path))]
    if isinstance(value, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return [(path, str(value.uri))]
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key in _keys(value):
            out += _strings(_item(value, key), f"{path}.{key}" if path else key)
    elif isinstance(value, Sequence):
        for i in range(len(value)):
            out += _strings(_item(value, i), f"{path}[{i}]")
    return out


def _check_no_pickle(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = set(args.get_config().get("allowedValues", []) or [])
    for path, text in _strings(args.props, ""):
        tail = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").lower()
        if tail.endswith(PICKLE_SUFFIXES) and text not in allowed:
            _say(
                report,
                args,
                f"{path} is {text!r}, a pickle-format checkpoint ({', '.join(PICKLE_SUFFIXES)}), which can "
                "execute code when loaded (B3). Fix: convert the model to GGUF or safetensors and point at "
                "that file; if this string is not a model file, add it to this policy's allowedValues config.",
            )


# --- Production -------------------------------------------------------------------------------


def _labels_say_production(props: Mapping[str, Any], values: Sequence[str]) -> str | None:
    for path in (("labels", "environment"), ("template", "labels", "environment")):
        value = _dig(props, *path)
        if isinstance(value, str) and value.lower() in values:
            return f"label {'.'.join(path)}={value!r}"
    return None


def _check_production(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (SERVICE, BUCKET):
        return
    cfg = args.get_config()
    values = [str(v).lower() for v in cfg.get("productionLabelValues", ["prod", "production"])]
    why = "policy config production=true" if cfg.get("production") is True else None
    why = why or _labels_say_production(args.props, values)
    if why is None:
        return
    if args.resource_type == SERVICE:
        dp = _item(args.props, "deletionProtection")
        if dp is not UNKNOWN and dp is not True:
            _say(
                report,
                args,
                f"production ({why}) but deletionProtection is {dp!r}; a stray `pulumi destroy` or a "
                "replacement would delete the serving endpoint. Fix: set deletion_protection=True.",
            )
    else:
        fd = _item(args.props, "forceDestroy")
        if fd is True:
            _say(
                report,
                args,
                f"production ({why}) but forceDestroy is true, so deleting the stack also deletes every model "
                "object in the bucket. Fix: set force_destroy=False (empty the bucket deliberately if needed).",
            )


# --- The policies -----------------------------------------------------------------------------


def _policy(
    name: str,
    description: str,
    validate: Validate,
    *,
    severity: Severity = Severity.HIGH,
    config: PolicyConfigSchema | None = None,
    tags: list[str] | None = None,
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=DEFAULT_ENFORCEMENT,
        config_schema=config,
        severity=severity,
        tags=tags or ["cloud-run", "gpu"],
    )


POLICIES: Final[list[ResourceValidationPolicy]] = [
    _policy(
        "gpu-cpu-always-allocated",
        "A4 / facts §1.2: every container of a Cloud Run GPU service sets resources.cpuIdle=false "
        "(GPU services need instance-based billing, CPU always allocated).",
        _gpu_only(_check_cpu_always_allocated),
    ),
    _policy(
        "gpu-http-startup-probe",
        "D2: each serving container of a Cloud Run GPU service has an HTTP startup probe (never TCP, never "
        "absent), so the instance takes traffic only once the model is loaded.",
        _gpu_only(_check_http_startup_probe),
    ),
    _policy(
        "gpu-explicit-concurrency",
        "D1, A1, A2 / facts §3.1: a Cloud Run GPU service sets template.maxInstanceRequestConcurrency "
        "explicitly, within 1..1000.",
        _gpu_only(_check_explicit_concurrency),
        severity=Severity.MEDIUM,
    ),
    _policy(
        "gpu-model-loading-egress",
        "L4, L5: a GPU service that loads its model from Cloud Storage uses Direct VPC with egress ALL_TRAFFIC; "
        "one that downloads it from the internet (MODEL_DOWNLOAD_URL) routes ALL_TRAFFIC through the VPC.",
        _gpu_only(_check_model_loading_egress),
        severity=Severity.MEDIUM,
    ),
    _policy(
        "gpu-limit-and-accelerator",
        "facts §1.1: a GPU service sets the nvidia.com/gpu limit to '1' and template.nodeSelector.accelerator "
        "together, on one container, with a GPU type from cloudrun_gpu.limits.GPU_TYPES.",
        _gpu_only(_check_limit_and_accelerator),
    ),
    _policy(
        "gpu-gcs-volume-gen2",
        "facts §1.2: a GPU service with a Cloud Storage FUSE volume sets executionEnvironment "
        "EXECUTION_ENVIRONMENT_GEN2.",
        _gpu_only(_check_gcs_volume_gen2),
    ),
    _policy(
        "gpu-min-cpu-memory",
        "facts §1.1 / limits.GPU_TYPES: a GPU service's instance has at least the GPU type's minimum CPU and "
        "memory (L4: 4 vCPU / 16 GiB; RTX PRO 6000: 20 vCPU / 80 GiB).",
        _gpu_only(_check_min_cpu_memory),
    ),
    _policy(
        "gpu-max-instances",
        "facts §1.1, §1.3: a GPU service sets its maximum instance count (GPU quota is small and the API "
        "rejects the default of 100).",
        _gpu_only(_check_max_instances),
        severity=Severity.MEDIUM,
    ),
    _policy(
        "gpu-dedicated-service-account",
        "facts §3.4, §4.1: a GPU service runs as a dedicated service account (template.serviceAccount set, not "
        "the Compute Engine default account), which alone is granted read access to the model bucket.",
        _gpu_only(_check_service_account),
        severity=Severity.MEDIUM,
        tags=["cloud-run", "gpu", "security"],
    ),
    _policy(
        "startup-probe-limits",
        "D2 / facts §2.1-2.2: every Cloud Run service's startup probe stays inside Cloud Run's limits "
        "(delay and period <= 240 s, timeout < period, failureThreshold × period <= 1800 s with GPU, 240 s "
        "without).",
        _check_startup_probe_limits,
        severity=Severity.MEDIUM,
        tags=["cloud-run"],
    ),
    _policy(
        "no-public-invoker",
        "facts §3.3-3.4 (Google deploys with --no-allow-unauthenticated): no Cloud Run service IAM grant to "
        "allUsers/allAuthenticatedUsers (roles/run.invoker or any role) and no invokerIamDisabled.",
        _check_no_public_invoker,
        severity=Severity.CRITICAL,
        tags=["cloud-run", "security"],
    ),
    _policy(
        "bucket-private",
        "facts §4.1 (model access by IAM to the service identity only): every Cloud Storage bucket sets "
        "uniformBucketLevelAccess=true and publicAccessPrevention='enforced'.",
        _check_bucket_private,
        severity=Severity.HIGH,
        tags=["storage", "security"],
    ),
    _policy(
        "no-public-bucket-access",
        "facts §4.1: no Cloud Storage IAM member/binding/policy or ACL grants anything to "
        "allUsers/allAuthenticatedUsers; only the service identity reads the model.",
        _check_no_public_bucket_access,
        severity=Severity.CRITICAL,
        tags=["storage", "security"],
    ),
    _policy(
        "no-pickle-model-files",
        "B3: no resource input names a pickle-format checkpoint (.bin .pt .pth .pkl .pickle .ckpt); pickle "
        "can execute code when loaded.",
        _check_no_pickle,
        config=PolicyConfigSchema(
            properties={
                "allowedValues": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": [],
                    "description": "Exact input strings that end in a pickle suffix but are not model files.",
                }
            }
        ),
        tags=["model", "security"],
    ),
    _policy(
        "production-deletion-safety",
        "Repo rule (prod stack: deletion protection on): in production a Cloud Run service has "
        "deletionProtection=true and a bucket does not set forceDestroy=true. Production = policy config "
        "production=true, or a resource label environment=prod.",
        _check_production,
        config=PolicyConfigSchema(
            properties={
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
        ),
        tags=["production"],
    ),
]
"""Every policy of the pack, in the order the pack reports them."""
