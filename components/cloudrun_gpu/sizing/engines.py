"""Serving-engine semantics: how each engine splits context, caches KV, and is configured.

The three engines differ in ways that change the memory maths (R1, R4, R5, R6):

- llama.cpp ``llama-server``: ``-c`` is the *total* KV cells, split evenly across ``-np``
  slots, each slot padded to 256 cells; sliding-window layers keep only
  ``window + n_ubatch`` cells per slot; a quantised V cache needs flash attention.
- Ollama runs the llama.cpp runner with ``--ctx-size = OLLAMA_CONTEXT_LENGTH × OLLAMA_NUM_PARALLEL``;
  ``OLLAMA_KV_CACHE_TYPE`` is ignored unless ``OLLAMA_FLASH_ATTENTION=1``.
- vLLM pages KV in 16-token blocks inside ``--gpu-memory-utilization × VRAM``; ``--max-num-seqs``
  caps concurrent sequences; ``--kv-cache-dtype fp8`` halves the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from cloudrun_gpu.limits import GIB
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
        init_seconds=60,
        init_source="vLLM V1 init (torch.compile, profiling, CUDA graphs) 44-81 s typical (llm-sizing §5)",
        readiness_path="/health",
        readiness_note="vLLM's API server binds only after weights, KV pool and CUDA graphs are ready",
    ),
}

LLAMA_CPP_N_UBATCH = 512
LLAMA_CPP_CTX_PAD = 256
VLLM_BLOCK = 16


def pad(n: int, to: int) -> int:
    return -(-n // to) * to


def kv_bytes_per_token_full(spec: ModelSpec, kv_type: str) -> int:
    """Bytes one more token of context costs across the full-attention layers."""
    return sum(_layer_row_bytes(spec, i, kv_type) for i in range(spec.n_layers) if spec.layer_windows[i] is None)


def _layer_row_bytes(spec: ModelSpec, layer: int, kv_type: str) -> int:
    k, v = spec.kv_elements_per_token(layer)
    return kv_row_bytes(kv_type, k) + (kv_row_bytes(kv_type, v) if v else 0)


def kv_cells(engine: str, spec: ModelSpec, context: int, layer: int) -> int:
    """KV cells one sequence holds in ``layer`` at ``context`` tokens, as the engine allocates them."""
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
    return min(tokens, pad(window + VLLM_BLOCK, VLLM_BLOCK))


def kv_bytes_per_sequence(engine: str, spec: ModelSpec, context: int, kv_type: str) -> int:
    """KV bytes one sequence of ``context`` tokens reserves (all layers, engine padding included)."""
    return sum(kv_cells(engine, spec, context, i) * _layer_row_bytes(spec, i, kv_type) for i in range(spec.n_layers))


def runtime_overhead_bytes(engine: str, spec: ModelSpec) -> int:
    """GPU memory the engine needs besides weights and KV (CUDA context, graph/activations).

    llama.cpp/Ollama: CUDA context (~0.4 GiB) + the compute buffer, which with flash attention
    is dominated by one micro-batch of logits and hidden states (0.1-0.6 GiB, llm-sizing §1.4).
    vLLM: activation + non-torch + CUDA-graph memory, 1.5-2.5 GiB for ≤14 B models (§1.3),
    growing with model size.
    """
    if engine in ("llama.cpp", "ollama"):
        compute = LLAMA_CPP_N_UBATCH * 4 * (spec.vocab_size + 16 * spec.hidden_size)
        return int(0.4 * GIB) + compute
    params_b = spec.n_params / 1e9
    return int(min(6.0, 1.5 + 0.04 * params_b) * GIB)


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
    ]
    return args, {}


def engine_parallel_from_config(engine: str, args: list[str], env: dict[str, str]) -> int:
    """Read back the concurrency an engine was configured with (checks R6 agreement)."""
    if engine == "ollama":
        return int(env["OLLAMA_NUM_PARALLEL"])
    flag = "-np" if engine == "llama.cpp" else "--max-num-seqs"
    return int(args[args.index(flag) + 1])


def seconds_to_load(bytes_: int, bytes_per_s: float) -> float:
    return ceil(bytes_ / bytes_per_s * 10) / 10
