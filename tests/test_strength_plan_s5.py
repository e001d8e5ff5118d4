"""Strength tests for the sizing plan, session 5 (issue 23; `sizing/plan.py` seed 101's survivors): Ollama's shared
sliding-window cache is charged to Ollama only, and a weight format the engine cannot serve is refused with the
formats it can."""

from __future__ import annotations

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.engines import OLLAMA_PINNED_VERSION, kv_bytes_per_sequence, kv_bytes_total


def test_only_ollama_charges_each_sequence_its_share_of_the_shared_sliding_window_cache() -> None:
    """Gemma 3 has sliding-window layers. Ollama (its own engine, the pinned tag) sizes each layer's cache for all
    sequences at once (``parallel × window + batch``), so a sequence costs its share of that total; llama.cpp gives
    every sequence its own cache. Same model, context, KV type and parallel: different bytes per sequence, each as
    the engine's own KV rule (``kv_bytes_total`` / ``kv_bytes_per_sequence``) gives it."""
    spec = catalogue_model("gemma-3-4b")
    plans = {
        engine: size(SizingRequest(model=spec, engine=engine, gpu="nvidia-l4", context_length=8192, max_parallel=4))
        for engine in ("ollama", "llama.cpp")
    }
    ollama, llama = plans["ollama"], plans["llama.cpp"]
    assert ollama.max_parallel_sequences == llama.max_parallel_sequences == 4
    assert ollama.kv_cache_type == llama.kv_cache_type
    kv = ollama.kv_cache_type
    total = kv_bytes_total("ollama", spec, 8192, kv, 4)
    assert ollama.kv_cache_bytes_per_sequence == -(-total // 4)
    assert llama.kv_cache_bytes_per_sequence == kv_bytes_per_sequence("llama.cpp", spec, 8192, kv)
    assert ollama.kv_cache_bytes_per_sequence < llama.kv_cache_bytes_per_sequence
    shared = f"KV cache (Ollama {OLLAMA_PINNED_VERSION}): 4 sequences share each layer's cache"
    assert [line for line in ollama.explain if line.startswith(shared)]
    assert not [line for line in llama.explain if "share each layer's cache" in line]


@pytest.mark.parametrize(
    ("engine", "quant", "allowed"),
    [
        ("llama.cpp", "awq-int4", ["Q4_K_M", "Q4_0", "Q5_K_M", "Q6_K", "Q8_0", "F16", "MXFP4"]),
        ("vllm", "Q4_K_M", ["awq-int4", "gptq-int4", "w4a16", "w8a8-int8", "fp8", "mxfp4", "bf16"]),
    ],
)
def test_a_weight_format_the_engine_cannot_serve_is_refused_with_the_ones_it_can(
    engine: str, quant: str, allowed: list[str]
) -> None:
    spec = catalogue_model("llama-3.1-8b")
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=spec, engine=engine, gpu="nvidia-l4", weights_quant=quant))
    e = err.value
    assert (e.field, e.value) == ("model.quantization", quant)
    assert e.problem == f"is not a weight format {engine} serves"
    assert e.fix == f"pick one of {allowed} (4-bit is the default, practice B2)"
    assert e.allowed == ", ".join(allowed)


@pytest.mark.parametrize(
    ("gpu", "budget", "fix"),
    [
        (
            "nvidia-l4",
            "21.37 GiB budget on nvidia-l4",
            "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory (nvidia-rtx-pro-6000: 96 GB)",
        ),
        (
            "nvidia-rtx-pro-6000",
            "90.81 GiB budget on nvidia-rtx-pro-6000",
            "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory",
        ),
    ],
)
def test_weights_that_cannot_fit_are_refused_with_the_three_numbers_that_decide_it(
    gpu: str, budget: str, fix: str
) -> None:
    """Llama 3.1 70B in F16 is ~131.5 GiB of weights (70.6 B parameters × 2 bytes): more than either GPU's budget.
    The refusal names the model and shows weights, the engine's overhead and the budget it exceeds on that GPU,
    and on an L4 it names the larger GPU Cloud Run offers."""
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=catalogue_model("llama-3.1-70b"), engine="llama.cpp", gpu=gpu, weights_quant="F16"))
    e = err.value
    assert (e.field, e.value) == ("model", "llama-3.1-70b")
    assert e.problem == f"weights (131.50 GiB) + engine overhead (0.89 GiB) exceed the {budget}"
    assert e.fix == fix
