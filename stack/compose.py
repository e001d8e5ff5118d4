"""Compose the components into one environment from a validated config (used by ``__main__.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp
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
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs
from cloudrun_gpu.quota import preflight, quota_need
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from cloudrun_gpu.sizing.settings import ModelSource
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
    PLAN_ONLY_ENV,
    PROJECT,
    ValidatedStack,
    config_from_pulumi,
    read_config,
)


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
        raise pulumi.RunError(f"invalid stack configuration\n{exc}") from None


def build_stack(vs: ValidatedStack) -> dict[str, Any]:
    """Register every resource of one environment; returns the stack outputs. A component that still
    refuses its arguments stops the program the same way (no traceback)."""
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
        return _build(vs)
    except (ConfigError, ConfigErrors) as exc:
        raise pulumi.RunError(f"invalid stack configuration\n{exc}") from None


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


def _quota_gate(vs: ValidatedStack, shared: _Shared) -> local.Command | None:
    """The region's quota check as a resource (issue 19): it waits for every API (Cloud Quotas among them, so it can
    read the quotas even on a fresh project) and every staging, image build and the GPU service wait for it, so a
    short quota stops ``pulumi up`` minutes in, before any build. It runs again when what it checks changes (the
    need, project or region: ``triggers``). ``gpu.quota_preflight: false`` turns it off with the in-program check."""
    cfg = vs.config
    if not cfg.gpu.quota_preflight:
        return None
    need = quota_need(cfg.gpu.type, cfg.gpu.zonal_redundancy, cfg.scaling.max_instances, vs.cpu, vs.memory_gib)
    return local.Command(
        f"{cfg.service.name}-quota{vs.suffix}",
        create=QUOTA_GATE_SCRIPT,
        environment={"STACK": pulumi.get_stack(), "REGION": cfg.region},
        triggers=[json.dumps({"project": cfg.project, "region": cfg.region, **need.to_dict()}, sort_keys=True)],
        opts=pulumi.ResourceOptions(depends_on=[shared.apis]),
    )


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


def _build(vs: ValidatedStack) -> dict[str, Any]:
    """The stack in three layers: what is shared (APIs, runtime identity), each region's chain (network →
    registry and bucket → staging and image build → GPU service), then what fronts the regions (the front
    door). A further optional component in front of the services slots in between the last two."""
    cfg = vs.config
    svc = cfg.service.name
    labels = {"app": "llm-inference", "environment": cfg.environment, "engine": image_repository(vs)}
    iap = cfg.frontdoor is not None and cfg.frontdoor.iap.enabled
    extra_apis = [*([IAP_API] if iap else []), *(CACHE_APIS if cfg.cache is not None else ())]
    services = [*ProjectApisArgs().services, *extra_apis]  # the defaults, and IAP's and the cache's when used
    # First: on a fresh project every other call fails with SERVICE_DISABLED until its API is on.
    apis = ProjectApis(f"{svc}-apis", ProjectApisArgs(services=services, project=cfg.project))
    # Every component below waits for every API. depends_on=[apis] expands to the API resources
    # (pulumi/runtime/rpc.py `_add_dependency`: a local component stands for its children); the component
    # registers only once they are created, and each child awaits its parent's URN before registering
    # (pulumi/runtime/resource.py `prepare_resource`), so the children wait too (tests/test_apis.py).
    identity = RuntimeIdentity(
        svc,
        RuntimeIdentityArgs(account_id=cfg.service.account_id, project=cfg.project),
        opts=pulumi.ResourceOptions(depends_on=[apis]),
    )
    shared = _Shared(apis=apis, identity=identity, labels=labels)
    regions = [_region(r, shared) for r in vs.regional]
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
    if cfg.cache is not None:  # one region without a front door (stack/config.py refuses the rest)
        cache = _response_cache(vs, primary, shared)
        outputs["call"] = cache.url.apply(lambda url: call_command(url, vs))
        outputs["cache_url"] = cache.url
        outputs["cache_valkey_host"] = cache.valkey_host
    if cfg.frontdoor is not None:
        door = _front_door(vs, regions, shared)
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


def _region(vs: ValidatedStack, shared: _Shared) -> _Region:
    """One region's chain. Logical names are today's for the primary region (``vs.suffix`` is empty) and carry
    ``-<region>`` for the others, so a single-region stack that gains regions keeps its resources."""
    cfg = vs.config
    svc = cfg.service.name
    sfx = vs.suffix
    apis, identity = shared.apis, shared.identity

    def after_apis() -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(depends_on=[apis])

    network = InferenceNetwork(
        f"{svc}-net{sfx}",
        InferenceNetworkArgs(
            region=cfg.region, settings=cfg.network, max_instances=cfg.scaling.max_instances, project=cfg.project
        ),
        opts=after_apis(),
    )
    registry = ModelRegistry(
        f"{svc}-registry{sfx}",
        ModelRegistryArgs(
            location=cfg.region, settings=cfg.registry, reader_members={"runtime": identity.member}, project=cfg.project
        ),
        opts=after_apis(),
    )
    reads_bucket = cfg.loading.method in ("gcs-fuse", "gcs-download", "gcs-stream")
    # Each region reads its own copy of the weights: a bucket in the region (or a multi/dual-region on its
    # continent, stack/config.py checks), filled by this region's staging build.
    bucket = ModelBucket(
        f"{svc}-models{sfx}",
        ModelBucketArgs(
            location=vs.bucket_location,
            settings=dataclasses.replace(cfg.bucket, force_destroy=vs.force_destroy, name_prefix=_bucket_prefix(vs)),
            reader_members={"runtime": identity.member} if reads_bucket else {},
            labels=shared.labels,
            project=cfg.project,
        ),
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
    gate = _quota_gate(vs, shared)
    built = _builds(vs, shared, registry, bucket, gate)
    door = cfg.frontdoor
    service = GpuInferenceService(
        f"{svc}{sfx}",
        GpuInferenceServiceArgs(
            region=cfg.region,
            image=built.image,
            model=cfg.model,
            engine=cfg.engine,
            loading=cfg.loading,
            gpu=cfg.gpu,
            resources=cfg.resources,
            scaling=cfg.scaling,
            service=dataclasses.replace(cfg.service, deletion_protection=vs.deletion_protection),
            vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
            bucket_name=bucket.bucket_name,
            service_account_email=identity.email,
            labels=shared.labels,
            # Behind the front door a client cannot know which region answers: it signs its ID token for the
            # front door's URL, which every region accepts (https://cloud.google.com/run/docs/configuring/custom-audiences).
            custom_audiences=[f"https://{d}" for d in door.domains] if door is not None else [],
            project=cfg.project,
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
                *_private_path(network, reads_bucket),
            ]
        ),
    )
    return _Region(vs, network, registry, bucket, built, service, gate)


def _private_path(network: InferenceNetwork, reads_bucket: bool) -> list[pulumi.Resource]:
    """What a service that reads its weights from Cloud Storage at start-up must wait for (issue 19): the Private
    Service Connect endpoint and the private DNS records that send ``storage.googleapis.com`` to it. Its egress goes
    through the VPC; a first revision started before the records exist resolves the public address, which a VPC
    without NAT cannot reach. A service whose model is in its image reads nothing through the VPC at start-up."""
    if not reads_bucket or network.psc_rule is None:
        return []
    return [network.psc_rule, *network.dns_records]


def _response_cache(vs: ValidatedStack, region: _Region, shared: _Shared) -> ResponseCache:
    """The response cache (S1) in front of the region's GPU service: its CPU image, built by Cloud Build like
    the engine's (its own build identity: push to the registry, read the uploaded source), then the cache
    service and its Valkey instance in the region's VPC. Clients call the cache; the cache's identity is the
    GPU service's invoker (the component binds it)."""
    cfg = vs.config
    settings = cfg.cache
    assert settings is not None
    svc = cfg.service.name
    after: list[pulumi.Resource] = [shared.apis, region.registry, region.bucket]
    identity = BuildIdentity(
        f"{svc}-cache-build",
        BuildIdentityArgs(
            account_id=build_account_id(settings.service_name),
            project=cfg.project,
            location=cfg.region,
            repository=region.registry.repository.name,
            bucket=region.bucket.bucket_name,  # object read: the uploaded build source
        ),
        opts=pulumi.ResourceOptions(depends_on=after),
    )
    uri = cache_image_uri(vs)
    image = ImageBuild(
        f"{svc}-cache-image",
        ImageBuildArgs(
            image=uri,
            config=cache_build_config(vs),
            service_account=identity.resource_name,
            project=cfg.project,
            trigger=uri,
            source_files=cache_files(),
            source_staging_dir=region.bucket.bucket_name.apply(source_staging_dir),
        ),
        # Like every build: only once the region's quota check has passed (issue 19).
        opts=pulumi.ResourceOptions(depends_on=[*after, identity, *([region.quota] if region.quota else [])]),
    )
    return ResponseCache(
        f"{svc}-cache",
        ResponseCacheArgs(
            region=cfg.region,
            image=image.image_ref,
            upstream_url=region.service.url,
            upstream_service_name=region.service.service_name,
            network=region.network.network_id,
            subnetwork=region.network.subnetwork_id,
            settings=dataclasses.replace(
                settings, deletion_protection=settings.deletion_protection or vs.deletion_protection
            ),
            project=cfg.project,
            labels=shared.labels,
        ),
        # Not on region.service (issue 19): only the cache's Cloud Run service and its invoker binding need the GPU
        # service (its URL and name, so they wait for it through those outputs); the Memorystore instance and the
        # connection policy start alongside the GPU service instead of after it and the builds.
        opts=pulumi.ResourceOptions(depends_on=[shared.apis, region.network]),  # the image: through image_ref
    )


def _front_door(vs: ValidatedStack, regions: list[_Region], shared: _Shared) -> FrontDoor:
    """The load balancer over every region's service (one serverless NEG each). The services admit only load
    balancers (ingress, checked in stack/config.py) and stay IAM-protected: with IAP on, IAP calls them as its
    service agent, which gets ``roles/run.invoker`` on each ("grant the IAP service agent the Cloud Run
    Invoker role", https://cloud.google.com/iap/docs/enabling-cloud-run, Known limitations)."""
    cfg = vs.config
    svc = cfg.service.name
    settings = cfg.frontdoor
    assert settings is not None
    primary = regions[0]
    door = FrontDoor(
        f"{svc}{FRONTDOOR_SUFFIX}",
        FrontDoorArgs(
            backends={r.vs.config.region: FrontDoorBackend(service_name=r.service.service_name) for r in regions},
            settings=settings,
            network=primary.network.network_id if settings.internal else None,
            subnetwork=primary.network.subnetwork_id if settings.internal else None,
            project=cfg.project,
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


def _builds(
    vs: ValidatedStack,
    shared: _Shared,
    registry: ModelRegistry,
    bucket: ModelBucket,
    gate: pulumi.Resource | None = None,
) -> _Built:
    """Registry, bucket, build identity and its bindings → model staging → image build; returns the image the
    service deploys (by digest when we build it) and the resources the service must wait for. Per region: each
    bucket is filled by its own staging build, and each region's image is built for its GPU (the engine build is
    pinned per GPU type, cloudrun_gpu/images.py) and pushed to the region's registry."""
    cfg = vs.config
    stage, build = staging_needed(vs), image_build_needed(vs)
    out = _Built(cfg.engine.image or "")
    if not stage and not build:
        return out
    if not stage and cfg.loading.method != "internet" and not cfg.model.source:
        pulumi.log.warn(
            f"cloudrun-gpu:model.source is not set: put the model into the bucket under "
            f"{cfg.model.object_prefix!r} yourself before the first request (docs/deploy.md, bucket layout)"
        )
    src = cfg.model.model_source()
    token = hub_token(vs) if stage and src is not None and src.kind == "hf" else None
    secret = _hub_secret(vs, shared, token)
    identity = _build_identity(vs, shared.apis, registry, bucket, src, stage=stage, build=build, secret=secret)
    out.identity = identity
    out.waits.append(identity)  # already implied through the builds; explicit, so plan --json lists it
    # Staging and the image build start only after the region's quota check (``gate``) has passed (issue 19).
    after: list[pulumi.Resource] = [shared.apis, registry, bucket, identity, *([gate] if gate is not None else [])]
    if stage:
        staging = _stage_model(vs, src, identity, bucket, after, secret)
        after.append(staging)
        out.waits.append(staging)
    if build:
        image = _build_image(vs, identity, bucket, after)
        out.waits.append(image)
        out.image = image.image_ref
    return out


def _hub_secret(vs: ValidatedStack, shared: _Shared, token: pulumi.Output[str] | None) -> BuildSecret | None:
    """The Hugging Face token's Secret Manager secret when this region stages from the hub with a token (one secret
    for every region's staging build, created by the first region that needs it); None otherwise."""
    if token is None:
        return None
    if shared.secret is None:
        cfg = vs.config
        shared.secret = BuildSecret(
            f"{cfg.service.name}-hf-token",
            BuildSecretArgs(secret_id=hub_secret_id(vs), value=token, project=cfg.project),
            opts=pulumi.ResourceOptions(depends_on=[shared.apis]),
        )
    return shared.secret


def _build_identity(
    vs: ValidatedStack,
    apis: pulumi.Resource,
    registry: ModelRegistry,
    bucket: ModelBucket,
    src: ModelSource | None,
    *,
    stage: bool,
    build: bool,
    secret: BuildSecret | None,
) -> BuildIdentity:
    """The region's build service account and exactly the access its builds use: push to the registry (image
    build), pull through the remote caches, write the model bucket (staging), read a ``gs://`` source, the secret."""
    cfg = vs.config
    caches = {c for c in UPSTREAM_CACHE.values() if c in registry.remotes}
    return BuildIdentity(
        f"{cfg.service.name}{vs.suffix}-build",  # child "<…>-build-sa": every build identity's account ends so
        BuildIdentityArgs(
            account_id=_build_account_id(vs),
            project=cfg.project,
            location=cfg.region,
            repository=registry.repository.name if build else None,
            pull_repositories={c: registry.remotes[c].name for c in sorted(caches)},
            bucket=bucket.bucket_name,
            write_bucket=stage,
            read_buckets={"source": src.location.removeprefix("gs://").split("/", 1)[0]}
            if stage and src is not None and src.kind == "gs"
            else {},
            secrets={"hf-token": secret.secret_id} if secret is not None else {},
        ),
        opts=pulumi.ResourceOptions(depends_on=[apis, registry, bucket]),
    )


def _stage_model(
    vs: ValidatedStack,
    src: ModelSource | None,
    identity: BuildIdentity,
    bucket: ModelBucket,
    after: list[pulumi.Resource],
    secret: BuildSecret | None,
) -> ModelStaging:
    """The Cloud Build run that copies the model from its source into the bucket (a local source is uploaded
    first), re-run when its trigger (the source and the files chosen) changes."""
    cfg = vs.config
    local = local_source(vs, Path.cwd()) if src is not None and src.kind == "local" else None
    trigger = staging_trigger(vs, token=secret is not None, local_stats=local[2] if local else None)
    config = staging_config(vs, token=secret is not None, trigger=trigger)
    return ModelStaging(
        f"{cfg.service.name}-model{vs.suffix}",
        ModelStagingArgs(
            config=config,
            service_account=identity.resource_name,
            project=cfg.project,
            trigger=trigger,
            marker=bucket.bucket_name.apply(lambda b: staging_marker(vs, b)),
            substitutions={k: bucket.bucket_name for k in substitutions_used(config) if k == MODEL_BUCKET},
            source_root=local[0] if local else None,
            source_files=local[1] if local else [],
            source_staging_dir=bucket.bucket_name.apply(source_staging_dir) if local else None,
        ),
        opts=pulumi.ResourceOptions(depends_on=[*after, *([secret] if secret is not None else [])]),
    )


def _build_image(
    vs: ValidatedStack, identity: BuildIdentity, bucket: ModelBucket, after: list[pulumi.Resource]
) -> ImageBuild:
    """The serving image's Cloud Build run, tagged by its build inputs only (``image_tag``), after ``after``."""
    cfg = vs.config
    build_config = image_build_config(vs)
    return ImageBuild(
        f"{cfg.service.name}-image{vs.suffix}",
        ImageBuildArgs(
            image=image_uri(vs),
            config=build_config,
            service_account=identity.resource_name,
            project=cfg.project,
            trigger=image_tag(vs),
            source_files=container_files(),
            source_staging_dir=bucket.bucket_name.apply(source_staging_dir),
            # MUST_MATCH: exactly the substitutions the config uses, from the real bucket name.
            substitutions={
                k: bucket.bucket_name for k in substitutions_used(build_config.to_dict()) if k == MODEL_BUCKET
            },
        ),
        opts=pulumi.ResourceOptions(depends_on=after),
    )
