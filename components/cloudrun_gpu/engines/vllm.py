"""vLLM's OpenAI-compatible server (pins in ``cloudrun_gpu.images``: v0.14.1 on the RTX PRO 6000, Google's DLC on
the L4).

Every flag rendered here exists, spelled exactly, in vLLM v0.14.1's parser (``tests/data/engine-flags/
vllm-v0.14.1.txt``, extracted from ``vllm/engine/arg_utils.py`` and ``vllm/entrypoints/openai/cli_args.py``), and
every env var in its ``vllm/envs.py`` (``vllm-v0.14.1-env.txt``): ``VLLM_USE_V1`` only for the releases that read
it (:func:`use_v1_env`).
Exactness matters: vLLM's ``FlexibleArgumentParser`` (``vllm/utils/argparse_utils.py``) passes no
``allow_abbrev``, so argparse also accepts a unique prefix; ``--kv-cache-memory`` worked only as an abbreviation of
``--kv-cache-memory-bytes`` (arg_utils.py ``cache_group.add_argument("--kv-cache-memory-bytes", …)``), and any new
flag sharing that prefix would have broken the start.

The served name: "If not specified, the model name will be the same as the ``--model`` argument" (ModelConfig
``served_model_name``, vllm/config/model.py at v0.14.1). gcs-stream's ``--model gs://$(MODEL_BUCKET)/…`` is
expanded by Cloud Run (``engines.base``), so without ``--served-model-name`` vLLM serves the *expanded* bucket
path while a client only knows the literal one: prod's first request was a 404. We always render
``--served-model-name``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from cloudrun_gpu.engines.base import EngineProfile, RenderInputs, flag_value
from cloudrun_gpu.engines.logs import NUM, LogFacts, last, number, size_bytes
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing.engines import (
    PORT,
    STREAMED_MODEL_PREFIX,
    VLLM_DEFAULT_BATCHED_TOKENS,
    Version,
    parse_vllm_version,
    streamer_extra_config,
)

if TYPE_CHECKING:
    from cloudrun_gpu.service.plan import ServingSettings

KV_CACHE_MEMORY_FLAG = "--kv-cache-memory-bytes"
"""The exact flag (vLLM ≥ 0.11, PR #21489); vLLM's own log advice spells it ``--kv-cache-memory=…`` (an
abbreviation argparse accepts), which :func:`read_vllm_log` reads; ``calibrate`` advises this exact name."""


USE_V1_ENV = "VLLM_USE_V1"
"""vLLM's engine switch before V0 was removed: "1" forces V1 (opt-in before v0.8.0), "0" keeps V0 after."""
USE_V1_REMOVED_IN: Version = (0, 12, 0)
"""The first release checked without ``VLLM_USE_V1``. vLLM reads a variable only through ``vllm/envs.py``'s
``environment_variables`` (its module ``__getattr__``); the key is there at v0.11.0 (``"VLLM_USE_V1": lambda:
bool(int(os.getenv("VLLM_USE_V1", "1")))``) and gone at v0.12.0 and at the pinned v0.14.1
(``tests/data/engine-flags/vllm-v0.11.0-env.txt``, ``-v0.12.0-env.txt``, ``-v0.14.1-env.txt``; vllm-project/
vllm-ascend#4086, Nov 2025: "This env has been removed from vLLM already"). v0.11.1/v0.11.2 were not read: they
count as having it (as v0.11.0)."""


def use_v1_env(mode: str, version: str | None) -> dict[str, str]:
    """What selects vLLM engine ``mode`` at ``version``: ``VLLM_USE_V1`` where the release reads it (an unknown
    release renders it as before: a release that lacks it never reads it). From v0.12.0 V1 is the only engine:
    ``v1`` needs nothing, and ``v0`` cannot run, refused on ``engine.vllm_mode`` rather than sized as V0 while V1
    runs (R6)."""
    release = parse_vllm_version(version)
    if release is None or release < USE_V1_REMOVED_IN:
        return {USE_V1_ENV: "1" if mode == "v1" else "0"}
    if mode == "v0":
        first = ".".join(map(str, USE_V1_REMOVED_IN))
        raise ConfigError(
            "engine.vllm_mode",
            mode,
            f"vLLM {version} has no V0 engine and no {USE_V1_ENV} to select one (gone from v{first}, vllm/envs.py)",
            f"leave engine.vllm_mode unset (or v1) for vLLM {version}, or size a release before {first}",
            "v1",
        )
    return {}


class VllmProfile(EngineProfile):
    name: ClassVar[str] = "vllm"
    image_repository: ClassVar[str] = "vllm"
    dockerfile: ClassVar[str] = "vllm/Dockerfile"
    loading_methods: ClassVar[tuple[str, ...]] = ("image", "gcs-fuse", "gcs-download", "internet", "gcs-stream")
    flag_table: ClassVar[str | None] = "vllm-v0.14.1.txt"
    env_table: ClassVar[str | None] = "vllm-v0.14.1-env.txt"
    model_is_directory: ClassVar[bool] = True
    parallel_cap_note: ClassVar[str] = (
        "our cap until a load test; vLLM's own OpenAI-server --max-num-seqs default is 256 below 70 GiB of GPU "
        "memory and 1024 from 70 GiB (EngineArgs.get_batch_defaults, vllm/engine/arg_utils.py at v0.14.1); we "
        "always render --max-num-seqs"
    )
    log_detect_order: ClassVar[int] = 20
    """After Ollama's (whose log may say "vllm"-free things such as "blocks:"), before llama.cpp's fallback."""

    def render(self, r: RenderInputs) -> tuple[list[str], dict[str, str]]:
        args = [
            "--model",
            r.model_path,
            "--served-model-name",
            r.served_model_name or r.model_path,
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "--max-model-len",
            str(r.context),
            "--max-num-seqs",
            str(r.parallel),
            "--gpu-memory-utilization",
            f"{r.memory_fraction:.2f}",
            "--kv-cache-dtype",
            r.kv_type,
            "--enable-prefix-caching",
            "--enable-chunked-prefill",
            "--max-num-batched-tokens",
            str(r.max_num_batched_tokens or VLLM_DEFAULT_BATCHED_TOKENS),
        ]
        if r.model_path.startswith(STREAMED_MODEL_PREFIX):
            # gcs-stream: the Run:ai Model Streamer reads the safetensors from Cloud Storage into GPU memory.
            args += ["--load-format", "runai_streamer", "--model-loader-extra-config", streamer_extra_config()]
        if r.kv_cache_memory_bytes is not None:
            # vLLM ≥ 0.11: the KV pool is exactly the plan's number, not what its profile happens to find.
            args += [KV_CACHE_MEMORY_FLAG, str(r.kv_cache_memory_bytes)]
        env = use_v1_env(r.engine_mode, r.engine_version) if r.engine_mode is not None else {}
        return args, env

    def build_args(
        self, serving: ServingSettings, engine_args: list[str], pin_args: dict[str, str], upstream_cache: str
    ) -> dict[str, str]:
        """``VLLM_IMAGE`` as a full reference: a Docker Hub image (vllm/vllm-openai) through the remote cache when
        there is one, else docker.io; an image already in Artifact Registry (Google's DLC) as pinned."""
        ref = pin_args["VLLM_IMAGE"]
        if "." in ref.split("/")[0]:
            return {}
        return {"VLLM_IMAGE": f"{upstream_cache or 'docker.io'}/{ref}"}

    def served_model_name(self, model_path: str, file: str, hub_id: str | None, method: str) -> str:
        """The hub id for the internet method, else ``model.file`` (the model directory's name): never a path
        Cloud Run rewrites."""
        return hub_id if method == "internet" and hub_id else file

    def served_name_from_config(self, args: list[str], env: dict[str, str]) -> str:
        return flag_value(args, "--served-model-name") or flag_value(args, "--model") or ""

    def parallel_from_config(self, args: list[str], env: dict[str, str]) -> int:
        return int(flag_value(args, "--max-num-seqs") or 0)

    def memory_from_config(self, args: list[str], env: dict[str, str]) -> dict[str, float]:
        out: dict[str, float] = {
            "max_model_len": int(flag_value(args, "--max-model-len") or 0),
            "max_num_seqs": int(flag_value(args, "--max-num-seqs") or 0),
            "max_num_batched_tokens": int(flag_value(args, "--max-num-batched-tokens") or VLLM_DEFAULT_BATCHED_TOKENS),
            "gpu_memory_utilization": float(flag_value(args, "--gpu-memory-utilization") or 0.9),
        }
        kv = flag_value(args, KV_CACHE_MEMORY_FLAG)
        if kv is not None:
            out["kv_cache_memory"] = int(kv)
        return out

    def recognises_log(self, text: str) -> bool:
        vllm_words = ("vLLM", "vllm", "KV Cache is", "GPU KV cache size", "blocks:")
        llama_words = ("llama_kv_cache", "KV self size")
        return any(w in text for w in vllm_words) and not any(w in text for w in llama_words)

    def parse_log(self, text: str) -> LogFacts:
        facts = LogFacts(engine=self.name)
        read_vllm_log(text, facts)
        return facts


def read_vllm_log(text: str, f: LogFacts) -> None:
    """vLLM's start-up lines, V0 and V1 (versions, memory profile, KV pool, the argument dump, and its own advice
    ``--kv-cache-memory=N``: its log's spelling, an abbreviation of :data:`KV_CACHE_MEMORY_FLAG`; "Replace
    gpu_memory_utilization config with `--kv-cache-memory=N` (X GiB) to fit into requested memory", the debug
    message in vllm/v1/worker/gpu_worker.py at v0.14.1)."""
    if m := last(r"(?:vLLM API server version|version)\s+v?(\d+\.\d+[\w.+-]*)", text):
        f.version = m.group(1)
    if m := last(r"Initializing an? (V0|V1) LLM engine \(v?([\w.+-]+)\)", text):
        f.v0 = m.group(1) == "V0"
        f.v1 = m.group(1) == "V1"
        f.version = f.version or m.group(2)
    if m := last(r"Initializing an LLM engine \(v?([\w.+-]+)\)", text):  # V0 before it was named V0
        f.v0 = True
        f.version = f.version or m.group(1)
    if re.search(r"worker\.py:\d+\] Memory profiling|Memory profiling results:|# (?:GPU|CUDA|cuda) blocks", text):
        f.v0 = f.v0 or "gpu_worker.py" not in text
    if m := last(r"model='([^']+)'", text) or last(r"Starting to load model ([^\s.]+(?:\.[^\s.]+)*)\.\.\.", text):
        f.model = m.group(1)
    if m := last(r"(?:Model loading took|Loading model weights took)\s+" + NUM + r"\s*(GiB|GB)", text):
        f.weights_bytes = size_bytes(m.group(1), m.group(2))
    # V0 (0.6.5+): "total_gpu_memory (23.57GiB) x gpu_memory_utilization (0.90) = 21.21GiB"
    if m := last(r"total_gpu_memory \(" + NUM + r"\s*GiB\) x gpu_memory_utilization \(" + NUM + r"\)", text):
        f.cuda_total_bytes = size_bytes(m.group(1), "GiB")
        f.memory_fraction = number(m.group(2))
    # V0 (0.6.4): "total_gpu_memory=23.58GiB ... gpu_memory_utilization=0.90"
    if m := last(r"total_gpu_memory=" + NUM + r"GiB", text):
        f.cuda_total_bytes = size_bytes(m.group(1), "GiB")
    # V1: "Free memory on device (F/T GiB) on startup. Desired GPU memory utilization is (u, B GiB)"
    if m := last(r"Free memory on device(?: cuda:\d+)? \(" + NUM + r"/" + NUM + r"\s*GiB\)", text):
        f.cuda_total_bytes = size_bytes(m.group(2), "GiB")
    if m := last(r"Desired GPU memory utilization is \(" + NUM + r",\s*" + NUM + r"\s*GiB\)", text):
        f.memory_fraction = number(m.group(1))
        f.budget_bytes = size_bytes(m.group(2), "GiB")
    if m := last(r"--gpu-memory-utilization=" + NUM + r" is equivalent", text):
        f.memory_fraction = number(m.group(1).rstrip("."))
    if m := last(r"non_torch_memory(?: takes |=)" + NUM + r"\s*GiB", text):
        f.non_torch_bytes = size_bytes(m.group(1), "GiB")
    if m := last(r"PyTorch activation peak memory takes " + NUM + r"\s*GiB", text):
        f.activation_bytes = size_bytes(m.group(1), "GiB")
    if (m := last(r"peak_torch_memory=" + NUM + r"GiB", text)) and f.weights_bytes is not None:
        f.activation_bytes = max(0, size_bytes(m.group(1), "GiB") - f.weights_bytes)
    consumed = last(r"Actual usage is " + NUM + r" GiB for consumed memory \(weights \+ non-torch\)", text)
    if consumed and f.weights_bytes is not None:
        f.non_torch_bytes = max(0, size_bytes(consumed.group(1), "GiB") - f.weights_bytes)
    if m := last(NUM + r"\s*GiB for peak activation", text):
        f.activation_bytes = size_bytes(m.group(1), "GiB")
    if m := last(NUM + r"\s*GiB for non-torch memory", text):
        f.non_torch_bytes = size_bytes(m.group(1), "GiB")
    graphs = last(NUM + r"\s*GiB for CUDAGraph memory", text) or last(
        r"Estimated CUDA graph memory: " + NUM + r"\s*GiB", text
    )
    if graphs:
        f.cudagraph_bytes = size_bytes(graphs.group(1), "GiB")
    for pattern in (
        r"the rest of the memory reserved for KV Cache is " + NUM + r"\s*GiB",
        r"kv_cache_size=" + NUM + r"GiB",
        r"Available KV cache memory: " + NUM + r"\s*GiB",
        r"Current kv cache memory in use is " + NUM + r"\s*GiB",
        r"reserved " + NUM + r" GiB memory for KV Cache",
    ):
        if m := last(pattern, text):
            f.kv_bytes = size_bytes(m.group(1), "GiB")
    if m := last(r"GPU KV cache size: " + NUM + r" tokens", text):
        f.kv_tokens = int(number(m.group(1)))
    if m := last(r"(?:# ?)?(?:GPU|CUDA|cuda) blocks: " + NUM, text):
        f.kv_blocks = int(number(m.group(1)))
        f.kv_tokens = f.kv_tokens or f.kv_blocks * 16
    if m := last(r"Maximum concurrency for " + NUM + r" tokens per request", text):
        f.max_model_len = int(number(m.group(1)))
    if m := last(r"max_seq_len=(\d+)", text):
        f.max_model_len = f.max_model_len or int(m.group(1))
    if m := last(r"max_num_batched_tokens[=:'\s]+(\d+)", text):
        f.max_num_batched_tokens = int(m.group(1))
    if m := last(r"chunked_prefill_enabled=(True|False)", text):
        f.chunked_prefill = m.group(1) == "True"
    if "Chunked prefill is enabled" in text:
        f.chunked_prefill = True
    _parse_vllm_args(text, f)
    if m := last(r"--kv-cache-memory=(\d+)`? \(" + NUM + r" GiB\) to fit into requested memory", text):
        f.kv_cache_memory_hint = int(m.group(1))


_VLLM_ARG_VALUE = r"""(?:'([^']*)'|"([^"]*)"|([\w.+-]+))"""


def _vllm_arg(text: str, key: str) -> str | None:
    """The last value ``key`` has in vLLM's argument dumps: the ``non-default args: {'key': value}`` dict
    (v0.10+), ``Namespace(key=value)`` / ``EngineArgs(key=value)`` (older servers) and the engine's
    ``with config: key=value`` line."""
    m = last(r"(?:'" + key + r"'\s*:\s*|\b" + key + r"=)" + _VLLM_ARG_VALUE, text)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def _arg_float(text: str, key: str) -> float | None:
    value = _vllm_arg(text, key)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _parse_vllm_args(text: str, f: LogFacts) -> None:
    """Every memory setting vLLM's argument dump prints (``gpu_memory_utilization`` 0.65 in a
    ``non-default args`` dict is the run's fraction, not the 0.90 default)."""
    if (u := _arg_float(text, "gpu_memory_utilization")) is not None:
        f.memory_fraction = u
    for key in ("max_model_len", "max_num_seqs", "max_num_batched_tokens"):
        if (v := _arg_float(text, key)) is not None:
            setattr(f, key, int(v))
    if (b := _arg_float(text, "kv_cache_memory_bytes")) is not None:
        f.kv_cache_memory_hint = int(b)
    if (dtype := _vllm_arg(text, "kv_cache_dtype")) is not None:
        f.kv_cache_dtype = dtype
    if (chunked := _vllm_arg(text, "enable_chunked_prefill")) in ("True", "False"):
        f.chunked_prefill = chunked == "True"


VLLM = VllmProfile()
