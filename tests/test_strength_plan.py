"""Mutation-strength tests for sizing/plan.py: the refusals' exact words and numbers, the KV-cache note of each
engine for sliding-window layers, and the searches (Ollama's sequence count, the largest context that fits).

Each test names the mutant it was written for (docs/test-strength.md); the expected values are restated from the
formulas in sizing/engines.py and limits.py, not read back from the plan under test.
"""

from __future__ import annotations

from dataclasses import replace
from math import ceil

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size, startup
from cloudrun_gpu.sizing.engines import (
    kv_bytes_per_sequence,
    kv_bytes_total,
    ollama_gpu_overhead,
    ollama_scheduler_estimate,
    seconds_to_load,
)
from cloudrun_gpu.sizing.plan import ollama_sequences_that_fit, sequences_that_fit

L4_VRAM = 23034 * MIB
"""nvidia-smi's total on an L4 (limits.GPU_TYPES): what the llama.cpp runner's budget is a share of."""


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


# ------------------------------------------------------------------------- the load-time refusal (_probe)


def test_a_load_too_slow_states_its_rate_in_gib_per_s() -> None:
    """Llama 3.1 70B (Q4_K_M, 43.15 GB) at a measured 0.02 GiB/s over the internet: ~2,080 s to start, beyond
    Cloud Run's 240 s delay + 1,800 s probing. The message states the rate in GiB/s (``rate / GIB``)."""
    big = catalogue_model("llama-3.1-70b")
    rate = GIB // 50
    with pytest.raises(ConfigError) as err:
        size(
            SizingRequest(
                model=big,
                gpu="nvidia-rtx-pro-6000",
                context_length=2048,
                loading_method="internet",
                load_bytes_per_s=rate,
            )
        )
    weights = 43_154_250_000  # 70.6e9 params × 4.89 bits (Q4_K_M) / 8
    est = startup.estimate(method="internet", engine="llama.cpp", weights_bytes=weights, load_bytes_per_s=rate)
    expected = 7 + 34 + seconds_to_load(weights, rate) + 5  # container start + Direct VPC + read + llama.cpp init
    slowest = 11.3 + 60 + seconds_to_load(weights, rate) + 10  # the slow terms; the user's rate is the slow one too
    window = ceil(slowest * 1.25 + 30)
    assert est.expected_s == pytest.approx(expected)
    assert est.slowest_s == pytest.approx(slowest)
    assert window > 240 + 1800
    assert (err.value.field, err.value.value) == ("loading.method", "internet")
    assert err.value.problem == (
        f"the model (40.19 GiB) needs ~{expected:.0f} s to start at 0.020 GiB/s and up to ~{slowest:.0f} s at the "
        f"slowest published rate (×1.25 + 30 s = {window} s), beyond Cloud Run's largest startup window "
        "(240 s delay + 1800 s probing)"
    )
    assert err.value.problem.startswith("the model (40.19 GiB) needs ~2056 s to start at 0.020 GiB/s")
    faster = "; ".join(
        f"{m.name}: ~{7 + seconds_to_load(weights, m.bytes_per_s) + 5:.0f} s"
        for m in limits.LOADING_METHODS.values()
        if m.bytes_per_s > rate
    )
    assert err.value.fix == (
        f"use a faster loading method ({faster}), a smaller quantisation, or a smaller model (practices D2, L2)"
    )


# ----------------------------------------------------------------- the KV note of sliding layers (_kv_layers_note)


@pytest.mark.parametrize(
    ("model", "engine", "version", "note"),
    [
        # Gemma 2 runs on Ollama's llama.cpp runner, which never clears swa_full: full-length sliding caches.
        (
            "gemma-2-9b",
            "ollama",
            None,
            "KV cache: 91,392 B/token over 21 full-attention layers (q8_0); 21 sliding-window layers hold the full "
            "context (llama.cpp runner: swa_full) → 1.39 GiB per 8,192-token sequence as ollama allocates it",
        ),
        # Gemma 3 runs on the Ollama engine: one shared sliding cache of parallel × window + batch cells.
        (
            "gemma-3-4b",
            "ollama",
            None,
            "KV cache: 10,880 B/token over 5 full-attention layers (q8_0); 29 sliding-window layers hold parallel × "
            "window + 512 cells (Ollama engine) → 0.17 GiB per 8,192-token sequence as ollama allocates it",
        ),
        # llama-server trims the sliding cache to its window (+ one micro-batch).
        (
            "gemma-2-9b",
            "llama.cpp",
            None,
            "KV cache: 91,392 B/token over 21 full-attention layers (q8_0); 21 sliding-window layers hold only their "
            "window → 1.09 GiB per 8,192-token sequence as llama.cpp allocates it",
        ),
        (
            "gemma-2-9b",
            "vllm",
            "0.11.0",
            "KV cache: 86,016 B/token over 21 full-attention layers (fp8); 21 sliding-window layers hold window − 1 + "
            "2048 batched tokens + 1 block; hybrid allocator: 2 groups × 21 layer slots of 65,536 B pages (page sizes "
            "unified, padding slots included) → 1.15 GiB per 8,192-token sequence as vllm allocates it",
        ),
        (
            "gemma-2-9b",
            "vllm",
            None,
            "KV cache: 86,016 B/token over 21 full-attention layers (fp8); 21 sliding-window layers cached at full "
            "length: vLLM before v0.10 (or an unknown version) has no hybrid KV cache manager → 1.31 GiB per "
            "8,192-token sequence as vllm allocates it",
        ),
        (
            "llama-3.1-8b",
            "ollama",
            None,
            "KV cache: 69,632 B/token over 32 full-attention layers (q8_0) → 0.53 GiB per 8,192-token sequence as "
            "ollama allocates it",
        ),
    ],
)
def test_kv_note_says_how_each_engine_caches_sliding_layers(
    model: str, engine: str, version: str | None, note: str
) -> None:
    spec = catalogue_model(model)
    plan = size(SizingRequest(model=spec, engine=engine, context_length=8192, engine_version=version))
    assert [n for n in plan.explain if n.startswith("KV cache: ")] == [note]
    kv = plan.kv_cache_type
    batched = 2048 if engine == "vllm" else 0
    one = kv_bytes_per_sequence(engine, spec, 8192, kv, batched, hybrid=version is not None)
    assert note.endswith(f"→ {gib(one)} per 8,192-token sequence as {engine} allocates it")


# ------------------------------------------------------------------- Ollama's scheduler refusal (size)


def test_ollama_scheduler_refuses_a_context_our_plan_fits_twice() -> None:
    """Llama 3.1 8B on an L4, q8_0, 122,880 tokens: 16.03 GiB of room holds two 7.97 GiB sequences, but Ollama's
    own estimate for one (weights + KV at 1 B an element + its graph + a layer + 457 MiB) is 21.12 GiB, more
    than the 20.91 GiB it sees: the scheduler's refusal, not a context error (``sequences_that_fit(…) >= 1``)."""
    spec = catalogue_model("llama-3.1-8b")
    context = 122_880
    req = SizingRequest(model=spec, engine="ollama", context_length=context)
    fine = size(SizingRequest(model=spec, engine="ollama", context_length=8192))
    room = fine.budget_bytes - fine.weights_bytes - fine.runtime_overhead_bytes
    per_seq = kv_bytes_per_sequence("ollama", spec, context, "q8_0")
    assert sequences_that_fit(room, per_seq) == 2
    free = limits.cuda_total_bytes(limits.GPU_TYPES["nvidia-l4"]) - ollama_gpu_overhead(L4_VRAM, 0.95)
    estimate = ollama_scheduler_estimate(spec, context, 1, "q8_0", fine.weights_bytes)
    assert estimate > free
    with pytest.raises(ConfigError) as err:
        size(req)
    assert (err.value.field, err.value.value, err.value.allowed) == ("engine.context_length", context, "")
    assert err.value.problem == (
        f"Ollama's layer scheduler estimates {gib(estimate)} for one 122,880-token sequence, more than the "
        f"{gib(free)} it sees free: it would put layers on the CPU"
    )
    assert (gib(estimate), gib(free)) == ("21.12 GiB", "20.91 GiB")
    assert err.value.fix == "lower engine.context_length, use a smaller KV type (q4_0), or a GPU with more memory"


def test_ollama_context_beyond_the_kv_room_is_a_context_error() -> None:
    """Qwen2.5 32B on an L4, q4_0, 32,768 tokens: one sequence (2.25 GiB) is more than the 2.02 GiB left, so
    it is the context error with the largest context that fits, not the scheduler's refusal."""
    spec = catalogue_model("qwen2.5-32b")
    fine = size(SizingRequest(model=spec, engine="ollama", context_length=2048, kv_cache_type="q4_0"))
    room = fine.budget_bytes - fine.weights_bytes - fine.runtime_overhead_bytes
    per_seq = kv_bytes_per_sequence("ollama", spec, 32_768, "q4_0")
    assert sequences_that_fit(room, per_seq) == 0
    largest = max(c for c in range(256, 32_769, 256) if kv_bytes_per_sequence("ollama", spec, c, "q4_0") <= room)
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=spec, engine="ollama", context_length=32_768, kv_cache_type="q4_0"))
    assert (err.value.field, err.value.value, err.value.allowed) == ("engine.context_length", 32_768, f"1..{largest}")
    assert err.value.problem == (
        f"one 32,768-token sequence needs {gib(per_seq)} of KV cache but only {gib(room)} is left after weights "
        "and overhead"
    )
    assert (gib(per_seq), gib(room)) == ("2.25 GiB", "2.02 GiB")
    assert err.value.fix == f"set engine.context_length ≤ {largest} (R1), or a smaller KV type such as q4_0/fp8 (R4)"


# ---------------------------------------------------- the searches (ollama_sequences_that_fit, _largest_context)


@pytest.mark.parametrize(("model", "context"), [("gemma-3-4b", 8192), ("llama-3.1-8b", 4096)])
def test_ollama_sequences_that_fit_is_the_largest_count(model: str, context: int) -> None:
    """For every count n ≤ 40: a room of exactly the n-sequence total fits n, one byte less fits n − 1 (the
    doubling-then-bisecting search against a linear scan). Gemma 3 shares its sliding cache (Ollama engine);
    Llama runs on the llama.cpp runner, where the scheduler estimate is the second bound."""
    spec = catalogue_model(model)
    for n in range(1, 41):
        total = kv_bytes_total("ollama", spec, context, "q8_0", n)
        assert ollama_sequences_that_fit(spec, context, "q8_0", total) == n
        assert ollama_sequences_that_fit(spec, context, "q8_0", total - 1) == n - 1
    assert ollama_sequences_that_fit(spec, context, "q8_0", 0) == 0
    weights = 5 * GIB
    if ollama_scheduler_estimate(spec, context, 1, "q8_0", weights):
        for n in range(1, 41):
            free = ollama_scheduler_estimate(spec, context, n, "q8_0", weights)
            big_room = kv_bytes_total("ollama", spec, context, "q8_0", 1000)
            got = ollama_sequences_that_fit(spec, context, "q8_0", big_room, weights=weights, free=free)
            assert got == n
            assert ollama_sequences_that_fit(spec, context, "q8_0", big_room, weights=weights, free=free - 1) == n - 1


def test_ollama_fit_of_two_through_size() -> None:
    """Llama 3.1 8B on an L4 at 40,960 tokens: the KV room holds six sequences, but Ollama's scheduler estimate
    keeps every layer on the GPU for two and not for three, so the plan's fit is 2."""
    spec = catalogue_model("llama-3.1-8b")
    plan = size(SizingRequest(model=spec, engine="ollama", context_length=40_960))
    room = plan.budget_bytes - plan.weights_bytes - plan.runtime_overhead_bytes
    assert kv_bytes_total("ollama", spec, 40_960, "q8_0", 6) <= room < kv_bytes_total("ollama", spec, 40_960, "q8_0", 7)
    free = limits.cuda_total_bytes(limits.GPU_TYPES["nvidia-l4"]) - ollama_gpu_overhead(L4_VRAM, 0.95)
    estimate = [ollama_scheduler_estimate(spec, 40_960, n, "q8_0", plan.weights_bytes) for n in (2, 3)]
    assert estimate[0] <= free < estimate[1]
    assert (plan.parallel_fit, plan.max_parallel_sequences) == (2, 2)


def test_no_context_fits_a_room_below_one_sliding_block() -> None:
    """vLLM ≥ 0.10 keeps one block per sliding group even at context 0 (the window need not start on a block
    boundary): Gemma 2 9B's sliding group, 21 slots × one 64 KiB page = 1.31 MiB. With a few hundred kB left after the
    weights and the profile, no multiple of 256 fits: the refusal then names the model (its fixes: quantise, a
    smaller model, a larger GPU), not a context of "≤ 0"."""
    spec = catalogue_model("gemma-2-9b")
    assert kv_bytes_per_sequence("vllm", spec, 0, "fp8", 2048) == 21 * 65_536

    def refusal(total: int) -> ConfigError | None:
        req = SizingRequest(model=spec, engine="vllm", context_length=4096, engine_version="0.11.0", vram_bytes=total)
        try:
            size(replace(req, parallel=1))
        except ConfigError as err:
            return err
        return None

    def no_room(total: int) -> bool:
        err = refusal(total)
        return err is not None and err.field == "model" and "exceed the" in err.problem  # the weights do not fit

    lo, hi = 1 * GIB, 20 * GIB  # the weights do not fit at lo; they do at hi
    assert no_room(lo) and not no_room(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if no_room(mid) else (lo, mid)
    err = refusal(hi + 100_000)  # ~90 kB of room: below one sliding block
    assert err is not None
    # no context fits at all: the error names the model and its fixes, never "context_length ≤ 0"
    assert (err.field, err.value) == ("model", spec.name)
    assert err.problem == (
        "weights and engine overhead leave 0.00 GiB for the KV cache: not even the shortest context fits "
        "(one 4,096-token sequence needs 0.66 GiB)"
    )
    assert err.fix == "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory"


def test_largest_context_is_zero_when_no_multiple_of_256_fits() -> None:
    """The search's contract at its floor: 0 (never below) when not even one block fits, so the caller's "no
    context fits" branch sees exactly 0; and the largest multiple of 256 otherwise."""
    from cloudrun_gpu.sizing.plan import _largest_context

    spec = catalogue_model("gemma-2-9b")
    one_block = kv_bytes_per_sequence("vllm", spec, 0, "fp8", 2048)
    assert _largest_context("vllm", spec, "fp8", one_block - 1, 2048) == 0
    per_256 = kv_bytes_per_sequence("llama.cpp", spec, 256, "f16")
    assert _largest_context("llama.cpp", spec, "f16", per_256 - 1) == 0
    assert _largest_context("llama.cpp", spec, "f16", per_256) == 256


def test_the_scheduler_note_counts_the_sequences_it_estimated() -> None:
    """Llama 3.1 8B at 106,496 tokens on an L4: Ollama's estimate allows exactly one sequence, and the note says
    so (one sequence, the estimate for it); at 8,192 tokens it allows the fit's 14."""
    spec = catalogue_model("llama-3.1-8b")
    one = size(SizingRequest(model=spec, engine="ollama", context_length=106_496))
    assert one.max_parallel_sequences == 1
    (note,) = [line for line in one.explain if "layer scheduler" in line]
    estimate = ollama_scheduler_estimate(spec, 106_496, 1, "q8_0", one.weights_bytes)
    assert f"its own estimate ({gib(estimate)} for 1 sequence: weights," in note
    many = size(SizingRequest(model=spec, engine="ollama", context_length=8192))
    (note,) = [line for line in many.explain if "layer scheduler" in line]
    assert f"for {many.max_parallel_sequences} sequences: weights," in note and many.max_parallel_sequences == 14


def test_a_load_rate_below_1_mib_per_s_is_refused_in_gib_per_s() -> None:
    """The value is reported in the unit the user writes (``loading.throughput_gib_per_s``), not in bytes."""
    spec = catalogue_model("llama-3.1-8b")
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=spec, engine="llama.cpp", load_bytes_per_s=MIB // 2))
    assert (err.value.field, err.value.value, err.value.allowed) == (
        "loading.throughput_gib_per_s",
        (MIB // 2) / GIB,
        "≥ 0.001",
    )
    assert err.value.problem == "is below 1 MiB/s"
