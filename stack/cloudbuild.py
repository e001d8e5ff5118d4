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
from cloudrun_gpu.images import EngineImage, pinned_image
from cloudrun_gpu.limits import GIB

from stack.config import ValidatedStack

CLOUD_SDK = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
DOCKER = "gcr.io/cloud-builders/docker"
MIN_DISK_GB = 100


ENGINE_IMAGE_NAMES = {"llama.cpp": "llama-cpp", "ollama": "ollama", "vllm": "vllm"}
UPSTREAM_CACHE = {"llama.cpp": "docker-hub", "ollama": "docker-hub", "vllm": "docker-hub"}
"""The remote repository each engine's base images come through (llama.cpp: nvidia/cuda; vLLM on the RTX PRO
6000: vllm/vllm-openai; images already in Artifact Registry, like Google's DLC, are pulled directly)."""
MODEL_BUCKET = "_MODEL_BUCKET"
SUBSTITUTION = re.compile(r"\$(?:\{(_[A-Z0-9_]+)\}|(_[A-Z0-9_]+))")
"""A user-defined Cloud Build substitution in a step: ``${_NAME}`` or ``$_NAME`` (``$$`` is a literal ``$``)."""


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
        # The pinned engine build: a new pin is a new immutable tag (and so a new revision).
        "engine_build": pinned_image(cfg.engine.name, cfg.gpu.type).build_args if not cfg.engine.image else None,
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


def engine_image(vs: ValidatedStack) -> EngineImage:
    """The engine build pinned for the stack's GPU (raises ConfigError on ``engine.image`` if it cannot run)."""
    return pinned_image(vs.config.engine.name, vs.config.gpu.type)


def substitutions_used(config: dict[str, Any]) -> set[str]:
    """User-defined substitutions the steps and images reference (after ``$$`` escapes are removed)."""
    text = json.dumps([config.get("steps", []), config.get("images", [])]).replace("$$", "")
    return {a or b for a, b in SUBSTITUTION.findall(text)}


def cloudbuild_config(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}") -> dict[str, Any]:
    """The build that bakes the stack's serving image. Cloud Build's default ``substitutionOption`` is
    MUST_MATCH: a substitution defined but unused, or used but undefined, fails the build ("key ... in the
    substitution data is not matched in the template"). So ``substitutions`` holds exactly the ones the steps
    use: ``_MODEL_BUCKET`` only when the image method stages the model from the bucket.

    Sources: BuildOptions.SubstitutionOption, MUST_MATCH "Fails the build if error in substitutions checks, like
    missing a substitution in the template or in the map"; ALLOW_LOOSE is forced only for triggered builds
    (https://pub.dev/documentation/googleapis/latest/cloudbuild_v1/BuildOptions/substitutionOption.html);
    the error text as seen in ollionorg/gcp-landing-zone#40."""
    cfg = vs.config
    engine = cfg.engine.name
    bake = cfg.loading.method == "image"
    pin = engine_image(vs)
    disk_gb = min(int(limits.CLOUD_BUILD_DISK_MAX_GB.value), max(MIN_DISK_GB, ceil(vs.sizing.weights_bytes * 4 / GIB)))
    steps: list[dict[str, Any]] = []
    if bake:
        prefix = cfg.model.object_prefix.strip("/")
        # vLLM loads a directory: the prefix *is* the model directory, staged as container/model/<file>/ so
        # it lands at /models/<file>, the engine's --model path. llama.cpp/Ollama: the prefix holds the GGUF.
        target = f"container/model/{cfg.model.file}/" if engine == "vllm" else "container/model/"
        # rsync "copies to and updates objects at DESTINATION to match SOURCE" (the prefix's contents, nested
        # folders included): https://cloud.google.com/sdk/gcloud/reference/storage/rsync
        steps.append(
            {
                "id": "stage-model",
                "name": CLOUD_SDK,
                "entrypoint": "gcloud",
                "args": ["storage", "rsync", "--recursive", f"gs://{bucket}/{prefix}", target],
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
                    # $$ is Cloud Build's escape for a literal $ (a bare $ would be read as a substitution).
                    "args": [
                        "-c",
                        "printf 'FROM ./%s\\n' \"$$(cd container/model && ls *.gguf | head -1)\" "
                        "> container/model/Modelfile",
                    ],
                }
            )
    build_args = {"WITH_GCLOUD": "1" if cfg.loading.method == "gcs-download" else "0", **pin.build_args}
    cache = UPSTREAM_CACHE.get(engine)
    cache_uri = ""
    if cache in cfg.registry.remote_caches:  # pull the upstream image through our remote repository
        cache_uri = f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}-{cache}"
    if engine == "vllm":
        ref = pin.build_args["VLLM_IMAGE"]
        if "." not in ref.split("/")[0]:  # a Docker Hub image (vllm/vllm-openai): through the cache if any
            build_args["VLLM_IMAGE"] = f"{cache_uri or 'docker.io'}/{ref}"
    elif cache_uri:
        build_args["REGISTRY"] = cache_uri
    if engine == "llama.cpp":
        build_args["PROMPT_CACHE"] = "1" if cfg.engine.prompt_cache else "0"
        cpu_args = [a if a != "999" else "0" for a in vs.sizing.engine_args]  # build machine has no GPU
        build_args["ENGINE_ARGS"] = shlex.join(cpu_args)
    if engine == "ollama":
        build_args["MODEL_NAME"] = vs.sizing.engine_env["OLLAMA_MODEL"]
    docker_args = ["build", "-f", f"container/{engine}/Dockerfile", "-t", image_uri(vs)]
    for k, v in build_args.items():
        docker_args += ["--build-arg", f"{k}={v.replace('$', '$$')}"]
    docker_args.append("container")
    steps.append({"id": "build-image", "name": DOCKER, "args": docker_args, "env": ["DOCKER_BUILDKIT=1"]})
    config: dict[str, Any] = {
        "steps": steps,
        "images": [image_uri(vs)],
        "options": {"machineType": limits.CLOUD_BUILD_MACHINE, "diskSizeGb": disk_gb, "logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "7200s",
    }
    used = substitutions_used(config)
    if used:
        config["substitutions"] = {name: "set-me" for name in sorted(used)}
    return config


def submit_command(
    vs: ValidatedStack, config_path: str = "/tmp/cloudbuild.yaml", bucket: str = "<bucket>"
) -> list[str]:
    """The ``gcloud builds submit`` line for this stack: ``--substitutions`` only when the config uses one
    (MUST_MATCH rejects an unused one)."""
    cmd = ["gcloud", "builds", "submit", "--config", config_path]
    used = sorted(cloudbuild_config(vs).get("substitutions", {}))
    if used:
        cmd += ["--substitutions", ",".join(f"{k}={bucket}" if k == MODEL_BUCKET else f"{k}=" for k in used)]
    return [*cmd, "."]
