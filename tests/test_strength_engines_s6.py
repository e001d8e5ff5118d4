"""Mutation-strength tests for ``sizing/engines.py``, session 6 (issue 23): the survivors of the blind seed-101
sample (docs/test-strength.md, "Session 6"), each pinned where a user reads it — the plan's bytes, its start-up
profile (``engine_memory``), its notes and the engine flags it renders.

The expected numbers are worked out here from the engine sources the module cites (vLLM's
``SlidingWindowSpec.max_memory_usage_bytes``, its V1 sampler warm-up, Ollama's ``OLLAMA_GPU_OVERHEAD``), not read
back from the code under test.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.engines import (
    MlpShape,
    kv_bytes_per_sequence,
    mlp_shape,
    render_engine_config,
    vllm_sort_sampler_bytes_per_logit,
)

from tests.test_strength_vllm import swa

LLAMA8 = catalogue_model("llama-3.1-8b")


# --------------------------------------------------------------- vLLM: a sliding-window layer's blocks (l.529)


@pytest.mark.parametrize(
    ("batched", "sliding_blocks"),
    [
        # vLLM: num_tokens = min(sliding_window - 1 + max_num_batched_tokens, max_model_len);
        # (cdiv(num_tokens, block_size) + 1) pages (SlidingWindowSpec.max_memory_usage_bytes, kv_cache_interface.py)
        (2049, 6144 // 16 + 1),  # 4096 - 1 + 2049 = 6144: exactly 384 blocks, + 1 for the unaligned window start
        (2048, 6144 // 16 + 1),  # 6143 tokens: still 384 blocks
        (2050, 6145 // 16 + 1 + 1),  # 6145 tokens: 385 blocks
    ],
)
def test_a_vllm_sliding_layer_holds_window_minus_one_plus_the_batched_tokens(batched: int, sliding_blocks: int) -> None:
    """The user's ``max_num_batched_tokens`` decides how much a sliding-window layer keeps in vLLM ≥ 0.10 (hybrid KV
    cache manager): ``window − 1 + batched`` tokens plus one block. At 2,049 batched tokens that is exactly 6,144
    tokens — 384 blocks — and a window counted without its ``− 1`` would cost a 385th block per sequence."""
    plan = size(
        SizingRequest(
            model=swa(),  # layer 0 slides over 4,096 tokens, layer 1 is full; 1 KV head, K 128 + V 64
            engine="vllm",
            gpu="nvidia-l4",
            context_length=16384,
            kv_cache_type="auto",
            parallel=1,
            engine_version="0.11.0",
            max_num_batched_tokens=batched,
        )
    )
    page = 16 * 2 * (128 + 64)  # 16 tokens × bf16 × (K + V) elements of one KV head
    full_blocks = 16384 // 16
    # two attention types of one layer each with equal pages: two groups of one slot (no padding)
    assert plan.kv_cache_bytes_per_sequence == page * (sliding_blocks + full_blocks)
    assert plan.engine_memory is not None and plan.engine_memory["max_num_batched_tokens"] == batched
    args = plan.engine_args
    assert args[args.index("--max-num-batched-tokens") + 1] == str(batched)


# ------------------------------------------------ vLLM: V1's native sampler warm-up before v0.17 (l.207-216, l.816)


def test_the_sorting_sampler_costs_30_50_or_38_bytes_a_logit_by_the_number_of_rows() -> None:
    """PyTorch's CUDA sort takes a different path by row count (SortStable.cu): one row 30 B a logit, 2-127 rows
    50 B, 128 rows and more 38 B (the docstring of :func:`vllm_sort_sampler_bytes_per_logit` adds them up)."""
    assert vllm_sort_sampler_bytes_per_logit(1) == 2 + 4 + 4 + 8 + 4 + 8 == 30
    for rows in (2, 64, 127):
        assert vllm_sort_sampler_bytes_per_logit(rows) == 50, rows
    for rows in (128, 256, 1024):
        assert vllm_sort_sampler_bytes_per_logit(rows) == 38, rows


@pytest.mark.parametrize(("seqs", "per_logit"), [(64, 50), (256, 38)])
def test_vllm_0_11s_profile_peaks_at_the_sorted_logits_plus_the_dummy_runs_hidden_states(
    seqs: int, per_logit: int
) -> None:
    """Llama-3.1-8B on vLLM 0.11.0 at 2,048 batched tokens: the sampler warm-up (sequences × vocabulary × the sort's
    bytes a logit) is larger than the forward step, and the dummy run's hidden states (2,048 × 4,096 × 2 B bf16,
    deleted only after the sampler) are still allocated beside it. The plan's start-up profile prints that sum."""
    plan = size(
        SizingRequest(
            model=LLAMA8,
            engine="vllm",
            gpu="nvidia-rtx-pro-6000",
            context_length=2048,
            parallel=seqs,
            engine_version="0.11.0",
            max_num_batched_tokens=2048,
        )
    )
    assert plan.engine_memory is not None
    hidden_states = 2048 * 4096 * 2
    sampler = seqs * 128256 * per_logit + hidden_states
    forward = 2048 * 2 * (3 * 14336 + 4 * 4096)  # one profile step of the dense MLP, smaller than the sampler
    assert forward < sampler
    assert plan.engine_memory["activation_bytes"] == sampler
    assert plan.engine_memory["max_num_seqs_profiled"] == seqs
    assert f"peak activation {sampler / GIB:.2f}" in "\n".join(plan.explain)


# ------------------------------------------- a mixture of experts whose expert width is unknown (l.697-698)


def moe_spec(mlp_params_per_layer: int) -> ModelSpec:
    """Eight experts, two a token, no shared expert, no declared expert width: the width comes from the parameters
    left after the embeddings (1,000 × 256, untied: twice) and attention (256 × (2 + 1) × 256 per layer)."""
    embeddings = 2 * 1000 * 256
    attention = 2 * 256 * (2 * 256 + 1 * 256)
    return replace(
        swa(),
        name="moe",
        head_dim_v=128,
        n_params=embeddings + attention + 2 * mlp_params_per_layer,
        layer_windows=(None, None),
        n_experts=8,
        experts_per_token=2,
    )


def test_an_experts_width_is_its_share_of_the_mlp_parameters_when_the_model_does_not_declare_it() -> None:
    """Each layer's 8 gated experts of width 100 hold 3 × 256 × 800 parameters; a token runs through 2 of them."""
    spec = moe_spec(3 * 256 * 8 * 100)
    assert mlp_shape(spec) == MlpShape(dense_intermediate=0, experts_per_token=2, expert_intermediate=100)
    plan = size(SizingRequest(model=spec, engine="vllm", gpu="nvidia-l4", parallel=1, engine_version="0.6.5"))
    assert plan.engine_memory is not None and plan.engine_memory["profile_band"] == "V0"
    tokens = plan.engine_memory["max_num_batched_tokens"]
    # dense part (no shared expert: 4 hidden-sized buffers) + the fused-MoE workspace of 2 experts of width 100
    forward = tokens * 2 * (3 * 0 + 4 * 256) + tokens * 2 * (3 * 100 + 256) * 2
    assert plan.engine_memory["activation_bytes"] == forward


def test_an_expert_is_never_zero_wide_even_when_the_parameter_count_leaves_nothing_for_the_experts() -> None:
    """A parameter count that covers only embeddings and attention still routes each token through experts of at
    least one unit of width: the fused-MoE workspace is charged for them, not dropped."""
    spec = moe_spec(0)
    assert mlp_shape(spec) == MlpShape(dense_intermediate=0, experts_per_token=2, expert_intermediate=1)
    plan = size(SizingRequest(model=spec, engine="vllm", gpu="nvidia-l4", parallel=1, engine_version="0.6.5"))
    assert plan.engine_memory is not None
    tokens = plan.engine_memory["max_num_batched_tokens"]
    assert plan.engine_memory["activation_bytes"] == tokens * 2 * 4 * 256 + tokens * 2 * (3 * 1 + 256) * 2


# ------------------------------------------------------- Ollama: the GPU it sees free, less the reserve (l.423)


@pytest.mark.parametrize("fraction", [0.4, 0.75])
def test_ollamas_scheduler_sees_the_gpu_less_exactly_the_overhead_the_plan_renders(fraction: float) -> None:
    """The plan checks Ollama's layer scheduler against the CUDA total less the ``OLLAMA_GPU_OVERHEAD`` it renders
    (the share it reserves, R5). A library caller may ask for any fraction, 0.4 included (the stack's settings
    allow more than 0.5, up to 0.98); the note's free memory must follow from the rendered variable, whatever the
    fraction."""
    plan = size(SizingRequest(model=LLAMA8, engine="ollama", gpu="nvidia-l4", memory_fraction=fraction))
    gpu = limits.GPU_TYPES["nvidia-l4"]
    overhead = int(plan.engine_env["OLLAMA_GPU_OVERHEAD"])
    assert overhead == int(gpu.vram_bytes * (1 - fraction))
    note = next(n for n in plan.explain if "GPU less OLLAMA_GPU_OVERHEAD" in n)
    free = re.search(r"fits in ([0-9.]+) GiB \(GPU less OLLAMA_GPU_OVERHEAD\)", note)
    assert free is not None
    assert free.group(1) == f"{(limits.cuda_total_bytes(gpu) - overhead) / GIB:.2f}"


# ------------------------------ the library's sizing functions, called the way a reader calls them (l.606, 983)


def test_the_kv_and_flag_functions_take_every_argument_by_name() -> None:
    """A library caller may name each argument (``engine=``, ``spec=``, …); the options after the bare ``*`` are
    keyword-only. Llama-3.1-8B at 8,192 tokens of q8_0 KV on llama.cpp: 32 layers × 8 KV heads × 128 elements × 2
    (K, V) at 34 B a 32-element block, i.e. 69,632 B a token; two slots of 8,192 tokens are ``-c 16384 -np 2``."""
    by_name = kv_bytes_per_sequence(engine="llama.cpp", spec=LLAMA8, context=8192, kv_type="q8_0", batched_tokens=2048)
    assert by_name == kv_bytes_per_sequence("llama.cpp", LLAMA8, 8192, "q8_0") == 32 * 8 * 128 * 2 * 34 // 32 * 8192
    with pytest.raises(TypeError, match="positional argument"):
        kv_bytes_per_sequence("vllm", LLAMA8, 8192, "auto", 2048, False)  # type: ignore[call-arg]
    args, _ = render_engine_config(
        engine="llama.cpp",
        model_path="/models/model.gguf",
        context=8192,
        parallel=2,
        kv_type="q8_0",
        memory_fraction=0.95,
        vram_bytes=limits.GPU_TYPES["nvidia-l4"].vram_bytes,
    )
    assert args[args.index("-c") + 1] == "16384" and args[args.index("-np") + 1] == "2"
    with pytest.raises(TypeError, match="positional argument"):
        render_engine_config("llama.cpp", "/models/model.gguf")  # type: ignore[call-arg]
