"""Compose the components into one environment from a validated config (used by ``__main__.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pulumi
from cloudrun_gpu.bucket import ModelBucket, ModelBucketArgs
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.loading import model_delivery
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, NatArgs, PscArgs
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs

from stack.cloudbuild import image_repository, image_tag
from stack.config import MOUNT_PATHS, PROJECT, SECTIONS, ValidatedStack, parse_config, raw_from_flat, validate


def load_from_pulumi() -> ValidatedStack:
    """Read the stack config through ``pulumi.Config`` and validate it; errors stop the program
    with the message only (``pulumi.RunError`` prints no traceback)."""
    cfg = pulumi.Config(PROJECT)
    gcp_cfg = pulumi.Config("gcp")
    flat = {f"{PROJECT}:{s}": v for s in SECTIONS if (v := cfg.get(s)) is not None}
    flat.update({f"gcp:{k}": v for k in ("project", "region") if (v := gcp_cfg.get(k)) is not None})
    try:
        return validate(parse_config(raw_from_flat(flat)))
    except (ConfigError, ConfigErrors) as exc:
        raise pulumi.RunError(f"invalid stack configuration\n{exc}") from None


def build_stack(vs: ValidatedStack) -> dict[str, Any]:
    """Register every resource of one environment; returns the stack outputs."""
    cfg = vs.config
    svc = cfg.service.name
    labels = {"app": "llm-inference", "environment": cfg.environment, "engine": image_repository(vs)}
    identity = RuntimeIdentity(svc, RuntimeIdentityArgs(account_id=f"{svc}-runtime"[:30], project=cfg.project))
    net = cfg.network
    network = InferenceNetwork(
        f"{svc}-net",
        InferenceNetworkArgs(
            region=cfg.region,
            max_instances=cfg.scaling.max_instances,
            subnet_cidr=net.subnet_cidr,
            existing_network=net.existing_network,
            existing_subnetwork=net.existing_subnetwork,
            psc=PscArgs(address=net.psc.address, target=net.psc.target, name=net.psc.name) if net.psc.enabled else None,
            nat=NatArgs(
                dynamic_port_allocation=net.nat.dynamic_port_allocation,
                min_ports_per_vm=net.nat.min_ports_per_vm,
                max_ports_per_vm=net.nat.max_ports_per_vm,
                log_filter=net.nat.log_filter,
            )
            if net.nat.enabled
            else None,
            tags=net.tags,
            project=cfg.project,
        ),
    )
    reg = cfg.registry
    registry = ModelRegistry(
        f"{svc}-registry",
        ModelRegistryArgs(
            location=cfg.region,
            repository_id=reg.repository_id,
            keep_versions=reg.keep_versions,
            delete_untagged_after_days=reg.delete_untagged_after_days,
            remote_caches=list(reg.remote_caches),
            reader_members=[identity.member],
            project=cfg.project,
        ),
    )
    reads_bucket = cfg.loading.method in ("gcs-fuse", "gcs-download")
    bucket = ModelBucket(
        f"{svc}-models",
        ModelBucketArgs(
            location=cfg.region,
            name_prefix=cfg.bucket.name_prefix,
            versioning=cfg.bucket.versioning,
            soft_delete_days=cfg.bucket.soft_delete_days,
            force_destroy=vs.force_destroy,
            reader_members=[identity.member] if reads_bucket else [],
            labels=labels,
            project=cfg.project,
        ),
    )
    mount_path = MOUNT_PATHS[cfg.loading.method]
    delivery = model_delivery(
        cfg.loading.method,
        mount_path=mount_path,
        bucket=bucket.bucket_name,
        object_prefix=cfg.model.object_prefix,
        in_memory_gib=vs.in_memory_volume_gib,
        hub_url=cfg.model.hub_id,
    )
    if cfg.engine.name == "ollama":  # Ollama reads its own blob store from the mount (or the image's /models)
        delivery = replace(delivery, env={**delivery.env, "OLLAMA_MODELS": mount_path})
    image = cfg.engine.image or registry.registry_uri.apply(
        lambda uri: f"{uri}/{image_repository(vs)}:{image_tag(vs)}"  # what `python -m stack cloudbuild` tags
    )
    service = GpuInferenceService(
        svc,
        GpuInferenceServiceArgs(
            region=cfg.region,
            image=image,
            sizing=vs.sizing,
            cpu=vs.cpu,
            memory_gib=vs.memory_gib,
            service_name=svc,
            gpu_type=cfg.gpu.type,
            gpu_zonal_redundancy_disabled=not cfg.gpu.zonal_redundancy,
            concurrency=vs.concurrency,
            min_instances=cfg.scaling.min_instances,
            max_instances=cfg.scaling.max_instances,
            gpu_quota=cfg.gpu.quota,
            request_timeout_s=cfg.scaling.request_timeout_s,
            vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
            delivery=delivery,
            service_account_email=identity.email,
            invokers=list(cfg.service.invokers),
            ingress=cfg.service.ingress,
            deletion_protection=vs.deletion_protection,
            liveness_probe=cfg.service.liveness_probe,
            labels=labels,
            project=cfg.project,
        ),
        opts=pulumi.ResourceOptions(depends_on=[registry, bucket]),
    )
    return {
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
    }
