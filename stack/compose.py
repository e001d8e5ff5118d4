"""Compose the components into one environment from a validated config (used by ``__main__.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pulumi_gcp as gcp
from cloudrun_gpu import limits
from cloudrun_gpu.apis import ProjectApis, ProjectApisArgs
from cloudrun_gpu.bucket import NAME_PREFIX_MAX, ModelBucket, ModelBucketArgs
from cloudrun_gpu.build import (
    BuildIdentity,
    BuildIdentityArgs,
    BuildSecret,
    BuildSecretArgs,
    ImageBuild,
    ImageBuildArgs,
    ModelStaging,
    ModelStagingArgs,
    build_account_id,
)
from cloudrun_gpu.build.image import MODEL_BUCKET, substitutions_used
from cloudrun_gpu.cache import ResponseCache, ResponseCacheArgs
from cloudrun_gpu.engines import profile
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.frontdoor import FrontDoor, FrontDoorArgs, FrontDoorBackend
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, zone_name
from cloudrun_gpu.quota import preflight, quota_need
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from cloudrun_gpu.settings import raise_if
from pulumi_command import local
from pulumiverse_time import Sleep

from stack.cloudbuild import (
    UPSTREAM_CACHE,
    cache_build_config,
    cache_files,
    cache_image_uri,
    container_files,
    hub_secret_id,
    image_build_config,
    image_build_needed,
    image_repository,
    image_tag,
    image_uri,
    local_source,
    source_staging_dir,
    staging_config,
    staging_marker,
    staging_needed,
    staging_trigger,
)
from stack.config import (
    FRONTDOOR_SUFFIX,
    HF_TOKEN_KEY,
    NS,
    PLAN_ONLY_ENV,
    PROJECT,
    ValidatedStack,
    config_from_pulumi,
    read_config,
)


class InvalidStack(pulumi.RunError):
    """The program's stop on a refused configuration: a ``pulumi.RunError``, which Pulumi prints as its message
    only (no traceback), carrying the errors (``config_errors``) so that ``plan``, which runs the program under
    mocks, reports them exactly as it reports the reader's (stack/render.py)."""

    def __init__(self, exc: ConfigError | ConfigErrors) -> None:
        self.config_errors = exc if isinstance(exc, ConfigErrors) else ConfigErrors([exc])
        super().__init__(f"invalid stack configuration\n{self.config_errors}")


def load_from_pulumi() -> ValidatedStack:
    """Read every config key the engine passed and validate it through the same reader as ``plan``;
    errors stop the program with the message only (``pulumi.RunError`` prints no traceback)."""
    from pulumi.runtime.config import is_config_secret

    flat = config_from_pulumi()
    try:
        return read_config(
            flat,
            plan_only=os.environ.get(PLAN_ONLY_ENV) == "1",
            secret_keys=frozenset(k for k in flat if is_config_secret(k)),
        )
    except (ConfigError, ConfigErrors) as exc:
        raise InvalidStack(exc) from None


def build_stack(vs: ValidatedStack) -> dict[str, Any]:
    """Register every resource of one environment; returns the stack outputs.

    Two phases (issue 21): :func:`prepare` builds every component's arguments and runs every check that can refuse
    the stack (the components' own ``…Args`` rules, the service plan, the build configs, every derived name),
    registering nothing; :func:`register` then only constructs resources from those prepared, already-validated
    arguments. A refused stack therefore stops with 0 resources registered, and the error carries no traceback."""
    try:
        for region in vs.regional:  # before anything registers: a short quota stops here, named (issue 10)
            cfg = region.config
            if cfg.gpu.quota_preflight:
                preflight(
                    cfg.project,
                    cfg.region,
                    cfg.gpu.type,
                    cfg.gpu.zonal_redundancy,
                    cfg.scaling.max_instances,
                    region.cpu,
                    region.memory_gib,
                    # Unreadable on a fresh project until ProjectApis enables Cloud Quotas: then it warns, and the
                    # quota gate after the APIs (_quota_gate) stops the run before any build (issue 19).
                    warn=pulumi.log.warn,
                )
        prepared = prepare(vs)
    except (ConfigError, ConfigErrors) as exc:
        raise InvalidStack(exc) from None
    return register(prepared)


IAM_PROPAGATION_S = 180
"""Seconds the first revision waits after its identity's bindings: past IAM's typical 2 minutes."""
RUN_INVOKER = "roles/run.invoker"
IAP_API = "iap.googleapis.com"
CACHE_APIS = (
    "memorystore.googleapis.com",
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
    "logging.googleapis.com",
)
"""What the response cache (S1) adds: Memorystore for Valkey needs "the Memorystore for Valkey API, the Network
Connectivity API, the Service Consumer Management API" (https://cloud.google.com/memorystore/docs/valkey/create-instances,
Before you begin); its log-based metrics need Cloud Logging (on by default, listed so it is pinned)."""


def call_command(url: str, vs: ValidatedStack) -> str:
    """A copy-paste request to the deployed endpoint, signed with the caller's identity token: the service is
    IAM-protected, so the caller must be a listed invoker. The path and ``model`` are the engine profile's
    (``cloudrun_gpu.engines``): the name the engine serves, not its model path, which Cloud Run may expand."""
    request = profile(vs.config.engine.name).client_request(vs.plan.served_model_name)
    body = json.dumps(
        {"model": request.model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
    )
    return (
        'curl -sS -H "Authorization: Bearer $(gcloud auth print-identity-token)" '
        f"-H 'Content-Type: application/json' {url}{request.path} -d '{body}'"
    )


QUOTA_GATE_SCRIPT = (
    'py=.venv/bin/python; [ -x "$py" ] || py=python3\n'
    'exec "$py" -m stack preflight --stack "$STACK" --region "$REGION" --no-enable\n'
)
"""What the quota gate runs from the project directory: the same ``python -m stack preflight`` the README runs before
``up`` (stack/preflight.py), with the project's virtualenv (``Pulumi.yaml``: ``virtualenv: .venv``) and the user's
ADC, without enabling Cloud Quotas (``ProjectApis`` has). A short quota exits non-zero with the request command,
which fails the ``Command`` and so everything that waits for it."""


# --- Prepare: every argument and every check, nothing registered -------------------------------------------------

PENDING = "<wired at registration>"
"""Where an argument is another resource's output (a network id, a bucket name, an identity's email), the prepared
arguments hold this placeholder: no rule reads such a value (an output is unknown during ``pulumi preview`` too), and
:func:`register` wires the real output in before the component is constructed (:func:`_wire` asserts none is left)."""


@dataclass
class _BuildsPlan:
    """One region's builds, prepared: the build identity, the model staging and the image build (each None when
    the region needs none), and whether they read the hub token's shared secret."""

    identity: BuildIdentityArgs
    staging: ModelStagingArgs | None
    image: ImageBuildArgs | None
    token: bool
    warning: str | None = None


@dataclass
class _RegionPlan:
    """One region's components, prepared in the order :func:`register` constructs them."""

    vs: ValidatedStack
    network: InferenceNetworkArgs
    registry: ModelRegistryArgs
    bucket: ModelBucketArgs
    reads_bucket: bool
    quota_triggers: str | None
    builds: _BuildsPlan | None
    service: GpuInferenceServiceArgs


@dataclass
class _CachePlan:
    """The response cache's build identity, image build and component, prepared."""

    identity: BuildIdentityArgs
    image: ImageBuildArgs
    cache: ResponseCacheArgs


@dataclass
class Prepared:
    """Every component's arguments for one environment, built and checked by :func:`prepare`: what
    :func:`register` constructs, with no rule left that could refuse them."""

    vs: ValidatedStack
    labels: dict[str, str]
    apis: ProjectApisArgs
    identity: RuntimeIdentityArgs
    secret: BuildSecretArgs | None
    regions: list[_RegionPlan]
    cache: _CachePlan | None = None
    frontdoor: FrontDoorArgs | None = None


def prepare(vs: ValidatedStack) -> Prepared:
    """The validation pass of the program (issue 21): construct every component's ``…Args`` (each runs its own
    rules on construction), size each region's service (``GpuInferenceServiceArgs.plan``, cached for the
    component), build every Cloud Build config and check every name the stack derives against the rule of the
    resource that receives it (:func:`derived_name_problems`). Registers nothing; raises ConfigError(s)."""
    cfg = vs.config
    labels = {"app": "llm-inference", "environment": cfg.environment, "engine": image_repository(vs)}
    iap = cfg.frontdoor is not None and cfg.frontdoor.iap.enabled
    extra_apis = [*([IAP_API] if iap else []), *(CACHE_APIS if cfg.cache is not None else ())]
    services = [*ProjectApisArgs().services, *extra_apis]  # the defaults, and IAP's and the cache's when used
    token = hub_token(vs)
    prepared = Prepared(
        vs=vs,
        labels=labels,
        apis=ProjectApisArgs(services=services, project=cfg.project),
        identity=RuntimeIdentityArgs(account_id=cfg.service.account_id, project=cfg.project),
        secret=BuildSecretArgs(secret_id=hub_secret_id(vs), value=token, project=cfg.project)
        if token is not None
        else None,
        regions=[_prepare_region(r, labels, token is not None) for r in vs.regional],
    )
    if cfg.cache is not None:
        prepared.cache = _prepare_cache(vs, labels)
    if cfg.frontdoor is not None:
        internal = cfg.frontdoor.internal
        prepared.frontdoor = FrontDoorArgs(
            backends={r.config.region: FrontDoorBackend(service_name=PENDING) for r in vs.regional},
            settings=cfg.frontdoor,
            network=PENDING if internal else None,
            subnetwork=PENDING if internal else None,
            project=cfg.project,
        )
    raise_if(derived_name_problems(prepared))
    return prepared


def _prepare_region(vs: ValidatedStack, labels: dict[str, str], token_set: bool) -> _RegionPlan:
    cfg = vs.config
    reads_bucket = cfg.loading.method in ("gcs-fuse", "gcs-download", "gcs-stream")
    network = InferenceNetworkArgs(
        region=cfg.region, settings=cfg.network, max_instances=cfg.scaling.max_instances, project=cfg.project
    )
    registry = ModelRegistryArgs(
        location=cfg.region, settings=cfg.registry, reader_members={"runtime": PENDING}, project=cfg.project
    )
    # Each region reads its own copy of the weights: a bucket in the region (or a multi/dual-region on its
    # continent, stack/config.py checks), filled by this region's staging build.
    bucket = ModelBucketArgs(
        location=vs.bucket_location,
        settings=dataclasses.replace(cfg.bucket, force_destroy=vs.force_destroy, name_prefix=_bucket_prefix(vs)),
        reader_members={"runtime": PENDING} if reads_bucket else {},
        labels=labels,
        project=cfg.project,
    )
    quota = None
    if cfg.gpu.quota_preflight:
        need = quota_need(cfg.gpu.type, cfg.gpu.zonal_redundancy, cfg.scaling.max_instances, vs.cpu, vs.memory_gib)
        quota = json.dumps({"project": cfg.project, "region": cfg.region, **need.to_dict()}, sort_keys=True)
    builds = _prepare_builds(vs, token_set)
    door = cfg.frontdoor
    service = GpuInferenceServiceArgs(
        region=cfg.region,
        image=PENDING,  # the built image by digest, or engine.image as written (register wires either)
        model=cfg.model,
        engine=cfg.engine,
        loading=cfg.loading,
        gpu=cfg.gpu,
        resources=cfg.resources,
        scaling=cfg.scaling,
        service=dataclasses.replace(cfg.service, deletion_protection=vs.deletion_protection),
        vpc=VpcEgressArgs(network=PENDING, subnetwork=PENDING, tags=list(cfg.network.tags)),
        bucket_name=PENDING,
        service_account_email=PENDING,
        labels=labels,
        # Behind the front door a client cannot know which region answers: it signs its ID token for the
        # front door's URL, which every region accepts (https://cloud.google.com/run/docs/configuring/custom-audiences).
        custom_audiences=[f"https://{d}" for d in door.domains] if door is not None else [],
        project=cfg.project,
    )
    service.plan(Path.cwd())  # the component's own sizing rules, here; the component reuses this plan
    return _RegionPlan(vs, network, registry, bucket, reads_bucket, quota, builds, service)


def _prepare_builds(vs: ValidatedStack, token_set: bool) -> _BuildsPlan | None:
    """The region's build identity with exactly the access its builds use (push to the registry for the image
    build, pull through the remote caches, write the model bucket for staging, read a ``gs://`` source, the hub
    token's secret), the staging run and the image build; None when the region builds nothing."""
    cfg = vs.config
    stage, build = staging_needed(vs), image_build_needed(vs)
    if not stage and not build:
        return None
    warning = None
    if not stage and cfg.loading.method != "internet" and not cfg.model.source:
        warning = (
            f"cloudrun-gpu:model.source is not set: put the model into the bucket under "
            f"{cfg.model.object_prefix!r} yourself before the first request (docs/deploy.md, bucket layout)"
        )
    src = cfg.model.model_source()
    token = stage and src is not None and src.kind == "hf" and token_set
    remotes = {c.value for c in cfg.registry.remote_caches}  # ModelRegistry creates one per listed cache
    caches = {c for c in UPSTREAM_CACHE.values() if c in remotes}
    identity = BuildIdentityArgs(
        account_id=_build_account_id(vs),
        project=cfg.project,
        location=cfg.region,
        repository=PENDING if build else None,
        pull_repositories={c: PENDING for c in sorted(caches)},
        bucket=PENDING,
        write_bucket=stage,
        read_buckets={"source": src.location.removeprefix("gs://").split("/", 1)[0]}
        if stage and src is not None and src.kind == "gs"
        else {},
        secrets={"hf-token": PENDING} if token else {},
    )
    staging = None
    if stage:
        # A local source is uploaded first; the run is re-done when its trigger (the source and the files chosen)
        # changes.
        local = local_source(vs, Path.cwd()) if src is not None and src.kind == "local" else None
        trigger = staging_trigger(vs, token=token, local_stats=local[2] if local else None)
        config = staging_config(vs, token=token, trigger=trigger)
        staging = ModelStagingArgs(
            config=config,
            service_account=PENDING,
            project=cfg.project,
            trigger=trigger,
            marker=PENDING,
            substitutions={k: PENDING for k in substitutions_used(config) if k == MODEL_BUCKET},
            source_root=local[0] if local else None,
            source_files=local[1] if local else [],
            source_staging_dir=PENDING if local else None,
        )
    image = None
    if build:
        # The serving image's Cloud Build run, tagged by its build inputs only (``image_tag``).
        build_config = image_build_config(vs)
        image = ImageBuildArgs(
            image=image_uri(vs),
            config=build_config,
            service_account=PENDING,
            project=cfg.project,
            trigger=image_tag(vs),
            source_files=container_files(),
            source_staging_dir=PENDING,
            # MUST_MATCH: exactly the substitutions the config uses, from the real bucket name.
            substitutions={k: PENDING for k in substitutions_used(build_config.to_dict()) if k == MODEL_BUCKET},
        )
    return _BuildsPlan(identity, staging, image, token, warning)


def _prepare_cache(vs: ValidatedStack, labels: dict[str, str]) -> _CachePlan:
    """The response cache (S1): its CPU image, built by Cloud Build like the engine's (its own build identity: push
    to the registry, read the uploaded source), then the cache service and its Valkey instance in the region's VPC."""
    cfg = vs.config
    settings = cfg.cache
    assert settings is not None
    uri = cache_image_uri(vs)
    return _CachePlan(
        identity=BuildIdentityArgs(
            account_id=build_account_id(settings.service_name),
            project=cfg.project,
            location=cfg.region,
            repository=PENDING,
            bucket=PENDING,  # object read: the uploaded build source
        ),
        image=ImageBuildArgs(
            image=uri,
            config=cache_build_config(vs),
            service_account=PENDING,
            project=cfg.project,
            trigger=uri,
            source_files=cache_files(),
            source_staging_dir=PENDING,
        ),
        cache=ResponseCacheArgs(
            region=cfg.region,
            image=PENDING,
            upstream_url=PENDING,
            upstream_service_name=PENDING,
            network=PENDING,
            subnetwork=PENDING,
            settings=dataclasses.replace(
                settings, deletion_protection=settings.deletion_protection or vs.deletion_protection
            ),
            project=cfg.project,
            labels=labels,
        ),
    )


@dataclass(frozen=True)
class DerivedName:
    """A name the stack gives a resource, the rule of that resource, and the setting the user wrote that produced
    it (the stack key an error names)."""

    rule: limits.NameRule
    name: str
    setting: str
    what: str
    region: str


def derived_names(p: Prepared) -> list[DerivedName]:
    """Every project- and region-scoped name the prepared stack gives a resource, names the user wrote directly
    after those derived from them, so a clash is reported on the setting written by hand (the one to change)."""
    vs = p.vs
    cfg = vs.config
    svc_key, names = NS + "service.name", []
    svc = cfg.service.name
    for i, rp in enumerate(p.regions):
        rcfg = rp.vs.config
        region = rcfg.region
        if rp.builds is not None:
            names.append(
                DerivedName(
                    limits.SERVICE_ACCOUNT_ID, rp.builds.identity.account_id, svc_key, f"{region}'s build account", ""
                )
            )
        names.append(DerivedName(limits.RUN_SERVICE_NAME, rcfg.service.name, svc_key, "the GPU service", region))
        net = rp.network.settings
        if net.psc.enabled:
            at = f"regions[{i}].network" if cfg.regions else "network"
            for j, zone in enumerate(net.psc.dns_zones):
                names.append(
                    DerivedName(
                        limits.DNS_ZONE_NAME,
                        zone_name(f"{svc}-net{rp.vs.suffix}", zone),
                        f"{NS}{at}.psc.dns_zones.{j}",
                        f"{region}'s private zone for {zone}",
                        "",
                    )
                )
        repo_key = NS + "registry.repository_id"
        repo = rcfg.registry.repository_id
        names.append(DerivedName(limits.AR_REPOSITORY_ID, repo, repo_key, "the image repository", region))
        for cache in rcfg.registry.remote_caches:
            names.append(
                DerivedName(
                    limits.AR_REPOSITORY_ID, f"{repo}-{cache.value}", repo_key, f"the {cache.value} cache", region
                )
            )
    if p.secret is not None:
        names.append(DerivedName(limits.SECRET_ID, p.secret.secret_id, svc_key, "the hub token's secret", ""))
    if p.cache is not None:
        key = NS + "cache.service_name"
        names.append(
            DerivedName(limits.SERVICE_ACCOUNT_ID, p.cache.identity.account_id, key, "the cache's build account", "")
        )
        names.append(
            DerivedName(
                limits.RUN_SERVICE_NAME, p.cache.cache.settings.service_name, key, "the cache service", cfg.region
            )
        )
        names.append(
            DerivedName(
                limits.SERVICE_ACCOUNT_ID,
                p.cache.cache.settings.account_id,
                NS + "cache.account_id",
                "the cache's runtime account",
                "",
            )
        )
    names.append(
        DerivedName(
            limits.SERVICE_ACCOUNT_ID,
            p.identity.account_id,
            NS + "service.account_id",
            "the GPU service's runtime account",
            "",
        )
    )
    return names


def derived_name_problems(p: Prepared) -> list[ConfigError]:
    """Each name against its resource's rule (characters, length) and against the other names of the stack that
    share its scope (a project, or a region of it): two resources with one name are a conflict GCP reports only at
    deploy, after everything before them was created (issue 21). The error names the setting that produced the
    name. The rules and their sources: ``cloudrun_gpu.limits.NAME_RULES``."""
    errors: list[ConfigError] = []
    seen: dict[tuple[str, str, str], DerivedName] = {}
    for n in derived_names(p):
        rule = n.rule
        if not (rule.min_len <= len(n.name) <= rule.max_len and re.fullmatch(rule.pattern, n.name)):
            errors.append(
                ConfigError(
                    n.setting,
                    _setting_value(p, n.setting),
                    f"gives {n.what} the {rule.what} {n.name!r}, which is not {rule.min_len}-{rule.max_len} "
                    f"characters matching {rule.pattern}",
                    f"shorten or change {n.setting}",
                )
            )
            continue
        scope = (rule.what, n.region if rule.unique_in == "region" else "", n.name)
        other = seen.get(scope)
        if other is not None:
            where = f" in {n.region}" if n.region else ""
            errors.append(
                ConfigError(
                    n.setting,
                    _setting_value(p, n.setting),
                    f"gives {n.what} the {rule.what} {n.name!r}, already given to {other.what} (from {other.setting}): "
                    f"a {rule.what} is unique per {rule.unique_in}{where}",
                    f"change {n.setting} so the two differ",
                )
            )
        seen.setdefault(scope, n)
    return errors


def _setting_value(p: Prepared, setting: str) -> Any:
    """What the user wrote for ``setting`` (a stack key such as ``cloudrun-gpu:regions[1].network.psc.dns_zones.0``):
    the value an error shows."""
    value: Any = p.vs.config
    for part in re.split(r"[.\[\]]+", setting.removeprefix(NS)):
        if not part:
            continue
        # An index comes from the names this module derived itself: it is always in range.
        value = value[int(part)] if part.isdigit() and isinstance(value, list | tuple) else getattr(value, part, None)
    return value


_A = TypeVar("_A")


def _wire(args: _A, **outputs: Any) -> _A:
    """Prepared arguments with other resources' outputs in place of :data:`PENDING`. Runs no rule (the arguments
    were checked by :func:`prepare`); a placeholder left behind is a bug in this module, not the user's input."""
    for name, value in outputs.items():
        before = getattr(args, name)
        # Only what prepare left pending (or set to this very value) is wired: a checked value is never replaced.
        assert _pending(before, name) or before == value, f"{type(args).__name__}.{name} was not left pending"
        setattr(args, name, value)
    left = _pending(args, type(args).__name__)
    assert not left, f"not wired: {left}"
    return args


def _pending(value: Any, at: str) -> list[str]:
    if isinstance(value, str):
        return [at] if value == PENDING else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _pending(v, f"{at}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _pending(v, f"{at}[{i}]")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in _pending(getattr(value, f.name), f"{at}.{f.name}")]
    return []


# --- Register: resources from the prepared arguments ------------------------------------------------------------


@dataclass
class _Shared:
    """What every region uses: the APIs, the one runtime identity, labels, and the hub token's secret (created
    once, on first use)."""

    apis: ProjectApis
    identity: RuntimeIdentity
    labels: dict[str, str]
    secret: BuildSecret | None = None


@dataclass
class _Region:
    """One region's components, in the order they were registered."""

    vs: ValidatedStack
    network: InferenceNetwork
    registry: ModelRegistry
    bucket: ModelBucket
    built: _Built
    service: GpuInferenceService
    quota: local.Command | None = None


def register(p: Prepared) -> dict[str, Any]:
    """The stack in three layers: what is shared (APIs, runtime identity), each region's chain (network →
    registry and bucket → staging and image build → GPU service), then what fronts the regions (the front
    door). A further optional component in front of the services slots in between the last two. Only constructs
    resources from :func:`prepare`'s arguments: nothing here can refuse the stack."""
    vs = p.vs
    cfg = vs.config
    svc = cfg.service.name
    # First: on a fresh project every other call fails with SERVICE_DISABLED until its API is on.
    apis = ProjectApis(f"{svc}-apis", p.apis)
    # Every component below waits for every API. depends_on=[apis] expands to the API resources
    # (pulumi/runtime/rpc.py `_add_dependency`: a local component stands for its children); the component
    # registers only once they are created, and each child awaits its parent's URN before registering
    # (pulumi/runtime/resource.py `prepare_resource`), so the children wait too (tests/test_apis.py).
    identity = RuntimeIdentity(svc, p.identity, opts=pulumi.ResourceOptions(depends_on=[apis]))
    shared = _Shared(apis=apis, identity=identity, labels=p.labels)
    regions = [_region(r, p, shared) for r in p.regions]
    primary = regions[0]
    outputs: dict[str, Any] = {
        "call": primary.service.url.apply(lambda url: call_command(url, vs)),
        "url": primary.service.url,
        "service_name": primary.service.service_name,
        "service_account": primary.service.service_account_email,
        "concurrency": primary.service.concurrency,
        "startup_probe": primary.service.startup_probe,
        "engine_args": vs.sizing.engine_args,
        "image": primary.built.image,
        "registry_uri": primary.registry.registry_uri,
        "model_bucket": primary.bucket.bucket_name,
        "psc_ip": primary.network.psc_ip,
        "enabled_apis": apis.services,
    }
    if primary.built.identity is not None:
        outputs["build_service_account"] = primary.built.identity.email
    # Optional components that sit in front of the regions' services (a response cache, …) go here: each takes
    # `regions` (every region's service and network) and `shared`, registers its resources and adds its outputs.
    if p.cache is not None:  # one region without a front door (stack/config.py refuses the rest)
        cache = _response_cache(vs, p.cache, primary, shared)
        outputs["call"] = cache.url.apply(lambda url: call_command(url, vs))
        outputs["cache_url"] = cache.url
        outputs["cache_valkey_host"] = cache.valkey_host
    if p.frontdoor is not None:
        door = _front_door(vs, p.frontdoor, regions, shared)
        outputs["call"] = door.url.apply(lambda url: call_command(url, vs))
        outputs["frontdoor_url"] = door.url
        outputs["frontdoor_ip"] = door.ip_address
        if door.managed_certificate is not None:  # README: wait until its status is ACTIVE (issue 19)
            outputs["frontdoor_certificate"] = door.managed_certificate.name
    if len(regions) > 1:
        outputs["regions"] = {
            r.vs.config.region: {
                "url": r.service.url,
                "gpu": r.vs.config.gpu.type.value,
                "image": r.built.image,
                "model_bucket": r.bucket.bucket_name,
                "concurrency": r.service.concurrency,
            }
            for r in regions
        }
    return outputs


def _quota_gate(rp: _RegionPlan, shared: _Shared) -> local.Command | None:
    """The region's quota check as a resource (issue 19): it waits for every API (Cloud Quotas among them, so it can
    read the quotas even on a fresh project) and every staging, image build and the GPU service wait for it, so a
    short quota stops ``pulumi up`` minutes in, before any build. It runs again when what it checks changes (the
    need, project or region: ``triggers``). ``gpu.quota_preflight: false`` turns it off with the in-program check."""
    if rp.quota_triggers is None:
        return None
    cfg = rp.vs.config
    return local.Command(
        f"{cfg.service.name}-quota{rp.vs.suffix}",
        create=QUOTA_GATE_SCRIPT,
        environment={"STACK": pulumi.get_stack(), "REGION": cfg.region},
        triggers=[rp.quota_triggers],
        opts=pulumi.ResourceOptions(depends_on=[shared.apis]),
    )


def _region(rp: _RegionPlan, p: Prepared, shared: _Shared) -> _Region:
    """One region's chain. Logical names are today's for the primary region (``vs.suffix`` is empty) and carry
    ``-<region>`` for the others, so a single-region stack that gains regions keeps its resources."""
    vs = rp.vs
    cfg = vs.config
    svc = cfg.service.name
    sfx = vs.suffix
    apis, identity = shared.apis, shared.identity

    def after_apis() -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(depends_on=[apis])

    network = InferenceNetwork(f"{svc}-net{sfx}", rp.network, opts=after_apis())
    registry = ModelRegistry(
        f"{svc}-registry{sfx}", _wire(rp.registry, reader_members={"runtime": identity.member}), opts=after_apis()
    )
    bucket = ModelBucket(
        f"{svc}-models{sfx}",
        _wire(rp.bucket, reader_members={"runtime": identity.member} if rp.reads_bucket else {}),
        opts=after_apis(),
    )
    # IAM is eventually consistent: "typically 2 minutes, potentially 7 minutes or longer"
    # (https://cloud.google.com/iam/docs/access-change-propagation). The first revision must not start
    # before its identity can read the bucket and the images, so the service waits after the bindings; the
    # pause runs on create and whenever a binding is replaced (triggers), not on every update.
    iam_settled = Sleep(
        f"{svc}-iam-propagation{sfx}",
        create_duration=f"{IAM_PROPAGATION_S}s",
        triggers={
            "bucket_readers": pulumi.Output.all(*[b.id for b in bucket.reader_bindings]).apply(",".join),
            "registry_readers": pulumi.Output.all(*[b.id for b in registry.reader_bindings]).apply(",".join),
        },
        opts=pulumi.ResourceOptions(depends_on=[apis, *bucket.reader_bindings, *registry.reader_bindings]),
    )
    gate = _quota_gate(rp, shared)
    built = _builds(rp, p, shared, registry, bucket, gate)
    service = GpuInferenceService(
        f"{svc}{sfx}",
        _wire(
            rp.service,
            image=built.image,
            vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
            bucket_name=bucket.bucket_name,
            service_account_email=identity.email,
        ),
        # The revision starts only once its model is in the bucket and its image is pushed (issue 10).
        opts=pulumi.ResourceOptions(
            depends_on=[
                apis,
                registry,
                bucket,
                iam_settled,
                *built.waits,
                *([gate] if gate is not None else []),
                *_private_path(network, rp.reads_bucket),
            ]
        ),
    )
    return _Region(vs, network, registry, bucket, built, service, gate)


def _response_cache(vs: ValidatedStack, cp: _CachePlan, region: _Region, shared: _Shared) -> ResponseCache:
    """The response cache (S1) in front of the region's GPU service: its image build's identity and run, then the
    cache service and its Valkey instance. Clients call the cache; the cache's identity is the GPU service's
    invoker (the component binds it)."""
    svc = vs.config.service.name
    after: list[pulumi.Resource] = [shared.apis, region.registry, region.bucket]
    identity = BuildIdentity(
        f"{svc}-cache-build",
        _wire(cp.identity, repository=region.registry.repository.name, bucket=region.bucket.bucket_name),
        opts=pulumi.ResourceOptions(depends_on=after),
    )
    image = ImageBuild(
        f"{svc}-cache-image",
        _wire(
            cp.image,
            service_account=identity.resource_name,
            source_staging_dir=region.bucket.bucket_name.apply(source_staging_dir),
        ),
        # Like every build: only once the region's quota check has passed (issue 19).
        opts=pulumi.ResourceOptions(depends_on=[*after, identity, *([region.quota] if region.quota else [])]),
    )
    return ResponseCache(
        f"{svc}-cache",
        _wire(
            cp.cache,
            image=image.image_ref,
            upstream_url=region.service.url,
            upstream_service_name=region.service.service_name,
            network=region.network.network_id,
            subnetwork=region.network.subnetwork_id,
        ),
        # Not on region.service (issue 19): only the cache's Cloud Run service and its invoker binding need the GPU
        # service (its URL and name, so they wait for it through those outputs); the Memorystore instance and the
        # connection policy start alongside the GPU service instead of after it and the builds.
        opts=pulumi.ResourceOptions(depends_on=[shared.apis, region.network]),  # the image: through image_ref
    )


def _front_door(vs: ValidatedStack, args: FrontDoorArgs, regions: list[_Region], shared: _Shared) -> FrontDoor:
    """The load balancer over every region's service (one serverless NEG each). The services admit only load
    balancers (ingress, checked in stack/config.py) and stay IAM-protected: with IAP on, IAP calls them as its
    service agent, which gets ``roles/run.invoker`` on each ("grant the IAP service agent the Cloud Run
    Invoker role", https://cloud.google.com/iap/docs/enabling-cloud-run, Known limitations)."""
    cfg = vs.config
    svc = cfg.service.name
    settings = args.settings
    primary = regions[0]
    door = FrontDoor(
        f"{svc}{FRONTDOOR_SUFFIX}",
        _wire(
            args,
            backends={r.vs.config.region: FrontDoorBackend(service_name=r.service.service_name) for r in regions},
            network=primary.network.network_id if settings.internal else None,
            subnetwork=primary.network.subnetwork_id if settings.internal else None,
        ),
        opts=pulumi.ResourceOptions(depends_on=[shared.apis, *(r.service for r in regions)]),
    )
    if settings.iap.enabled:
        # The IAP service agent (service-<number>@gcp-sa-iap.iam.gserviceaccount.com) exists once the API is on;
        # ServiceIdentity creates it if needed and returns its member (pulumi-gcp ``projects.ServiceIdentity``).
        agent = gcp.projects.ServiceIdentity(
            f"{svc}-iap-agent",
            service=IAP_API,
            project=cfg.project,
            opts=pulumi.ResourceOptions(depends_on=[shared.apis]),
        )
        for r in regions:
            gcp.cloudrunv2.ServiceIamMember(
                f"{svc}{r.vs.suffix}-invoker-iap",
                name=r.service.service_name,
                location=r.vs.config.region,
                role=RUN_INVOKER,
                member=agent.member,
                project=cfg.project,
                opts=pulumi.ResourceOptions(parent=r.service),
            )
    return door


class _Built:
    """What :func:`_builds` registered: the image the service deploys and what the service waits for."""

    def __init__(self, image: pulumi.Input[str]) -> None:
        self.image = image
        self.identity: BuildIdentity | None = None
        self.waits: list[pulumi.Resource] = []


def _builds(
    rp: _RegionPlan,
    p: Prepared,
    shared: _Shared,
    registry: ModelRegistry,
    bucket: ModelBucket,
    gate: pulumi.Resource | None = None,
) -> _Built:
    """Build identity and its bindings → model staging → image build; returns the image the service deploys (by
    digest when we build it) and the resources the service must wait for. Per region: each bucket is filled by its
    own staging build, and each region's image is built for its GPU (the engine build is pinned per GPU type,
    cloudrun_gpu/images.py) and pushed to the region's registry."""
    vs = rp.vs
    cfg = vs.config
    out = _Built(cfg.engine.image or "")
    plan = rp.builds
    if plan is None:
        return out
    if plan.warning is not None:
        pulumi.log.warn(plan.warning)
    secret = _hub_secret(p, shared) if plan.token else None
    identity = BuildIdentity(
        f"{cfg.service.name}{vs.suffix}-build",  # child "<…>-build-sa": every build identity's account ends so
        _wire(
            plan.identity,
            repository=registry.repository.name if plan.image is not None else None,
            pull_repositories={c: registry.remotes[c].name for c in plan.identity.pull_repositories},
            bucket=bucket.bucket_name,
            secrets={"hf-token": secret.secret_id} if secret is not None else {},
        ),
        opts=pulumi.ResourceOptions(depends_on=[shared.apis, registry, bucket]),
    )
    out.identity = identity
    out.waits.append(identity)  # already implied through the builds; explicit, so plan --json lists it
    # Staging and the image build start only after the region's quota check (``gate``) has passed (issue 19).
    after: list[pulumi.Resource] = [shared.apis, registry, bucket, identity, *([gate] if gate is not None else [])]
    if plan.staging is not None:
        staging = ModelStaging(
            f"{cfg.service.name}-model{vs.suffix}",
            _wire(
                plan.staging,
                service_account=identity.resource_name,
                marker=bucket.bucket_name.apply(lambda b: staging_marker(vs, b)),
                substitutions={k: bucket.bucket_name for k in plan.staging.substitutions},
                source_staging_dir=bucket.bucket_name.apply(source_staging_dir)
                if plan.staging.source_staging_dir is not None
                else None,
            ),
            opts=pulumi.ResourceOptions(depends_on=[*after, *([secret] if secret is not None else [])]),
        )
        after.append(staging)
        out.waits.append(staging)
    if plan.image is not None:
        image = ImageBuild(
            f"{cfg.service.name}-image{vs.suffix}",
            _wire(
                plan.image,
                service_account=identity.resource_name,
                source_staging_dir=bucket.bucket_name.apply(source_staging_dir),
                substitutions={k: bucket.bucket_name for k in plan.image.substitutions},
            ),
            opts=pulumi.ResourceOptions(depends_on=after),
        )
        out.waits.append(image)
        out.image = image.image_ref
    return out


def _hub_secret(p: Prepared, shared: _Shared) -> BuildSecret:
    """The Hugging Face token's Secret Manager secret: one for every region's staging build, registered by the
    first region that needs it."""
    if shared.secret is None:
        assert p.secret is not None  # prepare set it whenever a region's plan reads the token
        shared.secret = BuildSecret(
            f"{p.vs.config.service.name}-hf-token", p.secret, opts=pulumi.ResourceOptions(depends_on=[shared.apis])
        )
    return shared.secret


def _private_path(network: InferenceNetwork, reads_bucket: bool) -> list[pulumi.Resource]:
    """What a service that reads its weights from Cloud Storage at start-up must wait for (issue 19): the Private
    Service Connect endpoint and the private DNS records that send ``storage.googleapis.com`` to it. Its egress goes
    through the VPC; a first revision started before the records exist resolves the public address, which a VPC
    without NAT cannot reach. A service whose model is in its image reads nothing through the VPC at start-up."""
    if not reads_bucket or network.psc_rule is None:
        return []
    return [network.psc_rule, *network.dns_records]


def _build_account_id(vs: ValidatedStack) -> str:
    """The build identity's account id: today's for the primary region; for another region a short stable
    hash of the region keeps it unique in the project (account ids are project-wide, 6-30 characters)."""
    svc = vs.config.service.name
    if vs.index == 0:
        return build_account_id(svc)
    digest = hashlib.sha256(vs.config.region.encode()).hexdigest()[:6]
    return f"{svc[:16].rstrip('-')}-build-{digest}"


def hub_token(vs: ValidatedStack) -> pulumi.Output[str] | None:
    """``cloudrun-gpu:hf_token`` as a Pulumi secret. A token set without ``--secret`` never gets here: the
    validation pass (``read_config`` given the secret keys, :func:`load_from_pulumi`) refused it before anything
    registered (issue 21)."""
    return pulumi.Config(PROJECT).get_secret(HF_TOKEN_KEY)


def _bucket_prefix(vs: ValidatedStack) -> str:
    """The bucket name prefix: the configured one, plus ``-<region>`` for every region but the first, so an
    operator tells the regions' copies apart by name (the random suffix alone keeps them unique). The first
    region keeps its name (an existing single-region stack is adopted, not replaced); a prefix too long to take
    the region (the prefix may have at most ``NAME_PREFIX_MAX`` characters, so that with ``-`` and the 8-hex
    suffix the bucket name stays within Cloud Storage's 63, https://cloud.google.com/storage/docs/buckets#naming)
    stays as it is."""
    prefix = vs.config.bucket.name_prefix
    # The prefix with the region must still be a valid prefix (ModelBucketArgs checks it against BucketSettings'
    # own rule, at most NAME_PREFIX_MAX characters): issue 21, a 30-character prefix failed after 75 resources.
    if not vs.suffix or len(prefix) + len(vs.suffix) > NAME_PREFIX_MAX:
        return prefix
    return f"{prefix}{vs.suffix}"
