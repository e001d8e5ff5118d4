"""Mutation-strength tests for the Ollama scheduler estimate in sizing/engines.py: the graph sizes restated from
Ollama's own Go source (``GraphSize`` in fs/ggml/ggml.go, the ``llama``, ``qwen2`` and ``gemma*`` cases,
unchanged from v0.12.3), evaluated with Go's unsigned integer arithmetic, for several geometries."""

from __future__ import annotations

import pytest
from cloudrun_gpu.sizing.engines import (
    OLLAMA_NUM_BATCH,
    ollama_estimate,
    ollama_scheduler_estimate,
    runtime_overhead_bytes,
)
from cloudrun_gpu.sizing.spec import ModelSpec


def spec(arch: str, layers: int, e: int, h: int, kv: int, hd: int, vocab: int) -> ModelSpec:
    return ModelSpec(
        name=arch,
        architecture=arch,
        n_layers=layers,
        hidden_size=e,
        n_heads=h,
        kv_heads=(kv,) * layers,
        head_dim_k=hd,
        head_dim_v=hd,
        vocab_size=vocab,
        max_context=131072,
        n_params=10**9,
        layer_windows=(None,) * layers,
    )


def go_graph(
    family: str, context: int, batch: int, e: int, vocab: int, heads: int, heads_kv: int, ehk: int
) -> tuple[int, int]:
    """(fullOffload, partialOffload) as ggml.go computes them (``embeddingHeads = embedding / heads``)."""
    eh = e // heads
    if family == "llama":
        full = max(4 * batch * (1 + 4 * e + context * (1 + heads)), 4 * batch * (e + vocab))
        partial = 4 * batch * e + max(
            4 * batch * (1 + e + max(context, e)) + e * e * 9 // 16 + 4 * context * (batch * heads + eh * heads_kv),
            4 * batch * (e + vocab) + e * vocab * 105 // 128,
        )
    elif family == "qwen2":
        full = max(4 * batch * (e + vocab), 4 * batch * (1 + 2 * e + context + context * heads))
        partial = max(
            4 * batch * (e + vocab) + e * vocab * 105 // 128,
            4 * (batch * (1 + 2 * e + context * (1 + heads)) + e * (1 + context)),
        )
    else:  # gemma, gemma2
        full = max(4 * batch * (e + vocab), 4 * batch * (2 + context + context * heads + 2 * e + 2 * ehk * heads))
        partial = max(
            4 * e * batch + e * vocab * 105 // 128 + 4 * vocab * batch,
            4 * batch * (2 * e + 1 + 2 * ehk * heads + context + context * heads)
            + 4 * ehk * context * 8
            + e * ehk * heads * 9 // 16,
        )
    return full, partial


CASES = [
    ("llama", spec("llama", 32, 4096, 32, 8, 128, 128256)),  # Llama 3.1 8B
    ("llama", spec("llama", 4, 512, 8, 2, 64, 1000)),  # small: the attention term dominates
    ("llama", spec("mistral", 16, 2048, 16, 4, 128, 32000)),
    ("qwen2", spec("qwen2", 28, 3584, 28, 4, 128, 152064)),
    ("qwen2", spec("qwen2", 4, 512, 8, 2, 64, 1000)),
    ("gemma", spec("gemma2", 42, 3584, 16, 8, 256, 256000)),
    ("gemma", spec("gemma2", 4, 512, 8, 2, 64, 1000)),
]


@pytest.mark.parametrize(("family", "model"), CASES, ids=[f"{c[1].architecture}-{c[1].hidden_size}" for c in CASES])
@pytest.mark.parametrize(("context", "parallel"), [(8192, 1), (4096, 4), (300, 2)])
def test_graph_sizes_match_ollamas_go(family: str, model: ModelSpec, context: int, parallel: int) -> None:
    est = ollama_estimate(model, context, parallel, "f16", 10**9)
    assert est is not None
    ctx, batch = context * parallel, min(context, OLLAMA_NUM_BATCH)
    full, partial = go_graph(
        family, ctx, batch, model.hidden_size, model.vocab_size, model.n_heads, max(model.kv_heads), model.head_dim_k
    )
    assert (est.graph_full, est.graph_partial) == (full, partial)
    kv = model.n_layers * ctx * 2 * model.head_dim_k * model.kv_heads[0] * 2  # f16: 2 bytes, K and V
    assert est.kv == kv
    assert est.layer_buffer == (10**9 + kv) // model.n_layers
    # Ollama's total: weights + KV + the larger graph + one layer's buffer + cudaMinimumMemory (457 MiB,
    # discover/gpu.go at v0.12.3)
    assert est.total == 10**9 + kv + max(full, partial) + est.layer_buffer + 457 * 1024**2
    assert ollama_scheduler_estimate(model, context, parallel, "f16", 10**9) == est.total


def test_kv_bytes_per_element_follow_the_cache_type() -> None:
    model = CASES[1][1]
    f16, q8, q4 = (ollama_estimate(model, 1024, 1, t, 10**6) for t in ("f16", "q8_0", "q4_0"))
    assert f16 is not None and q8 is not None and q4 is not None
    assert (f16.kv, q8.kv, q4.kv) == (2 * q8.kv, q8.kv, q8.kv // 2)


def test_runtime_overhead_bytes_takes_its_options_by_keyword_only() -> None:
    model = CASES[1][1]
    by_name = runtime_overhead_bytes(engine="llama.cpp", spec=model)
    assert by_name == runtime_overhead_bytes("llama.cpp", model) > 0
    with pytest.raises(TypeError, match="positional argument"):
        runtime_overhead_bytes("llama.cpp", model, None)  # type: ignore[call-arg]
