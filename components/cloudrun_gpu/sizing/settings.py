"""The sizing request's settings: which model, which engine, how it loads.

These are the ``cloudrun-gpu:model``, ``cloudrun-gpu:engine`` and ``cloudrun-gpu:loading`` stack
sections and fields of ``GpuInferenceServiceArgs``: declared and validated once, here.
"""

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from cloudrun_gpu.errors import ConfigError, collect
from cloudrun_gpu.settings import settings
from cloudrun_gpu.sizing.catalogue import catalogue_model
from cloudrun_gpu.sizing.readers import read_gguf, read_hf, refuse_pickle
from cloudrun_gpu.sizing.spec import ModelSpec


class EngineName(enum.StrEnum):
    """The built-in serving engines (``cloudrun_gpu.engines``' registry; a test keeps them equal). A profile
    registered later (``engines.register``) is accepted too: :meth:`_missing_` asks the registry, so adding an engine
    needs no edit here."""

    @classmethod
    def _missing_(cls, value: object) -> "EngineName | None":
        from cloudrun_gpu.engines import PROFILES  # the registry imports the sizing package: not at module level

        if isinstance(value, str) and value in PROFILES:
            member = str.__new__(cls, value)
            member._name_ = value.upper().replace(".", "_").replace("-", "_")
            member._value_ = value
            return member
        return None

    LLAMA_CPP = "llama.cpp"
    """llama.cpp's llama-server (GGUF)."""
    OLLAMA = "ollama"
    """Ollama (llama.cpp runner, its own model store)."""
    VLLM = "vllm"
    """vLLM (safetensors; AWQ, GPTQ, FP8 …)."""


class LoadingMethod(enum.StrEnum):
    """The seed's loading methods (L2; ``limits.LOADING_METHODS``; a test keeps them equal)."""

    IMAGE = "image"
    """Baked into the serving image (L1, L3)."""
    GCS_FUSE = "gcs-fuse"
    """A read-only Cloud Storage FUSE volume (not parallel)."""
    GCS_DOWNLOAD = "gcs-download"
    """A parallel copy from Cloud Storage into an in-memory volume at start."""
    GCS_STREAM = "gcs-stream"
    """vLLM only: the Run:ai Model Streamer reads the safetensors from Cloud Storage straight to the GPU."""
    INTERNET = "internet"
    """A download from a model hub at start (needs Cloud NAT; the seed prefers your own bucket)."""


IMAGE_REF = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
"""A container image reference: [registry/]path[:tag][@sha256:digest] (OCI distribution spec grammar)."""


HF_SOURCE = re.compile(
    r"hf://(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95})(?:@(?P<revision>[^@/]*))?"
)
"""``hf://<owner>/<repo>@<revision>`` (Hub repo ids: ``owner/name`` of letters, digits, ``.``, ``_``, ``-``)."""
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
GCS_SOURCE = re.compile(r"gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(?P<path>.*))?")
"""``gs://<bucket>[/<folder>]`` (Cloud Storage bucket names: lowercase letters, digits, ``-``, ``_``, ``.``)."""
UNSAFE = re.compile(r"[\x00-\x1f$`]")
"""Characters refused in a source or pattern: control characters, and ``$``/backtick, which Cloud Build and
the shell would read as substitutions (everything else is quoted)."""


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``model.source``."""

    kind: str
    """``hf``, ``gs`` or ``local``."""
    location: str
    """The Hub repo id (``owner/name``), ``gs://bucket/folder`` (no trailing slash) or the local path."""
    revision: str | None = None
    """The Hub commit (``hf`` only)."""


def parse_source(text: str) -> ModelSource:
    """``model.source`` → :class:`ModelSource` (no checks: :func:`source_problems` does them)."""
    if text.startswith("hf://"):
        m = HF_SOURCE.fullmatch(text)
        repo, _, rev = text.removeprefix("hf://").partition("@")
        return ModelSource("hf", m.group("repo") if m else repo, (m.group("revision") if m else rev) or None)
    if text.startswith("gs://"):
        return ModelSource("gs", text.rstrip("/"))
    return ModelSource("local", text)


def source_problems(source: str | None, files: list[str]) -> list[ConfigError]:
    """The checks of ``source`` and ``files``.

    Hub sources must name a full commit id, not a branch or tag: both are movable git refs on the Hub
    (``revision`` "can be a branch name, a tag, or a commit hash", huggingface_hub 0.36.0
    ``cli/download.py``), so ``@main`` or ``@v1`` could silently stage other weights under an unchanged
    config. A commit id names fixed bytes, and it is what the staging trigger hashes: the model is re-staged
    exactly when the pin changes."""
    errors: list[ConfigError] = []
    if files and not source:
        errors.append(ConfigError("files", files, "chooses files but no source is set", "set source, or remove files"))
    for i, pattern in enumerate(files):
        parts = pattern.replace("\\", "/").split("/")
        if not pattern.strip() or UNSAFE.search(pattern) or pattern.startswith("/") or ".." in parts:
            errors.append(
                ConfigError(
                    f"files.{i}",
                    pattern,
                    "is not a usable file pattern",
                    "write a glob relative to the source, e.g. '*Q4_K_M.gguf' or 'tokenizer*' (no '..', '$' or "
                    "leading '/')",
                )
            )
        collect(errors, lambda i=i, pattern=pattern: refuse_pickle(f"files.{i}", pattern))  # type: ignore[misc]
    if not source:
        return errors
    if UNSAFE.search(source) or not source.strip():
        errors.append(ConfigError("source", source, "has characters that are not allowed", "remove them"))
        return errors
    parsed = parse_source(source)
    if parsed.kind == "hf":
        m = HF_SOURCE.fullmatch(source)
        if m is None:
            errors.append(
                ConfigError(
                    "source",
                    source,
                    "is not a Hugging Face repository reference",
                    "write hf://<owner>/<repo>@<40-hex commit>",
                    "hf://owner/repo@<commit sha>",
                )
            )
        elif not m.group("revision") or not COMMIT_SHA.fullmatch(m.group("revision")):
            errors.append(
                ConfigError(
                    "source",
                    source,
                    "must pin the repository to a full commit id: branches and tags can move, so the same config "
                    "could stage other weights",
                    f"append @<commit>, the 40-hex id from the repository's 'Files and versions' history, e.g. "
                    f"hf://{m.group('repo')}@{'0' * 40}",
                    "hf://owner/repo@<40 lowercase hex digits>",
                )
            )
    elif parsed.kind == "gs":
        m = GCS_SOURCE.fullmatch(source)
        if m is None or any(c in (m.group("path") or "") for c in "*?[]#"):
            errors.append(
                ConfigError(
                    "source",
                    source,
                    "is not a Cloud Storage folder",
                    "write gs://<bucket>/<folder> (no wildcards: choose files with model.files)",
                )
            )
    elif "://" in source:
        errors.append(
            ConfigError(
                "source",
                source,
                "is not a supported source",
                "use hf://owner/repo@<commit>, gs://bucket/folder or a local path",
                "hf://, gs://, a local path",
            )
        )
    collect(errors, lambda: refuse_pickle("source", parsed.location))
    return errors


@settings
class ModelSettings:
    """Which model to serve and where its files sit. Exactly one of ``name``, ``gguf``, ``hf_config``."""

    name: str | None = None
    """A built-in catalogue model (``python -m stack size --list``)."""
    gguf: str | None = None
    """A local GGUF file, read for its real geometry and tensor sizes."""
    hf_config: str | None = None
    """A local Hugging Face config.json (safetensors headers beside it are read for sizes)."""
    quantization: str | None = None
    """Weight format when no file is given; 4-bit by default (B2)."""
    file: str = "model.gguf"
    """File or directory the engine loads under the loading method's mount path; for Ollama, the model
    name in its store (e.g. ``llama3.1:8b-instruct-q4_K_M``)."""
    object_prefix: str = "models"
    """Bucket folder holding the model for the gcs-* methods."""
    hub_id: str | None = None
    """Hub reference for the internet method (e.g. an HF repo or an Ollama tag)."""
    source: str | None = None
    """Where ``pulumi up`` copies the weights from into the bucket under ``object_prefix``: a Hugging Face
    repository pinned to a commit (``hf://bartowski/Llama-3.2-3B-Instruct-GGUF@<40-hex commit>``), a Cloud
    Storage folder (``gs://bucket/folder``) or a local file or folder (relative to the project). Unset: you
    put the model into the bucket yourself."""
    files: list[str] = Field(default_factory=list)
    """Glob patterns choosing files from ``source`` (e.g. ``*Q4_K_M.gguf``); empty: every file. Pickle
    checkpoints are always left out (B3)."""

    def model_source(self) -> ModelSource | None:
        """``source`` parsed (None when unset); call only on a validated settings object."""
        return parse_source(self.source) if self.source else None

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        errors.extend(source_problems(self.source, self.files))
        given = [k for k in ("name", "gguf", "hf_config") if getattr(self, k)]
        if len(given) != 1:
            errors.append(
                ConfigError(
                    "name" if not given else given[-1],
                    {k: getattr(self, k) for k in given} or None,
                    "exactly one of name, gguf, hf_config must be set",
                    "keep one model source",
                    "name | gguf | hf_config",
                )
            )
        collect(errors, lambda: refuse_pickle("file", self.file))
        if not self.file.strip() or "\x00" in self.file:
            errors.append(ConfigError("file", self.file, "is empty", "name the file or directory the engine loads"))
        prefix = self.object_prefix.strip("/")
        if not prefix or "//" in prefix or any(c in prefix for c in "*?[]#\x00\n"):
            errors.append(
                ConfigError(
                    "object_prefix",
                    self.object_prefix,
                    "is not a usable Cloud Storage folder",
                    "use a folder path such as 'models/llama-3.2-3b' (no wildcards, no empty segments)",
                )
            )
        return errors

    def spec(self, base_dir: Path | None = None) -> ModelSpec:
        """Read the model: catalogue, GGUF header or HF config (relative paths from ``base_dir``)."""
        if self.name:
            return catalogue_model(self.name)
        path = Path(self.gguf or self.hf_config or "")
        if base_dir and not path.is_absolute():
            path = base_dir / path
        return read_gguf(path, field="model.gguf") if self.gguf else read_hf(path, field="model.hf_config")


@settings
class EngineSettings:
    """The serving engine and the knobs the memory plan depends on (R1, R4, R5, R6)."""

    name: EngineName = EngineName.LLAMA_CPP
    """``llama.cpp``, ``ollama`` or ``vllm``."""
    context_length: int | None = Field(default=None, ge=256, le=1_048_576)
    """Tokens per request (R1); default 8192, capped at the model's trained context."""
    kv_cache_type: str | None = None
    """KV-cache element type (R4); the engine's quantised default when unset."""
    parallel: int | None = Field(default=None, ge=1, le=1000)
    """Parallel sequences; default: as many as fit (capped by ``max_parallel``)."""
    max_parallel: int | None = Field(default=None, ge=1, le=1000)
    """Cap on the derived parallel sequences (e.g. from a load test, A3)."""
    ideal_batch_size: int | None = Field(default=None, ge=1, le=1000)
    """A2's ideal batch size per model instance; default: the parallel sequences."""
    memory_fraction: float | None = Field(default=None, gt=0.5, le=0.98)
    """Share of GPU memory the engine may use (R5); the engine's default when unset."""
    image: str | None = None
    """Serving image; defaults to the image built from ``container/<engine>`` in our registry."""
    prompt_cache: bool = False
    """llama.cpp: restore the slot cache saved at build time (B4, R2)."""
    version: str | None = None
    """The engine release the memory plan follows (vLLM's profiling, graph and default rules change between
    releases); default: the version of the pinned image (``cloudrun_gpu/images.py``)."""
    max_num_batched_tokens: int | None = Field(default=None, ge=256, le=131072)
    """vLLM: tokens per scheduler step (chunked prefill); it sizes the activation peak the plan reserves."""

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        if self.prompt_cache and self.name != "llama.cpp":
            errors.append(
                ConfigError(
                    "prompt_cache",
                    True,
                    "is implemented for llama.cpp's slot cache only",
                    "set name: llama.cpp or prompt_cache: false",
                )
            )
        if self.image is not None and (len(self.image) > 1024 or not IMAGE_REF.fullmatch(self.image)):
            errors.append(
                ConfigError(
                    "image",
                    self.image,
                    "is not a container image reference",
                    "write [registry/]path[:tag][@sha256:digest], e.g. "
                    "europe-west1-docker.pkg.dev/my-project/llm-serving/llama-cpp:b5000",
                )
            )
        return errors


@settings
class LoadingSettings:
    """How the weights reach the GPU (L1-L5)."""

    method: LoadingMethod = LoadingMethod.IMAGE
    """``image``, ``gcs-fuse``, ``gcs-download``, ``internet``, or ``gcs-stream`` (vLLM only: the Run:ai Model
    Streamer reads safetensors from the bucket straight to the GPU, R7)."""
    throughput_gib_per_s: float | None = Field(default=None, ge=0.001, le=100)
    """Override the method's assumed read rate after measuring your own (L2)."""


__all__ = [
    "IMAGE_REF",
    "EngineName",
    "EngineSettings",
    "LoadingMethod",
    "LoadingSettings",
    "ModelSettings",
    "ModelSource",
    "parse_source",
    "source_problems",
]
