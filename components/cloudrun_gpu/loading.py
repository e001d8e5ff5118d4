"""How the model reaches the GPU: the seed's four loading methods as volumes, mounts and env.

Pure data (no Pulumi import): the service component turns the dicts below into
``cloudrunv2`` template arguments, and the sizing engine uses the method's throughput for the
startup probe (``limits.LOADING_METHODS``).

| method         | what the container gets                                                   |
|----------------|---------------------------------------------------------------------------|
| ``image``      | nothing: the model is a layer of the image (``container/``)               |
| ``gcs-fuse``   | a read-only Cloud Storage FUSE volume at ``/mnt/models``                  |
| ``gcs-download`` | an in-memory volume at ``/models-mem`` + ``MODEL_DOWNLOAD_URI=gs://…``;   |
|                |   the entrypoint copies in parallel (``gcloud storage cp``)               |
| ``internet``   | the same in-memory volume + ``MODEL_DOWNLOAD_URL``; needs Cloud NAT        |
| ``gcs-stream`` | nothing mounted: ``MODEL_BUCKET`` only; vLLM's ``--model gs://$(MODEL_BUCKET)/…`` |
|                |   is streamed to the GPU by the Run:ai Model Streamer (vLLM only)          |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_VOLUME = "model"
MODEL_BUCKET_ENV = "MODEL_BUCKET"
"""gcs-stream: the bucket's name, which Cloud Run expands into the engine's ``--model gs://$(MODEL_BUCKET)/…``
argument ("Variable references $(VAR_NAME) are expanded using the container's environment", Cloud Run v2
``Container.args``): the plan stays pure while the bucket name is still a Pulumi Output."""

# gcsfuse flags (Cloud Run passes them to gcsfuse without the leading '--'). Chosen for a few
# multi-GB files read once, front to back, by one process:
GCS_FUSE_MOUNT_OPTIONS: dict[str, str] = {
    "implicit-dirs": "show objects under prefixes that have no directory placeholder object "
    "(uploads with gcloud storage cp create none)",
    "only-dir={prefix}": "mount only the model's folder: the engine sees just its files, and listing stays small",
    "metadata-cache-ttl-secs=-1": "never expire cached metadata: model objects do not change while a revision "
    "runs, so every stat after the first is served from memory",
    "stat-cache-max-size-mb=-1": "no cap on the stat cache (a model folder has only a handful of objects)",
    "sequential-read-size-mb=1024": "read up to 1 GiB per GCS request (default 200 MiB): fewer round trips "
    "for multi-GB sequential weight reads",
    "log-severity=warning": "keep gcsfuse's per-read logs out of Cloud Logging",
}


@dataclass(frozen=True)
class ModelDelivery:
    """What a loading method adds to the Cloud Run revision template."""

    method: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    needs_nat: bool = False
    notes: tuple[str, ...] = ()


def gcs_fuse_mount_options(prefix: str) -> list[str]:
    return [opt.format(prefix=prefix.strip("/")) for opt in GCS_FUSE_MOUNT_OPTIONS]


def model_delivery(
    method: str,
    *,
    mount_path: str,
    bucket: Any = None,
    object_prefix: str = "models",
    in_memory_gib: int = 0,
    hub_url: str | None = None,
) -> ModelDelivery:
    """Volumes, mounts and env for ``method``; ``bucket`` may be a Pulumi Output (bucket name)."""
    if method == "image":
        return ModelDelivery(method, notes=("model baked into the image: nothing mounted",))
    if method == "gcs-fuse":
        return ModelDelivery(
            method,
            volumes=[
                {
                    "name": MODEL_VOLUME,
                    "gcs": {
                        "bucket": bucket,
                        "read_only": True,
                        "mount_options": gcs_fuse_mount_options(object_prefix),
                    },
                }
            ],
            mounts=[{"name": MODEL_VOLUME, "mount_path": mount_path}],
            notes=("read-only Cloud Storage FUSE volume; FUSE reads are not parallel (L2)",),
        )
    if method == "gcs-stream":
        return ModelDelivery(
            method,
            env={MODEL_BUCKET_ENV: bucket},
            notes=("vLLM streams the safetensors from Cloud Storage to the GPU (Run:ai Model Streamer): no volume",),
        )
    volume = {"name": MODEL_VOLUME, "empty_dir": {"medium": "MEMORY", "size_limit": f"{in_memory_gib}Gi"}}
    mount = {"name": MODEL_VOLUME, "mount_path": mount_path}
    if method == "gcs-download":
        uri = _gs_uri(bucket, object_prefix)
        return ModelDelivery(
            method,
            volumes=[volume],
            mounts=[mount],
            env={"MODEL_DOWNLOAD_URI": uri, "MODEL_DIR": mount_path},
            notes=(f"parallel download into a {in_memory_gib} GiB in-memory volume (counts against instance memory)",),
        )
    if method == "internet":
        return ModelDelivery(
            method,
            volumes=[volume],
            mounts=[mount],
            env={"MODEL_DOWNLOAD_URL": hub_url or "", "MODEL_DIR": mount_path},
            needs_nat=True,
            notes=("downloads from the internet at every start: the seed advises your own bucket instead (L2, L5)",),
        )
    raise ValueError(f"unknown loading method {method!r}")


def _gs_uri(bucket: Any, prefix: str) -> Any:
    """``gs://bucket/prefix/*`` for a plain name or a Pulumi Output of one."""
    if hasattr(bucket, "apply"):
        return bucket.apply(lambda b: f"gs://{b}/{prefix.strip('/')}/*")
    return f"gs://{bucket}/{prefix.strip('/')}/*"
