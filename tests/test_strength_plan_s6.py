"""Strength tests for the sizing plan, session 6 (issue 23; `sizing/plan.py` seed 111's survivors): which parts of a
GGUF file llama.cpp and Ollama leave on the CPU and how the weights note says so, the MXFP4 note's parameter count,
weights summed before they are rounded to bytes, and a sequence of one KV byte.

The expected values are restated from the formulas in the docstrings (and the sources they cite), not read back from
the plan under test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.engines import OLLAMA_PINNED_VERSION, kv_bytes_per_sequence
from cloudrun_gpu.sizing.plan import NO_KV_FIT, sequences_that_fit, weights_from_quant
from cloudrun_gpu.sizing.quant import WEIGHT_QUANTS, WeightQuant

FILE = replace(
    catalogue_model("gemma-3-4b"),
    weights_bytes=4 * GIB,
    weights_quant="Q4_K_M",
    host_input_bytes=GIB // 2,
    per_layer_embedding_bytes=GIB // 4,
    source="e4b.gguf",
)
"""A GGUF like a Gemma 3n / Gemma 4 "E" model: 4 GiB of tensors, of which 0.5 GiB is the untied input table
(``token_embd``, kept on the CPU by llama.cpp and Ollama) and 0.25 GiB the per-layer embeddings
(``per_layer_token_embd``: an input table on llama.cpp, on the GPU under Ollama's own engine)."""

SUMMED = "weights: {on} GiB on the GPU of 4.00 GiB summed from the file's tensors (e4b.gguf)"
INPUT = "0.50 GiB of input embeddings (kept on the CPU)"
PLE = "0.25 GiB of per-layer embeddings (an input table, on the CPU)"


def _weights_note(plan_explain: list[str]) -> str:
    (note,) = [n for n in plan_explain if n.startswith("weights: ")]
    return note


@pytest.mark.parametrize(
    ("architecture", "engine", "version", "on_gpu", "off"),
    [
        # llama.cpp: both input tables on the CPU (LLM_TENSOR_LAYER_INPUT).
        ("gemma3n", "llama.cpp", None, "3.25", f" less {INPUT} and {PLE}"),
        # Ollama >= 0.30 hands GGUF files to llama-server: llama.cpp's placement.
        ("gemma3n", "ollama", "0.30.0", "3.25", f" less {INPUT} and {PLE}"),
        # Pinned Ollama, an architecture its own engine does not claim (gemma4): the llama.cpp runner, same.
        ("gemma4", "ollama", OLLAMA_PINNED_VERSION, "3.25", f" less {INPUT} and {PLE}"),
        # Pinned Ollama's own engine (gemma3n) creates the per-layer table on the GPU: only the input table is off.
        ("gemma3n", "ollama", OLLAMA_PINNED_VERSION, "3.50", f" less {INPUT}"),
        # vLLM loads every tensor.
        ("gemma3n", "vllm", None, "4.00", ""),
    ],
)
def test_the_weights_note_names_the_input_tables_each_engine_leaves_on_the_cpu(
    architecture: str, engine: str, version: str | None, on_gpu: str, off: str
) -> None:
    """The plan's weights and its note: the file's bytes less what the engine keeps on the CPU, each part named
    (``_file_weights``; seed 111's l.249 ``engine == "ollama"`` → ``<`` and l.256 ``" less " +`` → ``**``)."""
    spec = replace(FILE, architecture=architecture)
    plan = size(SizingRequest(model=spec, engine=engine, gpu="nvidia-rtx-pro-6000", engine_version=version))
    assert plan.weights_bytes == int(float(on_gpu) * GIB)
    assert _weights_note(plan.explain) == SUMMED.format(on=on_gpu) + off


def test_the_mxfp4_note_counts_non_expert_params_in_billions_rounded_down_below_the_half() -> None:
    """gpt-oss-20b's experts (24 layers × 32 experts of width 2,880, biases included) with 2,344,999,999 other
    parameters: 2.344999999 B, printed to two places as "2.34 B" (``rest / 1e9``; seed 111's l.190 ``1e9`` →
    ``999999999.0`` would print 2.35)."""
    oss = catalogue_model("gpt-oss-20b")
    h, e, w = oss.hidden_size, oss.n_experts, oss.expert_intermediate_size
    experts = oss.n_layers * e * (3 * h * w + 2 * w + h)
    spec = replace(oss, n_params=experts + 2_344_999_999)
    plan = size(SizingRequest(model=spec, engine="vllm", gpu="nvidia-rtx-pro-6000", weights_quant="mxfp4"))
    note = _weights_note(plan.explain)
    assert "= 2.34 B non-expert params × 16 bit + 32 × 24 MXFP4 experts in vLLM's " in note


ODD = ModelSpec(
    name="odd",
    architecture="llama",
    n_layers=1,
    hidden_size=3,
    n_heads=2,
    kv_heads=(1,),
    head_dim_k=1,
    head_dim_v=2,
    vocab_size=0,
    max_context=256,
    n_params=100,
    layer_windows=(None,),
)
"""A model of odd parameter counts: 3 × (2 + 1) heads × (1 + 2) = 27 attention parameters, 73 others, no
embeddings (``attention_params``)."""


def test_weights_are_summed_over_their_parts_before_rounding_down_to_bytes() -> None:
    """``weights_from_quant`` adds every part's bits / 8 and truncates the sum once: a format that keeps attention
    at 4 bit (a caller's own :class:`WeightQuant`) on a model whose 73 other parameters and 27 attention parameters
    are odd counts is 36.5 + 13.5 = 50 bytes, not 36.5 + 13 (each half byte is half of one shared byte; seed 111's
    l.220 ``attention * att_bits / 8`` → ``//``)."""
    spec = ODD
    quant = WeightQuant("q4-attn4", 4.0, attention_bits=4.0)
    total, how = weights_from_quant(spec, quant)
    assert total == 50
    assert how == "(params − embeddings − attention − 16-bit extras) × 4.0 bit + attention × 4 bit"
    # The same model in a shipped format whose attention is 16 bit: 73 × 4.7 / 8 + 27 × 2 = 42.8875 + 54.
    assert weights_from_quant(spec, WEIGHT_QUANTS["mxfp4"])[0] == 96


def test_weights_with_higher_precision_embeddings_are_summed_before_rounding_down_to_bytes() -> None:
    """The same for a format that stores only the embeddings at their own width (the AWQ/GPTQ/FP8 branch of
    ``weights_from_quant``), here a caller's own 4-bit format with 4.5-bit embeddings: 5 × 3 untied embeddings (30
    parameters, 16.875 bytes) and 71 other parameters (35.5 bytes) are 52.375 bytes, 52 whole; flooring the 35.5
    first would give 51 (seed 171's l.229 ``(params − embeddings) × bits / 8`` → ``//``)."""
    spec = replace(ODD, name="odd-embeddings", vocab_size=5, n_params=101)  # the attention plays no part here
    quant = WeightQuant("q4-emb4.5", 4.0, embeddings_bits=4.5)
    total, how = weights_from_quant(spec, quant)
    assert total == 52
    assert how == "(params − embeddings) × 4.0 bit + embeddings × 4.5 bit"


def test_a_sequence_that_costs_one_kv_byte_is_counted_not_taken_for_free() -> None:
    """``sequences_that_fit``: whole sequences of ``per_seq`` bytes in ``room``; only a sequence that costs nothing
    means "no KV limit" (:data:`NO_KV_FIT`). One byte a sequence is the smallest cost: 7 bytes hold 7 (seed 111's
    l.313 ``per_seq > 0`` → ``> 1``)."""
    assert sequences_that_fit(7, 1) == 7
    assert sequences_that_fit(7, 0) == NO_KV_FIT


def test_a_vllm_plan_charges_no_share_of_ollamas_caches() -> None:
    """Only Ollama's own engine shares one cache per layer among its sequences; vLLM (version unknown: no hybrid KV
    cache manager) gives each sequence every layer at full length: 34 layers × K and V × 4 KV heads × 256 × 1 byte
    (fp8) × 8,192 tokens. This is the second ``if req.engine == "ollama" and not ollama_server:`` of ``size``, whose
    ``>=`` mutant is not equivalent ("vllm" >= "ollama"), unlike the first one's (scripts/mutate.py EQUIVALENT)."""
    plan = size(
        SizingRequest(
            model=catalogue_model("gemma-3-4b"), engine="vllm", gpu="nvidia-l4", context_length=8192, max_parallel=4
        )
    )
    assert (plan.kv_cache_type, plan.max_parallel_sequences) == ("fp8", 4)
    assert plan.kv_cache_bytes_per_sequence == 34 * 2 * 4 * 256 * 8192
    assert not [line for line in plan.explain if "share each layer's cache" in line]


LLAMA8 = catalogue_model("llama-3.1-8b")


def _llama8_on_l4(parallel: int | None = None) -> SizingRequest:
    return SizingRequest(model=LLAMA8, engine="llama.cpp", gpu="nvidia-l4", context_length=8192, parallel=parallel)


def _sequences_that_fit() -> int:
    """Llama 3.1 8B (Q4_K_M) on an L4 under llama.cpp at 8,192 tokens: the room the budget leaves after weights and
    overhead, in whole sequences of llama.cpp's KV bytes (Q8_0 cache). 30 on today's numbers."""
    plan = size(_llama8_on_l4())
    room = plan.budget_bytes - plan.weights_bytes - plan.runtime_overhead_bytes
    return room // kv_bytes_per_sequence("llama.cpp", LLAMA8, 8192, plan.kv_cache_type)


def test_a_configured_parallel_is_named_in_the_plan_with_the_count_that_fits() -> None:
    """engine.parallel set by the user: the plan keeps it and says how many would fit (seed 171's l.784 note)."""
    fit = _sequences_that_fit()
    assert fit == 30
    plan = size(_llama8_on_l4(parallel=4))
    assert plan.max_parallel_sequences == 4
    assert [n for n in plan.explain if n.startswith("parallel: ")] == [f"parallel: 4 as configured (≤ {fit} that fit)"]


def test_a_configured_parallel_above_what_fits_is_refused_with_the_count_and_the_fix() -> None:
    """One more sequence than fits: refused under ``engine.parallel`` with how many of that length fit, the bound to
    set and the other fix (a shorter context, R1) (seed 171's l.779 message)."""
    fit = _sequences_that_fit()
    with pytest.raises(ConfigError) as err:
        size(_llama8_on_l4(parallel=fit + 1))
    e = err.value
    assert (e.field, e.value) == ("engine.parallel", fit + 1)
    assert e.problem == f"only {fit} sequences of 8,192 tokens fit in GPU memory"
    assert e.fix == f"set engine.parallel ≤ {fit}, or lower engine.context_length (R1)"
    assert e.allowed == f"1..{fit}"
