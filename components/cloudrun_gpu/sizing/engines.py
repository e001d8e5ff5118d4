"""Serving-engine semantics: how each engine splits context, caches KV, and is configured.

The three engines differ in ways that change the memory maths (R1, R4, R5, R6):

- llama.cpp ``llama-server``: ``-c`` is the *total* KV cells, split evenly across ``-np``
  slots, each slot padded to 256 cells; sliding-window layers keep only
  ``window + n_ubatch`` cells per slot; a quantised V cache needs flash attention.
- Ollama runs the llama.cpp runner with ``--ctx-size = OLLAMA_CONTEXT_LENGTH × OLLAMA_NUM_PARALLEL``;
  ``OLLAMA_KV_CACHE_TYPE`` is ignored unless ``OLLAMA_FLASH_ATTENTION=1``.
- vLLM pages KV in 16-token blocks inside ``--gpu-memory-utilization × (CUDA-visible total)`` after
  subtracting what its start-up profile measures (weights, non-torch allocations, the peak activation of
  one ``--max-num-batched-tokens`` step or of the ``--max-num-seqs`` sampler warm-up, and from v0.21 the
  CUDA graphs); ``--kv-cache-dtype fp8`` halves the cache. :func:`vllm_overhead` models that profile per
  vLLM version, fitted on the published start-up logs in ``sizing/data/vllm_evidence.csv``
  (docs/sizing-evidence.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from math import ceil

from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing.quant import kv_row_bytes
from cloudrun_gpu.sizing.spec import ModelSpec

PORT = 8080
OLLAMA_INTERNAL_PORT = 11434


@dataclass(frozen=True)
class Engine:
    name: str
    kv_types: tuple[str, ...]
    default_kv: str
    """Practice R4: a quantised KV cache by default where the engine supports it."""
    default_memory_fraction: float
    """Share of VRAM the engine may fill (R5): vLLM's --gpu-memory-utilization, else 1 - reserve."""
    max_parallel_default: int
    """Cap on derived parallel sequences until a load test (A3) says otherwise."""
    init_seconds: float
    """Engine start beyond reading the weights (source in ``init_source``)."""
    init_source: str
    readiness_path: str
    readiness_note: str
    init_seconds_per_b_params: float = 0.0
    """Engine start that grows with model size (vLLM: torch.compile, profiling and CUDA-graph capture run
    on every Cloud Run start, since instances start with an empty compile cache)."""


ENGINES: dict[str, Engine] = {
    "llama.cpp": Engine(
        name="llama.cpp",
        kv_types=("f16", "bf16", "q8_0", "q4_0"),
        default_kv="q8_0",
        default_memory_fraction=0.95,
        max_parallel_default=32,
        init_seconds=5,
        init_source="llama.cpp starts in ~1-3 s after mmap (llm-sizing §5); 5 s allowed",
        readiness_path="/health",
        readiness_note="llama-server answers 503 on /health until the model is loaded, then 200",
    ),
    "ollama": Engine(
        name="ollama",
        kv_types=("f16", "q8_0", "q4_0"),
        default_kv="q8_0",
        default_memory_fraction=0.95,
        max_parallel_default=32,
        init_seconds=10,
        init_source="ollama serve start + runner spawn (engine init 5-15 s, cold-start blog)",
        readiness_path="/api/version",
        readiness_note=(
            "Ollama opens its port before the model is loaded (D2), so our entrypoint preloads the model "
            "and only then exposes port 8080; the probe passing means the model is in GPU memory"
        ),
    ),
    "vllm": Engine(
        name="vllm",
        kv_types=("auto", "fp8"),
        default_kv="fp8",
        default_memory_fraction=0.90,
        max_parallel_default=256,
        init_seconds=45,
        init_seconds_per_b_params=4.5,
        init_source=(
            "vLLM V1 init (torch.compile, profiling, CUDA graphs) after the weights: 44-81 s typical for 7-8B, "
            "126-468 s for very large models (llm-sizing §5); 45 s + 4.5 s per billion parameters runs through "
            "the upper end at 8B (81 s) and inside the large-model range at 27-70B (168-360 s); Google's "
            "RTX PRO 6000 vLLM codelab allows 480 s for a 27B start"
        ),
        readiness_path="/health",
        readiness_note="vLLM's API server binds only after weights, KV pool and CUDA graphs are ready",
    ),
}

LLAMA_CPP_N_UBATCH = 512
LLAMA_CPP_CTX_PAD = 256
VLLM_BLOCK = 16
VLLM_DEFAULT_BATCHED_TOKENS = 2048
"""vLLM's ``max_num_batched_tokens`` for ``vllm serve`` on GPUs under 70 GiB (and A100s);
``EngineArgs.get_batch_defaults`` in vllm/engine/arg_utils.py."""
VLLM_LARGE_GPU_BATCHED_TOKENS = 8192
"""The same default on GPUs with ≥ 70 GiB (H100, RTX PRO 6000 …)."""
VLLM_LARGE_GPU_BYTES = 70 * GIB

Version = tuple[int, int, int]

VLLM_V1_SINCE: Version = (0, 8, 0)
"""V1 engine (torch.compile inside the memory profile) is the default from v0.8.0."""
VLLM_GRAPHS_PROFILED_SINCE: Version = (0, 21, 0)
"""CUDA-graph memory is estimated and taken out of the KV pool from v0.21.0 ("CUDA graph memory profiling
is enabled (default since v0.21.0)", vllm-project/vllm#46462); before, graphs came out of the headroom."""
VLLM_SMALL_SAMPLER_SINCE: Version = (0, 30, 0)
"""From the evidence: v0.30.0 profiles 256 sequences without the 38-40 B/(sequence × vocabulary entry)
sampler peak that every earlier row shows (docs/sizing-evidence.md)."""
VLLM_KV_CACHE_MEMORY_SINCE: Version = (0, 11, 0)
"""``--kv-cache-memory`` / ``kv_cache_memory_bytes`` came with vllm-project/vllm PR #21489 ("Allow users to
specify kv cache memory size", July 2025); v0.11.0 is the first release we could confirm it in (its start-up
log advises ``--kv-cache-memory=…``), so older or unknown versions get ``--gpu-memory-utilization`` only."""

# --- the start-up profile, fitted on sizing/data/vllm_evidence.csv (docs/sizing-evidence.md) ---------------
VLLM_NON_TORCH_BYTES = int(0.3 * GIB)
"""cuBLAS/NCCL and other allocations outside PyTorch inside the budget (0.01-0.35 GiB printed; fitted 0.3)."""
VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT = 2
"""Peak activation of one profile step ≈ tokens × 2 B × (3 × intermediate + 4 × hidden): the gate/up
output, the activated product and four hidden-sized buffers in BF16 (V0 rows: 0.92-1.00 of the printed peak)."""
VLLM_SAMPLER_BYTES_PER_LOGIT = 40
"""Sampler warm-up peak per (sequence × vocabulary entry): 38.4-39.3 B printed from v0.6.5 to v0.29
(fp32 logits, sort values and int64 indices …)."""
VLLM_SAMPLER_BYTES_PER_LOGIT_030 = 8
"""From v0.30: no sampler peak seen at 256 sequences; 8 B (fp32 logits + probabilities) is kept as a floor
(the fit is indifferent between 0 and 8)."""
VLLM_COLD_COMPILE_BYTES = int(1.4 * GIB)
"""V1 compiles the model inside the memory profile on an empty torch.compile cache: the first start loses
0.79-1.32 GiB more than a warm one (v0.30 rows; fitted 1.4 GiB on top of the step's activation). Every
Cloud Run instance starts cold."""
VLLM_GRAPH_BASE_BYTES = int(0.2 * GIB)
VLLM_GRAPH_PER_SEQ_BYTES = int(0.4 * GIB)
"""From v0.21 the estimated CUDA-graph pool is deducted: 0.2 GiB + 0.4 GiB × min(max_num_seqs, 512) / 512
(estimates printed 0.27-0.73 GiB)."""
VLLM_WEIGHTS_EXTRA = 0.0
"""vLLM's "Model loading took" exceeds parameters × bytes by at most 0.07 GiB in the evidence (RoPE caches);
the margin covers it, so no separate term (kept as a knob)."""
VLLM_MARGIN_MIN_BYTES = 256 * MIB
VLLM_MARGIN_FRACTION = 0.0
"""Safety margin: 0.25 GiB. Leave-one-out over the evidence (refit every constant without a row, predict
that row) over-commits by at most 0.09 GiB (Qwen3-4B's cold start); the margin is ~2.7× that."""


# --- gcs-stream: vLLM's Run:ai Model Streamer (docs.vllm.ai/en/stable/models/extensions/runai_model_streamer/) ---
STREAMED_MODEL_PREFIX = "gs://"
"""A ``--model`` in Cloud Storage: vLLM reads it with ``--load-format runai_streamer`` (the gcs-stream method)."""
RUNAI_STREAMER_CONCURRENCY = 16
"""``concurrency`` in ``--model-loader-extra-config``: streamer threads / GCS clients reading at once (vLLM sets
RUNAI_STREAMER_CONCURRENCY from it). The streamer's own default is 8 for object storage
(run-ai/runai-model-streamer docs/src/env-vars.md); 16 is the value vLLM's docs use."""
RUNAI_STREAMER_MEMORY_LIMIT_BYTES = 5 * GIB
"""``memory_limit``: the streamer's CPU staging buffer (RUNAI_STREAMER_MEMORY_LIMIT). Its default is 40 GB when
not distributed (env-vars.md), which would count against the instance's memory; 5 GiB (vLLM's docs example,
5368709120) holds any single tensor of the catalogue models and fits beside the engine on a 16 GiB L4 instance."""


def streamer_extra_config() -> str:
    """The JSON vLLM gets as ``--model-loader-extra-config`` for the gcs-stream method."""
    return json.dumps(
        {"concurrency": RUNAI_STREAMER_CONCURRENCY, "memory_limit": RUNAI_STREAMER_MEMORY_LIMIT_BYTES},
        separators=(",", ":"),
    )


def pad(n: int, to: int) -> int:
    return -(-n // to) * to


def kv_bytes_per_token_full(spec: ModelSpec, kv_type: str) -> int:
    """Bytes one more token of context costs across the full-attention layers."""
    return sum(_layer_row_bytes(spec, i, kv_type) for i in range(spec.n_layers) if spec.layer_windows[i] is None)


def _layer_row_bytes(spec: ModelSpec, layer: int, kv_type: str) -> int:
    k, v = spec.kv_elements_per_token(layer)
    return kv_row_bytes(kv_type, k) + (kv_row_bytes(kv_type, v) if v else 0)


def kv_cells(
    engine: str, spec: ModelSpec, context: int, layer: int, batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS
) -> int:
    """KV cells one sequence holds in ``layer`` at ``context`` tokens, as the engine allocates them.

    ``batched_tokens`` is vLLM's ``--max-num-batched-tokens``: its hybrid allocator keeps, per sliding-window
    layer, ``window − 1 + max_num_batched_tokens`` tokens (a whole chunk may arrive at once) plus one block
    because the window need not start on a block boundary (``SlidingWindowSpec.max_memory_usage_bytes``).
    """
    window = spec.layer_windows[layer]
    if engine in ("llama.cpp", "ollama"):
        n_ctx_seq = pad(context, LLAMA_CPP_CTX_PAD)
        if window is None:
            return n_ctx_seq
        # llama-kv-cache-iswa.cpp: size_swa = PAD(min(size_base, n_swa + n_ubatch), 256) per stream
        return pad(min(n_ctx_seq, window + LLAMA_CPP_N_UBATCH), LLAMA_CPP_CTX_PAD)
    tokens = pad(context, VLLM_BLOCK)
    if window is None:
        return tokens
    return pad(min(window - 1 + batched_tokens, context), VLLM_BLOCK) + VLLM_BLOCK


def kv_bytes_per_sequence(
    engine: str,
    spec: ModelSpec,
    context: int,
    kv_type: str,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
) -> int:
    """KV bytes one sequence of ``context`` tokens reserves (all layers, engine padding included)."""
    return sum(
        kv_cells(engine, spec, context, i, batched_tokens) * _layer_row_bytes(spec, i, kv_type)
        for i in range(spec.n_layers)
    )


def parse_vllm_version(text: str | None) -> Version | None:
    """``"v0.14.1"``, ``"0.8.5.post1"``, ``"0.10.2rc1.dev73+g…"`` → (major, minor, patch); None when the
    string names no release (e.g. a Google DLC tag such as ``20250312_0916_RC01``)."""
    if not text:
        return None
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def vllm_default_batched_tokens(cuda_total_bytes: int) -> int:
    """vLLM's own ``vllm serve`` default for ``--max-num-batched-tokens`` on a GPU of this size."""
    return VLLM_LARGE_GPU_BATCHED_TOKENS if cuda_total_bytes >= VLLM_LARGE_GPU_BYTES else VLLM_DEFAULT_BATCHED_TOKENS


def supports_kv_cache_memory(version: Version | None) -> bool:
    """Whether ``--kv-cache-memory`` can be rendered for this vLLM version (unknown: no)."""
    return version is not None and version >= VLLM_KV_CACHE_MEMORY_SINCE


def intermediate_size_estimate(spec: ModelSpec) -> int:
    """The MLP width a spec implies: (params − embeddings − attention) / (3 × layers × hidden).

    ModelSpec carries no ``intermediate_size``; for MoE models this counts every expert, which over-states
    the per-token activation (conservative).
    """
    embed = spec.vocab_size * spec.hidden_size * (1 if spec.tied_embeddings else 2)
    attention = attention_params(spec)
    rest = spec.n_params - embed - attention
    return max(spec.hidden_size, rest // (3 * spec.n_layers * spec.hidden_size))


def attention_params(spec: ModelSpec) -> int:
    """Parameters of the Q, K, V and O projections over all layers (0 for MLA specs: not modelled)."""
    if spec.is_mla:
        return 0
    q = spec.n_heads * spec.head_dim_k
    o = spec.n_heads * spec.head_dim_v
    return sum(spec.hidden_size * (q + o + kv * (spec.head_dim_k + spec.head_dim_v)) for kv in spec.kv_heads)


@dataclass(frozen=True)
class VllmProfile:
    """What vLLM's start-up memory profile depends on (all rendered as flags, R6)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    version: Version | None = None
    cold_compile: bool = True
    """No torch.compile cache at start (every new Cloud Run instance)."""


@dataclass(frozen=True)
class VllmOverhead:
    """The parts of vLLM's budget that are not weights or KV cache, as its start-up log prints them."""

    band: str
    non_torch: int
    activation: int
    cudagraph: int
    weights_extra: int
    margin: int

    @property
    def total(self) -> int:
        return self.non_torch + self.activation + self.cudagraph + self.weights_extra + self.margin

    def describe(self) -> str:
        def g(n: int) -> str:
            return f"{n / GIB:.2f}"

        extra = f" + loading buffers {g(self.weights_extra)}" if self.weights_extra else ""
        return (
            f"{g(self.total)} GiB = non-torch {g(self.non_torch)} + peak activation {g(self.activation)} + "
            f"CUDA graphs {g(self.cudagraph)}{extra} + safety margin {g(self.margin)} (vLLM {self.band})"
        )


def _vllm_band_overhead(
    band: str,
    *,
    hidden: int,
    intermediate: int,
    vocab: int,
    weights_bytes: int,
    budget_bytes: int,
    profile: VllmProfile,
) -> VllmOverhead:
    seqs, tokens = profile.max_num_seqs, profile.max_num_batched_tokens
    forward = tokens * VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT * (3 * intermediate + 4 * hidden)
    per_logit = VLLM_SAMPLER_BYTES_PER_LOGIT_030 if band == ">=0.30" else VLLM_SAMPLER_BYTES_PER_LOGIT
    sampler = seqs * vocab * per_logit
    compile_extra = VLLM_COLD_COMPILE_BYTES if band != "V0" and profile.cold_compile else 0
    activation = max(forward + compile_extra, sampler)
    graphs = 0
    if band in ("0.21-0.29", ">=0.30"):
        graphs = VLLM_GRAPH_BASE_BYTES + VLLM_GRAPH_PER_SEQ_BYTES * min(seqs, 512) // 512
    return VllmOverhead(
        band=band,
        non_torch=VLLM_NON_TORCH_BYTES,
        activation=int(activation),
        cudagraph=int(graphs),
        weights_extra=int(weights_bytes * VLLM_WEIGHTS_EXTRA),
        margin=max(VLLM_MARGIN_MIN_BYTES, int(budget_bytes * VLLM_MARGIN_FRACTION)),
    )


def vllm_band(version: Version | None) -> list[str]:
    """The profile bands a version falls in; an unknown version could be any of them."""
    if version is None:
        return ["V0", "0.8-0.20", "0.21-0.29", ">=0.30"]
    if version < VLLM_V1_SINCE:
        return ["V0"]
    if version < VLLM_GRAPHS_PROFILED_SINCE:
        return ["0.8-0.20"]
    if version < VLLM_SMALL_SAMPLER_SINCE:
        return ["0.21-0.29"]
    return [">=0.30"]


def vllm_overhead(
    *,
    hidden: int,
    intermediate: int,
    vocab: int,
    weights_bytes: int,
    budget_bytes: int,
    profile: VllmProfile,
    band: str | None = None,
) -> VllmOverhead:
    """vLLM's non-KV, non-weight memory for this profile; the largest over the bands the version may be in."""
    bands = [band] if band else vllm_band(profile.version)
    parts = [
        _vllm_band_overhead(
            b,
            hidden=hidden,
            intermediate=intermediate,
            vocab=vocab,
            weights_bytes=weights_bytes,
            budget_bytes=budget_bytes,
            profile=profile,
        )
        for b in bands
    ]
    worst = max(parts, key=lambda o: o.total)
    if len(parts) > 1:
        return VllmOverhead(
            band="version unknown: the largest of every band",
            non_torch=worst.non_torch,
            activation=worst.activation,
            cudagraph=worst.cudagraph,
            weights_extra=worst.weights_extra,
            margin=worst.margin,
        )
    return worst


def runtime_overhead_bytes(
    engine: str,
    spec: ModelSpec,
    *,
    profile: VllmProfile | None = None,
    weights_bytes: int = 0,
    budget_bytes: int = 0,
) -> int:
    """GPU memory the engine needs besides weights and KV (CUDA context, graph/activations).

    llama.cpp/Ollama: CUDA context (~0.4 GiB) + the compute buffer, which with flash attention
    is dominated by one micro-batch of logits and hidden states (0.1-0.6 GiB, llm-sizing §1.4).
    vLLM: :func:`vllm_overhead` (default profile: 256 sequences, 2048 batched tokens, version unknown).
    """
    if engine in ("llama.cpp", "ollama"):
        compute = LLAMA_CPP_N_UBATCH * 4 * (spec.vocab_size + 16 * spec.hidden_size)
        return int(0.4 * GIB) + compute
    return vllm_overhead(
        hidden=spec.hidden_size,
        intermediate=intermediate_size_estimate(spec),
        vocab=spec.vocab_size,
        weights_bytes=weights_bytes,
        budget_bytes=budget_bytes,
        profile=profile or VllmProfile(max_num_seqs=256, max_num_batched_tokens=VLLM_DEFAULT_BATCHED_TOKENS),
    ).total


def render_engine_config(
    engine: str,
    *,
    model_path: str,
    context: int,
    parallel: int,
    kv_type: str,
    memory_fraction: float,
    vram_bytes: int,
    slot_save_path: str | None = None,
    max_num_batched_tokens: int | None = None,
    kv_cache_memory_bytes: int | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The exact command-line args and env vars the engine gets (R6: its concurrency = ours)."""
    if engine == "llama.cpp":
        args = [
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "-m",
            model_path,
            "-c",
            str(context * parallel),
            "-np",
            str(parallel),
            "-ngl",
            "999",
            "-fa",
            "on",
            "-ctk",
            kv_type,
            "-ctv",
            kv_type,
        ]
        if slot_save_path:
            args += ["--slot-save-path", slot_save_path]
        return args, {}
    if engine == "ollama":
        env = {
            # Ollama listens privately; container/ollama/entrypoint.sh preloads the model and only then
            # opens PORT (D2: Ollama's own port is up before the model is in GPU memory).
            "OLLAMA_HOST": f"127.0.0.1:{OLLAMA_INTERNAL_PORT}",
            "OLLAMA_NUM_PARALLEL": str(parallel),
            "OLLAMA_CONTEXT_LENGTH": str(context),
            "OLLAMA_KV_CACHE_TYPE": kv_type,
            "OLLAMA_FLASH_ATTENTION": "1",
            "OLLAMA_KEEP_ALIVE": "-1",
            "OLLAMA_MAX_LOADED_MODELS": "1",
            "OLLAMA_GPU_OVERHEAD": str(int(vram_bytes * (1 - memory_fraction))),
            "OLLAMA_MODEL": model_path,
        }
        return [], env
    args = [
        "--model",
        model_path,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--max-model-len",
        str(context),
        "--max-num-seqs",
        str(parallel),
        "--gpu-memory-utilization",
        f"{memory_fraction:.2f}",
        "--kv-cache-dtype",
        kv_type,
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
        "--max-num-batched-tokens",
        str(max_num_batched_tokens or VLLM_DEFAULT_BATCHED_TOKENS),
    ]
    if model_path.startswith(STREAMED_MODEL_PREFIX):
        # gcs-stream: the Run:ai Model Streamer reads the safetensors from Cloud Storage into GPU memory.
        args += ["--load-format", "runai_streamer", "--model-loader-extra-config", streamer_extra_config()]
    if kv_cache_memory_bytes is not None:
        # vLLM ≥ 0.11: the KV pool is exactly the plan's number, not what its profile happens to find.
        args += ["--kv-cache-memory", str(kv_cache_memory_bytes)]
    return args, {}


def engine_parallel_from_config(engine: str, args: list[str], env: dict[str, str]) -> int:
    """Read back the concurrency an engine was configured with (checks R6 agreement)."""
    if engine == "ollama":
        return int(env["OLLAMA_NUM_PARALLEL"])
    flag = "-np" if engine == "llama.cpp" else "--max-num-seqs"
    return int(args[args.index(flag) + 1])


def engine_memory_from_config(engine: str, args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Read back every flag the engine's memory depends on (R6: the plan and the engine agree).

    vLLM: ``max_model_len``, ``max_num_seqs``, ``max_num_batched_tokens``, ``gpu_memory_utilization`` and,
    when rendered, ``kv_cache_memory``. llama.cpp: ``ctx_size`` (total cells) and ``parallel``. Ollama:
    ``context_length`` (per request) and ``num_parallel``.
    """
    if engine == "ollama":
        return {
            "context_length": int(env["OLLAMA_CONTEXT_LENGTH"]),
            "num_parallel": int(env["OLLAMA_NUM_PARALLEL"]),
        }

    def flag(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args else None

    if engine == "llama.cpp":
        return {"ctx_size": int(flag("-c") or 0), "parallel": int(flag("-np") or 0)}
    out: dict[str, float] = {
        "max_model_len": int(flag("--max-model-len") or 0),
        "max_num_seqs": int(flag("--max-num-seqs") or 0),
        "max_num_batched_tokens": int(flag("--max-num-batched-tokens") or VLLM_DEFAULT_BATCHED_TOKENS),
        "gpu_memory_utilization": float(flag("--gpu-memory-utilization") or 0.9),
    }
    kv = flag("--kv-cache-memory")
    if kv is not None:
        out["kv_cache_memory"] = int(kv)
    return out


def seconds_to_load(bytes_: int, bytes_per_s: float) -> float:
    return ceil(bytes_ / bytes_per_s * 10) / 10
