"""Compose the components into one environment from a validated config (used by ``__main__.py``)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pulumi
from cloudrun_gpu.apis import ProjectApis, ProjectApisArgs
from cloudrun_gpu.bucket import ModelBucket, ModelBucketArgs
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs
from cloudrun_gpu.quota import preflight
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from pulumiverse_time import Sleep

from stack.cloudbuild import image_repository, image_tag
from stack.config import PLAN_ONLY_ENV, ValidatedStack, config_from_pulumi, read_config


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
    reads_bucket = cfg.loading.method in ("gcs-fuse", "gcs-download")
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
    image = cfg.engine.image or registry.registry_uri.apply(
        lambda uri: f"{uri}/{image_repository(vs)}:{image_tag(vs)}"  # what `python -m stack cloudbuild` tags
    )
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
        opts=pulumi.ResourceOptions(depends_on=[apis, registry, bucket, iam_settled]),
    )
    return {
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
