"""Generate the Cloud Build config that bakes a serving image from a stack's config (L3, B4, B5).

Steps: stage the model from our bucket into ``container/model`` (image method only), pin every
file's timestamp so the model layer is byte-identical across builds (one copy in Artifact
Registry, L3), write Ollama's Modelfile, then ``docker build`` the engine's Dockerfile with the
engine flags from the sizing plan (the prompt cache is built with the flags the service uses, R2).
Large machine and disk as in the seed (``E2_HIGHCPU_32``; disk within the 1000 GB API maximum).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Callable
from math import ceil
from pathlib import Path, PurePosixPath
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.engines import PROFILES, profile
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.images import EngineImage, pinned_image
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.loading import ollama_model_parameters

from stack.config import ValidatedStack

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = ROOT / "container"
"""The build context: every file under it (but a staged model) is an input of the image."""
CLOUD_SDK = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
DOCKER = "gcr.io/cloud-builders/docker"
MIN_DISK_GB = 100


UPSTREAM_CACHE = {name: p.upstream_cache for name, p in PROFILES.items() if p.upstream_cache}
"""The remote repository each engine's base images come through (``EngineProfile.upstream_cache``; llama.cpp:
nvidia/cuda; vLLM on the RTX PRO 6000: vllm/vllm-openai; images already in Artifact Registry, like Google's DLC,
are pulled directly)."""
MODEL_BUCKET = "_MODEL_BUCKET"
SUBSTITUTION = re.compile(r"\$(?:\{(_[A-Z0-9_]+)\}|(_[A-Z0-9_]+))")
"""A user-defined Cloud Build substitution in a step: ``${_NAME}`` or ``$_NAME`` (``$$`` is a literal ``$``)."""


def bakes_engine_flags(vs: ValidatedStack) -> bool:
    """Whether the build runs the engine with its serving flags: only llama.cpp's prompt-cache stage does
    (``container/llama.cpp/Dockerfile``: ``ENGINE_ARGS`` is read only when ``PROMPT_CACHE=1``; R2: the cache must
    be built with the flags the service uses). Otherwise the flags are run-time settings of the revision."""
    return vs.config.engine.name == "llama.cpp" and vs.config.engine.prompt_cache


def image_tag(vs: ValidatedStack) -> str:
    """``<model>-<hash>``: the hash covers the build's inputs only (container files, the pinned base images, the
    model reference and, only when the prompt cache bakes them, the engine flags), so a tag (immutable in our
    registry) is rebuilt exactly when what the image holds changes. Run-time settings (``engine.max_parallel``,
    ``context_length``, the flags they render) change the revision, never the image (issue 19 item 4)."""
    cfg = vs.config
    baked = {
        "model": vs.sizing.model,
        "quant": vs.sizing.weights_quant,
        "method": cfg.loading.method,
        # The model reference the build bakes or names (the staged folder, Ollama's store tag).
        "file": cfg.model.file,
        "object_prefix": cfg.model.object_prefix if cfg.loading.method == "image" else None,
        # The flags only where the build runs the engine with them (the llama.cpp prompt cache).
        "args": vs.sizing.engine_args if bakes_engine_flags(vs) else None,
        "prompt_cache": cfg.engine.prompt_cache,
        # The pinned engine build: a new pin is a new immutable tag (and so a new revision).
        "engine_build": pinned_image(cfg.engine.name, cfg.gpu.type).build_args if not cfg.engine.image else None,
        # What the build uploads: a changed Dockerfile, entrypoint or script is a new image (issue 10).
        "container": container_hash(),
        # The weights baked by the image method: a new pinned source (or file choice) is a new image.
        "source": [cfg.model.source, cfg.model.files] if cfg.loading.method == "image" else None,
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
    return profile(vs.config.engine.name).image_repository


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
            # The model's own runner options (R7: ``use_mmap false`` for a baked-in image): written into the
            # Modelfile, not sent per request, or Ollama would reload the model (loading.ollama_model_parameters).
            params = "".join(f"PARAMETER {k} {v}\\n" for k, v in ollama_model_parameters(cfg.loading.method).items())
            steps.append(
                {
                    "id": "modelfile",
                    "name": "bash",
                    # $$ is Cloud Build's escape for a literal $ (a bare $ would be read as a substitution).
                    "args": [
                        "-c",
                        f"printf 'FROM ./%s\\n{params}' \"$$(cd container/model && ls *.gguf | head -1)\" "
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
    if bakes_engine_flags(vs):  # only then is the build config (and so the build) a function of the flags
        cpu_args = [a if a != "999" else "0" for a in vs.sizing.engine_args]  # build machine has no GPU
        build_args["ENGINE_ARGS"] = shlex.join(cpu_args)
    if engine == "ollama":
        build_args["MODEL_NAME"] = cfg.model.file  # the store's tag (OLLAMA_MODEL, engines/ollama.py)
    docker_args = ["build", "-f", f"container/{profile(engine).dockerfile}", "-t", image_uri(vs)]
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


# --- What the image build uploads ---------------------------------------------------------------------


def upload_files(base: Path, root: Path, skip: Callable[[PurePosixPath], bool] | None = None) -> list[str]:
    """The files a build uploads from ``base``, relative to ``root``, sorted: every file but Python caches,
    documentation (``*.md``) and what ``skip`` (given the path relative to ``base``) leaves out."""
    out = []
    for path in base.rglob("*"):
        rel = PurePosixPath(path.relative_to(base).as_posix())
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".md"):
            continue
        if skip is None or not skip(rel):
            out.append(path.relative_to(root).as_posix())
    return sorted(out)


def hash_files(root: Path, files: list[str], seed: bytes = b"") -> str:
    """SHA-256 over ``seed`` and each file's path, executable bit and content: changes exactly when the upload
    (or the seed) does."""
    h = hashlib.sha256(seed)
    for rel in files:
        path = root / rel
        h.update(f"{rel}\0{path.stat().st_mode & 0o111:o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def container_files(container: Path | None = None) -> list[str]:
    """The files the image build uploads, relative to the project root (``container/…``), sorted: everything
    under ``container/`` except caches, documentation (``*.md``) and whatever sits in ``container/model/``
    (the build stages the model there itself from the bucket; only ``.keep`` keeps the folder) and
    ``container/cache/``, the response cache's own image (S1), which no engine Dockerfile copies: changing the
    cache must not rebuild, retag and redeploy the GPU image."""
    base = container or CONTAINER

    def skip(rel: PurePosixPath) -> bool:
        return (rel.parts[0] == "model" and rel.as_posix() != "model/.keep") or rel.parts[0] == "cache"

    return upload_files(base, base.parent, skip)


def container_hash(container: Path | None = None) -> str:
    """The hash of what the image build uploads (:func:`hash_files` over :func:`container_files`)."""
    base = container or CONTAINER
    return hash_files(base.parent, container_files(base))


# --- Staging the model into the bucket ----------------------------------------------------------------

HF_HUB = "huggingface_hub==0.36.0"
"""The Hub client the staging build installs (its ``hf download`` flags: ``--revision``, ``--include`` and
``--exclude`` taking several globs, ``--local-dir``; the token from ``HF_TOKEN``: huggingface_hub 0.36.0
``cli/download.py`` and ``utils/_auth.py``)."""
PYTHON_IMAGE = "python:3.12-slim"
STATE_DIR = ".cloudrun-gpu"
"""Bucket folder for the stack's own objects (build source archives, staging markers), outside any model."""
PICKLE_GLOBS = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt"]
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


def staging_marker(vs: ValidatedStack, bucket: str = "${_MODEL_BUCKET}") -> str:
    return f"gs://{bucket}/{STATE_DIR}/staged/{vs.config.model.object_prefix.strip('/')}"


def _docker_hub(vs: ValidatedStack, ref: str) -> str:
    """A Docker Hub image through the registry's remote cache when there is one (``library/`` for official
    images), else from Docker Hub."""
    cfg = vs.config
    if "docker-hub" not in cfg.registry.remote_caches:
        return ref
    path = ref if "/" in ref.split(":")[0] else f"library/{ref}"
    return f"{cfg.region}-docker.pkg.dev/{cfg.project}/{cfg.registry.repository_id}-docker-hub/{path}"


def local_source(vs: ValidatedStack, base_dir: Path) -> tuple[str, list[str], list[tuple[str, int, int]]]:
    """A local ``model.source``: the folder to upload from (as written), the chosen files relative to it, and
    each file's (name, size, mtime) for the trigger. Pickle files are never chosen."""
    cfg = vs.config
    written = str(cfg.model.source)
    path = Path(written) if Path(written).is_absolute() else base_dir / written
    if path.is_file():
        root, names = str(PurePosixPath(written).parent), [path.name]
    elif path.is_dir():
        root = written
        names = sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if cfg.model.files:
            names = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in cfg.model.files)]
    else:
        raise ConfigError(
            "cloudrun-gpu:model.source",
            written,
            "does not exist here",
            "give a file or folder path relative to the project",
        )
    names = [n for n in names if not n.lower().endswith(tuple(g[1:] for g in PICKLE_GLOBS))]
    if not names:
        raise ConfigError(
            "cloudrun-gpu:model.files", cfg.model.files, f"chooses no file in {written}", "fix the patterns or the path"
        )
    base = path if path.is_dir() else path.parent
    stats = [(n, (base / n).stat().st_size, (base / n).stat().st_mtime_ns) for n in names]
    return root, names, stats


def staging_trigger(vs: ValidatedStack, *, token: bool, local_stats: list[tuple[str, int, int]] | None = None) -> str:
    """Changes exactly when the staged objects would: the pinned source and file choice (a local source's file
    names, sizes and times), and the layout (engine, method, prefix, the engine's file name)."""
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


def _sh(text: str) -> str:
    """A bash script as a Cloud Build arg: every ``$`` escaped (Cloud Build reads ``$X`` as a substitution)."""
    return text.replace("$", "$$")


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
            "args": ["-c", _sh(script)],
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
                "args": ["-c", _sh(f"mkdir -p {work} && {shlex.join(words)}")],
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
        steps.append({"id": "one-gguf", "name": "bash", "args": ["-c", _sh(check)]})
    if cfg.engine.name == "vllm":
        check = (
            f"test -f {work}/config.json || {{ echo 'the model directory has no config.json: choose the "
            "model folder (config.json, *.safetensors, tokenizer files) with model.source/model.files' >&2; exit 1; }"
        )
        steps.append({"id": "model-directory", "name": "bash", "args": ["-c", _sh(check)]})
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
                "args": ["-c", _sh(create)],
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
                f"gs://${{{MODEL_BUCKET}}}/{prefix}",
            ],
        }
    )
    steps.append(
        {
            "id": "mark-staged",
            "name": CLOUD_SDK,
            "entrypoint": "bash",
            "args": ["-c", f"printf '%s' {trigger} | gcloud storage cp - {staging_marker(vs)}"],
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


def cache_build_config(vs: ValidatedStack) -> dict[str, Any]:
    """The build of the cache's CPU image: ``docker build`` of ``container/cache`` and a push. No substitutions
    (MUST_MATCH: none used, none defined); the default machine is enough for a pip install."""
    uri = cache_image_uri(vs)
    args = ["build", "-f", "container/cache/Dockerfile", "-t", uri]
    args += ["--build-arg", f"PYTHON_IMAGE={_cache_base(vs)}", "container/cache"]
    return {
        "steps": [{"id": "build-cache-image", "name": DOCKER, "args": args, "env": ["DOCKER_BUILDKIT=1"]}],
        "images": [uri],
        "options": {"logging": "CLOUD_LOGGING_ONLY"},
        "timeout": "1800s",
    }
