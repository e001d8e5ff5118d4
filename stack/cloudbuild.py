"""Generate the Cloud Build config that bakes a serving image from a stack's config (L3, B4, B5).

Steps: stage the model from our bucket into ``container/model`` (image method only), pin every
file's timestamp so the model layer is byte-identical across builds (one copy in Artifact
Registry, L3), write Ollama's Modelfile, then ``docker build`` the engine's Dockerfile with the
engine flags from the sizing plan (the prompt cache is built with the flags the service uses, R2).
Large machine and disk as in the seed (``E2_HIGHCPU_32``; disk within the 1000 GB API maximum).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from math import ceil
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.limits import GIB

from stack.config import ValidatedStack

CLOUD_SDK = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
DOCKER = "gcr.io/cloud-builders/docker"
MIN_DISK_GB = 100


ENGINE_IMAGE_NAMES = {"llama.cpp": "llama-cpp", "ollama": "ollama", "vllm": "vllm"}
UPSTREAM_CACHE = {"llama.cpp": "ghcr", "ollama": "docker-hub"}


def image_tag(vs: ValidatedStack) -> str:
    """``<model>-<hash>``: the hash covers everything baked into the image, so a tag (immutable in our
    registry) is rebuilt exactly when the model or the engine flags change, and the stack can name it."""
    cfg = vs.config
    baked = {
        "model": vs.sizing.model,
        "quant": vs.sizing.weights_quant,
        "method": cfg.loading.method,
        "args": vs.sizing.engine_args,
        "env": vs.sizing.engine_env,
        "prompt_cache": cfg.engine.prompt_cache,
    }
    digest = hashlib.sha256(json.dumps(baked, sort_keys=True).encode()).hexdigest()[:10]
    return f"{tag_safe(vs.sizing.model)[:116]}-{digest}"


TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""Docker tag grammar (OCI distribution spec): at most 128 characters of [A-Za-z0-9_.-], not starting with . or -."""


def tag_safe(model: str) -> str:
    """A model name as a tag component: ``Qwen/Qwen2.5-7B`` → ``qwen-qwen2.5-7b`` (a ``/`` or space would
    make the tag invalid, and the build or the deploy would fail far from the model name)."""
    safe = re.sub(r"[^a-z0-9_.-]+", "-", model.lower()).strip(".-")
    return safe or "model"


def image_repository(vs: ValidatedStack) -> str:
    return ENGINE_IMAGE_NAMES[vs.config.engine.name]


def image_uri(vs: ValidatedStack) -> str:
    cfg = vs.config
    registry = f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}"
    return f"{registry}/{image_repository(vs)}:{image_tag(vs)}"


def cloudbuild_config(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}") -> dict[str, Any]:
    cfg = vs.config
    engine = cfg.engine.name
    bake = cfg.loading.method == "image"
    disk_gb = min(int(limits.CLOUD_BUILD_DISK_MAX_GB.value), max(MIN_DISK_GB, ceil(vs.sizing.weights_bytes * 4 / GIB)))
    steps: list[dict[str, Any]] = []
    if bake:
        prefix = cfg.model.object_prefix.strip("/")
        steps.append(
            {
                "id": "stage-model",
                "name": CLOUD_SDK,
                "entrypoint": "gcloud",
                "args": ["storage", "cp", "--recursive", f"gs://{bucket}/{prefix}/*", "container/model/"],
            }
        )
        steps.append(
            {"id": "pin-timestamps", "name": "bash", "args": ["-c", "find container/model -exec touch -h -d @0 {} +"]}
        )
        if engine == "ollama":
            steps.append(
                {
                    "id": "modelfile",
                    "name": "bash",
                    "args": [
                        "-c",
                        "printf 'FROM ./%s\\n' \"$(cd container/model && ls *.gguf | head -1)\" "
                        "> container/model/Modelfile",
                    ],
                }
            )
    build_args = {"WITH_GCLOUD": "1" if cfg.loading.method == "gcs-download" else "0"}
    cache = UPSTREAM_CACHE.get(engine)
    if cache in cfg.registry.remote_caches:  # pull the official image through our remote repository
        build_args["REGISTRY"] = f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}-{cache}"
    if engine == "llama.cpp":
        build_args["PROMPT_CACHE"] = "1" if cfg.engine.prompt_cache else "0"
        cpu_args = [a if a != "999" else "0" for a in vs.sizing.engine_args]  # build machine has no GPU
        build_args["ENGINE_ARGS"] = shlex.join(cpu_args)
    if engine == "ollama":
        build_args["MODEL_NAME"] = vs.sizing.engine_env["OLLAMA_MODEL"]
    docker_args = ["build", "-f", f"container/{engine}/Dockerfile", "-t", image_uri(vs)]
    for k, v in build_args.items():
        docker_args += ["--build-arg", f"{k}={v}"]
    docker_args.append("container")
    steps.append({"id": "build-image", "name": DOCKER, "args": docker_args, "env": ["DOCKER_BUILDKIT=1"]})
    return {
        "steps": steps,
        "images": [image_uri(vs)],
        "substitutions": {"_MODEL_BUCKET": "set-me"} if bucket == "${_MODEL_BUCKET}" else {},
        "options": {"machineType": limits.CLOUD_BUILD_MACHINE, "diskSizeGb": disk_gb, "logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "7200s",
    }
