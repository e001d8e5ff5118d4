"""Compose the components into one environment from a validated config (used by ``__main__.py``)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pulumi
from cloudrun_gpu.apis import ProjectApis, ProjectApisArgs
from cloudrun_gpu.bucket import ModelBucket, ModelBucketArgs
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
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs
from cloudrun_gpu.quota import preflight
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from pulumiverse_time import Sleep

from stack.cloudbuild import (
    MODEL_BUCKET,
    UPSTREAM_CACHE,
    cloudbuild_config,
    container_files,
    hub_secret_id,
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
    substitutions_used,
)
from stack.config import HF_TOKEN_KEY, PLAN_ONLY_ENV, PROJECT, ValidatedStack, config_from_pulumi, read_config


def load_from_pulumi() -> ValidatedStack:
    """Read every config key the engine passed and validate it through the same reader as ``plan``;
    errors stop the program with the message only (``pulumi.RunError`` prints no traceback)."""
    try:
        return read_config(config_from_pulumi(), plan_only=os.environ.get(PLAN_ONLY_ENV) == "1")
    except (ConfigError, ConfigErrors) as exc:
        raise pulumi.RunError(f"invalid stack configuration\n{exc}") from None


def build_stack(vs: ValidatedStack) -> dict[str, Any]:
    """Register every resource of one environment; returns the stack outputs. A component that still
    refuses its arguments stops the program the same way (no traceback)."""
    try:
        cfg = vs.config
        if cfg.gpu.quota_preflight:  # before anything registers: a short quota stops here, named (issue 10)
            preflight(
                cfg.project,
                cfg.region,
                cfg.gpu.type,
                cfg.gpu.zonal_redundancy,
                cfg.scaling.max_instances,
                vs.cpu,
                vs.memory_gib,
                warn=pulumi.log.warn,  # unreadable on a fresh project until ProjectApis enables Cloud Quotas
            )
        return _build(vs)
    except (ConfigError, ConfigErrors) as exc:
        raise pulumi.RunError(f"invalid stack configuration\n{exc}") from None


IAM_PROPAGATION_S = 180
"""Seconds the first revision waits after its identity's bindings: past IAM's typical 2 minutes."""


def call_command(url: str, vs: ValidatedStack) -> str:
    """A copy-paste request to the deployed endpoint (OpenAI-compatible chat on every engine), signed with
    the caller's identity token: the service is IAM-protected, so the caller must be a listed invoker."""
    body = json.dumps(
        {"model": vs.model_path, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
    )
    return (
        'curl -sS -H "Authorization: Bearer $(gcloud auth print-identity-token)" '
        f"-H 'Content-Type: application/json' {url}/v1/chat/completions -d '{body}'"
    )


def _build(vs: ValidatedStack) -> dict[str, Any]:
    cfg = vs.config
    svc = cfg.service.name
    labels = {"app": "llm-inference", "environment": cfg.environment, "engine": image_repository(vs)}
    # First: on a fresh project every other call fails with SERVICE_DISABLED until its API is on.
    apis = ProjectApis(f"{svc}-apis", ProjectApisArgs(project=cfg.project))
    # Every component below waits for every API. depends_on=[apis] expands to the API resources
    # (pulumi/runtime/rpc.py `_add_dependency`: a local component stands for its children); the component
    # registers only once they are created, and each child awaits its parent's URN before registering
    # (pulumi/runtime/resource.py `prepare_resource`), so the children wait too (tests/test_apis.py).

    def after_apis() -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(depends_on=[apis])

    identity = RuntimeIdentity(
        svc, RuntimeIdentityArgs(account_id=cfg.service.account_id, project=cfg.project), opts=after_apis()
    )
    network = InferenceNetwork(
        f"{svc}-net",
        InferenceNetworkArgs(
            region=cfg.region, settings=cfg.network, max_instances=cfg.scaling.max_instances, project=cfg.project
        ),
        opts=after_apis(),
    )
    registry = ModelRegistry(
        f"{svc}-registry",
        ModelRegistryArgs(
            location=cfg.region, settings=cfg.registry, reader_members={"runtime": identity.member}, project=cfg.project
        ),
        opts=after_apis(),
    )
    reads_bucket = cfg.loading.method in ("gcs-fuse", "gcs-download", "gcs-stream")
    bucket = ModelBucket(
        f"{svc}-models",
        ModelBucketArgs(
            location=cfg.region,
            settings=dataclasses.replace(cfg.bucket, force_destroy=vs.force_destroy),
            reader_members={"runtime": identity.member} if reads_bucket else {},
            labels=labels,
            project=cfg.project,
        ),
        opts=after_apis(),
    )
    # IAM is eventually consistent: "typically 2 minutes, potentially 7 minutes or longer"
    # (https://cloud.google.com/iam/docs/access-change-propagation). The first revision must not start
    # before its identity can read the bucket and the images, so the service waits after the bindings; the
    # pause runs on create and whenever a binding is replaced (triggers), not on every update.
    iam_settled = Sleep(
        f"{svc}-iam-propagation",
        create_duration=f"{IAM_PROPAGATION_S}s",
        triggers={
            "bucket_readers": pulumi.Output.all(*[b.id for b in bucket.reader_bindings]).apply(",".join),
            "registry_readers": pulumi.Output.all(*[b.id for b in registry.reader_bindings]).apply(",".join),
        },
        opts=pulumi.ResourceOptions(depends_on=[apis, *bucket.reader_bindings, *registry.reader_bindings]),
    )
    built = _builds(vs, apis, registry, bucket)
    image = built.image
    service = GpuInferenceService(
        svc,
        GpuInferenceServiceArgs(
            region=cfg.region,
            image=image,
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
            labels=labels,
            project=cfg.project,
        ),
        # The revision starts only once its model is in the bucket and its image is pushed (issue 10).
        opts=pulumi.ResourceOptions(depends_on=[apis, registry, bucket, iam_settled, *built.waits]),
    )
    outputs = {
        "call": service.url.apply(lambda url: call_command(url, vs)),
        "url": service.url,
        "service_name": service.service_name,
        "service_account": service.service_account_email,
        "concurrency": service.concurrency,
        "startup_probe": service.startup_probe,
        "engine_args": vs.sizing.engine_args,
        "image": image,
        "registry_uri": registry.registry_uri,
        "model_bucket": bucket.bucket_name,
        "psc_ip": network.psc_ip,
        "enabled_apis": apis.services,
    }
    if built.identity is not None:
        outputs["build_service_account"] = built.identity.email
    return outputs


class _Built:
    """What :func:`_builds` registered: the image the service deploys and what the service waits for."""

    def __init__(self, image: pulumi.Input[str]) -> None:
        self.image = image
        self.identity: BuildIdentity | None = None
        self.waits: list[pulumi.Resource] = []


def hub_token(vs: ValidatedStack) -> pulumi.Output[str] | None:
    """``cloudrun-gpu:hf_token`` as a Pulumi secret; a token set without ``--secret`` is refused (it would sit in
    the stack file in plain text)."""
    from pulumi.runtime.config import is_config_secret

    key = f"{PROJECT}:{HF_TOKEN_KEY}"
    token = pulumi.Config(PROJECT).get_secret(HF_TOKEN_KEY)
    if token is not None and os.environ.get(PLAN_ONLY_ENV) != "1" and not is_config_secret(key):
        raise ConfigError(
            key,
            "[hidden]",
            "is stored in plain text",
            f"pulumi config rm {key} && pulumi config set --secret {key} <token>",
        )
    return token


def _builds(vs: ValidatedStack, apis: ProjectApis, registry: ModelRegistry, bucket: ModelBucket) -> _Built:
    """Registry, bucket, build identity and its bindings → model staging → image build; returns the image the
    service deploys (by digest when we build it) and the resources the service must wait for."""
    cfg = vs.config
    svc = cfg.service.name
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
    secret = None
    if token is not None:
        secret = BuildSecret(
            f"{svc}-hf-token",
            BuildSecretArgs(secret_id=hub_secret_id(vs), value=token, project=cfg.project),
            opts=pulumi.ResourceOptions(depends_on=[apis]),
        )
    caches = {c for c in UPSTREAM_CACHE.values() if c in registry.remotes}
    identity = BuildIdentity(
        f"{svc}-build",
        BuildIdentityArgs(
            account_id=build_account_id(svc),
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
    out.identity = identity
    out.waits.append(identity)  # already implied through the builds; explicit, so plan --json lists it
    after: list[pulumi.Resource] = [apis, registry, bucket, identity]
    if stage:
        local = local_source(vs, Path.cwd()) if src is not None and src.kind == "local" else None
        trigger = staging_trigger(vs, token=token is not None, local_stats=local[2] if local else None)
        config = staging_config(vs, token=token is not None, trigger=trigger)
        staging = ModelStaging(
            f"{svc}-model",
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
        after.append(staging)
        out.waits.append(staging)
    if build:
        config = cloudbuild_config(vs)
        image = ImageBuild(
            f"{svc}-image",
            ImageBuildArgs(
                image=image_uri(vs),
                config=config,
                service_account=identity.resource_name,
                project=cfg.project,
                trigger=image_tag(vs),
                source_files=container_files(),
                source_staging_dir=bucket.bucket_name.apply(source_staging_dir),
                # MUST_MATCH: exactly the substitutions the config uses, from the real bucket name.
                substitutions={k: bucket.bucket_name for k in substitutions_used(config) if k == MODEL_BUCKET},
            ),
            opts=pulumi.ResourceOptions(depends_on=after),
        )
        out.waits.append(image)
        out.image = image.image_ref
    return out
