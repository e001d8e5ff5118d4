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
    readiness_path: str
    readiness_note: str


ENGINES: dict[str, Engine] = {
    "llama.cpp": Engine(
        name="llama.cpp",
        kv_types=("f16", "bf16", "q8_0", "q4_0"),
        default_kv="q8_0",
        default_memory_fraction=0.95,
        max_parallel_default=32,
        readiness_path="/health",
        readiness_note="llama-server answers 503 on /health until the model is loaded, then 200",
    ),
    "ollama": Engine(
        name="ollama",
        kv_types=("f16", "q8_0", "q4_0"),
        default_kv="q8_0",
        default_memory_fraction=0.95,
        max_parallel_default=32,
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
        readiness_path="/health",
        readiness_note="vLLM's API server binds only after weights, KV pool and CUDA graphs are ready",
    ),
}

LLAMA_CPP_N_UBATCH = 512
LLAMA_CPP_CTX_PAD = 256

ENGINE_MAX_SEQUENCES: dict[str, int | None] = {"llama.cpp": 256, "ollama": 256, "vllm": None}
"""Parallel sequences each engine accepts. llama.cpp: ``#define LLAMA_MAX_SEQ 256`` (src/llama-cparams.h), and
``llama_init_from_model`` refuses more ("n_seq_max must be <= 256"); Ollama hands ``OLLAMA_NUM_PARALLEL`` to that
runner as ``--parallel``. vLLM: ``--max-num-seqs`` is any positive integer (its serve default is 1024 on GPUs
with ≥ 70 GiB — the H100 rows of sizing/data/vllm_evidence.csv ran 1024), so memory is the only bound."""

# --- Ollama, at the version the image pins (images.py ``OLLAMA_TAG``; tests/test_sizing.py checks they agree) --
OLLAMA_PINNED_VERSION = "0.12.3"
"""Every rule below was read in ollama/ollama at tag v0.12.3; bumping the image means re-reading them."""
OLLAMA_LLAMA_SERVER_SINCE: tuple[int, int, int] = (0, 30, 0)
"""From Ollama 0.30 every GGUF model runs on an upstream llama-server ("runner: Remove CGO engines, use
llama-server exclusively for GGML models", ollama/ollama#16031; Ollama 0.30.0 logs "error starting llama-server"
when the binary is missing, ollama/ollama#16417, while 0.24 ran the same models on its own runners). Its caches
are then llama.cpp's: a sliding layer keeps ``PAD(min(n_ctx_seq, n_swa + n_ubatch), 256)`` cells a sequence
(:func:`kv_cells` for llama.cpp, llama-kv-cache-iswa.cpp), not 0.12.3's full-size (llama runner) or
``parallel × window + batch`` (Ollama engine) caches. Ollama's own layer-scheduler estimate of 0.12.3 is not
applied there (not read for 0.30). Releases between 0.12.3 and 0.30 were not read and are refused."""


def ollama_on_llama_server(version_text: str | None) -> bool:
    """Whether this Ollama release hands GGUF models to llama-server (:data:`OLLAMA_LLAMA_SERVER_SINCE`)."""
    version = parse_vllm_version(version_text)
    return version is not None and version >= OLLAMA_LLAMA_SERVER_SINCE


OLLAMA_NUM_BATCH = 512
"""``NumBatch: 512`` (api/types.go:835 at v0.12.3), capped by the context: ``opts.NumBatch = min(opts.NumBatch,
opts.NumCtx)`` (llm/server.go:175). It is the ``maxBatch`` the Ollama engine adds to a sliding-window cache and
the ``n_batch`` the llama.cpp runner gets (n_ubatch stays llama.cpp's default 512, llama-context.cpp:2243)."""
OLLAMA_CACHE_PADDING = 256
"""The Ollama engine pads each cache's cell count to 256 with flash attention (ml/backend/ggml/ggml.go:693,
``CachePadding: 256``; 32 without it) — we render ``OLLAMA_FLASH_ATTENTION=1``, and 256 is the larger."""
OLLAMA_ENGINE_ARCHITECTURES = (
    "gemma3n",
    "gemma3",
    "mistral3",
    "qwen3",
    "llama4",
    "mllama",
    "qwen25vl",
    "gptoss",
)
"""Architectures Ollama v0.12.3 always runs on its own engine (``OllamaEngineRequired``, fs/ggml/ggml.go:241-253:
gemma3, gemma3n, mistral3, qwen3, qwen3moe, llama4, mllama, qwen25vl, gptoss/gpt-oss), matched on the
architecture name with non-alphanumerics dropped (``gpt-oss-20b`` → ``gptoss20b``). Everything else runs on the
llama.cpp runner (runner/llamarunner)."""
OLLAMA_SWA_MEMORY = {"gptoss": 4096}
"""Sliding-window cache kept per sequence when it differs from the window: gpt-oss uses
``kvcache.NewSWAMemCache(sliding_window, 4096, …)`` (model/models/gptoss/model.go:268)."""
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
VLLM_ENGINE_MODES = ("v0", "v1")
"""vLLM's two engines. V1 is opt-in (``VLLM_USE_V1=1``) before v0.8.0 and the default from it; V0 stays
selectable with ``VLLM_USE_V1=0`` until it was removed (v0.11). The start-up log names the one that ran:
``Initializing a V1 LLM engine (v0.7.3) with config`` / ``Initializing an LLM engine (v0.6.4)`` (V0). The mode,
not only the version number, decides how the memory profile runs."""
VLLM_GRAPHS_PROFILED_SINCE: Version = (0, 21, 0)
"""CUDA-graph memory is estimated and taken out of the KV pool from v0.21.0 ("CUDA graph memory profiling
is enabled (default since v0.21.0)", vllm-project/vllm#46462); before, graphs came out of the headroom."""
VLLM_SMALL_SAMPLER_SINCE: Version = (0, 30, 0)
"""From the evidence: v0.30.0 profiles 256 sequences without the 38-40 B/(sequence × vocabulary entry)
sampler peak that every earlier row shows (docs/sizing-evidence.md)."""
VLLM_HYBRID_KV_SINCE: Version = (0, 10, 0)
"""Sliding-window layers keep only their window from here on. Before the hybrid KV cache manager (RFC
vllm-project/vllm#11382, split out of #16101 in spring 2025), vLLM V1 "for models with global attention + sliding
window attention, still regard[s them] as global-attention-only" in the KV cache manager (#14097, March 2025),
and V0 caches every layer at full length (#6323). v0.10.0 (July 2025) is the first release we count on; older
and unknown versions (the L4's Google DLC tag) are sized with every layer at full context."""
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
"""V0's sampler warm-up peak per (sequence × vocabulary entry): 39.3 B printed by v0.6.5 (row v0-a100-phi4-gptq),
fitted; V0's sampler was not read. V1's native sampler is derived from the source instead
(:func:`vllm_sort_sampler_bytes_per_logit`, :data:`VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT`)."""
VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT = 14
"""The sampler warm-up when vLLM samples with FlashInfer (its log: ``Using FlashInfer for top-p & top-k sampling.``,
vllm/v1/sample/ops/topk_topp_sampler.py:41-51 of the v0.10.1.1 sdist). ``_dummy_sampler_run`` keeps the lm_head's
bf16 logits (2 B) while ``Sampler.forward`` makes ``logits.to(torch.float32)`` (4 B, vllm/v1/sample/sampler.py:47)
and ``forward_cuda`` hands them to ``flashinfer_sample`` (topk_topp_sampler.py:87-109, 262-298), whose
``top_k_top_p_sampling_from_logits`` builds ``masked_logits = top_k_mask_logits(logits, top_k)`` and
``probs = torch.softmax(masked_logits, dim=-1)`` (4 + 4 B; flashinfer/sampling.py:982-985 of the
flashinfer-python 0.2.8 sdist): 14 B. The PyTorch-native path (``FlashInfer is not available. Falling back to the
PyTorch-native implementation``) sorts the logits: :func:`vllm_sort_sampler_bytes_per_logit`. The plan does not
know which one the image runs, so it charges the native one; the evidence rows that print the FlashInfer line are
checked with 14 B (vllm_evidence.csv ``sampler``)."""


def vllm_sort_sampler_bytes_per_logit(seqs: int) -> int:
    """V1's native sampler before v0.17 (:data:`VLLM_TRITON_TOP_K_TOP_P_SINCE`) sorts the logits:
    ``logits_sort, logits_idx = logits.sort(dim=-1, descending=False)`` (``apply_top_k_top_p``,
    vllm/v1/sample/ops/topk_topp_sampler.py:183 of the v0.11.0 sdist, :189 of v0.10.1.1). Its peak is inside that
    sort, beside the lm_head's bf16 logits (2 B) and their fp32 copy (4 B, sampler.py): PyTorch's CUDA sort
    (aten/src/ATen/native/cuda/SortStable.cu ``do_launch_stable_sort_kernel``) writes fp32 values (4 B) and int64
    indices (8 B) and, by the number of rows,

    - ≥ 128 rows: ``segmented_sort_pairs`` fills ``reverse_indices`` (int64, 8 B) and calls cub's
      ``DeviceSegmentedRadixSort::SortPairs``, whose temporary storage holds an alternate copy of the keys and of
      the values (4 + 8 B) — 38 B a logit;
    - 2-127 rows: ``segmented_sort_pairs_by_full_sort`` allocates two int2 (index, segment) arrays (8 + 8 B) and
      ``radix_sort_pairs`` with ``keys_out = nullptr`` allocates the sorted keys (4 B, aten/src/ATen/cuda/cub.cuh)
      plus cub's alternate keys and values (4 + 8 B) — 50 B;
    - 1 row: ``segmented_sort_large_segments`` (one row of int64 indices, cub's 4 + 8 B) — 30 B.

    The H100 rows print 38.4-38.9 B at 1,024 rows: 38 B plus the dummy run's hidden states, which are still alive
    (``del hidden_states, output`` after the sampler, gpu_model_runner.py:3392-3401 of v0.11.0), leaves ~0.05 GiB."""
    if seqs >= 128:
        return 2 + 4 + 4 + 8 + 8 + 4 + 8
    if seqs > 1:
        return 2 + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 8
    return 2 + 4 + 4 + 8 + 4 + 8


VLLM_MOE_WORKSPACE_KEPT_SINCE: Version = (0, 14, 0)
"""From here the fused-MoE workspace outlives the forward and is still allocated during the sampler warm-up
(:func:`vllm_moe_workspace_bytes`): v0.14.0 and v0.14.1 run unquantized experts through
``mk.FusedMoEModularKernel(…, TritonExperts(…))`` (fused_moe/unquantized_fused_moe_method.py:281-286 of v0.14.1),
whose buffers come from the ``WorkspaceManager`` (modular_kernel.py:818-866). v0.11.0, v0.12.0 and v0.13.0 call the
``fused_experts`` function (fused_moe/layer.py:575-620 of v0.11.0; unquantized_fused_moe_method.py:382 of v0.12.0,
:325 of v0.13.0) and v0.10.1.1's modular kernel takes ``torch.empty`` buffers per call (modular_kernel.py:499-502),
all freed after the step. MXFP4 on the Triton kernel keeps none until v0.19, where it too goes through the modular
kernel (fused_moe/oracle/mxfp4.py): v0.14.1 calls ``triton_kernel_moe_forward`` (quantization/mxfp4.py:1060-1076);
v0.17-v0.18 were not read and are taken as keeping it."""
VLLM_MXFP4_TRITON_MODULAR_SINCE: Version = (0, 19, 0)


VLLM_TRITON_TOP_K_TOP_P_SINCE: Version = (0, 17, 0)
"""From v0.17.0 the PyTorch-native sampler no longer sorts: ``apply_top_k_top_p`` hands any batch of 8 or more rows
to ``apply_top_k_top_p_triton`` (``if HAS_TRITON and logits.shape[0] >= 8``, vllm/v1/sample/ops/topk_topp_sampler.py:251
of the v0.17.0 sdist; absent from v0.16.0), which masks the logits in place with a scratch buffer of at most one row
per SM (``buffer = logits.new_empty((size, vocab_size))``, topk_topp_triton.py:1000); FlashInfer's sampler is opt-in
there ("available but disabled by default"). The warm-up then holds the lm_head's bf16 logits (2 B,
``_dummy_sampler_run``), their fp32 copy (``logits = logits.to(torch.float32)``, sampler.py:90),
``probs = logits.softmax(dim=-1, dtype=torch.float32)`` (topk_topp_sampler.py:112) and
``q = torch.empty_like(probs)`` (``random_sample``, :334): 14 B a logit (:data:`VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT`).
Alive beside them: the dummy run's hidden states (``profile_run`` deletes them only after the sampler,
``del hidden_states, output``, gpu_model_runner.py:5782-5793 of v0.19.0) and the fused-MoE workspace, which a
``WorkspaceManager`` keeps for the engine's life (:func:`vllm_moe_workspace_bytes`)."""
VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT = 2 + 4 + 4 + 4
"""The native sampler's warm-up from :data:`VLLM_TRITON_TOP_K_TOP_P_SINCE`: bf16 logits, fp32 logits, probabilities
and the exponential noise ``q``."""
VLLM_EARLY_V1_LOGIT_BYTES = 2
"""V1 before v0.8 (``VLLM_USE_V1=1`` on 0.7.x): ``profile_run`` runs ``self._dummy_run(self.max_num_tokens, …)``
then ``logits = self.model.compute_logits(hidden_states, None)`` with ``# TODO(woosuk): Consider the memory usage
of the sampler.`` — no sampler in the profile (vllm/v1/worker/gpu_model_runner.py:985-988 of the v0.7.0 and
v0.7.1 sdists, :1009-1012 of v0.7.2). ``compute_logits`` is ``LogitsProcessor._get_logits`` =
``lm_head.linear_method.apply(…)`` then ``logits[..., :org_vocab_size]`` (a view), in the model dtype
(vllm/model_executor/layers/logits_processor.py:91-115 of v0.7.2; the TP all-gather returns its input at one GPU,
vllm/distributed/parallel_state.py:383-384): 2 B a logit in bf16/fp16. The upcast
``logits = logits.to(torch.float32)`` is in the sampler (vllm/v1/sample/sampler.py:48-49 of v0.7.3), which the
0.7.x profile never calls. So 2 B, as the source does (the first pass charged 4 B to close one W8A8 log,
vllm#12569; with v0.7.0's serve defaults and the CUDA context its profile counts,
:data:`VLLM_EARLY_V1_CUDA_CONTEXT_BYTES`, that log is not over-committed, docs/sizing-evidence.md)."""
VLLM_V1_LOGITS_AT_SAMPLED_SINCE: Version = (0, 7, 3)
"""From v0.7.3 early V1's ``profile_run`` keeps only one hidden state per dummy request before the lm_head:
``hidden_states = hidden_states[logit_indices]`` with ``logit_indices = np.cumsum(num_scheduled_tokens) - 1`` over
``max_num_seqs`` requests (vllm/v1/worker/gpu_model_runner.py:1285-1306 of the v0.7.3 sdist), so the logits are
``max_num_seqs`` × vocabulary, not ``max_num_batched_tokens`` × vocabulary as in v0.7.0-v0.7.2."""
VLLM_EARLY_V1_CUDA_CONTEXT_BYTES = int(0.60 * GIB)
"""What early V1's profile also counts as "non-torch": the CUDA context and everything else already on the GPU.

V1 before vllm-project/vllm#19312 ("V1's memory profiling incorrectly counts memory used by other processes as
non_torch_allocations", June 2025) takes ``peak_memory = torch.cuda.memory_stats()["allocated_bytes.all.peak"]``
and adds ``non_torch_allocations = (mem_get_info()[1] - mem_get_info()[0]) - allocated_bytes.all.current`` measured
*device-wide* after ``empty_cache()``, with no baseline subtracted (vllm/v1/worker/gpu_worker.py:174-190 of the
v0.7.0 sdist; the same lines in 0.7.3, 0.8.0, 0.8.5 and 0.9.0). So the engine process's own CUDA context, created
before the profile, is charged inside the budget, and so is reserved memory the caching allocator cannot release
(``allocated_bytes.all.current`` "does not include the memory allocated from cudaMalloc but cannot be released",
vllm-project/vllm#11809). :data:`VLLM_NON_TORCH_BYTES` (0.3 GiB) was fitted on logs whose profiler subtracts a
start-up baseline (V0 from 0.6.5: ``memory_profiling(baseline_memory_in_bytes=total_gpu_memory -
self.init_gpu_memory, ...)``; V1 after #19312), i.e. the increase only, without the context. Its size is what
vLLM's own start-up line prints as used before anything is loaded: ``Free memory on device (78.68/79.19 GiB) on
startup`` (0.51 GiB, every vLLM 0.19.0 H100 row) and ``Free memory on device: 78.59/79.19 GiB`` (0.60 GiB, vLLM
0.11.0, row v011-h100-mistral-small-24b-16k, as its results file quotes it); the larger is charged. Both are later
torch/CUDA builds than 0.7.0's (torch 2.5.1), and other GPUs' contexts are not printed in the evidence, so the same
0.60 GiB is charged on every GPU. Not fitted to the early-V1 W8A8 log
(vllm#12569), which cannot separate it from the activation (docs/sizing-evidence.md). Fragmentation the allocator
cannot release is not modelled (no log prints it)."""
VLLM_FUSED_MOE_CHUNK = 64 * 1024
"""``VLLM_FUSED_MOE_CHUNK_SIZE`` (default ``64 * 1024``): ``fused_experts_impl`` processes at most this many tokens
at once (``M = min(num_tokens, CHUNK_SIZE)``, vllm/model_executor/layers/fused_moe/fused_moe.py), so its
workspace never grows past it."""
VLLM_SAMPLER_BYTES_PER_LOGIT_030 = 8
"""From v0.30: no sampler peak seen at 256 sequences; 8 B (fp32 logits + probabilities) is kept as a floor
(the fit is indifferent between 0 and 8)."""
VLLM_COLD_COMPILE_BYTES = int(1.4 * GIB)
"""V1 compiles the model inside the memory profile on an empty torch.compile cache: the first start loses
0.79-1.32 GiB more than a warm one (v0.30 rows; fitted 1.4 GiB on top of the step's activation). Every
Cloud Run instance starts cold."""
VLLM_NO_COLD_COMPILE_COST: tuple[Version, Version] = ((0, 10, 1), (0, 20, 0))
"""Releases whose first start was seen to cost no more than a later one, so :data:`VLLM_COLD_COMPILE_BYTES` is not
charged there: v0.10.1.1 left the same 0.55 GiB outside weights and KV on its first start ('Compiling a graph for
dynamic shape takes 58.25 s') as on a warm one ('Directly load the compiled graph(s) … from the cache'), rows
v010-a100-qwen2-7b-025-cold/-050-warm; v0.19.0's first starts ('Compiling a graph for compile range (1, 8192)')
peak at the sampler warm-up and its live buffers, as its warm start does (rows v019-h100-*). The allowance was
measured on v0.30.0 (0.79-1.32 GiB, cold vs warm); the source read (``gpu_worker.determine_available_memory`` of
0.19.0 and 0.30.0 both run ``profile_run`` inside the same ``memory_profiling``) does not show why, so releases
outside this range, and unknown ones, keep it."""
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


def ollama_engine_family(spec: ModelSpec) -> str | None:
    """The Ollama-engine architecture ``spec`` belongs to at the pinned version, or None for the llama.cpp runner."""
    name = re.sub(r"[^a-z0-9]", "", spec.architecture.lower())
    return next((a for a in OLLAMA_ENGINE_ARCHITECTURES if name.startswith(a)), None)


def kv_cells(
    engine: str,
    spec: ModelSpec,
    context: int,
    layer: int,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
    parallel: int = 1,
) -> int:
    """KV cells ``layer`` holds at ``context`` tokens per sequence, as the engine allocates them: per sequence for
    llama.cpp and vLLM, for all ``parallel`` sequences together for Ollama (its caches are shared). 0 for a layer
    that reuses an earlier layer's cache (:meth:`ModelSpec.owns_kv`).

    ``batched_tokens`` is vLLM's ``--max-num-batched-tokens``: its hybrid allocator keeps, per sliding-window
    layer, ``window − 1 + max_num_batched_tokens`` tokens (a whole chunk may arrive at once) plus one block
    because the window need not start on a block boundary (``SlidingWindowSpec.max_memory_usage_bytes`` in
    vllm/v1/kv_cache_interface.py). vLLM's page-size unification can make the blocks of some layers larger than
    16 tokens; :func:`vllm_kv_layout` applies that, this function is the 16-token view of one layer.
    """
    if not spec.owns_kv(layer):
        return 0
    window = spec.layer_windows[layer]
    if engine == "ollama":
        return _ollama_cells(spec, context, window, parallel)
    if engine == "llama.cpp":
        n_ctx_seq = pad(context, LLAMA_CPP_CTX_PAD)
        if window is None:
            return n_ctx_seq
        # llama-kv-cache-iswa.cpp: size_swa = PAD(min(size_base, n_swa + n_ubatch), 256) per stream
        return pad(min(n_ctx_seq, window + LLAMA_CPP_N_UBATCH), LLAMA_CPP_CTX_PAD)
    tokens = pad(context, VLLM_BLOCK)
    if window is None:
        return tokens
    return pad(min(window - 1 + batched_tokens, context), VLLM_BLOCK) + VLLM_BLOCK


def _ollama_cells(spec: ModelSpec, context: int, window: int | None, parallel: int) -> int:
    """Cells one layer's cache holds for ``parallel`` sequences of ``context`` tokens in Ollama v0.12.3.

    - Ollama engine (:data:`OLLAMA_ENGINE_ARCHITECTURES`): ``kvcache.Causal.Init`` (kvcache/causal.go:157-177)
      sizes a full cache ``maxSequences × capacity`` and a sliding one ``maxSequences × swaMemorySize +
      maxBatch``, rounded up to the cache padding; ``capacity`` is the per-sequence context
      (runner/ollamarunner/cache.go:35, ``numCtx := kvSize / numSlots``), ``maxBatch`` the batch size
      (:data:`OLLAMA_NUM_BATCH`, ≤ the context), and a window memory larger than the capacity means a full cache.
    - llama.cpp runner: Ollama builds its context from ``llama_context_default_params()`` and never sets
      ``swa_full`` (llama/llama.go:107-120), whose default is ``true`` (llama-context.cpp:2269), so the sliding
      layers get the full-size cache (llama-kv-cache-unified-iswa.cpp: "when using full-size SWA cache, we set
      the SWA cache size to be equal to the base cache size"); each of the ``parallel`` streams holds the context
      padded to 256 (llama-model.cpp:18298-18304).
    """
    family = ollama_engine_family(spec)
    if family is None:
        return parallel * pad(context, LLAMA_CPP_CTX_PAD)
    full = pad(parallel * context, OLLAMA_CACHE_PADDING)
    if window is None:
        return full
    memory = OLLAMA_SWA_MEMORY.get(family, window)
    if memory > context:
        return full
    return pad(parallel * memory + min(OLLAMA_NUM_BATCH, context), OLLAMA_CACHE_PADDING)


OLLAMA_CUDA_MINIMUM_MEMORY = 457 * MIB
"""``cudaMinimumMemory`` (discover/gpu.go:41 at v0.12.3): kept free on every CUDA GPU by the layer scheduler."""
_OLLAMA_ESTIMATE_KV_BYTES = {"f16": 2.0, "q8_0": 1.0, "q4_0": 0.5}
"""``kvCacheBytesPerElement`` (fs/ggml/ggml.go:906-917): the estimator's bytes per cached element."""


def ollama_gpu_overhead(vram_bytes: int, memory_fraction: float) -> int:
    """``OLLAMA_GPU_OVERHEAD`` as rendered: the share of the GPU the plan reserves (R5), which Ollama's scheduler
    keeps free."""
    return int(vram_bytes * (1 - memory_fraction))


def _ollama_graph_family(spec: ModelSpec) -> str:
    name = re.sub(r"[^a-z0-9]", "", spec.architecture.lower())
    if name.startswith(("llama", "mistral", "mixtral")):
        return "llama"  # Mistral/Mixtral GGUFs are general.architecture "llama"
    if name.startswith("qwen2") or "distillqwen" in name:
        return "qwen2"
    if name.startswith("gemma"):
        return "gemma"
    return "default"


@dataclass(frozen=True)
class OllamaEstimate:
    """The parts of Ollama's ``offload to cuda`` log line (``memory.required.kv``, ``memory.graph.full``,
    ``memory.graph.partial``) that :func:`ollama_scheduler_estimate` adds up."""

    weights: int
    kv: int
    graph_full: int
    graph_partial: int
    layer_buffer: int

    @property
    def total(self) -> int:
        graph = max(self.graph_full, self.graph_partial)
        return self.weights + self.kv + graph + self.layer_buffer + OLLAMA_CUDA_MINIMUM_MEMORY


def ollama_scheduler_estimate(spec: ModelSpec, context: int, parallel: int, kv_type: str, weights_bytes: int) -> int:
    """:func:`ollama_estimate` in bytes; 0 for architectures on the Ollama engine."""
    est = ollama_estimate(spec, context, parallel, kv_type, weights_bytes)
    return est.total if est is not None else 0


def ollama_estimate(
    spec: ModelSpec, context: int, parallel: int, kv_type: str, weights_bytes: int
) -> OllamaEstimate | None:
    """What Ollama v0.12.3's layer scheduler requires on the GPU to keep every layer there, for architectures it
    runs on the llama.cpp runner (None for its own engine, which measures its real allocations instead).

    ``llamaServer.Load`` places layers with ``estimateGPULayers`` (llm/memory.go): the model stays fully on the
    GPU only if free memory exceeds ``OLLAMA_GPU_OVERHEAD`` + ``cudaMinimumMemory`` + one layer's buffer + every
    layer (weights + its KV estimate) + the output layer + ``max(graphPartialOffload, graphFullOffload)``;
    otherwise layers go to the CPU. ``GraphSize`` (fs/ggml/ggml.go:550-800) estimates the KV as ``context ×
    parallel × (key_length + value_length) × head_count_kv × bytes`` per layer and the graph per architecture
    (``llama``, ``qwen2``, the gemma family below; other architectures ``gqa × kvTotal / 6``), with
    ``batch = min(num_ctx, num_batch)``. Without flash attention support the graph is larger; we render
    ``OLLAMA_FLASH_ATTENTION=1``, which is also what makes Ollama honour a quantised KV type.
    """
    if ollama_engine_family(spec) is not None:
        return None
    ctx = context * parallel
    batch = min(context, OLLAMA_NUM_BATCH)
    e, v = spec.hidden_size, spec.vocab_size
    h = spec.n_heads
    owning_kv = [spec.kv_heads[i] for i in range(spec.n_layers)]
    hkv_max = max(max(owning_kv), 1)
    hkv_min = max(min(owning_kv), 1)
    ehk = spec.head_dim_k or e // h
    ehv = spec.head_dim_v or e // h
    eh = e // h
    per_elem = _OLLAMA_ESTIMATE_KV_BYTES.get(kv_type, 2.0)
    kv_total = sum(int(ctx * (ehk + ehv) * kv * per_elem) for kv in owning_kv)
    family = _ollama_graph_family(spec)
    if family == "llama":
        full = max(4 * batch * (1 + 4 * e + ctx * (1 + h)), 4 * batch * (e + v))
        partial = 4 * batch * e + max(
            4 * batch * (1 + e + max(ctx, e)) + e * e * 9 // 16 + 4 * ctx * (batch * h + eh * hkv_max),
            4 * batch * (e + v) + e * v * 105 // 128,
        )
    elif family == "qwen2":
        full = max(4 * batch * (e + v), 4 * batch * (1 + 2 * e + ctx + ctx * h))
        partial = max(
            4 * batch * (e + v) + e * v * 105 // 128,
            4 * (batch * (1 + 2 * e + ctx * (1 + h)) + e * (1 + ctx)),
        )
    elif family == "gemma":
        full = max(4 * batch * (e + v), 4 * batch * (2 + ctx + ctx * h + 2 * e + 2 * ehk * h))
        partial = max(
            4 * e * batch + e * v * 105 // 128 + 4 * v * batch,
            4 * batch * (2 * e + 1 + 2 * ehk * h + ctx + ctx * h) + 4 * ehk * ctx * 8 + e * ehk * h * 9 // 16,
        )
    else:
        partial = (h // hkv_min) * kv_total // 6
        full = partial
    layer_buffer = (weights_bytes + kv_total) // spec.n_layers
    return OllamaEstimate(weights_bytes, kv_total, full, partial, layer_buffer)


@dataclass(frozen=True)
class VllmKvGroup:
    """One KV cache group of vLLM's hybrid allocator: layers of one attention type sharing block tables."""

    window: int | None
    block_size: int
    layers: int
    """Real layers in the group (the rest of ``VllmKvLayout.group_size`` slots are padding)."""

    def blocks(self, context: int, batched_tokens: int) -> int:
        """Blocks one sequence of ``context`` tokens holds: ``FullAttentionSpec`` / ``SlidingWindowSpec``
        ``max_memory_usage_bytes`` (vllm/v1/kv_cache_interface.py) divided by the page size."""
        if self.window is None:
            return -(-context // self.block_size)
        tokens = min(self.window - 1 + batched_tokens, context)
        return -(-tokens // self.block_size) + 1


@dataclass(frozen=True)
class VllmKvLayout:
    """How vLLM V1 lays out the KV cache of a model (vllm/v1/core/kv_cache_utils.py ``get_kv_cache_groups``).

    ``per_layer`` True: every layer needs the same token slots (all full attention, or all one sliding window),
    so each layer gets its own page size and the cost is the per-layer sum (``UniformTypeKVCacheSpecs``).
    Otherwise (hybrid: sliding + full): page sizes are unified to the largest and the layers are split into
    groups of ``group_size`` slots, each block costing ``page_bytes × group_size`` whichever group holds it.
    """

    per_layer: bool
    groups: tuple[VllmKvGroup, ...]
    page_bytes: int
    """Bytes of one 16-token (or unified-size) page of one layer slot, after unification."""
    group_size: int

    def bytes_per_sequence(self, context: int, batched_tokens: int) -> int:
        return self.page_bytes * self.group_size * sum(g.blocks(context, batched_tokens) for g in self.groups)


def supports_hybrid_kv(version: Version | None) -> bool:
    """Whether this vLLM release keeps only the window in sliding-window layers (unknown: no)."""
    return version is not None and version >= VLLM_HYBRID_KV_SINCE


def vllm_kv_layout(spec: ModelSpec, kv_type: str, *, hybrid: bool = True) -> VllmKvLayout:
    """vLLM's KV cache groups for ``spec`` (hybrid KV cache manager; docs/design/hybrid_kv_cache_manager.md).

    1. Layers that share another layer's KV are left out ("KVCacheManager ignores all layers with kv sharing",
       design doc, Case 5).
    2. Page sizes (16 tokens × the layer's bytes per token) are unified to the largest
       (``unify_kv_cache_spec_page_size``): a smaller page that divides it gets a larger block size
       (``block_size × max_page / page``, e.g. Gemma 4's sliding layers, 16 KV heads × 256, against its full
       layers, 4 × 512, which then hold 32 tokens a block); one that does not divide it is padded to the largest
       page (newer vLLM; older releases refuse with NotImplementedError — both cost at least this much).
    3. Layers with the same spec form one attention type; ``group_size`` is the smallest type's layer count, or
       the largest when that is below 1.5 × the smallest (``_get_kv_cache_groups_uniform_page_size``); each type
       is split into ``cdiv(n, group_size)`` groups and every group costs ``group_size`` slots, padding included
       (Gemma 3 27B: 52 sliding layers → 6 groups × 10 slots = 60).

    ``hybrid`` False (a release before :data:`VLLM_HYBRID_KV_SINCE`, or an unknown one): every layer is cached at
    full length.
    """
    owning = [i for i in range(spec.n_layers) if spec.owns_kv(i)]
    rows = {i: _layer_row_bytes(spec, i, kv_type) for i in owning}
    window_of = {i: spec.layer_windows[i] if hybrid else None for i in owning}
    windows = set(window_of.values())
    if len(windows) <= 1:
        # One attention type (UniformTypeKVCacheSpecs): one group, each layer at its own page size.
        window = next(iter(windows), None)
        return VllmKvLayout(True, (VllmKvGroup(window, VLLM_BLOCK, len(owning)),), sum(rows.values()) * VLLM_BLOCK, 1)
    max_page = max(rows.values()) * VLLM_BLOCK
    types: dict[tuple[int | None, int, int], int] = {}
    for i in owning:
        page = rows[i] * VLLM_BLOCK
        block = VLLM_BLOCK * max_page // page if max_page % page == 0 else VLLM_BLOCK
        key = (window_of[i], rows[i], block)
        types[key] = types.get(key, 0) + 1
    smallest, largest = min(types.values()), max(types.values())
    group_size = largest if largest < smallest * 1.5 else smallest
    groups: list[VllmKvGroup] = []
    for (window, _row, block), count in types.items():
        n_groups = -(-count // group_size)
        groups += [VllmKvGroup(window, block, -(-count // n_groups)) for _ in range(n_groups)]
    return VllmKvLayout(False, tuple(groups), max_page, group_size)


def kv_bytes_per_sequence(
    engine: str,
    spec: ModelSpec,
    context: int,
    kv_type: str,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
    *,
    hybrid: bool = True,
) -> int:
    """KV bytes one sequence of ``context`` tokens reserves (all layers, engine padding included).

    vLLM: :func:`vllm_kv_layout` (groups, unified pages, padding slots; ``hybrid`` False for releases without the
    hybrid KV cache manager). Ollama: its caches are shared by all sequences, so this is the one-sequence case of
    :func:`kv_bytes_total`.
    """
    if engine == "vllm":
        return vllm_kv_layout(spec, kv_type, hybrid=hybrid).bytes_per_sequence(context, batched_tokens)
    if engine == "ollama":
        return kv_bytes_total(engine, spec, context, kv_type, 1, batched_tokens)
    return sum(kv_cells(engine, spec, context, i) * _layer_row_bytes(spec, i, kv_type) for i in range(spec.n_layers))


def kv_bytes_total(
    engine: str,
    spec: ModelSpec,
    context: int,
    kv_type: str,
    parallel: int,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
) -> int:
    """KV bytes ``parallel`` sequences of ``context`` tokens reserve together.

    llama.cpp and vLLM: ``parallel`` × one sequence. Ollama: each layer's cache is sized for all sequences at
    once (:func:`_ollama_cells`), so a sliding cache costs ``parallel × window + batch``, not ``parallel ×
    (window + batch)``.
    """
    if engine != "ollama":
        return parallel * kv_bytes_per_sequence(engine, spec, context, kv_type, batched_tokens)
    return sum(
        kv_cells(engine, spec, context, i, batched_tokens, parallel) * _layer_row_bytes(spec, i, kv_type)
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


@dataclass(frozen=True)
class MlpShape:
    """What one token's MLP costs in vLLM's profile step: the dense width it runs through, and for a mixture
    of experts the experts it is routed to and one expert's width (the fused-MoE workspace)."""

    dense_intermediate: int
    experts_per_token: int = 0
    expert_intermediate: int = 0

    @property
    def active_intermediate(self) -> int:
        """The MLP width one token really runs through (dense + its routed experts)."""
        return self.dense_intermediate + self.experts_per_token * self.expert_intermediate


def _mlp_params_per_layer(spec: ModelSpec) -> int:
    embed = spec.vocab_size * spec.hidden_size * (1 if spec.tied_embeddings else 2)
    return max(0, (spec.n_params - embed - attention_params(spec)) // spec.n_layers)


def mlp_shape(spec: ModelSpec) -> MlpShape:
    """The MLP a token runs through, from the spec's declared widths or, where they are unknown, from the
    parameter count: (params − embeddings − attention) / (3 × layers × hidden) is the summed width of every
    gated MLP in a layer (within 0.1 % for Llama-3.1-8B). For a mixture of experts that sum covers *all*
    experts, which stay resident but are not all run: a token goes through ``experts_per_token`` of them, so
    the activation counts only those (vLLM ``fused_experts`` sizes its workspace by ``topk``, see
    :func:`vllm_forward_bytes`)."""
    if not spec.is_moe:
        width = spec.intermediate_size or _mlp_params_per_layer(spec) // (3 * spec.hidden_size)
        return MlpShape(dense_intermediate=max(spec.hidden_size, width))
    per_expert = spec.expert_intermediate_size
    if not per_expert:
        summed = _mlp_params_per_layer(spec) // (3 * spec.hidden_size) - spec.shared_expert_intermediate_size
        per_expert = max(1, summed // spec.n_experts)
    return MlpShape(
        dense_intermediate=spec.shared_expert_intermediate_size,
        experts_per_token=spec.experts_per_token or 1,
        expert_intermediate=per_expert,
    )


def intermediate_size_estimate(spec: ModelSpec) -> int:
    """The MLP width one token runs through: the dense width, or for a mixture of experts the routed experts'
    widths plus any shared expert (:func:`mlp_shape`) — not every expert's, which would size gpt-oss-120b's
    activation as if all 128 experts ran on every token."""
    return mlp_shape(spec).active_intermediate


def attention_params(spec: ModelSpec) -> int:
    """Parameters of the Q, K, V and O projections over all layers (0 for MLA specs: not modelled)."""
    if spec.is_mla:
        return 0
    total = 0
    for i, kv in enumerate(spec.kv_heads):
        k, v = spec.head_dim_k_at(i), spec.head_dim_v_at(i)
        total += spec.hidden_size * (spec.n_heads * (k + v) + kv * (k + v))
    return total


@dataclass(frozen=True)
class VllmProfile:
    """What vLLM's start-up memory profile depends on (all rendered as flags, R6)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    version: Version | None = None
    cold_compile: bool = True
    """No torch.compile cache at start (every new Cloud Run instance)."""
    mode: str | None = None
    """The engine that runs, ``"v0"`` or ``"v1"`` (:data:`VLLM_ENGINE_MODES`); None: the version's default."""
    sampler: str | None = None
    """``"flashinfer"`` when the log says vLLM samples with FlashInfer; None or ``"native"``: the PyTorch-native
    sampler's larger warm-up (:data:`VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT`)."""
    mxfp4_triton: bool = False
    """The experts run vLLM's MXFP4 Triton kernel (known, not merely possible): before v0.19 that is
    ``triton_kernel_moe_forward``, which allocates its buffers per call instead of keeping a workspace
    (:data:`VLLM_MOE_WORKSPACE_KEPT_SINCE`)."""


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
    mlp: MlpShape | None = None,
) -> VllmOverhead:
    seqs, tokens = profile.max_num_seqs, profile.max_num_batched_tokens
    forward = vllm_forward_bytes(tokens, hidden, mlp or MlpShape(dense_intermediate=intermediate))
    if band == "V1<0.8":
        # v0.7.0-0.7.2: logits of every dummy token; from v0.7.3 one per dummy request (an unknown version: all)
        at_sampled = profile.version is not None and profile.version >= VLLM_V1_LOGITS_AT_SAMPLED_SINCE
        forward += (min(seqs, tokens) if at_sampled else tokens) * vocab * VLLM_EARLY_V1_LOGIT_BYTES
    per_logit = VLLM_SAMPLER_BYTES_PER_LOGIT_030 if band == ">=0.30" else VLLM_SAMPLER_BYTES_PER_LOGIT
    if profile.sampler == "flashinfer" and band in ("0.8-0.20", "0.21-0.29"):
        per_logit = min(per_logit, VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT)
    sampler = 0 if band == "V1<0.8" else seqs * vocab * per_logit  # early V1 ran no sampler in its profile
    if band in ("0.8-0.20", "0.21-0.29") and profile.sampler != "flashinfer":
        sampler = _v1_native_sampler_peak(profile, hidden, vocab, mlp or MlpShape(dense_intermediate=intermediate))
    compile_free = cold_start_is_free(profile.version)
    compile_extra = VLLM_COLD_COMPILE_BYTES if band != "V0" and profile.cold_compile and not compile_free else 0
    activation = max(forward + compile_extra, sampler)
    graphs = 0
    if band in ("0.21-0.29", ">=0.30"):
        graphs = VLLM_GRAPH_BASE_BYTES + VLLM_GRAPH_PER_SEQ_BYTES * min(seqs, 512) // 512
    non_torch = VLLM_NON_TORCH_BYTES + (VLLM_EARLY_V1_CUDA_CONTEXT_BYTES if band == "V1<0.8" else 0)
    return VllmOverhead(
        band=band,
        non_torch=non_torch,
        activation=int(activation),
        cudagraph=int(graphs),
        weights_extra=int(weights_bytes * VLLM_WEIGHTS_EXTRA),
        margin=max(VLLM_MARGIN_MIN_BYTES, int(budget_bytes * VLLM_MARGIN_FRACTION)),
    )


def _v1_native_sampler_peak(profile: VllmProfile, hidden: int, vocab: int, mlp: MlpShape) -> int:
    """V1's sampler warm-up with the PyTorch-native sampler, and what is still allocated beside it: the dummy run's
    hidden states (tokens × hidden × 2 B, deleted only after the sampler) and, where vLLM keeps it, the fused-MoE
    workspace. Before v0.17 the logits are sorted (:func:`vllm_sort_sampler_bytes_per_logit`), from it masked in
    place by Triton (:data:`VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT`). An unknown release gets the larger era."""
    seqs, tokens, version = profile.max_num_seqs, profile.max_num_batched_tokens, profile.version
    live = tokens * hidden * VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT
    workspace = vllm_moe_workspace_bytes(tokens, hidden, mlp)

    def kept(at: Version | None) -> bool:
        since = VLLM_MXFP4_TRITON_MODULAR_SINCE if profile.mxfp4_triton else VLLM_MOE_WORKSPACE_KEPT_SINCE
        return at is None or at >= since

    sort_era = seqs * vocab * vllm_sort_sampler_bytes_per_logit(seqs) + live
    # the last sort-era release keeps the workspace unless the experts run the per-call MXFP4 Triton kernel
    sort_era += workspace if kept(version if version is not None else (0, 16, 99)) else 0
    triton_era = seqs * vocab * VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT + live + (workspace if kept(version) else 0)
    if version is None:
        return max(sort_era, triton_era)
    return triton_era if version >= VLLM_TRITON_TOP_K_TOP_P_SINCE else sort_era


def vllm_forward_bytes(tokens: int, hidden: int, mlp: MlpShape) -> int:
    """Peak activation of one profile step of ``tokens`` tokens.

    Dense MLP: tokens × 2 B × (3 × intermediate + 4 × hidden) (``VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT``, fitted on
    the V0 rows). Mixture of experts: the same for the dense/shared part, plus the fused-MoE workspace of the
    experts each token is routed to — ``fused_experts_impl`` allocates ``intermediate_cache1`` (M, topk, 2 ×
    expert width), ``intermediate_cache2`` (M × topk, expert width) and ``intermediate_cache3`` (M, topk, hidden)
    in the activation dtype, M = min(tokens, ``VLLM_FUSED_MOE_CHUNK_SIZE``)
    (vllm/model_executor/layers/fused_moe/fused_moe.py) — i.e. topk × (3 × expert width + hidden) × 2 B per token,
    not the width of all experts together.
    """
    unit = VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT
    dense = tokens * unit * (3 * mlp.dense_intermediate + 4 * hidden)
    if not mlp.experts_per_token:
        return dense
    m = min(tokens, VLLM_FUSED_MOE_CHUNK)
    return dense + m * mlp.experts_per_token * (3 * mlp.expert_intermediate + hidden) * unit


def cold_start_is_free(version: Version | None) -> bool:
    """Whether this release's first start was seen to cost no more than a later one
    (:data:`VLLM_NO_COLD_COMPILE_COST`; unknown: no)."""
    low, high = VLLM_NO_COLD_COMPILE_COST
    return version is not None and low <= version < high


def vllm_moe_workspace_bytes(tokens: int, hidden: int, mlp: MlpShape) -> int:
    """The fused-MoE workspace vLLM keeps allocated after the profile's forward (0 for a dense model).

    ``FusedMoEModularKernel._allocate_buffers`` takes one buffer of ``max(workspace13, fused_out)`` and one of
    ``workspace2`` from ``current_workspace_manager().get_simultaneous`` (vllm/model_executor/layers/fused_moe/
    modular_kernel.py:1009-1070 of the v0.19.0 sdist), and the manager only ever grows its buffer
    (``_ensure_workspace_size``, vllm/v1/worker/workspace.py) until ``lock_workspace()`` after the warm-up
    (gpu_model_runner.py:6040). For ``TritonExperts`` ``workspace13 = (M, topk, max(width, hidden))``,
    ``workspace2 = (M, topk, max(2 × width, hidden))``, ``fused_out = (M, hidden)`` (fused_moe.py:1976-1991), in the
    activation dtype, with M the profile's ``max_num_batched_tokens``.
    """
    if not mlp.experts_per_token:
        return 0
    width, topk = mlp.expert_intermediate, mlp.experts_per_token
    common = max(topk * max(width, hidden), hidden)
    return tokens * (common + topk * max(2 * width, hidden)) * VLLM_ACTIVATION_BYTES_PER_TOKEN_UNIT


def vllm_early_v1_serve_defaults(device_name: str) -> tuple[int, int]:
    """``(max_num_batched_tokens, max_num_seqs)`` that ``vllm serve`` with ``VLLM_USE_V1=1`` on 0.7.0 takes when
    neither flag is given: ``max_num_seqs`` 1024 (``256 if not envs.VLLM_USE_V1 else 1024``,
    vllm/engine/arg_utils.py:211-213 of the v0.7.0 sdist), ``max_num_batched_tokens`` 8192 when the device name
    contains "h100" or "h200" and 2048 on any other GPU (``_override_v1_engine_args``, arg_utils.py:1279-1300, with
    ``UsageContext.OPENAI_API_SERVER`` from entrypoints/openai/api_server.py:157-159). The plan renders both flags, so
    its own profile does not depend on this; a log that set neither is checked with it."""
    name = device_name.lower()
    return (8192 if "h100" in name or "h200" in name else 2048), 1024


def vllm_band(version: Version | None, mode: str | None = None) -> list[str]:
    """The profile bands a version falls in; an unknown version could be any of them.

    ``mode`` is the engine that ran (``"v0"`` / ``"v1"``, :data:`VLLM_ENGINE_MODES`), when known: V0 forced on
    a V1-era release profiles as V0; V1 forced before v0.8 profiles as early V1 (``"V1<0.8"``, bf16 logits of
    every dummy token before v0.7.3 and of one per dummy request from it, no sampler run)."""
    if mode == "v0":
        return ["V0"]
    if mode == "v1":
        if version is None:
            return ["V1<0.8", "0.8-0.20", "0.21-0.29", ">=0.30"]
        if version < VLLM_V1_SINCE:
            return ["V1<0.8"]
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
    mlp: MlpShape | None = None,
) -> VllmOverhead:
    """vLLM's non-KV, non-weight memory for this profile; the largest over the bands the version may be in.

    ``mlp`` (a mixture of experts' routed shape, :func:`mlp_shape`) replaces the dense ``intermediate``."""
    bands = [band] if band else vllm_band(profile.version, profile.mode)
    parts = [
        _vllm_band_overhead(
            b,
            hidden=hidden,
            intermediate=intermediate,
            vocab=vocab,
            weights_bytes=weights_bytes,
            budget_bytes=budget_bytes,
            profile=profile,
            mlp=mlp,
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
    mlp = mlp_shape(spec)
    return vllm_overhead(
        hidden=spec.hidden_size,
        intermediate=mlp.active_intermediate,
        vocab=spec.vocab_size,
        weights_bytes=weights_bytes,
        budget_bytes=budget_bytes,
        profile=profile or VllmProfile(max_num_seqs=256, max_num_batched_tokens=VLLM_DEFAULT_BATCHED_TOKENS),
        mlp=mlp,
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
    served_model_name: str | None = None,
    engine_mode: str | None = None,
    engine_version: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The exact command-line args and env vars the engine gets (R6: its concurrency = ours), rendered by the
    engine's profile (``cloudrun_gpu.engines``; imported here, not at the top: the profiles import this module)."""
    from cloudrun_gpu.engines import RenderInputs, profile

    return profile(engine).render(
        RenderInputs(
            model_path=model_path,
            context=context,
            parallel=parallel,
            kv_type=kv_type,
            memory_fraction=memory_fraction,
            vram_bytes=vram_bytes,
            served_model_name=served_model_name,
            slot_save_path=slot_save_path,
            max_num_batched_tokens=max_num_batched_tokens,
            kv_cache_memory_bytes=kv_cache_memory_bytes,
            engine_mode=engine_mode,
            engine_version=engine_version,
        )
    )


def engine_parallel_from_config(engine: str, args: list[str], env: dict[str, str]) -> int:
    """Read back the concurrency an engine was configured with (checks R6 agreement; the engine's profile)."""
    from cloudrun_gpu.engines import profile

    return profile(engine).parallel_from_config(args, env)


def engine_memory_from_config(engine: str, args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Read back every flag the engine's memory depends on (R6: the plan and the engine agree).

    vLLM: ``max_model_len``, ``max_num_seqs``, ``max_num_batched_tokens``, ``gpu_memory_utilization`` and,
    when rendered, ``kv_cache_memory``. llama.cpp: ``ctx_size`` (total cells) and ``parallel``. Ollama:
    ``context_length`` (per request) and ``num_parallel``. Each engine's profile reads its own flags.
    """
    from cloudrun_gpu.engines import profile

    return profile(engine).memory_from_config(args, env)


def seconds_to_load(bytes_: int, bytes_per_s: float) -> float:
    return ceil(bytes_ / bytes_per_s * 10) / 10
