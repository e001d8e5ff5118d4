"""The stack's builds: the serving image (a thin layer over ``cloudrun_gpu.build.image``, which owns the typed
config, the tag and the upload hash) and the model staging into the bucket (L3, B4, B5).

What is the stack's own here: the build context is this repository's ``container/`` folder, the registry and its
remote caches come from the stack config, and ``python -m stack cloudbuild`` prints the config.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from math import ceil
from pathlib import Path
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.build import image as image_lib
from cloudrun_gpu.build.image import (
    CLOUD_SDK,
    DOCKER,
    MIN_DISK_GB,
    MODEL_BUCKET,
    context_files,
    context_hash,
    hash_files,
    substitutions_used,
    upload_files,
)
from cloudrun_gpu.engines import PROFILES, profile
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.images import EngineImage, pinned_image
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.settings import rename_fields

from stack.config import NS, PICKLE_GLOBS, ValidatedStack, local_source_files

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = ROOT / "container"
"""The build context: every file under it (but a staged model) is an input of the image."""


UPSTREAM_CACHE = {name: p.upstream_cache for name, p in PROFILES.items() if p.upstream_cache}
"""The remote repository each engine's base images come through (``EngineProfile.upstream_cache``; llama.cpp:
nvidia/cuda; vLLM on the RTX PRO 6000: vllm/vllm-openai; images already in Artifact Registry, like Google's DLC,
are pulled directly)."""


def bakes_engine_flags(vs: ValidatedStack) -> bool:
    return image_lib.bakes_engine_flags(vs.config.serving)


def image_tag(vs: ValidatedStack) -> str:
    """The library's tag (build inputs only, ``cloudrun_gpu.build.image.image_tag``) over this repository's
    ``container/`` context."""
    return image_lib.image_tag(vs.config.serving, vs.plan, container_hash())


def image_repository(vs: ValidatedStack) -> str:
    return profile(vs.config.engine.name).image_repository


def registry_path(vs: ValidatedStack) -> str:
    cfg = vs.config
    return f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}"


def image_uri(vs: ValidatedStack) -> str:
    return image_lib.image_uri(registry_path(vs), vs.config.serving, image_tag(vs))


def engine_image(vs: ValidatedStack) -> EngineImage:
    """The engine build pinned for the stack's GPU (raises ConfigError on ``engine.image`` if it cannot run)."""
    return pinned_image(vs.config.engine.name, vs.config.gpu.type)


def upstream_cache_uri(vs: ValidatedStack) -> str:
    """The registry's remote repository the engine's base images come through, or ``""``."""
    cfg = vs.config
    cache = profile(cfg.engine.name).upstream_cache
    if cache not in cfg.registry.remote_caches:
        return ""
    return f"{registry_path(vs)}-{cache}"


def image_build_config(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}") -> image_lib.BuildConfig:
    """The build that bakes the stack's serving image, typed (``cloudrun_gpu.build.image.image_build_config``)."""
    engine_image(vs)  # the pin must run on the GPU (ConfigError on engine.image otherwise)
    return image_lib.image_build_config(
        vs.config.serving, vs.plan, image=image_uri(vs), upstream_cache=upstream_cache_uri(vs), bucket=bucket
    )


def cloudbuild_config(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}") -> dict[str, Any]:
    """:func:`image_build_config` as ``gcloud builds submit --config`` reads it."""
    return image_build_config(vs, bucket).to_dict()


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


# --- What the image build uploads ---------------------------------------------------------------------


def container_files(container: Path | None = None) -> list[str]:
    """The files the image build uploads, relative to the project root (``container/…``), sorted
    (``cloudrun_gpu.build.image.context_files``)."""
    return context_files(container or CONTAINER)


def container_hash(container: Path | None = None) -> str:
    """The hash of what the image build uploads (``cloudrun_gpu.build.image.context_hash``)."""
    return context_hash(container or CONTAINER)


# --- Staging the model into the bucket ----------------------------------------------------------------

HF_HUB = "huggingface_hub==0.36.0"
"""The Hub client the staging build installs (its ``hf download`` flags: ``--revision``, ``--include`` and
``--exclude`` taking several globs, ``--local-dir``; the token from ``HF_TOKEN``: huggingface_hub 0.36.0
``cli/download.py`` and ``utils/_auth.py``)."""
PYTHON_IMAGE = "python:3.12-slim"
STATE_DIR = ".cloudrun-gpu"
"""Bucket folder for the stack's own objects (build source archives, staging markers), outside any model."""
PICKLE_REGEX = r".*\.(bin|pt|pth|pkl|ckpt)\Z"
r"""``gcloud storage rsync --exclude`` takes Python regexes; ``\Z`` instead of ``$``, which Cloud Build would read
as a substitution."""
HF_TOKEN_ENV = "HF_TOKEN"


def staging_needed(vs: ValidatedStack) -> bool:
    """True when ``pulumi up`` copies the model into the bucket: a source is set and the service reads the
    bucket (gcs-fuse, gcs-download) or the image bakes from it (image method, unless ``engine.image`` is yours)."""
    cfg = vs.config
    if not cfg.model.source or cfg.loading.method == "internet":
        return False
    return not (cfg.loading.method == "image" and cfg.engine.image)


def image_build_needed(vs: ValidatedStack) -> bool:
    return not vs.config.engine.image


def hub_secret_id(vs: ValidatedStack) -> str:
    return f"{vs.config.service.name}-hf-token"


def source_staging_dir(bucket: str) -> str:
    return f"gs://{bucket}/{STATE_DIR}/source"


def staging_marker(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}", *, in_step: bool = False) -> str:
    """The object whose content is the trigger of the last staging. ``in_step``: as a bash word in a Cloud Build
    step, the user's folder shell-quoted and its ``$`` escaped for Cloud Build (a ``$`` or a space in
    ``model.object_prefix`` would otherwise mark another object than the one the stack reads)."""
    prefix = vs.config.model.object_prefix.strip("/")
    return f"gs://{bucket}/{STATE_DIR}/staged/{image_lib.literal(shlex.quote(prefix)) if in_step else prefix}"


def _docker_hub(vs: ValidatedStack, ref: str) -> str:
    """A Docker Hub image through the registry's remote cache when there is one (``library/`` for official
    images), else from Docker Hub."""
    cfg = vs.config
    if "docker-hub" not in cfg.registry.remote_caches:
        return ref
    path = ref if "/" in ref.split(":")[0] else f"library/{ref}"
    return f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}-docker-hub/{path}"


def local_source(vs: ValidatedStack, base_dir: Path) -> tuple[str, list[str], list[tuple[str, int, str]]]:
    """A local ``model.source``: the folder to upload from (as written), the chosen files relative to it, and
    each file's (name, size, SHA-256 of its content) for the trigger. Pickle files are never chosen. No
    modification times (issue 19): a fresh clone or a copy restages nothing when the bytes are the same. The
    path and the choice are :func:`stack.config.local_source_files`, which the validation pass already ran."""
    try:
        root, base, names = local_source_files(vs.config, base_dir)
    except ConfigError as exc:
        raise rename_fields([exc], {}, NS) from None
    stats = [(n, (base / n).stat().st_size, _file_sha256(base / n)) for n in names]
    return root, names, stats


def _file_sha256(path: Path) -> str:
    """A file's SHA-256, read in 1 MiB blocks (model files are GBs)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def staging_trigger(vs: ValidatedStack, *, token: bool, local_stats: list[tuple[str, int, str]] | None = None) -> str:
    """Changes exactly when the staged objects would: the pinned source and file choice (a local source's file
    names, sizes and contents), and the layout (engine, method, prefix, the engine's file name)."""
    cfg = vs.config
    what = {
        "source": cfg.model.source,
        "files": cfg.model.files,
        "local": local_stats,
        "engine": cfg.engine.name,
        "method": cfg.loading.method,
        "prefix": cfg.model.object_prefix.strip("/"),
        "file": cfg.model.file,
        "token": token,
        "hub": HF_HUB,
        "ollama": pinned_image("ollama", cfg.gpu.type).reference if cfg.engine.name == "ollama" else None,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def staging_config(vs: ValidatedStack, *, token: bool, trigger: str) -> dict[str, Any]:
    """The Cloud Build job that puts the model into ``gs://${_MODEL_BUCKET}/<object_prefix>/`` in the layout
    docs/deploy.md documents: llama.cpp and Ollama's image method the single GGUF (llama.cpp's renamed to
    ``model.file``), vLLM the model directory itself, Ollama + gcs-fuse an Ollama store (``manifests/``,
    ``blobs/``) made by ``ollama create``. Last it writes ``trigger`` to the staging marker, so an unchanged
    staging is skipped. A hub token is read through ``availableSecrets`` into the fetch step's environment only."""
    cfg = vs.config
    model = cfg.model
    src = model.model_source()
    assert src is not None, "staging_config needs model.source"
    prefix = model.object_prefix.strip("/")
    work = "/workspace/model"
    steps: list[dict[str, Any]] = []
    if src.kind == "hf":
        words = ["hf", "download", src.location, "--revision", str(src.revision)]
        if model.files:
            words += ["--include", *model.files]
        words += ["--exclude", *PICKLE_GLOBS, "--local-dir", work]
        script = f"pip install --quiet --no-cache-dir {HF_HUB} && {shlex.join(words)}"
        fetch: dict[str, Any] = {
            "id": "fetch",
            "name": _docker_hub(vs, PYTHON_IMAGE),
            "entrypoint": "bash",
            "args": ["-c", image_lib.literal(script)],
            "env": ["HF_HUB_DISABLE_TELEMETRY=1"],
        }
        if token:
            fetch["secretEnv"] = [HF_TOKEN_ENV]
        steps.append(fetch)
    elif src.kind == "gs":
        if model.files:
            words = ["gcloud", "storage", "cp", *(f"{src.location}/{p}" for p in model.files), f"{work}/"]
        else:
            words = ["gcloud", "storage", "rsync", "--recursive", f"--exclude={PICKLE_REGEX}", src.location, work]
        steps.append(
            {
                "id": "fetch",
                "name": CLOUD_SDK,
                "entrypoint": "bash",
                "args": ["-c", image_lib.literal(f"mkdir -p {work} && {shlex.join(words)}")],
            }
        )
    # local: the files were uploaded as the build source, under model/ (= /workspace/model).
    upload_dir = work
    if cfg.engine.name in ("llama.cpp", "ollama"):
        target = shlex.quote(model.file) if cfg.engine.name == "llama.cpp" else '"$(basename "$f")"'
        check = (
            f"cd {work} && n=$(find . -name '*.gguf' | wc -l) && "
            'if [ "$n" -ne 1 ]; then echo "model.files must choose exactly one .gguf file; the source gave $n" >&2; '
            "exit 1; fi && f=$(find . -name '*.gguf') && "
            f't={target} && if [ "$f" != "./$t" ]; then mv "$f" "$t"; fi'
        )
        steps.append({"id": "one-gguf", "name": "bash", "args": ["-c", image_lib.literal(check)]})
    if cfg.engine.name == "vllm":
        check = (
            f"test -f {work}/config.json || {{ echo 'the model directory has no config.json: choose the "
            "model folder (config.json, *.safetensors, tokenizer files) with model.source/model.files' >&2; exit 1; }"
        )
        steps.append({"id": "model-directory", "name": "bash", "args": ["-c", image_lib.literal(check)]})
    if cfg.engine.name == "ollama" and cfg.loading.method == "gcs-fuse":
        store = "/workspace/store"
        create = (
            "ollama serve >/tmp/ollama.log 2>&1 & "
            "for i in $(seq 120); do ollama list >/dev/null 2>&1 && break; sleep 1; done; "
            f"cd {work} && printf 'FROM ./%s\\n' \"$(ls *.gguf)\" > Modelfile && "
            f"ollama create {shlex.quote(model.file)} -f Modelfile"
        )
        steps.append(
            {
                "id": "ollama-create",
                "name": _docker_hub(vs, pinned_image("ollama", cfg.gpu.type).reference),
                "entrypoint": "bash",
                "env": [f"OLLAMA_MODELS={store}"],
                "args": ["-c", image_lib.literal(create)],
            }
        )
        upload_dir = store
    steps.append(
        {
            "id": "upload",
            "name": CLOUD_SDK,
            "entrypoint": "gcloud",
            # The prefix belongs to the stack: objects of an earlier model there are removed.
            "args": [
                *("storage", "rsync", "--recursive", "--delete-unmatched-destination-objects"),
                "--exclude=^\\.cache/",  # huggingface_hub's download metadata (<local-dir>/.cache/huggingface)
                upload_dir,
                # The user's folder taken literally (a `$` in it is not a substitution).
                f"gs://${{{MODEL_BUCKET}}}/{image_lib.literal(prefix)}",
            ],
        }
    )
    steps.append(
        {
            "id": "mark-staged",
            "name": CLOUD_SDK,
            "entrypoint": "bash",
            "args": ["-c", f"printf '%s' {trigger} | gcloud storage cp - {staging_marker(vs, in_step=True)}"],
        }
    )
    disk_gb = min(int(limits.CLOUD_BUILD_DISK_MAX_GB.value), max(MIN_DISK_GB, ceil(vs.sizing.weights_bytes * 4 / GIB)))
    config: dict[str, Any] = {
        "steps": steps,
        # A user-specified build account: logs in Cloud Logging only (see cloudrun_gpu.build).
        "options": {"machineType": limits.CLOUD_BUILD_MACHINE, "diskSizeGb": disk_gb, "logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "7200s",
        "substitutions": {name: "set-me" for name in sorted(substitutions_used({"steps": steps}))},
    }
    if token:
        config["availableSecrets"] = {
            "secretManager": [
                {
                    "versionName": f"projects/{cfg.project}/secrets/{hub_secret_id(vs)}/versions/latest",
                    "env": HF_TOKEN_ENV,
                }
            ]
        }
    return config


# --- The response cache's image (S1) -------------------------------------------------------------------

CACHE_CONTEXT = CONTAINER / "cache"
"""The cache service's build context (its own Dockerfile; no engine image copies it)."""
CACHE_IMAGE_NAME = "llm-cache"
CACHE_PYTHON_IMAGE = "python:3.11.13-slim-bookworm"
"""The Dockerfile's default ``PYTHON_IMAGE`` (tests/test_cache_stack.py keeps the two equal)."""


def cache_files(context: Path | None = None) -> list[str]:
    """What the cache build uploads, relative to the project root, sorted (its docs and caches left out)."""
    base = context or CACHE_CONTEXT
    return upload_files(base, base.parent.parent)


def cache_image_uri(vs: ValidatedStack, context: Path | None = None) -> str:
    """``<registry>/llm-cache:<hash>``: the hash covers every uploaded file (path, mode, content) and the base
    image, so an edit of the cache is a new immutable tag, and only the cache's revision changes."""
    base = context or CACHE_CONTEXT
    digest = hash_files(base.parent.parent, cache_files(base), seed=_cache_base(vs).encode())
    cfg = vs.config
    return f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}/{CACHE_IMAGE_NAME}:{digest[:12]}"


def _cache_base(vs: ValidatedStack) -> str:
    """The Python base, from Docker Hub directly: Cloud Build's default pool reaches the internet, and the
    base's pin sits in the Dockerfile (unlike the engines' GPU bases, it is small and pulled once per build)."""
    return f"docker.io/library/{CACHE_PYTHON_IMAGE}"


def cache_build_config(vs: ValidatedStack) -> image_lib.BuildConfig:
    """The build of the cache's CPU image: ``docker build`` of ``container/cache`` and a push. No substitutions
    (MUST_MATCH: none used, none defined); the default machine is enough for a pip install."""
    uri = cache_image_uri(vs)
    args = ["build", "-f", "container/cache/Dockerfile", "-t", uri]
    args += ["--build-arg", f"PYTHON_IMAGE={_cache_base(vs)}", "container/cache"]
    step = image_lib.BuildStep("build-cache-image", DOCKER, args, env=["DOCKER_BUILDKIT=1"])
    return image_lib.BuildConfig(steps=[step], images=[uri], timeout_s=1800)
