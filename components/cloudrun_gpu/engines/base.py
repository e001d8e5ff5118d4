"""The engine profile type and its registry.

An :class:`EngineProfile` owns what is particular to one serving engine: how the sizing plan becomes its
command-line flags and environment, the name it serves the model under and the exact request a client sends, the
path that answers once the model is loaded, the loading methods it can read, where its Dockerfile lives and which
registry its base image comes through. The memory maths stay in ``cloudrun_gpu.sizing.engines`` (one record per
engine in ``ENGINES``); a profile points at its record through :attr:`EngineProfile.sizing`.

Cloud Run expands ``$(VAR)`` references in a container's ``args`` from the container's environment: "Arguments
to the entrypoint … Variable references $(VAR_NAME) are expanded using the container's environment. If a variable
cannot be resolved, the reference in the input string will be unchanged. The $(VAR_NAME) syntax can be escaped with
a double $$" (google.cloud.run.v2.Container ``args``, https://cloud.google.com/run/docs/reference/rest/v2/Container;
the same text in the generated client references, e.g.
https://documentation.s3ns.fr/ruby/docs/reference/google-cloud-run-v2/0.3.1/Google-Cloud-Run-V2-Container). An env
value expands only "previous defined environment variables" (EnvVar ``value``), and the engine reads the request's
``model`` field verbatim: nothing expands what a client sends. :func:`expand_cloud_run_refs` applies the args rule,
so a test can compare the name the engine serves *after* Cloud Run's expansion with the ``model`` a client sends
(issues 18/19: prod's 404).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.images import EngineImage
from cloudrun_gpu.sizing.engines import ENGINES, Engine

if TYPE_CHECKING:  # the build module imports the profiles; only the types flow back
    from cloudrun_gpu.build.image import BuildStep
    from cloudrun_gpu.engines.logs import LogFacts
    from cloudrun_gpu.service.plan import ServingSettings

CHAT_PATH = "/v1/chat/completions"
"""The OpenAI-compatible chat endpoint every built-in engine serves on our port."""


@dataclass(frozen=True)
class RenderInputs:
    """What the sizing plan decided, in the terms every engine's flags are rendered from."""

    model_path: str
    context: int
    parallel: int
    kv_type: str
    memory_fraction: float
    vram_bytes: int
    served_model_name: str | None = None
    """The name clients send as ``model``; None: the engine's own default (its model path)."""
    slot_save_path: str | None = None
    max_num_batched_tokens: int | None = None
    kv_cache_memory_bytes: int | None = None
    engine_mode: str | None = None
    """An engine mode the plan was sized for (vLLM: ``"v0"``/``"v1"``, ``SizingRequest.vllm_mode``); None: the
    release's default. The profile renders whatever selects it (R6: the engine sized is the engine that runs)."""
    engine_version: str | None = None
    """The engine release the plan names (``SizingRequest.engine_version``), for settings that exist only in some
    releases; None: unknown."""


@dataclass(frozen=True)
class ClientRequest:
    """The request a client sends to a deployed service: the path after the URL, and the body's ``model``."""

    path: str
    model: str


class EngineProfile(ABC):
    """Everything particular to one serving engine (one subclass instance per engine, registered below)."""

    name: ClassVar[str]
    image_repository: ClassVar[str]
    """The image's name in our Artifact Registry repository (``<repo>/<image_repository>:<tag>``)."""
    dockerfile: ClassVar[str]
    """The engine's Dockerfile, relative to the build context ``container/``."""
    upstream_cache: ClassVar[str | None] = "docker-hub"
    """The remote repository its base images come through (None: pulled directly)."""
    loading_methods: ClassVar[tuple[str, ...]]
    """The loading methods this engine can read its model from (``loading.LOADING_METHODS`` names)."""
    flag_table: ClassVar[str | None] = None
    """``tests/data/engine-flags/<file>``: the flags/env the pinned version defines (the contract tests)."""
    env_table: ClassVar[str | None] = None
    """``tests/data/engine-flags/<file>``: the env vars the pinned version reads, where the engine also takes flags
    (its ``flag_table`` then lists flags only)."""
    entrypoint_env: ClassVar[frozenset[str]] = frozenset()
    """Env vars our own entrypoint reads (not the engine): exempt from the engine's table."""
    parallel_cap_note: ClassVar[str] = ""
    """Why :attr:`Engine.max_parallel_default` is what it is: our choice, and the engine's own default."""
    sizing_engine: ClassVar[str] = ""
    """The sizing record (``sizing.engines.ENGINES``) whose memory rules this engine follows; empty: its own name.
    An engine built on llama.cpp's runtime sizes as ``llama.cpp`` and renders its own flags."""
    pins: ClassVar[dict[str, EngineImage]] = {}
    """Image pins per GPU type for an engine outside ``images.ENGINE_IMAGES`` (the built-ins are pinned there)."""
    model_is_directory: ClassVar[bool] = False
    """The engine loads a model directory (safetensors + config), not one file: the image build stages the
    bucket prefix as ``model/<file>/``."""
    log_detect_order: ClassVar[int] = 50
    """Where this profile asks, among the registered ones, whether a start-up log is its own
    (``engines.logs.detect_log_engine``): lower asks first."""

    @property
    def sizing_name(self) -> str:
        return self.sizing_engine or self.name

    @property
    def sizing(self) -> Engine:
        """The engine's memory/probe record in ``sizing.engines.ENGINES``."""
        return ENGINES[self.sizing_name]

    @property
    def readiness_path(self) -> str:
        return self.sizing.readiness_path

    @abstractmethod
    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        """The exact command-line args and env vars the engine gets (R6: its concurrency = ours)."""

    def served_model_name(self, model_path: str, file: str, hub_id: str | None, method: str) -> str:
        """The name clients send as ``model``; by default the engine's model path (overridden where the path is
        not a name a client can know, e.g. one Cloud Run expands)."""
        return model_path

    @abstractmethod
    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        """The name the engine serves, read back from its (Cloud-Run-expanded) args and env: the engine's rule."""

    def client_request(self, served_model_name: str) -> ClientRequest:
        return ClientRequest(CHAT_PATH, served_model_name)

    @abstractmethod
    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        """Read back the concurrency the engine was configured with (checks R6 agreement)."""

    @abstractmethod
    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        """Read back every setting the engine's memory depends on (R6: the plan and the engine agree)."""

    def bake_steps(self, method: str, context: str) -> list[BuildStep]:
        """Build steps after the model is staged into ``<context>/model`` (image method only); none by default."""
        return []

    def build_args(
        self, serving: ServingSettings, engine_args: list[str], pin_args: dict[str, str], upstream_cache: str
    ) -> dict[str, str]:
        """Dockerfile build args beyond the pin's own: by default the base image's registry through the remote
        cache (``REGISTRY``) when there is one."""
        return {"REGISTRY": upstream_cache} if upstream_cache else {}

    def recognises_log(self, text: str) -> bool:
        """Whether ``text`` is this engine's start-up log (``calibrate`` without ``--engine``); none by default."""
        return False

    def parse_log(self, text: str) -> LogFacts | None:
        """What the engine printed about its memory at start-up, for ``python -m stack calibrate``; None: this
        profile has no log parser (calibrate then says so, naming the engine)."""
        return None

    @property
    def reads_logs(self) -> bool:
        """The profile overrides :meth:`parse_log`."""
        return type(self).parse_log is not EngineProfile.parse_log

    def check_loading(self, method: str) -> ConfigError | None:
        """An error on ``loading.method`` when this engine cannot read its model that way."""
        if method in self.loading_methods:
            return None
        usable = ", ".join(self.loading_methods)
        if method == "gcs-stream":
            return ConfigError(
                "loading.method",
                method,
                f"streams safetensors with vLLM's Run:ai Model Streamer; {self.name} cannot load from it",
                f"use engine.name vllm, or one of {usable}",
                usable,
            )
        return ConfigError(
            "loading.method", method, f"{self.name} cannot load its model this way", f"use one of {usable}", usable
        )


def flag_value(args: list[str], name: str) -> str | None:
    """The value after ``name`` in ``args`` (None when absent)."""
    return args[args.index(name) + 1] if name in args else None


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_cloud_run_refs(text: str, env: dict[str, str]) -> str:
    """Cloud Run's ``$(VAR)`` expansion of one container arg (module docstring): known names are replaced, unknown
    ones stay as written, ``$$`` is a literal ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _REF.sub(sub, text)


PROFILES: dict[str, EngineProfile] = {}
"""The registry: engine name → profile (filled by ``cloudrun_gpu.engines``)."""


def register(profile: EngineProfile) -> EngineProfile:
    """Add ``profile`` to the registry (its name must have a sizing record in ``sizing.engines.ENGINES``)."""
    if profile.sizing_name not in ENGINES:
        raise ValueError(f"engine {profile.name!r}: no sizing record {profile.sizing_name!r} in sizing.engines.ENGINES")
    PROFILES[profile.name] = profile
    return profile


def engine_names() -> tuple[str, ...]:
    """Every registered engine, in registration order (CLI choices, docs, policy)."""
    return tuple(PROFILES)


def profile(name: str) -> EngineProfile:
    """The profile of engine ``name``; ConfigError on ``engine.name`` when none is registered."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            "engine.name", name, "unknown serving engine", "pick a registered engine", ", ".join(PROFILES)
        ) from None
