"""Mutation-strength tests for the vLLM helpers of sizing/engines.py and sizing/plan.py: the formulas
(versions, batched tokens, sliding-window cells, attention and MLP estimates, 16-bit parts of a
quantised checkpoint). The fitted constants of the start-up profile are deliberately not pinned here."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.engines import (
    VLLM_KV_CACHE_MEMORY_SINCE,
    VllmProfile,
    attention_params,
    engine_memory_from_config,
    intermediate_size_estimate,
    kv_cells,
    parse_vllm_version,
    render_engine_config,
    supports_kv_cache_memory,
    vllm_band,
    vllm_default_batched_tokens,
    vllm_overhead,
)
from cloudrun_gpu.sizing.plan import weights_from_quant
from cloudrun_gpu.sizing.quant import WEIGHT_QUANTS, WeightQuant

LLAMA8 = catalogue_model("llama-3.1-8b")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("v0.14.1", (0, 14, 1)),
        ("0.8.5.post1", (0, 8, 5)),
        ("0.10.2rc1.dev73+gabc", (0, 10, 2)),
        ("0.10", (0, 10, 0)),
        (" 1.2.3 ", (1, 2, 3)),
        ("20250312_0916_RC01", None),
        ("latest", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_vllm_version(text: str | None, version: tuple[int, int, int] | None) -> None:
    assert parse_vllm_version(text) == version


def test_kv_cache_memory_flag_needs_0_11() -> None:
    assert VLLM_KV_CACHE_MEMORY_SINCE == (0, 11, 0)
    assert supports_kv_cache_memory((0, 11, 0)) and supports_kv_cache_memory((0, 12, 0))
    assert supports_kv_cache_memory((1, 0, 0))
    assert not supports_kv_cache_memory((0, 10, 9))
    assert not supports_kv_cache_memory(None)


def test_default_batched_tokens_by_gpu_size() -> None:
    assert vllm_default_batched_tokens(70 * GIB) == 8192
    assert vllm_default_batched_tokens(70 * GIB - 1) == 2048
    assert vllm_default_batched_tokens(22 * GIB) == 2048


def swa() -> ModelSpec:
    return ModelSpec(
        name="swa",
        architecture="test",
        n_layers=2,
        hidden_size=256,
        n_heads=2,
        kv_heads=(1, 1),
        head_dim_k=128,
        head_dim_v=64,
        vocab_size=1000,
        max_context=65536,
        n_params=10_000_000,
        layer_windows=(4096, None),
    )


@pytest.mark.parametrize(
    ("context", "batched", "cells"),
    [
        (8192, 2048, 6160),  # pad(min(4096 − 1 + 2048, 8192), 16) + 16
        (1000, 2048, 1024),  # pad(1000, 16) + 16
        (65536, 8192, 12304),  # pad(4096 − 1 + 8192, 16) + 16
        (6143, 2048, 6160),
        (6145, 2048, 6160),
    ],
)
def test_vllm_sliding_window_cells(context: int, batched: int, cells: int) -> None:
    assert kv_cells("vllm", swa(), context, 0, batched) == cells
    assert kv_cells("vllm", swa(), context, 1, batched) == -(-context // 16) * 16  # full layer: the context


def test_attention_params() -> None:
    # per layer: hidden × (Q 32×128 + O 32×128 + 8 KV heads × (128 + 128)) = 4096 × 10,240
    assert attention_params(LLAMA8) == 32 * 4096 * (4096 + 4096 + 8 * 256)
    odd = replace(swa(), head_dim_v=32, kv_heads=(1, 2))
    assert attention_params(odd) == 256 * (256 + 64 + 1 * 160) + 256 * (256 + 64 + 2 * 160)
    assert attention_params(replace(swa(), mla_latent_dim=576)) == 0


def test_intermediate_size_estimate() -> None:
    embed = 128256 * 4096 * 2
    rest = LLAMA8.n_params - embed - attention_params(LLAMA8)
    assert intermediate_size_estimate(LLAMA8) == rest // (3 * 32 * 4096)
    assert 13_000 < intermediate_size_estimate(LLAMA8) < 15_000  # the real config says 14,336
    tied = replace(LLAMA8, tied_embeddings=True)
    assert intermediate_size_estimate(tied) == (rest + 128256 * 4096) // (3 * 32 * 4096)
    tiny = replace(swa(), n_params=1)
    assert intermediate_size_estimate(tiny) == 256  # never below the hidden size


def test_weights_with_16_bit_attention_and_extras() -> None:
    q = WeightQuant("x4", 4.0, embeddings_bits=16, attention_bits=16, engines=("vllm",))
    embed = 128256 * 4096 * 2
    att = attention_params(LLAMA8)
    total, how = weights_from_quant(LLAMA8, q)
    assert total == int((LLAMA8.n_params - embed - att) * 4 / 8 + embed * 16 / 8 + att * 16 / 8)
    assert "attention × 16 bit" in how and "embeddings × 16 bit" in how
    high = 10**9
    total_high, how_high = weights_from_quant(LLAMA8, q, high_precision_params=high)
    assert total_high == int((LLAMA8.n_params - embed - att - high) * 4 / 8 + embed * 2 + att * 2 + high * 2)
    assert "1.00 B per-layer-embedding/tower params × 16 bit" in how_high
    plain = WeightQuant("p4", 4.0)
    only_high, _ = weights_from_quant(LLAMA8, plain, high_precision_params=high)
    assert only_high == int((LLAMA8.n_params - high) * 4 / 8 + high * 2)
    assert weights_from_quant(LLAMA8, plain, high_precision_params=-5)[0] == int(LLAMA8.n_params * 4 / 8)
    capped, _ = weights_from_quant(LLAMA8, plain, high_precision_params=10**12)
    assert capped == LLAMA8.n_params * 2  # the 16-bit part is at most the whole model


def test_vllm_window_cells_round_up_to_whole_blocks() -> None:
    """window − 1 + batched = 6,145 tokens: 385 blocks of 16, plus one for an unaligned window start."""
    spec = replace(swa(), layer_windows=(4098, None))
    assert kv_cells("vllm", spec, 8192, 0, 2048) == 6176


def test_engine_memory_read_back() -> None:
    args = ["--enable-prefix-caching", "--max-model-len", "4096", "--max-num-seqs", "8", "--kv-cache-memory", "1024"]
    assert engine_memory_from_config("vllm", args, {}) == {
        "max_model_len": 4096,
        "max_num_seqs": 8,
        "max_num_batched_tokens": 2048,
        "gpu_memory_utilization": 0.9,
        "kv_cache_memory": 1024,
    }
    assert engine_memory_from_config("llama.cpp", ["-fa", "on", "-c", "8192", "-np", "2"], {}) == {
        "ctx_size": 8192,
        "parallel": 2,
    }
    env = {"OLLAMA_CONTEXT_LENGTH": "4096", "OLLAMA_NUM_PARALLEL": "3"}
    assert engine_memory_from_config("ollama", [], env) == {"context_length": 4096, "num_parallel": 3}


def test_ollama_overhead_for_any_fraction() -> None:
    _, env = render_engine_config(
        "ollama", model_path="m", context=1, parallel=1, kv_type="q8_0", memory_fraction=0.4, vram_bytes=10 * GIB
    )
    assert env["OLLAMA_GPU_OVERHEAD"] == str(int(10 * GIB * (1 - 0.4)))


@pytest.mark.parametrize("context", [16384, 32768, 65536, 98304, 131072])
def test_vllm_parallel_is_the_largest_that_fits(context: int) -> None:
    """The search's answer fits, one more sequence does not (131,072 tokens: exactly one fits)."""
    req = SizingRequest(model=LLAMA8, engine="vllm", context_length=context)
    p = size(req).max_parallel_sequences
    assert p >= 1
    assert size(replace(req, parallel=p)).max_parallel_sequences == p
    with pytest.raises(ConfigError) as err:
        size(replace(req, parallel=p + 1))
    assert err.value.field == "engine.parallel"
    if context == 131072:
        assert p == 1


def test_vllm_int_formats() -> None:
    """Integer formats by definition: int8 weights are 8 bits; int4 with a 16-bit scale and 4-bit zero per
    group of 128 is 4.25. Every vLLM format keeps its embeddings in 16 bit (the fitted mxfp4 width is not
    pinned here)."""
    assert WEIGHT_QUANTS["w8a8-int8"].bits_per_weight == 8.0
    assert WEIGHT_QUANTS["w4a16"].bits_per_weight == 4.25
    for name in ("w4a16", "w8a8-int8", "mxfp4", "awq-int4", "gptq-int4", "fp8"):
        assert (WEIGHT_QUANTS[name].embeddings_bits, WEIGHT_QUANTS[name].engines) == (16, ("vllm",))
    assert WEIGHT_QUANTS["mxfp4"].attention_bits == 16
    assert all(q.attention_bits is None for n, q in WEIGHT_QUANTS.items() if n != "mxfp4")


def test_vllm_model_without_kv_cache_is_capped_not_fitted() -> None:
    no_kv = replace(LLAMA8, kv_heads=(0,) * 32)
    plan = size(SizingRequest(model=no_kv, engine="vllm", context_length=4096))
    assert (plan.kv_cache_bytes_per_sequence, plan.parallel_fit) == (0, 10**6)
    assert plan.max_parallel_sequences == 256  # vLLM's default cap decides


@pytest.mark.parametrize(
    ("version", "band"),
    [
        ((0, 7, 9), ["V0"]),
        ((0, 8, 0), ["0.8-0.20"]),
        ((0, 20, 9), ["0.8-0.20"]),
        ((0, 21, 0), ["0.21-0.29"]),
        ((0, 29, 9), ["0.21-0.29"]),
        ((0, 30, 0), [">=0.30"]),
        (None, ["V0", "0.8-0.20", "0.21-0.29", ">=0.30"]),
    ],
)
def test_vllm_bands(version: tuple[int, int, int] | None, band: list[str]) -> None:
    assert vllm_band(version) == band


@pytest.mark.parametrize("seqs", [1, 256, 512, 1024])
def test_cuda_graphs_are_deducted_from_0_21(seqs: int) -> None:
    """From v0.21 the CUDA-graph pool is part of the profile: a few tenths of a GiB (estimates printed
    0.27-0.73 GiB), growing with sequences up to 512; before v0.21 it is not deducted."""

    def graphs(version: tuple[int, int, int], n: int) -> int:
        profile = VllmProfile(max_num_seqs=n, max_num_batched_tokens=2048, version=version)
        return vllm_overhead(
            hidden=4096, intermediate=14336, vocab=128256, weights_bytes=5 * GIB, budget_bytes=20 * GIB, profile=profile
        ).cudagraph

    assert graphs((0, 20, 0), seqs) == 0
    new = graphs((0, 21, 0), seqs)
    assert 0.1 * GIB < new < 1.0 * GIB
    assert graphs((0, 30, 0), seqs) == new
    if seqs > 1:
        assert new > graphs((0, 21, 0), 1)
    assert graphs((0, 21, 0), 1024) == graphs((0, 21, 0), 512)
