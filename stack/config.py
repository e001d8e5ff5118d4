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
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cloudrun_gpu.bucket import BucketSettings
from cloudrun_gpu.errors import ConfigError, ConfigErrors, collect
from cloudrun_gpu.network.settings import NetworkSettings
from cloudrun_gpu.registry import RegistrySettings
from cloudrun_gpu.service.plan import ServicePlan, plan_service
from cloudrun_gpu.service.settings import GpuSettings, ResourcesSettings, ScalingSettings, ServiceSettings
from cloudrun_gpu.settings import as_errors, field_names, parse, rename_fields, suggest, with_prefix
from cloudrun_gpu.sizing import SizingPlan
from cloudrun_gpu.sizing.settings import EngineSettings, LoadingSettings, ModelSettings

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
HF_TOKEN_KEY = "hf_token"
"""A Hugging Face token for gated models (``pulumi config set --secret cloudrun-gpu:hf_token hf_…``): not a
section; the program stores it in Secret Manager and the staging build reads it from there (stack/compose.py)."""
KNOWN_KEYS = ("environment", HF_TOKEN_KEY, *SECTIONS)


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

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


@dataclass(frozen=True)
class ValidatedStack:
    """A config that passed every check, with the numbers derived from it."""

    config: StackConfig
    plan: ServicePlan
    warnings: tuple[str, ...] = ()
    """What ``plan`` let through that ``pulumi up`` will refuse (a missing project or invoker)."""

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
    if not region or not isinstance(region, str):
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
    parsed: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        raw = sections.get(name)
        if raw is None:
            parsed[name] = cls(name="gemma-3-4b") if cls is ModelSettings else cls()
            continue
        if not isinstance(raw, dict):
            errors.append(
                ConfigError(
                    NS + name,
                    raw,
                    "must be a mapping of settings",
                    f"write {NS}{name} as a YAML mapping; known keys: {', '.join(field_names(cls))}",
                )
            )
            continue
        got = collect(errors, lambda raw=raw, cls=cls, name=name: parse(cls, raw, f"{NS}{name}.", problems))  # type: ignore[misc]
        if got is not None:
            parsed[name] = got
    if errors:
        raise ConfigErrors([*errors, *(problems or [])])
    return StackConfig(project=str(project), region=str(region), environment=str(env), **parsed)


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_config(flat: dict[str, Any], base_dir: Path | None = None, *, plan_only: bool = False) -> ValidatedStack:
    """The one reader: ``plan``, ``cloudbuild`` and the Pulumi program all come through here.

    Committed stacks name no project and no invoker (neither would exist in your account). ``pulumi up``
    stops on each with the exact ``pulumi config set`` to run; ``plan`` (``plan_only``) renders with a
    placeholder project and reports both as warnings, so it works on a fresh machine."""
    problems: list[ConfigError] = []
    warnings: list[str] = []
    flat = dict(flat)
    if plan_only and not flat.get("gcp:project"):
        flat["gcp:project"] = PLAN_PROJECT
        warnings.append(
            f"gcp:project is not set: plan renders with {PLAN_PROJECT!r}; before pulumi up run "
            "`pulumi config set gcp:project <your-project-id>`"
        )
    vs = validate(parse_config(flat, problems), base_dir, problems)
    if not vs.config.service.invokers:
        why = "cloudrun-gpu:service.invokers is empty: nobody could call the service (no public invoker by default)"
        if not plan_only:
            raise ConfigErrors(
                [ConfigError(NS + "service.invokers", [], why.split(": ", 1)[1], f"add yourself: {SET_INVOKER}")]
            )
        warnings.append(f"{why}; before pulumi up run {SET_INVOKER}")
    return dataclasses.replace(vs, warnings=tuple(warnings))


def validate(
    cfg: StackConfig, base_dir: Path | None = None, problems: list[ConfigError] | None = None
) -> ValidatedStack:
    """The service plan and the rules that span components; raises ConfigErrors with stack keys
    (together with any section ``problems`` collected while parsing)."""
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
    if cfg.service.ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER":
        errors.append(
            ConfigError(
                "service.ingress",
                cfg.service.ingress,
                "admits only a load balancer, and this stack creates none: the endpoint could not be called",
                "use INGRESS_TRAFFIC_ALL (callers still need roles/run.invoker) or INGRESS_TRAFFIC_INTERNAL_ONLY "
                "(callers inside the VPC); put your own load balancer in front with the components instead",
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
    errors.extend(with_prefix(e, "network.") for e in cfg.network.sizing_problems(cfg.scaling.max_instances))
    plan: ServicePlan | None = None
    try:
        plan = plan_service(
            region=cfg.region,
            model=cfg.model,
            engine=cfg.engine,
            loading=cfg.loading,
            gpu=cfg.gpu,
            resources=cfg.resources,
            scaling=cfg.scaling,
            base_dir=base_dir,
        )
    except (ConfigError, ConfigErrors) as exc:
        errors.extend(as_errors(exc))
    if errors or problems or plan is None:
        raise ConfigErrors([*(problems or []), *_to_stack_keys(errors)])
    return ValidatedStack(config=cfg, plan=plan)


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


def _unsupported(value: Any) -> Any:
    """The first value JSON (and so Pulumi config) cannot carry: bytes, sets, dates, non-string keys."""
    if isinstance(value, (bytes, set, frozenset, datetime.date)):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return repr(k)
            bad = _unsupported(v)
            if bad is not None:
                return bad
    if isinstance(value, list):
        for v in value:
            bad = _unsupported(v)
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
