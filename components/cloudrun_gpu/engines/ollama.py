"""Ollama (release pinned in ``cloudrun_gpu.images``, 0.12.3), configured through its environment.

Every ``OLLAMA_*`` variable rendered here exists in Ollama's ``envconfig/config.go`` at the pinned tag
(``tests/data/engine-flags/ollama-v0.12.3.txt``, checked by ``tests/test_engine_contract.py``), except
``OLLAMA_MODEL``, which our entrypoint (``container/ollama/entrypoint.sh``) reads to preload the model and is the
store tag clients send as ``model``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from cloudrun_gpu.engines.base import EngineProfile, RenderInputs
from cloudrun_gpu.engines.llamacpp import read_llama_cpp_log
from cloudrun_gpu.engines.logs import NUM, LogFacts, last, size_bytes
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.loading import ollama_model_parameters
from cloudrun_gpu.sizing.engines import OLLAMA_INTERNAL_PORT, ollama_gpu_overhead

if TYPE_CHECKING:
    from cloudrun_gpu.build.image import BuildStep
    from cloudrun_gpu.service.plan import ServingSettings

MODEL_ENV = "OLLAMA_MODEL"
"""Our entrypoint's variable: the model tag it preloads (not one of Ollama's own)."""


class OllamaProfile(EngineProfile):
    name: ClassVar[str] = "ollama"
    image_repository: ClassVar[str] = "ollama"
    dockerfile: ClassVar[str] = "ollama/Dockerfile"
    loading_methods: ClassVar[tuple[str, ...]] = ("image", "gcs-fuse")
    flag_table: ClassVar[str | None] = "ollama-v0.12.3.txt"
    entrypoint_env: ClassVar[frozenset[str]] = frozenset({MODEL_ENV})
    parallel_cap_note: ClassVar[str] = (
        "our cap until a load test, not Ollama's: OLLAMA_NUM_PARALLEL is always rendered, so Ollama's own "
        "automatic choice never applies"
    )
    log_detect_order: ClassVar[int] = 10
    """Asked first: its log also holds its llama.cpp runner's lines."""

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        env = {
            # Ollama listens privately; container/ollama/entrypoint.sh preloads the model and only then
            # opens PORT (D2: Ollama's own port is up before the model is in GPU memory).
            "OLLAMA_HOST": f"127.0.0.1:{OLLAMA_INTERNAL_PORT}",
            "OLLAMA_NUM_PARALLEL": str(r.parallel),
            "OLLAMA_CONTEXT_LENGTH": str(r.context),
            "OLLAMA_KV_CACHE_TYPE": r.kv_type,
            "OLLAMA_FLASH_ATTENTION": "1",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_MAX_LOADED_MODELS": "1",
            "OLLAMA_GPU_OVERHEAD": str(ollama_gpu_overhead(r.vram_bytes, r.memory_fraction)),
            MODEL_ENV: r.model_path,
        }
        return [], env

    def served_model_name(self, model_path: str, file: str, hub_id: str | None, method: str) -> str:
        return file  # the store's tag (model.file), which is also the model path the entrypoint preloads

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return env.get(MODEL_ENV, "")

    def bake_steps(self, method: str, context: str) -> list[BuildStep]:
        """The Modelfile next to the staged GGUF, with the model's own runner options (R7: ``use_mmap false`` for a
        baked-in image): written into the Modelfile, not sent per request, or Ollama would reload the model
        (``loading.ollama_model_parameters``)."""
        from cloudrun_gpu.build.image import BuildStep

        params = "".join(f"PARAMETER {k} {v}\\n" for k, v in ollama_model_parameters(method).items())
        # $$ is Cloud Build's escape for a literal $ (a bare $ would be read as a substitution).
        script = (
            f"printf 'FROM ./%s\\n{params}' \"$$(cd {context}/model && ls *.gguf | head -1)\" "
            f"> {context}/model/Modelfile"
        )
        return [BuildStep("modelfile", "bash", ["-c", script])]

    def build_args(
        self, serving: ServingSettings, engine_args: list[str], pin_args: dict[str, str], upstream_cache: str
    ) -> dict[str, str]:
        """The base image through the cache, and ``MODEL_NAME``: the store's tag (``OLLAMA_MODEL``)."""
        return {**super().build_args(serving, engine_args, pin_args, upstream_cache), "MODEL_NAME": serving.model.file}

    def check_loading(self, method: str) -> ConfigError | None:
        if method in ("gcs-download", "internet"):
            return ConfigError(
                "loading.method",
                method,
                "the Ollama image has no downloader (neither gcloud nor Python): it reads its model store from the "
                "image or a Cloud Storage FUSE mount",
                "use loading.method gcs-fuse (an Ollama store: manifests/ and blobs/ under model.object_prefix) "
                "or image",
                "image, gcs-fuse",
            )
        return super().check_loading(method)

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(env["OLLAMA_NUM_PARALLEL"])

    def recognises_log(self, text: str) -> bool:
        return "ollama" in text.lower() and (
            "offload to cuda" in text or "starting llama server" in text or "msg=" in text
        )

    def parse_log(self, text: str) -> LogFacts:
        """The runner's llama.cpp lines, then Ollama's own scheduler estimate and the runner's command line."""
        facts = LogFacts(engine=self.name)
        read_llama_cpp_log(text, facts)
        read_ollama_log(text, facts)
        return facts

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        return {"context_length": int(env["OLLAMA_CONTEXT_LENGTH"]), "num_parallel": int(env["OLLAMA_NUM_PARALLEL"])}


def read_ollama_log(text: str, f: LogFacts) -> None:
    """Ollama's scheduler lines (``memory.required.kv`` …, llm/memory.go) and its runner's command line; the
    runner's own llama.cpp lines, read first, win where both print a quantity."""
    if m := last(r'memory\.required\.kv="' + NUM + r" (GiB|MiB)\"", text):
        f.kv_bytes = f.kv_bytes or size_bytes(m.group(1), m.group(2))
        if "llama_kv_cache" not in text and "KV self size" not in text:
            f.notes.append(
                "KV from Ollama's own estimate (memory.required.kv); the runner's llama.cpp lines are absent"
            )
    if m := last(r'memory\.weights\.total="' + NUM + r" (GiB|MiB)\"", text):
        f.weights_bytes = f.weights_bytes or size_bytes(m.group(1), m.group(2))
    if m := last(r'memory\.graph\.full="' + NUM + r" (GiB|MiB)\"", text):
        f.compute_bytes = f.compute_bytes or size_bytes(m.group(1), m.group(2))
    if m := last(r'memory\.graph\.partial="' + NUM + r" (GiB|MiB)\"", text):
        f.ollama_graph_partial_bytes = size_bytes(m.group(1), m.group(2))
    if m := last(r"--ctx-size (\d+)", text):
        f.ctx_size = int(m.group(1))
    if m := last(r"--parallel (\d+)", text):
        f.parallel = int(m.group(1))
    if m := last(r"--batch-size (\d+)", text):
        f.n_ubatch = f.n_ubatch or int(m.group(1))
    if m := last(r"OLLAMA_KV_CACHE_TYPE[=:]\s*(\w+)", text):
        f.kv_cache_dtype = m.group(1)


OLLAMA = OllamaProfile()
