"""vLLM sizing against published start-up logs (sizing/data/vllm_evidence.csv), its properties, and calibrate.

The bar (issue 11): the plan never promises a KV pool vLLM does not find. Every evidence row is predicted
the way the plan predicts it (weights from parameters × bits, the overhead from the row's flags and vLLM
version) and must not exceed the pool vLLM printed; the median error is bounded too.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.data import check_row, evidence_summary, load_vllm_evidence
from cloudrun_gpu.sizing.engines import (
    VLLM_DEFAULT_BATCHED_TOKENS,
    VllmProfile,
    engine_memory_from_config,
    kv_bytes_per_sequence,
    parse_vllm_version,
    supports_kv_cache_memory,
    vllm_overhead,
)
from cloudrun_gpu.sizing.plan import weights_from_quant
from cloudrun_gpu.sizing.quant import WEIGHT_QUANTS, mxfp4_backends, mxfp4_expert_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import calibrate

ROWS = load_vllm_evidence()
LOGS = Path(__file__).parent / "data" / "logs"
MEDIAN_ABS_ERROR_MAX = 0.05
"""Issue 22's bar: median absolute KV-pool error ≤ 5 % (0.8 % over 45 rows with predicted weights, 0.9 % with the
printed ones; docs/sizing-evidence.md). It was 5.6 % before the samplers, the live MoE workspace and the
compile-free releases were modelled from vLLM's (and PyTorch's) source and vLLM's logs."""
WORST_UNDER = -0.30
"""The most the plan may under-promise on any row (vLLM 0.30's cold starts on an L4: −27.8 %, −29.1 % with the printed
weights; the 1.4 GiB cold-compile allowance covers the largest cold-vs-warm gap seen, 1.32 GiB)."""
UNDER_PROMISE_EXCEPTIONS: dict[str, float] = {}
"""None now: gpt-oss-120b's row was −90.6 % while MXFP4 weights were a flat 4.7 bits; sized in the Triton kernel's
layout (64.25 vs 64.38 GiB printed) it is −17.4 %."""


def test_evidence_is_broad_and_sourced() -> None:
    assert len(ROWS) >= 15
    assert len({r.id for r in ROWS}) == len(ROWS)
    assert all(r.source_url.startswith("https://") for r in ROWS)
    assert len({r.gpu for r in ROWS}) >= 5
    assert len({r.model.split("/")[-1].split("-")[0].lower() for r in ROWS}) >= 5  # Llama, Phi, Qwen, gpt-oss …
    assert {r.band for r in ROWS} >= {"V0", "0.8-0.20", ">=0.30"}
    assert {r.compile_cache for r in ROWS} >= {"cold", "warm"}
    for r in ROWS:  # the printed pool is consistent with what the row says vLLM printed
        if r.printed_kv_tokens and r.printed_kv_gib and r.profile_band == "v0":
            blocks_gib = r.printed_kv_tokens * r.kv_bytes_per_token / GIB
            assert blocks_gib == pytest.approx(r.printed_kv_gib, rel=0.02), r.id


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
@pytest.mark.parametrize("predict_weights", [True, False], ids=["weights-predicted", "weights-printed"])
def test_prediction_never_over_commits(row: object, predict_weights: bool) -> None:
    check = check_row(row, predict_weights=predict_weights)  # type: ignore[arg-type]
    assert not check.over_commit, (
        f"{check.row.id}: plan {check.kv_predicted_gib:.2f} GiB > vLLM {check.row.kv_gib:.2f} GiB "
        f"(overhead plan {check.overhead_gib:.2f} vs printed {check.printed_overhead_gib:.2f})"
    )
    assert check.error >= UNDER_PROMISE_EXCEPTIONS.get(check.row.id, WORST_UNDER), f"{check.row.id}: {check.error:+.1%}"


def test_median_error_and_zero_over_commits() -> None:
    for predict in (True, False):
        summary = evidence_summary([check_row(r, predict_weights=predict) for r in ROWS])
        assert summary["over_commits"] == 0
        assert summary["median_abs_error"] <= MEDIAN_ABS_ERROR_MAX


def _evidence(row_id: str) -> Any:
    return next(r for r in ROWS if r.id == row_id)


def test_evidence_covers_what_issue_22_asked_for() -> None:
    """Issue 22: MoE (gpt-oss, Qwen3-MoE, …) and MLA rows, each from a log pinned at a commit or an issue."""
    moe = [r for r in ROWS if r.n_experts > 1]
    assert len(moe) >= 6
    assert {r.model for r in moe} >= {
        "openai/gpt-oss-20b",
        "openai/gpt-oss-120b",
        "Qwen/Qwen3-30B-A3B",
        "Qwen/Qwen1.5-MoE-A2.7B",
        "deepseek-ai/DeepSeek-V2-Lite-Chat",
    }
    for r in ROWS:
        if "llm-d-incubation/llm-d-planner" in r.source_url:  # the sweep's files live on a PR branch: pin the commit
            assert "/blob/" in r.source_url and len(r.source_url.split("/blob/")[1].split("/")[0]) == 40, r.id


def test_the_mla_row_holds_one_576_element_latent_per_layer() -> None:
    """DeepSeek-V2-Lite-Chat's printed pool is its printed token count × 27 layers × (512 + 64) × 2 B: the MLA
    latent, not per-head K and V (16 heads × 2 × 128 would be 14× larger)."""
    r = _evidence("v019-h100-deepseek-v2-lite-8k")
    assert r.kv_bytes_per_token == 27 * (512 + 64) * 2
    assert r.printed_kv_tokens * r.kv_bytes_per_token / GIB == pytest.approx(r.printed_kv_gib, abs=0.01)


def test_the_v1_pool_does_not_move_with_the_context() -> None:
    """vLLM 0.19.0, Llama-3.1-8B on one H100: 2,048 and 32,768 tokens of context leave the same 58.11 GiB, and the
    plan says the same for both (V1 profiles max_num_batched_tokens, not max_model_len)."""
    short, long_ = _evidence("v019-h100-llama8b-2k"), _evidence("v019-h100-llama8b-32k")
    assert short.printed_kv_gib == long_.printed_kv_gib == 58.11
    assert check_row(short).kv_predicted_gib == check_row(long_).kv_predicted_gib


def test_the_sampler_warm_up_shrank_at_vllm_0_17() -> None:
    """One model on one H100, only the release changing: the profile peak is 5.64 GiB under 0.15.0 and 0.16.0 and
    2.23 GiB from 0.17.0, the release whose native top-k/top-p runs a Triton kernel instead of sorting
    (vllm/v1/sample/ops/topk_topp_sampler.py:251-252 of 0.17.0; the sort at :262 of 0.16.0). The plan follows the
    step from the source (38 B a logit sorted, 14 B masked in place, plus the live hidden states): within 1 % on
    both sides, never over. Before, the fitted 40 B fit 0.15/0.16 and under-promised 0.17/0.18 by 8.7 %."""
    before = [_evidence(f"v01{v}-h100-qwen3-14b-8k") for v in (5, 6)]
    after = [_evidence(f"v01{v}-h100-qwen3-14b-8k") for v in (7, 8)]
    assert [r.printed_activation_gib for r in before + after] == [5.64, 5.64, 2.23, 2.23]
    for r in before + after:
        c = check_row(r)
        assert -0.01 < c.error <= 0, f"{r.id}: {c.error:+.1%}"
        assert c.overhead.activation / GIB == pytest.approx(r.printed_activation_gib, abs=0.13)


def test_the_crashed_gpt_oss_20b_start_would_have_had_room() -> None:
    """Not a row: vLLM 0.19.0 on an H100 at 0.95 took a 58.47 GiB pool for gpt-oss-20b (1,024 sequences, 8,192
    tokens; weights 13.64 GiB, Marlin's layout) and then failed its post-allocation sampler warm-up 0.23 GiB short
    (llm-d-planner sweep, docs/sizing-evidence.md). The plan's pool for that start leaves more than that."""
    from cloudrun_gpu.sizing.engines import MlpShape

    spec = catalogue_model("gpt-oss-20b")
    weights = weights_from_quant(spec, WEIGHT_QUANTS["mxfp4"], mxfp4_kernels=mxfp4_backends((9, 0), (0, 19, 0)))[0]
    assert weights / GIB == pytest.approx(13.64, abs=0.01)
    budget = int(0.95 * 79.19 * GIB)
    profile = VllmProfile(max_num_seqs=1024, max_num_batched_tokens=8192, version=(0, 19, 0), cold_compile=True)
    ov = vllm_overhead(
        hidden=2880,
        intermediate=4 * 2880,
        mlp=MlpShape(0, 4, 2880),
        vocab=201088,
        weights_bytes=weights,
        budget_bytes=budget,
        profile=profile,
    )
    pool = (budget - weights - ov.total) / GIB
    assert pool < 58.47 - 0.23
    assert ov.activation / GIB >= 2.87  # the activation that log printed


def test_the_old_constant_over_committed() -> None:
    """The per-parameter constant this replaces (1.5 GiB + 0.04 GiB × B params) promised more than vLLM
    found on most rows, even given the CUDA total."""
    over = 0
    for r in ROWS:
        c = check_row(r)
        old = r.budget_gib - c.weights_gib - min(6.0, 1.5 + 0.04 * (r.params_b or 0.5))
        over += old > r.kv_gib
    assert over >= 8


WEIGHTS_BELOW_PRINTED_GIB = {
    "v019-h100-deepseek-v2-lite-8k": 0.19,
    "v019-h100-phi4-8k": 0.09,
}
"""bf16 checkpoints vLLM loaded above parameters × 2 B by more than the usual ≤ 0.07 GiB (RoPE caches etc.):
DeepSeek-V2-Lite-Chat 29.43 GiB printed against 29.26 from its safetensors (0.6 %; not explained by the sources
read: in vLLM 0.19.0 the MLA absorbed matrices W_UV / W_UK_T are views of kv_b_proj,
vllm/model_executor/layers/attention/mla_attention.py:710-797, and get_and_maybe_dequant_weights returns an
unquantised layer's own weight, quantization/utils/quant_utils.py:351-355), Phi-4 27.39 against 27.31. Quantised
formats are sized at most 5 % above what vLLM holds and at most 0.05 GiB below it (W8A8-int8 and FP8 rows of vLLM
0.19.0 hold 0.03 GiB more than the formula); MXFP4 follows its kernel's layout (within 0.14 GiB)."""


@pytest.mark.parametrize("row", [r for r in ROWS if r.weights_quant and r.params_b], ids=lambda r: r.id)
def test_weights_from_bits_match_vllm(row: object) -> None:
    r = row
    assert r is not None
    predicted = weights_from_quant(r.spec(), WEIGHT_QUANTS[r.weights_quant])[0] / GIB  # type: ignore[attr-defined]
    printed = r.printed_weights_gib  # type: ignore[attr-defined]
    if r.weights_quant == "mxfp4":  # type: ignore[attr-defined]
        kernels = r.mxfp4_kernels()  # type: ignore[attr-defined]
        laid_out = weights_from_quant(r.spec(), WEIGHT_QUANTS["mxfp4"], mxfp4_kernels=kernels)[0] / GIB  # type: ignore[attr-defined]
        assert laid_out == pytest.approx(printed, abs=0.14)  # the kernel's layout; params rounded to 0.1 B
    elif r.weights_quant == "bf16":  # type: ignore[attr-defined]
        slack = WEIGHTS_BELOW_PRINTED_GIB.get(r.id, 0.08)  # type: ignore[attr-defined]
        assert printed - slack <= predicted <= printed + 0.08
    else:
        assert printed - 0.05 <= predicted <= printed * 1.05


def test_mxfp4_keeps_attention_and_embeddings_at_16_bits() -> None:
    """Only the experts are MXFP4 (``Mxfp4Config.get_quant_method``); the rest is counted at 16 bit."""
    oss = catalogue_model("gpt-oss-20b")
    w, how = weights_from_quant(oss, WEIGHT_QUANTS["mxfp4"], mxfp4_kernels=("marlin",))
    assert "non-expert params × 16 bit" in how and "marlin layout" in how
    assert 13.47 * GIB <= w <= 14.2 * GIB  # vLLM: 13.47 GiB (H100), 13.72 GiB (A100)


@pytest.mark.parametrize(
    ("model", "kernel", "printed"),
    [
        ("gpt-oss-20b", "triton", 13.47),  # row v1-h100-gptoss20b-16k
        ("gpt-oss-20b", "marlin", 13.72),  # row v019-a100-gptoss20b-128k
        ("gpt-oss-120b", "triton", 64.38),  # row v1-h100-gptoss120b-16k
        ("gpt-oss-120b", "marlin", 65.97),  # vllm-project/vllm#23278
    ],
)
def test_mxfp4_weights_follow_the_kernels_layout(model: str, kernel: str, printed: float) -> None:
    """Before: a flat 4.7 bits gave 66.69 GiB for gpt-oss-120b whichever kernel ran (2.31 GiB above Triton's load)."""
    w = weights_from_quant(catalogue_model(model), WEIGHT_QUANTS["mxfp4"], mxfp4_kernels=(kernel,))[0] / GIB
    assert w == pytest.approx(printed, abs=0.14)


def test_mxfp4_kernel_follows_vllms_choice() -> None:
    """mxfp4.py: Marlin below SM90; Triton or Marlin on SM90 (vLLM 0.19.0 on an H100 loaded gpt-oss-20b in Marlin's
    13.64 GiB layout, the llm-d H100 runs in Triton's 13.47); SM120 Marlin from v0.14.1; an unknown GPU gets every
    layout (the plan charges the largest)."""
    assert mxfp4_backends((8, 9), (0, 14, 1)) == ("marlin",)  # L4
    assert mxfp4_backends((8, 0), None) == ("marlin",)  # A100
    assert mxfp4_backends((9, 0), (0, 19, 0)) == ("triton", "marlin")
    assert mxfp4_backends((9, 0), None) == ("triton", "marlin")
    assert mxfp4_backends((12, 0), (0, 14, 1)) == ("marlin",)  # RTX PRO 6000 at the pinned image
    assert mxfp4_backends((12, 0), (0, 10, 1)) == ("triton", "marlin")
    assert mxfp4_backends(None, None) == ("marlin", "triton", "flashinfer")
    assert mxfp4_backends((10, 0), (0, 19, 0)) == ("marlin", "triton", "flashinfer")
    sizes = {
        k: mxfp4_expert_bytes(k, n_layers=36, n_experts=128, hidden=2880, intermediate=2880)
        for k in ("marlin", "triton", "flashinfer")
    }
    assert sizes["triton"] < sizes["marlin"] < sizes["flashinfer"]
    with pytest.raises(ValueError, match="unknown MXFP4 backend 'cutlass'"):
        mxfp4_expert_bytes("cutlass", n_layers=1, n_experts=2, hidden=64, intermediate=64)


def test_compressed_tensors_and_16_bit_extras() -> None:
    llama70 = catalogue_model("llama-3.1-70b")
    w8 = weights_from_quant(llama70, WEIGHT_QUANTS["w8a8-int8"])[0]
    assert w8 / GIB == pytest.approx(67.72, abs=0.3)  # vllm PR #12569 prints 67.7229 GB for Llama-3.1-70B w8a8
    g4 = weights_from_quant(llama70, WEIGHT_QUANTS["w4a16"])[0]
    assert g4 == weights_from_quant(llama70, WEIGHT_QUANTS["awq-int4"])[0]
    # per-layer embeddings / towers stay 16-bit: 2.35 B of 8 B params (Gemma 3n-like) cost 2 B each
    spec = catalogue_model("llama-3.1-8b")
    base = weights_from_quant(spec, WEIGHT_QUANTS["awq-int4"])[0]
    extra = weights_from_quant(spec, WEIGHT_QUANTS["awq-int4"], high_precision_params=2_350_000_000)[0]
    assert extra - base == pytest.approx(2_350_000_000 * (2 - 4.25 / 8), rel=1e-6)


def test_versions_and_kv_cache_memory_flag() -> None:
    assert parse_vllm_version("v0.14.1") == (0, 14, 1)
    assert parse_vllm_version("0.8.5.post1") == (0, 8, 5)
    assert parse_vllm_version("0.10.2rc1.dev73+gdb7a17ecc") == (0, 10, 2)
    assert parse_vllm_version("20250312_0916_RC01") is None  # a Google DLC tag names no release
    assert not supports_kv_cache_memory(None) and not supports_kv_cache_memory((0, 10, 2))
    assert supports_kv_cache_memory((0, 11, 0)) and supports_kv_cache_memory((0, 14, 1))


def _vllm(**kw: object) -> SizingPlan:
    base: dict[str, object] = {"model": catalogue_model("llama-3.1-8b"), "engine": "vllm", "context_length": 8192}
    base.update(kw)
    return size(SizingRequest(**base))  # type: ignore[arg-type]


def test_every_memory_flag_is_rendered_and_read_back_r6() -> None:
    plan = _vllm(engine_version="0.14.1", max_num_batched_tokens=4096)
    back = engine_memory_from_config("vllm", plan.engine_args, plan.engine_env)
    assert back["max_model_len"] == 8192
    assert back["max_num_seqs"] == plan.max_parallel_sequences
    assert back["max_num_batched_tokens"] == 4096
    assert back["gpu_memory_utilization"] == pytest.approx(plan.memory_fraction)
    assert plan.engine_memory is not None
    assert back["kv_cache_memory"] == plan.engine_memory["kv_pool_bytes"]  # the pool is the plan's number
    assert "--enable-chunked-prefill" in plan.engine_args
    old = _vllm(engine_version="0.10.2")
    assert "--kv-cache-memory" not in old.engine_args  # before v0.11 the flag does not exist
    assert "engine_memory" in plan.to_dict()
    assert "engine_memory" not in size(SizingRequest(model=catalogue_model("llama-3.1-8b"))).to_dict()


def test_budget_starts_from_the_cuda_total() -> None:
    l4 = limits.GPU_TYPES["nvidia-l4"]
    assert l4.cuda_total_bytes is not None and l4.vram_bytes - l4.cuda_total_bytes == 475 * MIB
    plan = _vllm()
    assert plan.vram_bytes == l4.cuda_total_bytes
    assert plan.budget_bytes == int(l4.cuda_total_bytes * 0.90)
    assert limits.cuda_total_bytes(l4) == l4.cuda_total_bytes
    # llama.cpp / Ollama keep nvidia-smi's total (their golden plans are unchanged)
    assert size(SizingRequest(model=catalogue_model("llama-3.1-8b"))).vram_bytes == l4.vram_bytes


def test_profile_sequences_are_the_rendered_parallel() -> None:
    plan = _vllm()
    assert plan.engine_memory is not None
    assert plan.engine_memory["max_num_seqs_profiled"] == plan.max_parallel_sequences
    # a vocabulary-heavy model pays for its sequences in the sampler: fewer fit than with a tiny profile
    g = catalogue_model("gemma-3-4b")
    many = vllm_overhead(
        hidden=g.hidden_size,
        intermediate=10240,
        vocab=g.vocab_size,
        weights_bytes=0,
        budget_bytes=0,
        profile=VllmProfile(max_num_seqs=256, max_num_batched_tokens=2048, version=(0, 14, 1)),
    )
    few = vllm_overhead(
        hidden=g.hidden_size,
        intermediate=10240,
        vocab=g.vocab_size,
        weights_bytes=0,
        budget_bytes=0,
        profile=VllmProfile(max_num_seqs=8, max_num_batched_tokens=2048, version=(0, 14, 1)),
    )
    assert many.total > few.total


def test_sliding_window_cache_grows_with_batched_tokens() -> None:
    g3 = catalogue_model("gemma-3-4b")
    small = kv_bytes_per_sequence("vllm", g3, 32_768, "fp8", 512)
    big = kv_bytes_per_sequence("vllm", g3, 32_768, "fp8", 8192)
    assert small < big
    assert kv_bytes_per_sequence("vllm", g3, 32_768, "fp8") == kv_bytes_per_sequence(
        "vllm", g3, 32_768, "fp8", VLLM_DEFAULT_BATCHED_TOKENS
    )


# --- properties ----------------------------------------------------------------------------------------

VLLM_MODELS = [
    "llama-3.1-8b",
    "llama-3.2-3b",
    "qwen2.5-7b",
    "gemma-3-4b",
    "gemma-3-12b",
    "phi-4-mini",
    "mistral-7b-v0.3",
]
VERSIONS = [None, "0.7.3", "0.10.2", "0.14.1", "0.21.0", "0.30.0"]


def _try(**kw: object) -> SizingPlan | None:
    try:
        return _vllm(**kw)
    except ConfigError:
        return None


vllm_requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(VLLM_MODELS).map(catalogue_model),
        "gpu": st.sampled_from(sorted(limits.GPU_TYPES)),
        "context_length": st.integers(256, 32_768),
        "engine_version": st.sampled_from(VERSIONS),
        "max_num_batched_tokens": st.sampled_from([None, 512, 1024, 2048, 4096, 8192]),
        "kv_cache_type": st.sampled_from(["auto", "fp8"]),
    }
)


@settings(max_examples=150, deadline=None)
@given(req=vllm_requests, extra=st.integers(1, 32_768))
def test_more_context_never_raises_parallel(req: dict[str, object], extra: int) -> None:
    small = _try(**req)
    big = _try(**{**req, "context_length": int(req["context_length"]) + extra})  # type: ignore[call-overload]
    if big is not None:
        assert small is not None
        assert big.max_parallel_sequences <= small.max_parallel_sequences


@settings(max_examples=150, deadline=None)
@given(req=vllm_requests, tokens=st.sampled_from([512, 1024, 2048, 4096, 8192]), more=st.integers(1, 8192))
def test_more_batched_tokens_never_raise_parallel(req: dict[str, object], tokens: int, more: int) -> None:
    few = _try(**{**req, "max_num_batched_tokens": tokens})
    many = _try(**{**req, "max_num_batched_tokens": tokens + more})
    if many is not None:
        assert few is not None
        assert many.max_parallel_sequences <= few.max_parallel_sequences


@settings(max_examples=150, deadline=None)
@given(req=vllm_requests, seqs=st.integers(1, 64), more=st.integers(1, 64))
def test_more_sequences_never_raise_what_fits(req: dict[str, object], seqs: int, more: int) -> None:
    few = _try(**{**req, "parallel": seqs})
    many = _try(**{**req, "parallel": seqs + more})
    if many is not None:
        assert few is not None
        assert many.parallel_fit <= few.parallel_fit


@settings(max_examples=150, deadline=None)
@given(req=vllm_requests, gib=st.floats(16, 90), more=st.floats(0.5, 60))
def test_a_larger_gpu_never_lowers_parallel(req: dict[str, object], gib: float, more: float) -> None:
    small = _try(**{**req, "vram_bytes": int(gib * GIB)})
    big = _try(**{**req, "vram_bytes": int((gib + more) * GIB)})
    if small is not None:
        assert big is not None
        assert big.max_parallel_sequences >= small.max_parallel_sequences


@settings(max_examples=100, deadline=None)
@given(req=vllm_requests)
def test_the_plan_fits_its_own_budget(req: dict[str, object]) -> None:
    plan = _try(**req)
    if plan is None:
        return
    assert plan.engine_memory is not None
    assert plan.weights_bytes + plan.runtime_overhead_bytes + plan.engine_memory["kv_pool_bytes"] <= plan.budget_bytes
    assert plan.kv_cache_bytes <= plan.engine_memory["kv_pool_bytes"]


# --- calibrate on real log excerpts ---------------------------------------------------------------------


def _calibrate(*argv: str) -> tuple[int, calibrate.Calibration]:
    parser = argparse.ArgumentParser()
    calibrate.add_arguments(parser)
    args = parser.parse_args(list(argv))
    text = Path(args.log).read_text(encoding="utf-8")
    facts = calibrate.parse_log(text, args.engine)
    return calibrate.main(args), calibrate.calibrate(facts, calibrate._spec(args), args)


def _row(cal: calibrate.Calibration, quantity: str) -> calibrate.Row:
    return next(r for r in cal.rows if r.quantity.startswith(quantity))


def test_every_log_excerpt_names_its_source() -> None:
    logs = sorted(LOGS.glob("*.log"))
    assert len(logs) >= 4
    for log in logs:
        assert log.read_text(encoding="utf-8").startswith("# source: https://"), log.name


def test_calibrate_vllm_v0_log_against_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    rc, cal = _calibrate(str(LOGS / "vllm-v0-llama-3.1-8b-rtx3090.log"), "--model", "llama-3.1-8b", "--quant", "bf16")
    assert rc == 0
    f = cal.facts
    assert (f.engine, f.v0) == ("vllm", True)
    assert f.cuda_total_bytes == int(23.58 * GIB) and f.memory_fraction == 0.90
    assert f.weights_bytes == int(14.9888 * GIB) and f.kv_bytes == int(3.81 * GIB)
    assert f.kv_tokens == 1952 * 16 and f.max_model_len == 20000
    assert f.activation_bytes == int(17.06 * GIB) - int(14.9888 * GIB)
    kv = _row(cal, "KV pool")
    assert kv.plan is not None and kv.log is not None and kv.plan <= kv.log  # never an over-commit
    assert any(s.startswith("pin the pool this engine found: --kv-cache-memory-bytes=") for s in cal.settings)
    assert any(s.startswith("engine.memory_fraction:") for s in cal.settings)
    out = capsys.readouterr().out
    assert "KV pool" in out and "--kv-cache-memory-bytes=" in out


def test_calibrate_vllm_v0_log_with_printed_breakdown() -> None:
    rc, cal = _calibrate(str(LOGS / "vllm-v0-qwen2.5-0.5b-bnb-48g.log"))
    assert rc == 0
    f = cal.facts
    assert f.version == "0.10.0" and f.v0 and f.chunked_prefill is False
    assert f.cuda_total_bytes == int(47.50 * GIB) and f.memory_fraction == 0.78
    assert (f.non_torch_bytes, f.activation_bytes, f.kv_bytes) == (int(0.08 * GIB), int(1.78 * GIB), int(34.81 * GIB))
    assert f.kv_blocks == 190100 and f.max_model_len == 32768


def test_calibrate_vllm_v1_log() -> None:
    rc, cal = _calibrate(str(LOGS / "vllm-v1-gemma4-31b.log"), "--gpu", "nvidia-rtx-pro-6000")
    assert rc == 0
    f = cal.facts
    assert f.kv_bytes == int(11.67 * GIB) and f.kv_tokens == 193_624
    assert f.cudagraph_bytes == int(0.27 * GIB) and f.memory_fraction == 0.92
    assert _row(cal, "budget").plan == pytest.approx(0.92 * 94.97, abs=0.01)


def test_calibrate_llama_cpp_log_matches_the_kv_to_the_byte() -> None:
    rc, cal = _calibrate(str(LOGS / "llamacpp-28-layer-gqa4.log"), "--model", "qwen2.5-7b", "--quant", "Q4_K_M")
    assert rc == 0
    assert cal.facts.engine == "llama.cpp" and cal.facts.kv_cache_dtype == "f16"
    kv = _row(cal, "KV cache")
    assert kv.plan == kv.log == 112 * MIB / GIB  # 2048 cells × 28 layers × 1024 × 2 B
    assert any("engine.context_length: 2048" in s for s in cal.settings)


def test_calibrate_ollama_log_matches_the_kv() -> None:
    rc, cal = _calibrate(str(LOGS / "ollama-llama-3.2-3b-parallel4.log"), "--model", "llama-3.2-3b", "--kv-type", "f16")
    assert rc == 0
    f = cal.facts
    assert (f.engine, f.ctx_size, f.parallel, f.n_ubatch) == ("ollama", 8192, 4, 512)
    kv = _row(cal, "KV cache")
    assert kv.plan == kv.log == 896 * MIB / GIB  # 4 slots × 2048 cells × 28 layers × 1024 × 2 B
    assert any("engine.context_length: 2048 and engine.parallel: 4" in s for s in cal.settings)


def test_calibrate_reports_an_unreadable_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    calibrate.add_arguments(parser)
    assert calibrate.main(parser.parse_args([str(tmp_path / "missing.log")])) == 2
    assert "cannot read" in capsys.readouterr().err


def test_median_is_what_the_doc_says() -> None:
    """0.8 % over 45 rows; 0.7 % without gpt-oss-120b's row (docs/sizing-evidence.md says both)."""
    errors = [abs(check_row(r).error) for r in ROWS]
    assert statistics.median(errors) == pytest.approx(0.008, abs=0.001)
    without = [abs(check_row(r).error) for r in ROWS if r.id != "v1-h100-gptoss120b-16k"]
    assert statistics.median(without) == pytest.approx(0.007, abs=0.001)


def test_sampler_from_0_17_is_tritons_in_place_top_k_top_p() -> None:
    """From v0.17.0 the native sampler masks in place (apply_top_k_top_p_triton) instead of sorting: 14 B a logit
    (bf16 logits, fp32 logits, probabilities, the noise q), with the dummy run's hidden states still alive. Before,
    vLLM 0.19's rows were charged the sort-based 40 B: 5.8 GiB for Qwen3-8B at 1,024 sequences, where it printed a
    2.21 GiB peak (−6.7 %)."""
    from cloudrun_gpu.sizing.engines import VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT

    assert VLLM_TRITON_SAMPLER_BYTES_PER_LOGIT == 2 + 4 + 4 + 4
    kw: dict[str, Any] = {"hidden": 4096, "intermediate": 12288, "vocab": 151936, "weights_bytes": 0, "budget_bytes": 0}
    old = VllmProfile(max_num_seqs=1024, max_num_batched_tokens=8192, version=(0, 16, 0), cold_compile=False)
    new = replace(old, version=(0, 17, 0))
    assert vllm_overhead(profile=old, **kw).activation == 1024 * 151936 * 38 + 8192 * 4096 * 2
    assert vllm_overhead(profile=new, **kw).activation == 1024 * 151936 * 14 + 8192 * 4096 * 2
    unknown = vllm_overhead(profile=replace(old, version=None), **kw)  # an unknown release: the largest band
    assert unknown.total >= max(vllm_overhead(profile=p, **kw).total for p in (old, new))
    assert unknown.total >= vllm_overhead(profile=replace(old, version=(0, 6, 5)), **kw).total  # V0's 40 B
    qwen3 = check_row(next(r for r in ROWS if r.id == "v019-h100-qwen3-8b-8k"))
    # printed peak 2.21 GiB: the 0.19 rows peak ~0.12 GiB above sampler + hidden states, inside the 0.25 GiB margin
    assert qwen3.overhead.activation / GIB == pytest.approx(2.21, abs=0.13)
    assert -0.01 < qwen3.error <= 0


def test_sort_based_sampler_is_what_pytorchs_segmented_sort_allocates() -> None:
    """Before v0.17 the native sampler sorts the logits: bf16 + fp32 logits, sorted values and int64 indices, the
    int64 reverse indices and cub's alternate keys and values (≥ 128 rows: 38 B); the by-full-sort path below 128
    rows adds two int2 arrays and its own sorted keys (50 B). The H100 rows print 38.4-38.9 B at 1,024 rows; the
    fitted 40 B left gpt-oss-120b's 3.33 GiB pool at −17.4 % (now −7.2 %)."""
    from cloudrun_gpu.sizing.engines import vllm_sort_sampler_bytes_per_logit

    assert vllm_sort_sampler_bytes_per_logit(1024) == vllm_sort_sampler_bytes_per_logit(128) == 38
    assert vllm_sort_sampler_bytes_per_logit(127) == vllm_sort_sampler_bytes_per_logit(2) == 50
    assert vllm_sort_sampler_bytes_per_logit(1) == 30
    for r in ROWS:
        if r.id.startswith("v1-h100-") and r.printed_activation_gib:
            per_logit = r.printed_activation_gib * GIB / (r.max_num_seqs * r.vocab_size)
            assert 38 < per_logit < 39, r.id
            c = check_row(r)
            assert c.overhead.activation / GIB == pytest.approx(r.printed_activation_gib, abs=0.07), r.id


def test_moe_workspace_stays_allocated_through_the_sampler_warm_up() -> None:
    """vLLM's WorkspaceManager keeps the fused-MoE workspace (workspace13 + workspace2 of TritonExperts) after the
    forward, so it adds to the sampler's peak: Qwen3-30B-A3B (128 experts, 8 a token, width 768) at 8,192 tokens
    holds 0.5 GiB. Without it the 14 B sampler would over-commit that row by 2.2 % and Qwen1.5-MoE's by 0.3 %."""
    from cloudrun_gpu.sizing.engines import MlpShape, vllm_moe_workspace_bytes

    assert vllm_moe_workspace_bytes(8192, 2048, MlpShape(14336)) == 0
    ws = vllm_moe_workspace_bytes(8192, 2048, MlpShape(0, 8, 768))
    assert ws == 8192 * (8 * 2048 + 8 * 2048) * 2
    # kept from v0.14.0 (modular kernel + WorkspaceManager); not by v0.11-0.13's per-call fused_experts, nor by the
    # MXFP4 Triton kernel before v0.19 (triton_kernel_moe_forward): the H100 gpt-oss rows print no workspace
    kw: dict[str, Any] = {"hidden": 2048, "intermediate": 0, "vocab": 151936, "weights_bytes": 0, "budget_bytes": 0}
    profile = VllmProfile(max_num_seqs=1024, max_num_batched_tokens=8192, version=(0, 11, 0), cold_compile=False)
    moe = MlpShape(0, 8, 768)
    base = vllm_overhead(profile=profile, mlp=moe, **kw).activation
    assert vllm_overhead(profile=replace(profile, version=(0, 13, 0)), mlp=moe, **kw).activation == base
    assert vllm_overhead(profile=replace(profile, version=(0, 14, 0)), mlp=moe, **kw).activation == base + ws
    triton = replace(profile, version=(0, 14, 1), mxfp4_triton=True)
    assert vllm_overhead(profile=triton, mlp=moe, **kw).activation == base
    at_017 = replace(profile, version=(0, 17, 0))
    kept_017 = vllm_overhead(profile=at_017, mlp=moe, **kw).activation
    assert vllm_overhead(profile=replace(at_017, mxfp4_triton=True), mlp=moe, **kw).activation == kept_017 - ws
    at_019 = replace(profile, version=(0, 19, 0))  # the MXFP4 Triton kernel goes through the modular kernel
    assert vllm_overhead(profile=replace(at_019, mxfp4_triton=True), mlp=moe, **kw) == vllm_overhead(
        profile=at_019, mlp=moe, **kw
    )
    for rid in ("v019-h100-qwen3-30b-a3b-8k", "v019-h100-qwen15-moe-a27b-8k", "v019-h100-deepseek-v2-lite-8k"):
        r = next(r for r in ROWS if r.id == rid)
        c = check_row(r)
        assert -0.02 < c.error <= 0, f"{rid}: {c.error:+.1%}"
        assert c.overhead.activation / GIB == pytest.approx(r.printed_activation_gib, abs=0.13)


def test_releases_seen_to_start_cold_for_free_get_no_compile_allowance() -> None:
    """vLLM 0.10.1.1's first start left the same 0.55 GiB as its warm start (rows 22-23); before, the 1.4 GiB cold
    allowance fitted on 0.30 made the first row −32.2 %. 0.30 keeps it (its cold rows lose 0.79-1.32 GiB)."""
    cold = next(r for r in ROWS if r.id == "v010-a100-qwen2-7b-025-cold")
    assert cold.compile_cache == "cold"
    assert check_row(cold).overhead == check_row(replace(cold, compile_cache="warm")).overhead
    assert -0.10 < check_row(cold).error <= 0
    l4 = next(r for r in ROWS if r.id == "v030-l4-llama8b-cold")
    assert check_row(l4).overhead.total - check_row(replace(l4, compile_cache="warm")).overhead.total > 1.3 * GIB


def test_calibrate_ollama_log_shows_its_scheduler_estimate() -> None:
    """The log's memory.graph.full / memory.graph.partial are the scheduler's graph estimates the plan models."""
    _rc, cal = _calibrate(
        str(LOGS / "ollama-llama-3.2-3b-parallel4.log"), "--model", "llama-3.2-3b", "--kv-type", "f16"
    )
    full = _row(cal, "Ollama scheduler: graph, all layers")
    partial = _row(cal, "Ollama scheduler: graph, layers split")
    assert full.log == 424 * MIB / GIB and full.plan == pytest.approx(full.log, rel=1e-4)
    assert partial.log is not None and partial.plan == pytest.approx(partial.log, rel=1e-3)


def test_flashinfer_sampler_is_keyed_by_what_the_log_printed() -> None:
    """vLLM 0.10.1.1 on an A100 at 256 sequences (dennislee22/vLLM-benchmarking): the log prints 'Using FlashInfer for
    top-p & top-k sampling.', and budget − weights − KV leaves 0.55 GiB in all, where the native sampler's 40 B a
    logit alone would be 1.45 GiB. FlashInfer's path keeps bf16 + fp32 logits, masked logits and probabilities
    (14 B, engines.VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT); the plan, not knowing the image's sampler, keeps 40 B."""
    from cloudrun_gpu.sizing.engines import VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT, VllmProfile, vllm_overhead

    assert VLLM_FLASHINFER_SAMPLER_BYTES_PER_LOGIT == 2 + 4 + 4 + 4
    kw: dict[str, Any] = {"hidden": 3584, "intermediate": 18944, "vocab": 152064, "weights_bytes": 0, "budget_bytes": 0}
    profile = VllmProfile(max_num_seqs=256, max_num_batched_tokens=2048, version=(0, 10, 1), cold_compile=False)
    native = vllm_overhead(profile=profile, **kw)
    flashinfer = vllm_overhead(profile=replace(profile, sampler="flashinfer"), **kw)
    assert native.activation == 256 * 152064 * 38 + 2048 * 3584 * 2  # the sort-based sampler + live hidden states
    assert flashinfer.activation == 256 * 152064 * 14
    newer = VllmProfile(max_num_seqs=256, max_num_batched_tokens=2048, version=(0, 30, 0), cold_compile=False)
    assert vllm_overhead(profile=replace(newer, sampler="flashinfer"), **kw) == vllm_overhead(profile=newer, **kw)
    warm = next(r for r in ROWS if r.id == "v010-a100-qwen2-7b-050-warm")
    assert warm.sampler == "flashinfer"
    check = check_row(warm)
    assert not check.over_commit and check.error > -0.05
    as_plan = check_row(replace(warm, sampler=""))  # what the plan promises: less, never more
    assert as_plan.kv_predicted_gib < check.kv_predicted_gib
