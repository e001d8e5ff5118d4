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
MOUNT_PATHS: dict[str, str] = {
    "image": "/models",
    "gcs-fuse": "/mnt/models",
    "gcs-download": "/models-mem",
    "internet": "/models-mem",
}
"""Where each loading method puts the model inside the container (gcs-stream puts it nowhere). Kept here, beside
the volumes, so that the engine flags can tell the method from a model path (:func:`method_for_model_path`)."""
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


# --- mmap or not, per loading method (R7) ----------------------------------------------------------------------
# llama.cpp and Ollama's llama engine memory-map the GGUF by default. With every layer on the GPU (we render
# ``-ngl 999``) the mapping is a staging area: each tensor is copied from the mapped pages to the GPU, and the
# input layer (``token_embd``) stays on the CPU, served from the mapping ("there is very little benefit to
# offloading the input layer, so always keep it on the CPU", llama.cpp src/llama-model.cpp). Without mmap,
# llama.cpp reads the file with read() into 4 pinned 1 MiB staging buffers and uploads asynchronously ("When not
# using mmaped io use async uploads from pinned memory to GPU memory", src/llama-model-loader.cpp
# ``load_all_data``), and reads the input layer once into anonymous memory. docs/startup.md has the evidence and
# the measurement behind each choice below (scripts/startup_report.py reproduces it).


@dataclass(frozen=True)
class MmapChoice:
    """Whether the engine memory-maps the model for one loading method, and why (docs/startup.md)."""

    mmap: bool
    reason: str


MMAP_BY_METHOD: dict[str, MmapChoice] = {
    "image": MmapChoice(
        False,
        "a file on the container's own disk, every layer on the GPU: llama.cpp PR #14396 measured 14.3 s without "
        "mmap vs 33.7 s with it (A100, Gemma 3, all layers offloaded): read() into pinned buffers overlaps the "
        "upload, where mmap copies from pageable, page-faulted memory",
    ),
    "gcs-fuse": MmapChoice(
        True,
        "measured through a FUSE mount (docs/startup.md): mmap's page faults are batched by the kernel's "
        "read-ahead into 414 requests of mostly 256 KiB, read() into 952 of at most 128 KiB (114 of 4 KiB); "
        "with 2 ms per request mmap was ready in 0.98 s vs 2.71 s. Every FUSE request is a round trip through "
        "gcsfuse, so fewer, larger requests win; the pinned-upload gain above was measured on a local disk",
    ),
    "gcs-download": MmapChoice(
        True,
        "the file already sits in an in-memory volume (tmpfs): page faults need no I/O, and mmap shares those "
        "pages for the CPU-resident input embedding instead of a second, anonymous copy that would count against "
        "the same instance memory (measured: 105 MiB file-backed vs 125 MiB anonymous RSS, docs/startup.md)",
    ),
    "internet": MmapChoice(
        True,
        "downloaded into the same in-memory volume as gcs-download: the same reasons",
    ),
}
"""llama.cpp and Ollama only (vLLM reads safetensors its own way; gcs-stream is vLLM-only)."""

LLAMA_CPP_NO_MMAP = "--no-mmap"
"""llama.cpp b6700's flag (``common/arg.cpp``: "do not memory-map model (slower load but may reduce pageouts if
not using mlock)", env ``LLAMA_ARG_NO_MMAP``; tools/server/README.md). ggml-org/llama.cpp PR #20834 ("args:
refactor mlock/mmap/directio into load-mode") later deprecated it for ``--load-mode none``, and newer builds reject
it (the test harness's llama-server, docs/startup.md): moving the pin past that needs the new spelling.

``--mlock`` is not rendered: it only keeps pages from being swapped or compressed, and with --no-mmap and every
layer on the GPU the host copy is the input embedding alone."""


def method_for_model_path(model_path: str) -> str | None:
    """The loading method whose mount holds ``model_path`` (the longest matching mount), or None.

    The engine flags are rendered from the model path alone (``sizing.engines.render_engine_config``), the way
    gcs-stream is recognised by its ``gs://`` prefix; a path outside every mount (a local test file) is None.
    gcs-download and internet share their mount and their rule: such a path reads as gcs-download.
    """
    best: str | None = None
    for method, mount in MOUNT_PATHS.items():  # insertion order breaks ties: gcs-download before internet
        if model_path.startswith(mount.rstrip("/") + "/") and (best is None or len(mount) > len(MOUNT_PATHS[best])):
            best = method
    return best


def uses_mmap(method: str | None) -> bool:
    """mmap for ``method`` (:data:`MMAP_BY_METHOD`); the engine's default (mmap) when the method is unknown."""
    if method is None:
        return True
    if method not in MMAP_BY_METHOD:
        raise ValueError(f"no mmap rule for loading method {method!r} (llama.cpp and Ollama methods only)")
    return MMAP_BY_METHOD[method].mmap


def llama_cpp_mmap_args(model_path: str) -> list[str]:
    """``--no-mmap`` when the model's loading method loads better with read() (:data:`MMAP_BY_METHOD`)."""
    return [] if uses_mmap(method_for_model_path(model_path)) else [LLAMA_CPP_NO_MMAP]


def ollama_model_parameters(method: str) -> dict[str, str]:
    """Modelfile ``PARAMETER`` lines for ``method``: ``use_mmap false`` where mmap is off.

    Ollama 0.12.3 has no environment variable for mmap (envconfig/config.go has none); ``use_mmap`` is a runner
    option (api/types.go ``Runner.UseMMap``, json ``use_mmap``), and a Modelfile takes it as ``PARAMETER use_mmap
    false`` (parser/parser_test.go ``TestParseFileParameters``: "use_mmap true"). It must be the model's own, not a
    per-request option of the preload: the scheduler reloads a model whenever a request's runner options differ
    from the loaded ones (server/sched.go ``needsReload``: ``!reflect.DeepEqual(optsExisting, optsNew)``), so a
    client request without it would load the model a second time. It only matters on Ollama's llama engine
    (llm/server.go: "Mmap is only supported on the llama engine"); gemma3, qwen3, gpt-oss … run on the Ollama
    engine, which never maps the file.
    """
    return {} if uses_mmap(method) else {"use_mmap": "false"}
