"""The stack's configuration: one reader for ``plan``, ``size``, ``cloudbuild`` and the Pulumi program.

A stack file holds one section per concern under the project namespace (``cloudrun-gpu:network`` …)
plus ``gcp:project``/``gcp:region``. Every section *is* a component's settings type (declared and
validated by the component that owns it); this module only composes them and adds the rules that
span components (prod forbids ``force_destroy``, internet loading needs NAT, the subnet holds max
instances). Unknown keys anywhere under the namespace are errors, with a did-you-mean, for every
caller alike: ``plan`` and ``pulumi up`` can no longer disagree about a misspelt section.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from cloudrun_gpu import limits, netcalc
from cloudrun_gpu.bucket import BucketSettings
from cloudrun_gpu.build import build_account_id
from cloudrun_gpu.cache.settings import CacheSettings, VpcEgress
from cloudrun_gpu.capacity import CapacityPlan, CapacitySettings, InstanceThroughput, Region, plan_capacity
from cloudrun_gpu.errors import ConfigError, ConfigErrors, collect
from cloudrun_gpu.frontdoor import child_names
from cloudrun_gpu.frontdoor.settings import FrontDoorSettings
from cloudrun_gpu.network.settings import NetworkSettings
from cloudrun_gpu.pricing import instance_cost
from cloudrun_gpu.registry import RegistrySettings
from cloudrun_gpu.service.plan import ServicePlan, ServingSettings, plan_service
from cloudrun_gpu.service.settings import (
    SERVICE_NAME_PATTERN,
    GpuSettings,
    Ingress,
    ResourcesSettings,
    ScalingSettings,
    ServiceSettings,
)
from cloudrun_gpu.settings import (
    as_errors,
    field_names,
    nested,
    parse,
    rename_fields,
    settings,
    suggest,
    with_prefix,
)
from cloudrun_gpu.sizing import SizingPlan
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingSettings, ModelSettings
from pydantic import Field, TypeAdapter

PROJECT = "cloudrun-gpu"
"""The Pulumi project name, and so the config namespace (``cloudrun-gpu:<section>``)."""
NS = f"{PROJECT}:"
ENVIRONMENTS = ("dev", "staging", "prod")
PROJECT_PATTERN = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"
PLAN_PROJECT = "your-project-id"
"""The project ``plan`` renders with while ``gcp:project`` is unset (committed stacks name none)."""
PLAN_ONLY_ENV = "CLOUDRUN_GPU_PLAN_ONLY"
"""Set to 1 by the offline renderer (``plan``): deploy-only requirements become warnings there."""
SET_INVOKER = "pulumi config set --path 'cloudrun-gpu:service.invokers[0]' \"user:$(gcloud config get-value account)\""
SET_DOMAIN = "pulumi config set --path 'cloudrun-gpu:frontdoor.domains[0]' llm.<your-domain>"
"""What a front door without a domain needs before ``pulumi up`` (issue 19: a committed placeholder domain got a
Google-managed certificate that never became active)."""
PLAN_DOMAIN = "llm.your-domain.example"
"""The domain ``plan`` renders a front door with while none is set (``.example`` is reserved, RFC 2606)."""
RESERVED_DOMAINS = ("example", "example.com", "example.net", "example.org", "invalid", "localhost", "test")
"""Names no certificate authority can validate (RFC 2606 reserves them for documentation and tests)."""


SECTIONS: dict[str, type[Any]] = {
    "gpu": GpuSettings,
    "model": ModelSettings,
    "engine": EngineSettings,
    "loading": LoadingSettings,
    "resources": ResourcesSettings,
    "scaling": ScalingSettings,
    "network": NetworkSettings,
    "service": ServiceSettings,
    "registry": RegistrySettings,
    "bucket": BucketSettings,
}
"""Stack-file section → the component settings type that declares, documents and validates it."""
REGION_PATTERN = r"^[a-z]+(-[a-z]+)+[0-9]+$"
"""A Google Cloud region name (``europe-west1``, ``northamerica-northeast2``)."""
REGIONAL_SECTIONS = ("gpu", "resources", "scaling", "network")
"""The sections a ``cloudrun-gpu:regions`` entry may override: what differs between regions (GPU type and
quota, instance shape, instances, subnet). Model, engine, loading and service stay one per stack: every
region must answer every request the same way, since the load balancer may send any request to any region."""

CONTINENTS = {
    "us": "North America",
    "northamerica": "North America",
    "southamerica": "South America",
    "europe": "Europe",
    "asia": "Asia",
    "australia": "Oceania",
    "me": "Middle East",
    "africa": "Africa",
}
"""A region's continent from its name's first part (Cloud Storage's location list groups regions so:
https://cloud.google.com/storage/docs/locations, "Available locations")."""
MULTI_REGIONS = {"US": "North America", "EU": "Europe", "ASIA": "Asia"}
"""Cloud Storage multi-regions and the continent each lies in (https://cloud.google.com/storage/docs/locations,
"Multi-regions": ASIA, EU, US)."""
DUAL_REGIONS = {
    "NAM4": ("us-central1", "us-east1"),
    "EUR4": ("europe-north1", "europe-west4"),
    "ASIA1": ("asia-northeast1", "asia-northeast2"),
}
"""Predefined Cloud Storage dual-regions and their regions (https://cloud.google.com/storage/docs/locations,
"Predefined dual-regions")."""


def continent(location: str) -> str | None:
    """The continent a region or bucket location lies in; None when unknown (``europe-west1`` → Europe,
    ``EU`` → Europe, ``NAM4`` → North America)."""
    upper = location.upper()
    if upper in MULTI_REGIONS:
        return MULTI_REGIONS[upper]
    if upper in DUAL_REGIONS:
        return continent(DUAL_REGIONS[upper][0])
    return CONTINENTS.get(location.lower().split("-", 1)[0])


@settings
class RegionSettings:
    """One region the stack serves from (``cloudrun-gpu:regions``, listed nearest your users first). Each entry
    gets its own network, model bucket, registry, image build and GPU service; the keys given under ``gpu``,
    ``resources``, ``scaling`` and ``network`` override the stack's sections of the same name for this region
    only. The first region is the primary: it keeps a single-region stack's resource names, so turning a
    stack into a multi-region one replaces nothing."""

    region: str = Field(pattern=REGION_PATTERN)
    """Cloud Run region; it must offer this entry's GPU type (``components/cloudrun_gpu/limits.py``)."""
    gpu: GpuSettings | None = None
    """GPU type, redundancy mode and the quota granted here (keys override ``cloudrun-gpu:gpu``)."""
    resources: ResourcesSettings | None = None
    """CPU and memory per instance here (keys override ``cloudrun-gpu:resources``; unset values follow this
    region's GPU type)."""
    scaling: ScalingSettings | None = None
    """Min and max instances here (keys override ``cloudrun-gpu:scaling``): min instances apply per region."""
    network: NetworkSettings | None = None
    """This region's network (keys override ``cloudrun-gpu:network``): its own VPC, subnet sized for its max
    instances, PSC endpoint (named ``<psc.name><n>`` for the n-th region unless set) and NAT."""
    bucket_location: str | None = None
    """Where this region's model copy lives: unset = a bucket in the region itself; or a multi-region (``EU``,
    ``US``, ``ASIA``) or predefined dual-region (``EUR4``, ``NAM4``, ``ASIA1``) on the same continent. Weights are
    never read across continents at start-up."""

    def problems(self) -> list[ConfigError]:
        """Each overridden section's own rules, as in the stack's section of the same name (issue 21: a region's
        CPU of 10^12 or an over-long PSC name passed, since only the entry's types were checked)."""
        return [e for name in REGIONAL_SECTIONS for e in nested(getattr(self, name), name)]


HF_TOKEN_KEY = "hf_token"
"""A Hugging Face token for gated models (``pulumi config set --secret cloudrun-gpu:hf_token hf_…``): not a
section; the program stores it in Secret Manager and the staging build reads it from there (stack/compose.py)."""
OPTIONAL_SECTIONS: dict[str, type[Any]] = {
    "regions": RegionSettings,
    "frontdoor": FrontDoorSettings,
    "capacity": CapacitySettings,
    "cache": CacheSettings,
}
"""Sections that switch a feature on by being present (``regions`` is a list of the type): a stack without
them is the single-region stack it always was."""
KNOWN_KEYS = ("environment", HF_TOKEN_KEY, *SECTIONS, *OPTIONAL_SECTIONS)
PICKLE_GLOBS = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt"]
"""Pickle formats a local source never uploads (loading one runs code): the staging build's ``--exclude`` list too."""
PATH_MAX = 4096
"""Linux's longest path (``PATH_MAX``, ``include/uapi/linux/limits.h``); a longer ``model.source`` makes ``stat``
fail with ``ENAMETOOLONG`` (issue 21: an ``OSError`` traceback before this check)."""
NAME_MAX = 255
"""Linux's longest file-name component (``NAME_MAX``, ``include/uapi/linux/limits.h``)."""


@dataclass(frozen=True)
class StackConfig:
    """A parsed stack: where it deploys and every section."""

    project: str
    region: str
    environment: str
    gpu: GpuSettings
    model: ModelSettings
    engine: EngineSettings
    loading: LoadingSettings
    resources: ResourcesSettings
    scaling: ScalingSettings
    network: NetworkSettings
    service: ServiceSettings
    registry: RegistrySettings
    bucket: BucketSettings
    regions: tuple[RegionSettings, ...] = ()
    """``cloudrun-gpu:regions``, merged over the stack's sections; empty for a single-region stack (then
    ``region``, ``gpu``, ``scaling`` … describe its only region). When set, the fields above are the first's."""
    frontdoor: FrontDoorSettings | None = None
    """``cloudrun-gpu:frontdoor``: the load balancer in front of the regions' services; None: none."""
    capacity: CapacitySettings | None = None
    """``cloudrun-gpu:capacity``: the target load and per-GPU throughput the capacity plan uses; None: no plan."""
    cache: CacheSettings | None = None
    """``cloudrun-gpu:cache`` with ``enabled: true``: the response cache in front of the service (S1); None: none."""

    @property
    def serving(self) -> ServingSettings:
        """This stack's (region's) serving bundle: what the GPU service is sized and rendered from."""
        return ServingSettings(
            self.region, self.model, self.engine, self.loading, self.gpu, self.resources, self.scaling
        )

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def multi_region(self) -> bool:
        return len(self.regions) > 1

    def in_region(self, i: int) -> StackConfig:
        """The one-region stack of ``regions[i]``: the same model, engine and service, with that region's GPU,
        instance shape, instances and network."""
        r = self.regions[i]
        assert r.gpu and r.resources and r.scaling and r.network  # merged by parse_config
        return dataclasses.replace(
            self, region=r.region, gpu=r.gpu, resources=r.resources, scaling=r.scaling, network=r.network
        )


@dataclass(frozen=True)
class ValidatedStack:
    """A config that passed every check, with the numbers derived from it."""

    config: StackConfig
    plan: ServicePlan
    warnings: tuple[str, ...] = ()
    """What ``plan`` let through that ``pulumi up`` will refuse (a missing project or invoker)."""
    others: tuple[ValidatedStack, ...] = ()
    """The regions after the first (``cloudrun-gpu:regions[1:]``), each validated and sized as a one-region
    stack of its own GPU; empty for a single-region stack."""
    index: int = 0
    """This region's position in ``cloudrun-gpu:regions`` (0: the primary, or the only region)."""
    capacity: CapacityPlan | None = None
    """The capacity plan over every region when the stack sets ``cloudrun-gpu:capacity``."""

    @property
    def regional(self) -> tuple[ValidatedStack, ...]:
        """Every region's validated stack, the primary (this one) first."""
        return (self, *self.others)

    @property
    def suffix(self) -> str:
        """What this region adds to logical names: nothing for the primary (a single-region stack's names stay
        as they were, so adding regions replaces nothing), ``-<region>`` for the others."""
        return "" if self.index == 0 else f"-{self.config.region}"

    @property
    def bucket_location(self) -> str:
        """Where this region's model bucket lives: the region, or the multi/dual-region its entry names."""
        regions = self.config.regions
        chosen = regions[self.index].bucket_location if regions else None
        return chosen or self.config.region

    @property
    def front_door(self) -> bool:
        return self.config.frontdoor is not None

    @property
    def sizing(self) -> SizingPlan:
        return self.plan.sizing

    @property
    def cpu(self) -> int:
        return self.plan.cpu

    @property
    def memory_gib(self) -> int:
        return self.plan.memory_gib

    @property
    def in_memory_volume_gib(self) -> int:
        return self.plan.in_memory_volume_gib

    @property
    def model_path(self) -> str:
        return self.plan.model_path

    @property
    def concurrency(self) -> int:
        return self.plan.concurrency

    @property
    def deletion_protection(self) -> bool:
        dp = self.config.service.deletion_protection
        return dp if dp is not None else self.config.is_prod

    @property
    def force_destroy(self) -> bool:
        fd = self.config.bucket.force_destroy
        return fd if fd is not None else not self.config.is_prod


# --- Reading ----------------------------------------------------------------------------------


def _stack_key(field: str) -> str:
    """A library field path as the stack key the user wrote (``gpu.type`` → ``cloudrun-gpu:gpu.type``)."""
    if field == "region":
        return "gcp:region"
    if field == "project":
        return "gcp:project"
    return NS + field


def _to_stack_keys(errors: list[ConfigError]) -> list[ConfigError]:
    return rename_fields(errors, {e.field: _stack_key(e.field) for e in errors}).errors


def parse_config(flat: dict[str, Any], problems: list[ConfigError] | None = None) -> StackConfig:
    """Flat Pulumi config (``ns:key`` → value; values may be JSON strings, as Pulumi hands them to a
    program) into a :class:`StackConfig`; every problem at once, named by its stack key. With a
    ``problems`` list, sections that parsed but break a cross-field rule are collected there."""
    errors: list[ConfigError] = []
    sections: dict[str, Any] = {}
    for key, value in flat.items():
        if not isinstance(key, str):
            errors.append(ConfigError(str(key), value, "is not a config key", "write keys as 'namespace:name'"))
            continue
        ns, _, name = key.partition(":")
        if ns != PROJECT:
            continue
        if name not in KNOWN_KEYS:
            guess = suggest(name, KNOWN_KEYS)
            errors.append(
                ConfigError(
                    key,
                    _decode(value),
                    "is not a known setting",
                    f"did you mean {NS}{guess}?" if guess else "remove it",
                    ", ".join(NS + k for k in KNOWN_KEYS),
                )
            )
            continue
        sections[name] = _decode(value)
    project, region = flat.get("gcp:project"), flat.get("gcp:region")
    if not project:
        errors.append(
            ConfigError(
                "gcp:project",
                project,
                "is not set: the stack needs the project it deploys to",
                "pulumi config set gcp:project <your-project-id>",
            )
        )
    elif not isinstance(project, str) or not re.fullmatch(PROJECT_PATTERN, project):
        errors.append(
            ConfigError(
                "gcp:project",
                project,
                "is not a project id",
                "use the project id (6-30 lowercase letters, digits, hyphens), not its name or number",
                PROJECT_PATTERN,
            )
        )
    if not region and isinstance(sections.get("regions"), list):
        region = _first_region(sections["regions"])  # the primary region is the provider's default too
    if (not region or not isinstance(region, str)) and "regions" not in sections:
        errors.append(
            ConfigError("gcp:region", region, "is not set", "pulumi config set gcp:region <region, e.g. europe-west1>")
        )
    token = sections.pop(HF_TOKEN_KEY, None)  # the value stays with Pulumi (a secret); only its presence counts here
    if token is not None and (not isinstance(token, str) or not token.strip()):
        errors.append(
            ConfigError(
                NS + HF_TOKEN_KEY,
                "[hidden]",
                "is not a token",
                f"pulumi config set --secret {NS}{HF_TOKEN_KEY} <your Hugging Face token>",
            )
        )
    env = sections.pop("environment", "dev")
    if env not in ENVIRONMENTS:
        errors.append(
            ConfigError(
                NS + "environment",
                env,
                "is not an environment",
                f"set {NS}environment to one of {', '.join(ENVIRONMENTS)}",
                ", ".join(ENVIRONMENTS),
            )
        )
    optional = {name: sections.pop(name) for name in OPTIONAL_SECTIONS if name in sections}
    stack_names(sections, optional)

    def section(name: str, cls: type[Any], raw: Any) -> Any:
        """One section parsed by its settings type; None (with the error collected) when it cannot be."""
        if not isinstance(raw, dict):
            errors.append(
                ConfigError(
                    NS + name,
                    raw,
                    "must be a mapping of settings",
                    f"write {NS}{name} as a YAML mapping; known keys: {', '.join(field_names(cls))}",
                )
            )
            return None
        return collect(errors, lambda: parse(cls, raw, f"{NS}{name}.", problems))

    parsed: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        raw = sections.get(name)
        if raw is None:
            parsed[name] = cls(name="gemma-3-4b") if cls is ModelSettings else cls()
        elif (got := section(name, cls, raw)) is not None:
            parsed[name] = got
    extra: dict[str, Any] = {}
    for name in ("frontdoor", "capacity", "cache"):
        if (raw := optional.get(name)) is not None:
            extra[name] = section(name, OPTIONAL_SECTIONS[name], raw)
    if extra.get("cache") is not None and not extra["cache"].enabled:
        extra["cache"] = None  # written down but switched off: the stack is the one without a cache
    if "regions" in optional:
        regions = _parse_regions(optional["regions"], parsed, errors, problems)
        if regions:
            extra["regions"] = regions
            first = regions[0]
            if isinstance(region, str) and region and region != first.region:
                errors.append(
                    ConfigError(
                        "gcp:region",
                        region,
                        f"differs from the first of {NS}regions ({first.region}), the stack's primary region",
                        f"pulumi config set gcp:region {first.region} (or list {region} first in {NS}regions)",
                    )
                )
            region = first.region
            parsed.update({k: getattr(first, k) for k in REGIONAL_SECTIONS})
    if errors:
        raise ConfigErrors([*errors, *(problems or [])])
    return StackConfig(project=str(project), region=str(region), environment=str(env), **parsed, **extra)


FRONTDOOR_SUFFIX = "-frontdoor"
"""The front door's name is ``<service.name>-frontdoor`` (stack/compose.py)."""
SERVICE_DEFAULT = "llm"
"""``service.name`` when a stack sets none (the library's default)."""


def psc_name(service: str) -> str:
    """The PSC endpoint's default name for a service: its letters and digits plus ``apis`` (the endpoint's rule
    is a global name of 1-20 lowercase letters and digits, ``netcalc.check_psc_name``); ``llm`` → ``llmapis``."""
    stem = re.sub(r"[^a-z0-9]", "", service.lower()) or SERVICE_DEFAULT
    return f"{stem[:16]}apis"


def stack_names(sections: dict[str, Any], optional: dict[str, Any]) -> None:
    """Fill the project- and region-level names a stack did not write with names derived from its
    ``service.name`` (issue 19), so any two stacks with different service names share one project: the PSC
    endpoint (``<service>apis``, a global forwarding-rule name), the image registry and its caches
    (``<service>-serving*``, per region), the model bucket's prefix (``<service>-models``) and the response cache's
    service and account (``<service>-cache``). The default service ``llm`` keeps the library's names, so a stack
    named ``llm`` (prod) keeps every resource. A name written in the stack file always wins; a section that is
    not a mapping is left for its parser to refuse."""
    service = sections.get("service")
    name = service.get("name") if isinstance(service, dict) else None
    # A service name its own parser refuses derives nothing: that one error, not one per derived name.
    valid = isinstance(name, str) and re.fullmatch(SERVICE_NAME_PATTERN, name)
    svc = name if valid and isinstance(name, str) else SERVICE_DEFAULT

    def fill(section: dict[str, Any], sub: str, key: str, value: str) -> None:
        raw = section.get(sub)
        if raw is None:
            section[sub] = raw = {}
        if isinstance(raw, dict) and key not in raw:
            section[sub] = {**raw, key: value}

    fill(sections, "registry", "repository_id", f"{svc[:55].rstrip('-')}-serving")
    fill(sections, "bucket", "name_prefix", f"{svc[:34].rstrip('-')}-models")
    net = sections.get("network")
    if net is None or isinstance(net, dict):
        net = dict(net or {})
        fill(net, "psc", "name", psc_name(svc))
        sections["network"] = net
    cache = optional.get("cache")
    if isinstance(cache, dict):
        cache = dict(cache)
        holder = {"cache": cache}
        fill(holder, "cache", "service_name", f"{svc[:36].rstrip('-')}-cache")
        fill(holder, "cache", "account_id", f"{svc[:24].rstrip('-')}-cache")
        optional["cache"] = holder["cache"]


def _first_region(raw: list[Any]) -> str | None:
    first = raw[0] if raw else None
    value = first.get("region") if isinstance(first, dict) else None
    return value if isinstance(value, str) else None


def _dump(value: Any) -> Any:
    """A parsed settings object back into the plain mapping a stack file would hold (enums as their values)."""
    return TypeAdapter(type(value)).dump_python(value, mode="json")


def _merge(base: Any, over: Any) -> Any:
    """``over`` laid onto ``base``: mappings merge key by key (recursively), anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def _parse_regions(
    raw: Any, parsed: dict[str, Any], errors: list[ConfigError], problems: list[ConfigError] | None
) -> tuple[RegionSettings, ...]:
    """``cloudrun-gpu:regions``: each entry's overrides merged over the stack's sections, then validated as a
    whole, so an error names the key the user wrote (``cloudrun-gpu:regions[1].gpu.type``)."""
    key = NS + "regions"
    example = "- region: europe-west1\n  gpu: {type: nvidia-l4, quota: 3}\n  scaling: {max_instances: 2}"
    if not isinstance(raw, list) or not raw:
        errors.append(
            ConfigError(
                key,
                raw,
                "must be a non-empty list of regions",
                f"write {key} as a YAML list, e.g.\n{example}; or remove it for a single-region stack",
            )
        )
        return ()
    out: list[RegionSettings] = []
    for i, entry in enumerate(raw):
        at = f"{key}[{i}]"
        if not isinstance(entry, dict):
            errors.append(
                ConfigError(
                    at,
                    entry,
                    "must be a mapping with at least region",
                    f"write each entry as a mapping; known keys: {', '.join(field_names(RegionSettings))}",
                )
            )
            continue
        merged = dict(entry)
        complete = True
        for name in REGIONAL_SECTIONS:
            base = parsed.get(name)
            if base is None:  # the stack's own section is wrong: reported already, nothing to merge over
                complete = False
                continue
            over = entry.get(name)
            if over is None:  # absent or written empty (``gpu:`` with nothing under it): the stack's section
                over = {}
            merged[name] = _merge(_dump(base), over) if isinstance(over, dict) else over
        if not complete:
            continue
        net = merged.get("network")
        over_net = entry.get("network")
        psc_named = isinstance(over_net, dict) and isinstance(over_net.get("psc"), dict) and "name" in over_net["psc"]
        if i > 0 and isinstance(net, dict) and isinstance(net.get("psc"), dict) and not psc_named:
            # The PSC endpoint's forwarding rule and address are global, named per project: each region's own VPC
            # needs its own names (``llmapis``, ``llmapis2`` …; ≤ 20 characters, letters and digits).
            base_name = str(net["psc"].get("name", ""))
            net["psc"] = {**net["psc"], "name": f"{base_name[: 20 - len(str(i + 1))]}{i + 1}"}
        got = collect(errors, lambda merged=merged, at=at: parse(RegionSettings, merged, f"{at}.", problems))  # type: ignore[misc]
        if got is not None:
            out.append(got)
    return tuple(out) if len(out) == len(raw) else ()


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_config(
    flat: dict[str, Any],
    base_dir: Path | None = None,
    *,
    plan_only: bool = False,
    secret_keys: Collection[str] | None = None,
) -> ValidatedStack:
    """The one reader: ``plan``, ``cloudbuild`` and the Pulumi program all come through here.

    Committed stacks name no project and no invoker (neither would exist in your account). ``pulumi up``
    stops on each with the exact ``pulumi config set`` to run; ``plan`` (``plan_only``) renders with a
    placeholder project and reports both as warnings, so it works on a fresh machine.

    ``secret_keys``: the keys Pulumi holds as secrets (the program passes them; None: not known, as in ``plan``,
    which reads ``secure:`` values as ``[secret]``). Every rule that can refuse the stack runs here, before the
    program registers anything (issue 21): a refused stack registers no resource."""
    problems: list[ConfigError] = []
    warnings: list[str] = []
    flat = dict(flat)
    if plan_only and not flat.get("gcp:project"):
        flat["gcp:project"] = PLAN_PROJECT
        warnings.append(
            f"gcp:project is not set: plan renders with {PLAN_PROJECT!r}; before pulumi up run "
            "`pulumi config set gcp:project <your-project-id>`"
        )
    flat = _front_door_domain(flat, plan_only, warnings)
    if not plan_only and secret_keys is not None:
        problems.extend(_plain_text_token(flat, secret_keys))
    vs = validate(parse_config(flat, problems), base_dir, problems)
    if not vs.config.service.invokers:
        why = "cloudrun-gpu:service.invokers is empty: nobody could call the service (no public invoker by default)"
        if not plan_only:
            raise ConfigErrors(
                [ConfigError(NS + "service.invokers", [], why.split(": ", 1)[1], f"add yourself: {SET_INVOKER}")]
            )
        warnings.append(f"{why}; before pulumi up run {SET_INVOKER}")
    if vs.config.cache is not None and not vs.config.cache.invokers:
        why = (
            "cloudrun-gpu:cache.invokers is empty: nobody could call the response cache (no public invoker by default)"
        )
        fix = SET_INVOKER.replace("service.invokers", "cache.invokers")
        if not plan_only:
            raise ConfigErrors([ConfigError(NS + "cache.invokers", [], why.split(": ", 1)[1], f"add yourself: {fix}")])
        warnings.append(f"{why}; before pulumi up run {fix}")
    return dataclasses.replace(vs, warnings=tuple(warnings))


def _plain_text_token(flat: dict[str, Any], secret_keys: Collection[str]) -> list[ConfigError]:
    """``cloudrun-gpu:hf_token`` set without ``--secret``: it would sit in the stack file in plain text. Refused
    here, before anything registers (issue 21: it used to stop the program after 40 resources)."""
    key = NS + HF_TOKEN_KEY
    if flat.get(key) is None or key in secret_keys:
        return []
    return [
        ConfigError(
            key,
            "[hidden]",
            "is stored in plain text",
            f"pulumi config rm {key} && pulumi config set --secret {key} <token>",
        )
    ]


def local_source_files(cfg: StackConfig, base_dir: Path) -> tuple[str, Path, list[str]]:
    """A local ``model.source``: the folder to upload from (as written), that folder on this machine, and the
    chosen files relative to it (pickle files never). Raises a ConfigError naming ``model.source`` or
    ``model.files``; the validation pass calls it, so a missing or unusable path stops the stack before anything
    registers (issue 21), and the staging build reads the same answer (``stack/cloudbuild.py``)."""
    written = str(cfg.model.source)
    key = "model.source"  # the validation pass names it as the stack key (cloudrun-gpu:model.source)
    too_long = len(written.encode()) > PATH_MAX or any(len(p.encode()) > NAME_MAX for p in written.split("/"))
    if too_long:
        raise ConfigError(
            key,
            written[:80] + "…",
            f"is not a usable path: longer than {PATH_MAX} bytes or a name over {NAME_MAX} (Linux PATH_MAX/NAME_MAX)",
            "give a file or folder path relative to the project",
        )
    path = Path(written) if Path(written).is_absolute() else base_dir / written
    try:
        if path.is_file():
            root, names = str(PurePosixPath(written).parent), [path.name]
        elif path.is_dir():
            root = written
            names = sorted(
                p.relative_to(path).as_posix()
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if cfg.model.files:
                names = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in cfg.model.files)]
        else:
            raise ConfigError(key, written, "does not exist here", "give a file or folder path relative to the project")
    except OSError as exc:
        raise ConfigError(
            key,
            written,
            f"cannot be read ({_short(exc)})",
            "give a readable file or folder path relative to the project",
        ) from None
    names = [n for n in names if not n.lower().endswith(tuple(g[1:] for g in PICKLE_GLOBS))]
    if not names:
        raise ConfigError(
            "model.files", cfg.model.files, f"chooses no file in {written}", "fix the patterns or the path"
        )
    return root, path if path.is_dir() else path.parent, names


def _front_door_domain(flat: dict[str, Any], plan_only: bool, warnings: list[str]) -> dict[str, Any]:
    """An external front door needs a domain the user controls: its Google-managed certificate becomes active only
    once the domain's A record points at the load balancer ("Update the DNS A and AAAA records to point to the
    load balancer's IP address", https://cloud.google.com/load-balancing/docs/ssl-certificates/google-managed-certs).
    Committed stacks name none. ``pulumi up`` stops with the exact ``pulumi config set``; ``plan`` renders with
    :data:`PLAN_DOMAIN` and warns, like the unset project and invokers. A reserved name (``llm.example.com``) is
    refused on ``up`` too: no certificate authority can ever validate it."""
    key = NS + "frontdoor"
    raw = _decode(flat.get(key))
    if not isinstance(raw, dict) or raw.get("scheme") == "INTERNAL_MANAGED" or raw.get("certificate"):
        return flat
    domains = raw.get("domains")
    if not domains:
        why = "is empty: the load balancer's Google-managed certificate needs the DNS name clients use"
        if not plan_only:
            raise ConfigErrors(
                [ConfigError(key + ".domains", domains or [], why, f"set a name you control: {SET_DOMAIN}")]
            )
        warnings.append(f"{key}.domains {why}; plan renders with {PLAN_DOMAIN!r}; before pulumi up run {SET_DOMAIN}")
        return {**flat, key: {**raw, "domains": [PLAN_DOMAIN]}}
    if not plan_only and isinstance(domains, list):
        for i, domain in enumerate(domains):
            labels = str(domain).lower().rstrip(".").split(".")
            if any(".".join(labels[-n:]) in RESERVED_DOMAINS for n in (1, 2)):
                raise ConfigErrors(
                    [
                        ConfigError(
                            f"{key}.domains[{i}]",
                            domain,
                            "is a reserved documentation name (RFC 2606): its certificate would never become active",
                            f"use a name you control: {SET_DOMAIN.replace('[0]', f'[{i}]')}",
                        )
                    ]
                )
    return flat


def validate(
    cfg: StackConfig, base_dir: Path | None = None, problems: list[ConfigError] | None = None
) -> ValidatedStack:
    """The service plan of every region and the rules that span components; raises ConfigErrors with stack
    keys (together with any section ``problems`` collected while parsing)."""
    errors: list[ConfigError] = []
    if cfg.service.ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" and cfg.frontdoor is None:
        errors.append(
            ConfigError(
                "service.ingress",
                cfg.service.ingress,
                "admits only a load balancer, and this stack creates none: the endpoint could not be called",
                "use INGRESS_TRAFFIC_ALL (callers still need roles/run.invoker) or INGRESS_TRAFFIC_INTERNAL_ONLY "
                "(callers inside the VPC); or add a cloudrun-gpu:frontdoor section (a load balancer in front)",
                "INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY",
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
    errors.extend(_front_door_problems(cfg))
    errors.extend(_derived_name_problems(cfg))
    errors.extend(_cache_problems(cfg))
    errors.extend(_region_list_problems(cfg))
    count = max(1, len(cfg.regions))
    stacks: list[ValidatedStack] = []
    for i in range(count):
        one = cfg.in_region(i) if cfg.regions else cfg
        found, plan = _region_problems(one, base_dir)
        errors.extend(_in_region(e, i, one) for e in found) if cfg.regions else errors.extend(found)
        if plan is not None:
            stacks.append(ValidatedStack(config=one if i else cfg, plan=plan, index=i))
    src = cfg.model.model_source() if stacks else None
    if src is not None and src.kind == "local":
        collect(errors, lambda: local_source_files(cfg, base_dir or Path.cwd()))
    capacity = None
    # A capacity section that already broke its own rules (collected in ``problems``) is not planned: its error is
    # reported once, and the plan never sees a half-given throughput (issue 21: an AssertionError before).
    capacity_ok = not any(e.field.startswith(NS + "capacity") for e in problems or [])
    if cfg.capacity is not None and len(stacks) == count and capacity_ok:
        capacity = collect(errors, lambda: _capacity(cfg, cfg.capacity, stacks))  # type: ignore[arg-type]
    if errors or problems or len(stacks) != count:
        raise ConfigErrors([*(problems or []), *_to_stack_keys(errors)])
    return dataclasses.replace(stacks[0], others=tuple(stacks[1:]), capacity=capacity)


def _region_problems(cfg: StackConfig, base_dir: Path | None) -> tuple[list[ConfigError], ServicePlan | None]:
    """One region's rules (internet loading needs its NAT, its subnet holds its max instances) and its service
    plan, sized for its GPU."""
    errors: list[ConfigError] = []
    if cfg.loading.method == "internet" and not cfg.network.nat.enabled:
        errors.append(
            ConfigError(
                "loading.method",
                "internet",
                "needs Cloud NAT to reach the hub (L5)",
                "set network.nat.enabled: true, or load from your own bucket (gcs-download)",
            )
        )
    errors.extend(with_prefix(e, "network.") for e in cfg.network.sizing_problems(cfg.scaling.max_instances))
    plan: ServicePlan | None = None
    try:
        plan = plan_service(cfg.serving, base_dir)
    except (ConfigError, ConfigErrors) as exc:
        errors.extend(as_errors(exc))
    return errors, plan


def _in_region(err: ConfigError, i: int, cfg: StackConfig) -> ConfigError:
    """A region's error under the key the user wrote: ``regions[i].<section>…`` for what a region entry sets,
    the stack-wide key (``engine.context_length``) with the region named in the problem otherwise."""
    if err.field == "region" or err.field.startswith(tuple(f"{s}." for s in REGIONAL_SECTIONS)):
        return with_prefix(err, f"regions[{i}].")
    return ConfigError(err.field, err.value, f"{err.problem} (in {cfg.region} on {cfg.gpu.type})", err.fix, err.allowed)


def _cache_problems(cfg: StackConfig) -> list[ConfigError]:
    """The response cache (S1) calls the GPU service's ``run.app`` URL from its own Cloud Run service.

    - Behind a front door (or across regions) the cache would have to sit in front of the load balancer, which
      this stack does not compose yet: refused, naming the fix, rather than deploying a cache that bypasses
      the front door's Cloud Armor and IAP.
    - A GPU service with internal-only ingress admits a Cloud Run caller only through the VPC: "Requests to Cloud
      Run from Cloud Run … must go to the VPC network to be considered internal. To route requests to the VPC
      network, use Direct VPC egress … and enable Private Google Access on the subnet"
      (https://cloud.google.com/run/docs/securing/ingress, setting *Internal*). The run.app URL is a public
      address, so only ``ALL_TRAFFIC`` egress routes it there (the stack's subnet has Private Google Access)."""
    cache = cfg.cache
    if cache is None:
        return []
    errors: list[ConfigError] = []
    # Cloud Run service names are unique per region and project, service account ids per project: the cache's own
    # may not be the GPU service's or another account the stack creates (issue 21: accepted, then a conflict).
    if cache.service_name == cfg.service.name:
        errors.append(
            ConfigError(
                "cache.service_name",
                cache.service_name,
                "is the GPU service's name (service.name): two Cloud Run services of one region need two names",
                f"set cache.service_name to another name, e.g. {cfg.service.name[:36]}-cache",
            )
        )
    taken = {
        cfg.service.account_id: "the GPU service's runtime account",
        build_account_id(cfg.service.name): "the image build's account",
        build_account_id(cache.service_name): "the cache image build's account",
    }
    if cache.account_id in taken:
        errors.append(
            ConfigError(
                "cache.account_id",
                cache.account_id,
                f"is {taken[cache.account_id]}: each identity needs its own service account",
                "set cache.account_id to another id (6-30 lowercase letters, digits, hyphens), e.g. "
                f"{cache.service_name[:24]}-sa",
            )
        )
    if cfg.frontdoor is not None or cfg.multi_region:
        errors.append(
            ConfigError(
                "cache.enabled",
                True,
                "is not supported together with a front door or several regions yet: the cache would call one "
                "region's service directly, around the load balancer",
                "remove cloudrun-gpu:cache (or set cache.enabled: false), or drop frontdoor and regions",
            )
        )
    if cfg.service.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY" and cache.vpc_egress != VpcEgress.ALL_TRAFFIC:
        errors.append(
            ConfigError(
                "cache.vpc_egress",
                cache.vpc_egress,
                "leaves the GPU service's run.app URL outside the VPC, and service.ingress "
                "INGRESS_TRAFFIC_INTERNAL_ONLY admits only traffic from the VPC",
                "set cache.vpc_egress: ALL_TRAFFIC",
                "ALL_TRAFFIC",
            )
        )
    return errors


def _derived_name_problems(cfg: StackConfig) -> list[ConfigError]:
    """Names the stack derives from ``service.name`` checked against the rule of the resource that receives them,
    named by that setting (issue 21: a long service name gave the front door's NEGs, backend and URL map names
    over 63 characters, refused by the API only at deploy). The front door's children are Compute Engine
    resources (``limits.COMPUTE_NAME_MAX``) named ``<logical name>-<7 random>`` (``limits.AUTONAME_SUFFIX``)."""
    if cfg.frontdoor is None:
        return []
    regions = [r.region for r in cfg.regions] or [cfg.region]
    most = int(limits.COMPUTE_NAME_MAX.value) - int(limits.AUTONAME_SUFFIX.value)
    longest = max(child_names(f"{cfg.service.name}{FRONTDOOR_SUFFIX}", regions), key=len)
    if len(longest) <= most:
        return []
    spare = len(cfg.service.name) - (len(longest) - most)
    return [
        ConfigError(
            "service.name",
            cfg.service.name,
            f"makes the front door's resource {longest!r} (+ 8 random characters) longer than the "
            f"{int(limits.COMPUTE_NAME_MAX.value)} characters a Compute Engine name may have",
            f"shorten service.name to {max(spare, 1)} characters or fewer",
        )
    ]


def _front_door_problems(cfg: StackConfig) -> list[ConfigError]:
    """Several regions need one entry point; behind it, the services take traffic from the load balancer only.

    Ingress: "Internal and Cloud Load Balancing" admits external and internal Application Load Balancers,
    "Internal" only internal ones and the VPC; ingress and IAM are independent, "for a layered approach …
    use both" (https://cloud.google.com/run/docs/securing/ingress; Cloud Run v2 ``IngressTraffic``:
    INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER "Both internal and Google Cloud Load Balancer traffic is allowed")."""
    errors: list[ConfigError] = []
    door = cfg.frontdoor
    if door is None:
        if cfg.multi_region:
            errors.append(
                ConfigError(
                    "frontdoor",
                    None,
                    f"is not set: {len(cfg.regions)} regions need one entry point (a global load balancer)",
                    "add cloudrun-gpu:frontdoor with the DNS names clients use, e.g. domains: [llm.example.com]",
                )
            )
        return errors
    if door.internal and cfg.multi_region:
        # The regional internal ALB: "the serverless NEG, the load balancer, and any client VMs must be in the
        # same region as the Cloud Run service"
        # (https://cloud.google.com/load-balancing/docs/l7-internal/setting-up-l7-internal-serverless).
        errors.append(
            ConfigError(
                "frontdoor.scheme",
                door.scheme,
                f"is a regional internal load balancer: one region only, and the stack lists {len(cfg.regions)}",
                "use scheme EXTERNAL_MANAGED for several regions, or keep one region",
                "EXTERNAL_MANAGED",
            )
        )
    if door.internal and door.proxy_only_subnet_cidr is not None:
        # The proxy-only subnet is one more subnet of the region's VPC: it may not overlap the service's subnet
        # nor hold the PSC endpoint's address (limits.SUBNET_RANGES_DISJOINT).
        for i, r in enumerate(cfg.regions or [None]):
            net = r.network if r is not None and r.network is not None else cfg.network
            if net.byo:
                continue
            at = f"regions[{i}].network" if r is not None else "network"
            ranges = {f"{at}.subnet_cidr": net.subnet_cidr}
            if net.psc.enabled:
                ranges[f"{at}.psc.address"] = f"{net.psc.address}/32"
            ranges["frontdoor.proxy_only_subnet_cidr"] = door.proxy_only_subnet_cidr
            collect(errors, lambda ranges=ranges: netcalc.check_no_overlap(ranges))  # type: ignore[misc]
    ingress = cfg.service.ingress
    if ingress is Ingress.INGRESS_TRAFFIC_ALL:
        errors.append(
            ConfigError(
                "service.ingress",
                ingress,
                "lets clients bypass the front door (its Cloud Armor and IAP) through each region's run.app URL",
                "set service.ingress: INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER (only load balancers and the VPC)",
                "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" + (", INGRESS_TRAFFIC_INTERNAL_ONLY" if door.internal else ""),
            )
        )
    elif ingress is Ingress.INGRESS_TRAFFIC_INTERNAL_ONLY and not door.internal:
        errors.append(
            ConfigError(
                "service.ingress",
                ingress,
                "refuses the external load balancer the front door creates (internal only admits internal ones)",
                "set service.ingress: INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
                "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            )
        )
    return errors


def _region_list_problems(cfg: StackConfig) -> list[ConfigError]:
    """Rules across the region entries: each region once, global names distinct, the model copy on the
    region's continent."""
    errors: list[ConfigError] = []
    seen: dict[str, int] = {}
    psc: dict[str, int] = {}
    for i, r in enumerate(cfg.regions):
        if r.region in seen:
            errors.append(
                ConfigError(
                    f"regions[{i}].region",
                    r.region,
                    f"is listed twice (also regions[{seen[r.region]}])",
                    "list each region once; raise scaling.max_instances there for more instances",
                )
            )
        seen.setdefault(r.region, i)
        net = r.network
        if net is not None and net.psc.enabled and net.byo:
            # Brought-your-own VPC shared by two regions: its private googleapis.com zones and PSC endpoint
            # exist once per VPC, so only one region may create them.
            other = next(
                (
                    j
                    for j, o in enumerate(cfg.regions[:i])
                    if o.network and o.network.psc.enabled and o.network.existing_network == net.existing_network
                ),
                None,
            )
            if other is not None:
                errors.append(
                    ConfigError(
                        f"regions[{i}].network.psc.enabled",
                        True,
                        f"regions[{other}] already creates the PSC endpoint and its private DNS in "
                        f"{net.existing_network}: a VPC needs them once",
                        f"set regions[{i}].network.psc.enabled: false (the VPC's endpoint serves every region)",
                    )
                )
        if net is not None and net.psc.enabled:
            if net.psc.name in psc:
                errors.append(
                    ConfigError(
                        f"regions[{i}].network.psc.name",
                        net.psc.name,
                        f"is already the PSC endpoint of regions[{psc[net.psc.name]}]: the endpoint's forwarding "
                        "rule and address are global resources, named once per project",
                        f"set regions[{i}].network.psc.name to another name (≤ 20 lowercase letters and digits)",
                    )
                )
            psc.setdefault(net.psc.name, i)
        where = r.bucket_location
        if where is None:
            continue
        home, there = continent(r.region), continent(where)
        regional = re.fullmatch(REGION_PATTERN, where) is not None
        known = where.upper() in MULTI_REGIONS or where.upper() in DUAL_REGIONS or regional
        if not known or there is None:
            errors.append(
                ConfigError(
                    f"regions[{i}].bucket_location",
                    where,
                    "is not a Cloud Storage location this stack knows",
                    f"leave it unset (a bucket in {r.region}), or use a multi-region or predefined dual-region",
                    ", ".join([*MULTI_REGIONS, *DUAL_REGIONS]),
                )
            )
        elif there != home or (regional and where != r.region):
            errors.append(
                ConfigError(
                    f"regions[{i}].bucket_location",
                    where,
                    f"is in {there}, but {r.region} is in {home}: every cold start would read the weights "
                    + ("across a continent" if there != home else "from another region"),
                    f"leave it unset (a bucket in {r.region})"
                    + ", or use "
                    + ", ".join(k for k in [*MULTI_REGIONS, *DUAL_REGIONS] if continent(k) == home),
                )
            )
    return errors


def _capacity(cfg: StackConfig, settings: CapacitySettings, stacks: list[ValidatedStack]) -> CapacityPlan:
    """The capacity plan over the regions in the order listed (nearest first), each with its GPU quota and
    instances, and the per-instance throughput of its GPU type."""
    regions = [
        Region(
            name=vs.config.region,
            gpu=vs.config.gpu.type.value,
            quota=vs.config.gpu.quota,
            max_instances=vs.config.scaling.max_instances,
            min_instances=vs.config.scaling.min_instances,
            # #24: what one instance costs, so the planner can prefer the cheapest mix (capacity.prefer).
            usd_per_hour=instance_cost(
                vs.config.region, vs.config.gpu.type.value, vs.config.gpu.zonal_redundancy, vs.cpu, vs.memory_gib
            ).per_hour,
        )
        for vs in stacks
    ]
    throughput: dict[str, InstanceThroughput] = {}
    for vs in stacks:
        gpu = vs.config.gpu.type.value
        thr = settings.throughput.get(gpu)
        if thr is None:
            raise ConfigError(
                f"capacity.throughput.{gpu}",
                None,
                f"no per-instance throughput for {gpu} (used in {vs.config.region})",
                f"measure one {gpu} instance with `python -m stack loadtest URL` and set capacity.throughput.{gpu} "
                "(requests_per_s, output_tokens_per_s, concurrency, source), or give tokens_per_s_per_sequence",
            )
        throughput.setdefault(
            gpu, thr.instance(gpu, vs.sizing.max_parallel_sequences, settings.output_tokens_per_request)
        )
    try:
        return plan_capacity(
            settings.target.to_target(),
            regions,
            throughput,
            zonal_redundancy=cfg.gpu.zonal_redundancy,
            prefer=settings.prefer,
        )
    except (ConfigError, ConfigErrors) as exc:
        raise rename_fields(as_errors(exc), {}, "capacity.") from None


def stack_file(stack: str, root: Path) -> Path:
    return root / f"Pulumi.{stack}.yaml"


class _Loader(yaml.SafeLoader):
    """YAML 1.2-ish: no implicit dates or timestamps, so ``2026-01-01`` stays the string the user wrote."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_stack_file(path: Path) -> dict[str, str]:
    """A stack file's ``config:`` as Pulumi hands it to a program: fully-qualified keys, JSON strings.

    Anything that is not a Pulumi stack file (not YAML, not a mapping, binary values, sets, dates …)
    ends in a ConfigError naming the file and the key, never a traceback."""
    field = path.name
    if not path.is_file():
        raise ConfigError(
            "--stack",
            path.name,
            "stack file not found",
            f"create {path.name} (see Pulumi.dev.yaml) or pick an existing stack",
        )
    try:
        data = yaml.load(path.read_bytes(), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ConfigError(field, None, f"cannot be read as YAML ({_short(exc)})", "fix the YAML syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            field, type(data).__name__, "is not a mapping", "write the file as 'config:' followed by keys"
        )
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{field}: config", config, "is not a mapping", "write each setting as 'namespace:key: value'"
        )
    out: dict[str, str] = {}
    errors: list[ConfigError] = []
    for key, value in config.items():
        if not isinstance(key, str):
            errors.append(ConfigError(f"{field}: {key!r}", value, "is not a config key", "quote the key: 'ns:name'"))
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = "[secret]"
            continue
        bad = _unsupported(value)
        if bad is not None:
            errors.append(
                ConfigError(
                    key,
                    bad,
                    "is not a value Pulumi config can hold",
                    "use strings, numbers, true/false, lists and mappings",
                )
            )
            continue
        out[key] = value if isinstance(value, str) else json.dumps(value)
    if errors:
        raise ConfigErrors(errors)
    return out


def _unsupported(value: Any, _inside: frozenset[int] = frozenset()) -> Any:
    """The first value JSON (and so Pulumi config) cannot carry: bytes, sets, dates, non-string keys, and a
    value that contains itself (a YAML anchor used inside its own node, ``&a {self: *a}``: PyYAML builds the
    cycle, and JSON cannot write it)."""
    if isinstance(value, (bytes, set, frozenset, datetime.date)):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (dict, list)):
        if id(value) in _inside:
            return "a YAML anchor that refers to itself"
        inside = _inside | {id(value)}
        items = list(value.items()) if isinstance(value, dict) else [("", v) for v in value]
        for k, v in items:
            if not isinstance(k, str):
                return repr(k)
            bad = _unsupported(v, inside)
            if bad is not None:
                return bad
    return None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def load_stack(stack: str, root: Path, *, plan_only: bool = True) -> ValidatedStack:
    """Offline: read ``Pulumi.<stack>.yaml`` and validate it (what ``plan`` and ``cloudbuild`` use)."""
    return read_config(read_stack_file(stack_file(stack, root)), base_dir=root, plan_only=plan_only)


def config_from_pulumi() -> dict[str, Any]:
    """Every config key the Pulumi engine handed this program, not only a hand-kept list of sections:
    the ``PULUMI_CONFIG`` environment bag overlaid with the runtime's config map
    (``pulumi/runtime/config.py``: ``get_config_env`` and ``CONFIG``)."""
    from pulumi.runtime import config as pulumi_config

    return {**pulumi_config.get_config_env(), **pulumi_config.CONFIG.get()}
