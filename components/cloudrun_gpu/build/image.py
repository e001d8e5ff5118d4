"""The serving image's Cloud Build config, typed, built from the serving bundle and its plan (issue 18).

A stack that imports the library gets its image from here: :func:`image_build_config` turns a
:class:`~cloudrun_gpu.service.plan.ServingSettings` and its :class:`~cloudrun_gpu.service.plan.ServicePlan` into a
:class:`BuildConfig` (``to_dict()`` is what ``gcloud builds submit --config`` reads), and :func:`image_tag` names
the image after its build inputs only. The Dockerfiles are not package data: the build context (the repository's
``container/`` folder, or a stack's own copy) is passed explicitly as ``context_dir``, and each engine's Dockerfile
path inside it comes from its profile (``cloudrun_gpu.engines``).

Steps: stage the model from the bucket into ``<context>/model`` (image method only), pin every file's timestamp so
the model layer is byte-identical across builds (one copy in Artifact Registry, L3), the engine's own baking steps
(Ollama's Modelfile), then ``docker build`` the engine's Dockerfile with the pinned base image's build args. Large
machine and disk as in the seed (``E2_HIGHCPU_32``; disk within the 1000 GB API maximum).

Cloud Build's default ``substitutionOption`` is MUST_MATCH: a substitution defined but unused, or used but
undefined, fails the build ("key ... in the substitution data is not matched in the template"). So
``substitutions`` holds exactly the ones the steps use (BuildOptions.SubstitutionOption, MUST_MATCH "Fails the
build if error in substitutions checks, like missing a substitution in the template or in the map";
https://pub.dev/documentation/googleapis/latest/cloudbuild_v1/BuildOptions/substitutionOption.html; the error text
as seen in ollionorg/gcp-landing-zone#40).
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path, PurePosixPath
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.engines import profile
from cloudrun_gpu.images import pinned_image
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.service.plan import ServicePlan, ServingSettings

CLOUD_SDK = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
DOCKER = "gcr.io/cloud-builders/docker"
MIN_DISK_GB = 100
MODEL_BUCKET = "_MODEL_BUCKET"
SUBSTITUTION = re.compile(r"\$(?:\{(_[A-Z0-9_]+)\}|(_[A-Z0-9_]+))")
"""A user-defined Cloud Build substitution in a step: ``${_NAME}`` or ``$_NAME`` (``$$`` is a literal ``$``)."""
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""Docker tag grammar (OCI distribution spec): at most 128 characters of [A-Za-z0-9_.-], not starting with . or -."""


@dataclass(frozen=True)
class BuildStep:
    """One Cloud Build step (``steps[]``: ``id``, ``name`` the builder image, ``entrypoint``, ``args``, ``env``)."""

    id: str
    """The step's id (unique in the build)."""
    name: str
    """The builder image the step runs in."""
    args: list[str]
    """Arguments to the builder's entrypoint (``$$`` for a literal ``$``)."""
    entrypoint: str | None = None
    """The builder's entrypoint, when not its default."""
    env: list[str] = field(default_factory=list)
    """``NAME=value`` environment entries of the step."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.entrypoint is not None:
            out["entrypoint"] = self.entrypoint
        out["args"] = list(self.args)
        if self.env:
            out["env"] = list(self.env)
        return out


@dataclass(frozen=True)
class BuildConfig:
    """A Cloud Build config that pushes ``images``; :meth:`to_dict` adds exactly the substitutions it uses."""

    steps: list[BuildStep]
    """The build steps, in order."""
    images: list[str]
    """The images the build pushes when it succeeds."""
    disk_gb: int | None = None
    """``options.diskSizeGb``: room for the model layer and the engine image (None: Cloud Build's default)."""
    machine_type: str | None = None
    """``options.machineType`` (None: Cloud Build's default machine)."""
    logging: str = "CLOUD_LOGGING_ONLY"
    """A user-specified build identity must log to Cloud Logging or a user bucket (``cloudrun_gpu.build``)."""
    timeout_s: int = 7200
    """The build's timeout in seconds."""

    @staticmethod
    def of(value: "BuildConfig | dict[str, Any]") -> "BuildConfig":
        """``value`` itself, or the config another Pulumi language passed as a plain bag of these fields."""
        if isinstance(value, BuildConfig):
            return value
        steps = [s if isinstance(s, BuildStep) else BuildStep(**s) for s in value.get("steps", [])]
        return BuildConfig(**{**value, "steps": steps})

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "steps": [s.to_dict() for s in self.steps],
            "images": list(self.images),
            "options": {
                **({"machineType": self.machine_type} if self.machine_type is not None else {}),
                **({"diskSizeGb": self.disk_gb} if self.disk_gb is not None else {}),
                "logging": self.logging,
            },
            "timeout": f"{self.timeout_s}s",
        }
        used = substitutions_used(config)
        if used:
            config["substitutions"] = {name: "set-me" for name in sorted(used)}
        return config


def literal(text: str) -> str:
    """``text`` as literal text in a Cloud Build step: every ``$`` doubled (``$$`` is Cloud Build's literal ``$``;
    a bare ``$_NAME`` or ``${_NAME}`` is read as a user substitution, and one the build is not given takes the
    config's default: https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values). User text
    (a bucket folder, a file name, a build arg) goes through it, so the only user substitution a config of ours
    uses is the one its template writes, ``${_MODEL_BUCKET}``."""
    return text.replace("$", "$$")


def substitutions_used(config: dict[str, Any]) -> set[str]:
    """User-defined substitutions the steps and images reference (after ``$$`` escapes are removed)."""
    text = json.dumps([config.get("steps", []), config.get("images", [])]).replace("$$", "")
    return {a or b for a, b in SUBSTITUTION.findall(text)}


# --- what the build uploads, and its hash ------------------------------------------------------------------


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
    """SHA-256 over ``seed`` and each file's path and content: changes exactly when the upload (or the seed) does.
    No mode bits (issue 19): a fresh clone or ``core.fileMode=false`` must not rebuild; the Dockerfiles set the
    modes the image needs themselves (``COPY --chmod``), so the uploaded files' modes never reach the image."""
    h = hashlib.sha256(seed)
    for rel in files:
        path = root / rel
        h.update(f"{rel}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def context_files(context_dir: Path) -> list[str]:
    """The files the image build uploads, relative to the context's parent (``container/…``), sorted: everything
    under the context except caches, documentation (``*.md``) and whatever sits in ``model/`` (the build stages
    the model there itself from the bucket; only ``.keep`` keeps the folder) and ``cache/``, the response cache's
    own image (S1), which no engine Dockerfile copies: changing the cache must not rebuild the GPU image."""

    def skip(rel: PurePosixPath) -> bool:
        return (rel.parts[0] == "model" and rel.as_posix() != "model/.keep") or rel.parts[0] == "cache"

    return upload_files(context_dir, context_dir.parent, skip)


def context_hash(context_dir: Path) -> str:
    """The hash of what the image build uploads (:func:`hash_files` over :func:`context_files`)."""
    return hash_files(context_dir.parent, context_files(context_dir))


# --- the image's name -------------------------------------------------------------------------------------


def tag_safe(model: str) -> str:
    """A model name as a tag component: ``Qwen/Qwen2.5-7B`` → ``qwen-qwen2.5-7b`` (a ``/`` or space would
    make the tag invalid, and the build or the deploy would fail far from the model name)."""
    safe = re.sub(r"[^a-z0-9_.-]+", "-", model.lower()).strip(".-")
    return safe or "model"


def bakes_engine_flags(serving: ServingSettings) -> bool:
    """Whether the build runs the engine with its serving flags: only llama.cpp's prompt-cache stage does
    (``container/llama.cpp/Dockerfile``: ``ENGINE_ARGS`` is read only when ``PROMPT_CACHE=1``; R2: the cache must
    be built with the flags the service uses). Otherwise the flags are run-time settings of the revision."""
    return serving.engine.name == "llama.cpp" and serving.engine.prompt_cache


def image_tag(serving: ServingSettings, plan: ServicePlan, context_digest: str) -> str:
    """``<model>-<hash>``: the hash covers the build's inputs only (the context's files, the pinned base images,
    the model reference and, only when the prompt cache bakes them, the engine flags), so a tag (immutable in our
    registry) is rebuilt exactly when what the image holds changes. Run-time settings (``engine.max_parallel``,
    ``context_length``, the flags they render) change the revision, never the image (issue 19 item 4)."""
    model, engine, method = serving.model, serving.engine, serving.loading.method
    baked = {
        "model": plan.sizing.model,
        "quant": plan.sizing.weights_quant,
        "method": method,
        # The model reference the build bakes or names (the staged folder, Ollama's store tag).
        "file": model.file,
        "object_prefix": model.object_prefix if method == "image" else None,
        # The flags only where the build runs the engine with them (the llama.cpp prompt cache).
        "args": plan.sizing.engine_args if bakes_engine_flags(serving) else None,
        "prompt_cache": engine.prompt_cache,
        # The pinned engine build: a new pin is a new immutable tag (and so a new revision).
        "engine_build": pinned_image(engine.name, serving.gpu.type).build_args if not engine.image else None,
        # What the build uploads: a changed Dockerfile, entrypoint or script is a new image (issue 10).
        "container": context_digest,
        # The weights baked by the image method: a new pinned source (or file choice) is a new image.
        "source": [model.source, model.files] if method == "image" else None,
    }
    digest = hashlib.sha256(json.dumps(baked, sort_keys=True).encode()).hexdigest()[:10]
    return f"{tag_safe(plan.sizing.model)[:116]}-{digest}"


def image_uri(registry: str, serving: ServingSettings, tag: str) -> str:
    """``<registry>/<engine image name>:<tag>``; ``registry`` is ``<region>-docker.pkg.dev/<project>/<repo>``."""
    return f"{registry}/{profile(serving.engine.name).image_repository}:{tag}"


# --- the config ------------------------------------------------------------------------------------------


def image_build_config(
    serving: ServingSettings,
    plan: ServicePlan,
    *,
    image: str,
    upstream_cache: str = "",
    bucket: str = "${_MODEL_BUCKET}",
    context: str = "container",
) -> BuildConfig:
    """The build that bakes the serving image ``image``. ``upstream_cache`` is the registry path of the remote
    repository the engine's base images come through (``""``: pulled directly); ``context`` is the build
    context's path in the uploaded source (the folder :func:`context_files` lists)."""
    engine = profile(serving.engine.name)
    pin = pinned_image(serving.engine.name, serving.gpu.type)
    method = serving.loading.method
    disk_gb = min(
        int(limits.CLOUD_BUILD_DISK_MAX_GB.value), max(MIN_DISK_GB, ceil(plan.sizing.weights_bytes * 4 / GIB))
    )
    steps: list[BuildStep] = []
    if method == "image":
        prefix = serving.model.object_prefix.strip("/")
        # A directory model (vLLM): the prefix *is* the model directory, staged as model/<file>/ so it lands at
        # /models/<file>, the engine's --model path. A file model (GGUF): the prefix holds the file.
        target = f"{context}/model/{literal(serving.model.file)}/" if engine.model_is_directory else f"{context}/model/"
        # rsync "copies to and updates objects at DESTINATION to match SOURCE" (the prefix's contents, nested
        # folders included): https://cloud.google.com/sdk/gcloud/reference/storage/rsync
        steps.append(
            BuildStep(
                "stage-model",
                CLOUD_SDK,
                ["storage", "rsync", "--recursive", f"gs://{bucket}/{literal(prefix)}", target],
                entrypoint="gcloud",
            )
        )
        steps.append(BuildStep("pin-timestamps", "bash", ["-c", f"find {context}/model -exec touch -h -d @0 {{}} +"]))
        steps += engine.bake_steps(method, context)
    build_args = {"WITH_GCLOUD": "1" if method == "gcs-download" else "0", **pin.build_args}
    build_args.update(engine.build_args(serving, plan.sizing.engine_args, pin.build_args, upstream_cache))
    docker_args = ["build", "-f", f"{context}/{engine.dockerfile}", "-t", image]
    for k, v in build_args.items():
        docker_args += ["--build-arg", f"{k}={literal(v)}"]
    docker_args.append(context)
    steps.append(BuildStep("build-image", DOCKER, docker_args, env=["DOCKER_BUILDKIT=1"]))
    return BuildConfig(steps=steps, images=[image], disk_gb=disk_gb, machine_type=limits.CLOUD_BUILD_MACHINE)
