"""Mutation-strength tests for the sizing engine (engines.py, plan.py, quant.py).

vLLM's memory profile (engines.py) was being rewritten while these were written, so its exact numbers
are left to that work's own tests; llama.cpp and Ollama are pinned here.

Each test pins a rendered value (an env var, a flag, a probe path, bytes, bits per weight) whose
mutation used to survive (docs/test-strength.md names the class each test kills).
"""

from __future__ import annotations

from dataclasses import replace
from math import ceil, floor

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing import ModelSpec, SizingRequest, catalogue_model, size, startup
from cloudrun_gpu.sizing.engines import (
    ENGINES,
    engine_parallel_from_config,
    kv_bytes_per_sequence,
    kv_bytes_per_token_full,
    kv_cells,
    pad,
    render_engine_config,
    runtime_overhead_bytes,
    seconds_to_load,
)
from cloudrun_gpu.sizing.plan import a2_concurrency
from cloudrun_gpu.sizing.quant import FOUR_BIT_DEFAULT, KV_TYPES, WEIGHT_QUANTS, kv_row_bytes

LLAMA8 = catalogue_model("llama-3.1-8b")
L4_VRAM = 23034 * MIB
CR_MAX = int(limits.CONCURRENCY_MAX.value)


def swa_spec(window: int = 4096, layers: int = 2) -> ModelSpec:
    """Layer 0 slides over ``window`` tokens, the last layer is full attention; 1 KV head of 128."""
    return ModelSpec(
        name="swa",
        architecture="test",
        n_layers=layers,
        hidden_size=256,
        n_heads=2,
        kv_heads=(1,) * layers,
        head_dim_k=128,
        head_dim_v=64,
        vocab_size=1000,
        max_context=65536,
        n_params=10_000_000,
        layer_windows=(window,) * (layers - 1) + (None,),
    )


# ------------------------------------------------------------------------------------- engines.py


def test_engine_table_values() -> None:
    llama, ollama, vllm = ENGINES["llama.cpp"], ENGINES["ollama"], ENGINES["vllm"]
    assert (llama.readiness_path, ollama.readiness_path, vllm.readiness_path) == ("/health", "/api/version", "/health")
    assert (llama.default_kv, ollama.default_kv, vllm.default_kv) == ("q8_0", "q8_0", "fp8")
    assert (llama.default_memory_fraction, ollama.default_memory_fraction, vllm.default_memory_fraction) == (
        0.95,
        0.95,
        0.90,
    )
    assert (llama.max_parallel_default, ollama.max_parallel_default, vllm.max_parallel_default) == (32, 32, 256)
    assert llama.kv_types == ("f16", "bf16", "q8_0", "q4_0")
    assert ollama.kv_types == ("f16", "q8_0", "q4_0")
    assert vllm.kv_types == ("auto", "fp8")


@pytest.mark.parametrize(
    ("engine", "path"), [("llama.cpp", "/health"), ("ollama", "/api/version"), ("vllm", "/health")]
)
def test_startup_probe_path_is_the_engines_readiness_path(engine: str, path: str) -> None:
    kv = "fp8" if engine == "vllm" else None
    plan = size(SizingRequest(model=LLAMA8, engine=engine, context_length=4096, kv_cache_type=kv))
    assert plan.startup_probe.path == path
    assert f"HTTP GET {path}:" in plan.explain[-2] or any(f"HTTP GET {path}:" in n for n in plan.explain)


def test_ollama_env_exact() -> None:
    """OLLAMA_GPU_OVERHEAD is the VRAM the engine must leave free: vram × (1 − fraction)."""
    args, env = render_engine_config(
        "ollama",
        model_path="llama3.1:8b",
        context=4096,
        parallel=3,
        kv_type="q8_0",
        memory_fraction=0.9,
        vram_bytes=10 * GIB,
    )
    assert args == []
    assert env == {
        "OLLAMA_HOST": "127.0.0.1:11434",
        "OLLAMA_NUM_PARALLEL": "3",
        "OLLAMA_CONTEXT_LENGTH": "4096",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_GPU_OVERHEAD": str(int(10 * GIB * (1 - 0.9))),
        "OLLAMA_MODEL": "llama3.1:8b",
    }
    assert engine_parallel_from_config("ollama", args, env) == 3


def test_ollama_overhead_through_size() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="ollama", context_length=4096, model_path="llama3.1:8b"))
    assert plan.engine_env["OLLAMA_GPU_OVERHEAD"] == str(int(L4_VRAM * (1 - 0.95)))
    assert int(plan.engine_env["OLLAMA_GPU_OVERHEAD"]) == pytest.approx(0.05 * L4_VRAM, rel=1e-6)
    assert plan.engine_env["OLLAMA_MODEL"] == "llama3.1:8b"
    assert plan.engine_args == []


def test_llama_cpp_args_exact() -> None:
    args, env = render_engine_config(
        "llama.cpp",
        model_path="/models/m.gguf",
        context=4096,
        parallel=3,
        kv_type="q4_0",
        memory_fraction=0.95,
        vram_bytes=GIB,
        slot_save_path="/slots",
    )
    assert env == {}
    assert args == [
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "-m",
        "/models/m.gguf",
        "-c",
        str(4096 * 3),
        "-np",
        "3",
        "-ngl",
        "999",
        "-fa",
        "on",
        "-ctk",
        "q4_0",
        "-ctv",
        "q4_0",
        "--slot-save-path",
        "/slots",
        "--no-mmap",  # /models/ is the image's path: read, not mapped (loading.llama_cpp_mmap_args, R7)
    ]
    assert engine_parallel_from_config("llama.cpp", args, env) == 3
    no_slots, _ = render_engine_config(
        "llama.cpp", model_path="m", context=1, parallel=1, kv_type="f16", memory_fraction=1, vram_bytes=1
    )
    assert "--slot-save-path" not in no_slots


def test_pad_and_seconds_to_load() -> None:
    assert [pad(n, 256) for n in (1, 255, 256, 257, 512)] == [256, 256, 256, 512, 512]
    assert seconds_to_load(3 * GIB, 2 * GIB) == 1.5
    assert seconds_to_load(1, 3) == 0.4  # 0.333… rounds *up* to the next tenth
    assert seconds_to_load(10, 1) == 10.0


@pytest.mark.parametrize(
    ("engine", "context", "cells"),
    [
        ("llama.cpp", 8192, 4608),  # min(8192, 4096 + 512) padded to 256
        ("llama.cpp", 1000, 1024),  # the padded context is below the window
        # Ollama v0.12.3 runs an architecture outside OllamaEngineRequired on llama.cpp with swa_full = true
        # (llama_context_default_params, llama-context.cpp:2269): the sliding layer holds the whole context.
        ("ollama", 8192, 8192),
    ],
)
def test_kv_cells_on_a_sliding_layer(engine: str, context: int, cells: int) -> None:
    assert kv_cells(engine, swa_spec(), context, 0) == cells


@pytest.mark.parametrize(
    ("engine", "context", "cells"), [("llama.cpp", 1000, 1024), ("vllm", 1000, 1008)]
)  # pad 256 / 16
def test_kv_cells_on_a_full_layer(engine: str, context: int, cells: int) -> None:
    assert kv_cells(engine, swa_spec(), context, 1) == cells


def test_kv_bytes_only_count_full_layers_per_token_but_all_layers_per_sequence() -> None:
    spec = swa_spec(layers=3)
    row = 128 * 2 + 64 * 2  # K: 1 head × 128 f16, V: 1 head × 64 f16
    assert kv_bytes_per_token_full(spec, "f16") == row
    assert kv_bytes_per_sequence("llama.cpp", spec, 8192, "f16") == 2 * 4608 * row + 8192 * row


def test_mla_caches_one_latent_per_layer() -> None:
    spec = replace(swa_spec(), layer_windows=(None, None), mla_latent_dim=576)
    assert kv_bytes_per_token_full(spec, "f16") == 2 * 576 * 2


def test_runtime_overhead() -> None:
    assert runtime_overhead_bytes("llama.cpp", LLAMA8) == int(0.4 * GIB) + 512 * 4 * (128256 + 16 * 4096)
    assert runtime_overhead_bytes("ollama", LLAMA8) == runtime_overhead_bytes("llama.cpp", LLAMA8)


# --------------------------------------------------------------------------------------- quant.py


def test_kv_row_bytes_every_type() -> None:
    assert {k: kv_row_bytes(k, 64) for k in KV_TYPES} == {
        "f16": 128,
        "auto": 128,
        "bf16": 128,
        "q8_0": 68,
        "q4_0": 36,
        "fp8": 64,
    }
    assert kv_row_bytes("q4_0", 33) == 36 and kv_row_bytes("q8_0", 32) == 34


def test_weight_quant_table() -> None:
    """Every format sized today keeps its bits (formats may be added: the table is checked entry by entry)."""
    bits = {q.name: q.bits_per_weight for q in WEIGHT_QUANTS.values()}
    assert (
        bits.items()
        >= {
            "Q4_K_M": 4.89,
            "Q4_0": 4.5,
            "Q5_K_M": 5.69,
            "Q6_K": 6.5625,
            "Q8_0": 8.5,
            "F16": 16.0,
            "MXFP4": 4.34,
            "awq-int4": 4.25,
            "gptq-int4": 4.25,
            "fp8": 8.0,
            "bf16": 16.0,
        }.items()
    )
    gguf_side = {n for n, q in WEIGHT_QUANTS.items() if q.engines == ("llama.cpp", "ollama")}
    assert gguf_side >= {"Q4_K_M", "Q4_0", "Q5_K_M", "Q6_K", "Q8_0", "F16", "MXFP4"}
    assert {n for n, q in WEIGHT_QUANTS.items() if q.embeddings_bits == 16} >= {"awq-int4", "gptq-int4", "fp8"}
    assert all(WEIGHT_QUANTS[n].embeddings_bits is None for n in ("Q4_K_M", "Q8_0", "F16", "bf16"))
    assert all(WEIGHT_QUANTS[n].engines == ("vllm",) for n in ("awq-int4", "gptq-int4", "fp8", "bf16"))
    assert FOUR_BIT_DEFAULT == {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "vllm": "awq-int4"}


@pytest.mark.parametrize(("quant", "bits"), [("F16", 16), ("Q8_0", 8.5), ("Q4_0", 4.5), ("Q6_K", 6.5625)])
def test_gguf_weights_are_params_times_bits(quant: str, bits: float) -> None:
    small = catalogue_model("llama-3.2-1b")
    plan = size(SizingRequest(model=small, engine="llama.cpp", context_length=2048, weights_quant=quant))
    assert plan.weights_quant == quant
    assert plan.weights_bytes == int(small.n_params * bits / 8)


def test_an_f16_model_is_sized_at_16_bits() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=2048, weights_quant="F16"))
    assert plan.weights_bytes == 2 * LLAMA8.n_params  # 16.06 GB: F16 really is two bytes per weight
    assert plan.weights_bytes > 14 * GIB


def test_vllm_awq_keeps_embeddings_at_16_bits() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="vllm", context_length=4096))
    embed = 128256 * 4096 * 2  # untied: embeddings + lm_head
    assert plan.weights_quant == "awq-int4"
    assert plan.weights_bytes == int((LLAMA8.n_params - embed) * 4.25 / 8 + embed * 16 / 8)
    tied = catalogue_model("gemma-3-4b")
    tplan = size(SizingRequest(model=tied, engine="vllm", context_length=4096))
    tembed = tied.vocab_size * tied.hidden_size
    assert tplan.weights_bytes == int((tied.n_params - tembed) * 4.25 / 8 + tembed * 16 / 8)


def test_a_quant_the_engine_does_not_serve_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, engine="vllm", weights_quant="Q4_K_M"))
    assert err.value.field == "model.quantization"
    allowed = err.value.allowed.split(", ")
    assert {"awq-int4", "gptq-int4", "fp8", "bf16"} <= set(allowed)
    assert allowed == [q.name for q in WEIGHT_QUANTS.values() if "vllm" in q.engines]


def test_weights_read_from_a_file_win() -> None:
    spec = replace(LLAMA8, weights_bytes=5 * GIB, weights_quant="Q5_K_M")
    plan = size(SizingRequest(model=spec, engine="llama.cpp", context_length=2048, weights_quant="F16"))
    assert (plan.weights_bytes, plan.weights_quant) == (5 * GIB, "Q5_K_M")
    plain = size(SizingRequest(model=replace(LLAMA8, weights_bytes=GIB), context_length=2048))
    assert plain.weights_quant == "as stored"


# ---------------------------------------------------------------------------------------- plan.py


def test_a2_concurrency() -> None:
    assert a2_concurrency(2, 3, 5) == 2 * 3 + 2 * 5


def test_ideal_batch_size_is_used() -> None:
    base = SizingRequest(model=LLAMA8, context_length=4096, parallel=2)
    assert size(base).ideal_batch_size == 2
    assert size(base).max_instance_request_concurrency == 4
    plan = size(replace(base, ideal_batch_size=5))
    assert (plan.ideal_batch_size, plan.max_instance_request_concurrency) == (5, 7)
    zero = size(replace(base, ideal_batch_size=0))
    assert zero.max_instance_request_concurrency == 2
    capped = size(replace(base, ideal_batch_size=10 * CR_MAX))
    assert capped.ideal_batch_size == CR_MAX - 2
    assert capped.max_instance_request_concurrency == CR_MAX


def test_budget_fraction_and_overhead_in_the_plan() -> None:
    plan = size(SizingRequest(model=LLAMA8, context_length=4096))
    assert plan.memory_fraction == 0.95
    assert plan.budget_bytes == int(L4_VRAM * 0.95)
    assert plan.vram_bytes == L4_VRAM
    assert plan.runtime_overhead_bytes == runtime_overhead_bytes("llama.cpp", LLAMA8)
    assert plan.kv_cache_type == "q8_0"
    room = plan.budget_bytes - plan.weights_bytes - plan.runtime_overhead_bytes
    assert plan.parallel_fit == room // plan.kv_cache_bytes_per_sequence
    assert plan.max_parallel_sequences == min(plan.parallel_fit, 32)
    custom = size(SizingRequest(model=LLAMA8, context_length=4096, memory_fraction=0.5, max_parallel=2))
    assert custom.budget_bytes == int(L4_VRAM * 0.5)
    assert custom.max_parallel_sequences == 2
    assert custom.to_dict()["used_bytes"] == custom.weights_bytes + custom.runtime_overhead_bytes + (
        2 * custom.kv_cache_bytes_per_sequence
    )
    assert custom.to_dict()["kv_cache_bytes"] == 2 * custom.kv_cache_bytes_per_sequence


def test_default_context_is_8192_capped_by_the_model() -> None:
    assert size(SizingRequest(model=LLAMA8)).context_length == 8192
    short = replace(LLAMA8, max_context=2048)
    assert size(SizingRequest(model=short)).context_length == 2048
    assert size(SizingRequest(model=replace(LLAMA8, max_context=0))).context_length == 8192
    assert size(SizingRequest(model=short, context_length=2048)).context_length == 2048
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=short, context_length=2049))
    assert (err.value.field, err.value.allowed) == ("engine.context_length", "1..2048")


def expected_probe(slowest: float, fastest: float) -> tuple[int, int, int, int, int]:
    """The probe derived from the slowest and fastest start (the start estimate is ``sizing/startup.py``'s
    business, held against published starts in tests/test_startup_evidence.py)."""
    window = ceil(slowest * 1.25 + 30)
    delay = min(240, floor(fastest * 0.8))
    period = 10 if window - delay <= 600 else 30
    return delay, period, min(5, period - 1), max(1, ceil((window - delay) / period)), window


@pytest.mark.parametrize(
    ("engine", "method", "quant"),
    [
        ("llama.cpp", "image", None),
        ("vllm", "gcs-fuse", None),
        ("ollama", "gcs-fuse", "F16"),
        ("llama.cpp", "internet", "F16"),
        ("vllm", "image", "bf16"),
    ],
)
def test_startup_probe_numbers(engine: str, method: str, quant: str | None) -> None:
    kv = "fp8" if engine == "vllm" else None
    plan = size(
        SizingRequest(
            model=LLAMA8,
            engine=engine,
            context_length=2048,
            kv_cache_type=kv,
            loading_method=method,
            weights_quant=quant,
        )
    )
    p = plan.startup_probe
    est = startup.estimate(method=method, engine=engine, weights_bytes=plan.weights_bytes, gpu=plan.gpu)
    assert p.expected_start_seconds == est.expected_s
    want = expected_probe(est.slowest_s, est.fastest_s)
    assert (p.initial_delay_seconds, p.period_seconds, p.timeout_seconds, p.failure_threshold, p.window_seconds) == want
    assert p.expected_start_seconds > seconds_to_load(plan.weights_bytes, limits.LOADING_METHODS[method].bytes_per_s)


def test_measured_throughput_overrides_the_method_rate() -> None:
    base = SizingRequest(model=LLAMA8, context_length=2048, loading_method="gcs-fuse")
    default = size(base)
    measured = size(replace(base, load_bytes_per_s=GIB / 4))
    w = default.weights_bytes
    fuse_rate = limits.LOADING_METHODS["gcs-fuse"].bytes_per_s
    assert measured.startup_probe.expected_start_seconds - default.startup_probe.expected_start_seconds == (
        pytest.approx(seconds_to_load(w, GIB / 4) - seconds_to_load(w, fuse_rate), abs=0.05)
    )
    tiny = catalogue_model("gemma-3-270m")
    assert size(SizingRequest(model=tiny, context_length=2048, load_bytes_per_s=MIB)).weights_bytes > 0
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=tiny, context_length=2048, load_bytes_per_s=MIB - 1))
    assert err.value.field == "loading.throughput_gib_per_s"


def test_a_load_too_slow_for_the_startup_window_is_refused() -> None:
    big = catalogue_model("llama-3.1-70b")
    with pytest.raises(ConfigError) as err:
        size(
            SizingRequest(
                model=big,
                gpu="nvidia-rtx-pro-6000",
                context_length=2048,
                loading_method="internet",
                load_bytes_per_s=MIB,
            )
        )
    assert err.value.field == "loading.method"
    assert "image: ~" in err.value.fix  # the faster methods are named with their times


def test_weights_beyond_the_budget_name_the_model() -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, context_length=2048, weights_quant="F16", memory_fraction=0.5))
    assert err.value.field == "model"
    assert "nvidia-rtx-pro-6000" in err.value.fix


def test_too_long_a_context_suggests_the_largest_that_fits() -> None:
    spec = replace(LLAMA8, max_context=1 << 22)
    req = SizingRequest(model=spec, context_length=1 << 21, kv_cache_type="f16")
    with pytest.raises(ConfigError) as err:
        size(req)
    assert err.value.field == "engine.context_length"
    largest = int(err.value.allowed.split("..")[1])
    plan_room = int(L4_VRAM * 0.95) - int(spec.n_params * 4.89 / 8) - runtime_overhead_bytes("llama.cpp", spec)
    assert largest % 256 == 0 and largest > 0
    assert kv_bytes_per_sequence("llama.cpp", spec, largest, "f16") <= plan_room
    assert kv_bytes_per_sequence("llama.cpp", spec, largest + 256, "f16") > plan_room
    assert size(replace(req, context_length=largest)).max_parallel_sequences == 1


def test_parallel_bounds() -> None:
    fit = size(SizingRequest(model=LLAMA8, context_length=4096)).parallel_fit
    assert size(SizingRequest(model=LLAMA8, context_length=4096, parallel=fit)).max_parallel_sequences == fit
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, context_length=4096, parallel=fit + 1))
    assert (err.value.field, err.value.allowed) == ("engine.parallel", f"1..{fit}")
    tiny = catalogue_model("gemma-3-270m")
    # llama.cpp accepts at most LLAMA_MAX_SEQ = 256 sequences (src/llama-cparams.h), Ollama's runner likewise
    for engine in ("llama.cpp", "ollama"):
        with pytest.raises(ConfigError) as err:
            size(SizingRequest(model=tiny, engine=engine, gpu="nvidia-rtx-pro-6000", context_length=256, parallel=257))
        assert (err.value.field, err.value.allowed) == ("engine.parallel", "1..256")
        assert "LLAMA_MAX_SEQ" in err.value.problem
    at_max = size(SizingRequest(model=tiny, gpu="nvidia-rtx-pro-6000", context_length=256, parallel=256))
    assert at_max.max_parallel_sequences == 256
    assert at_max.max_instance_request_concurrency == 512
    # vLLM's default --max-num-seqs on large GPUs is 1024 (issue #22): it can be sized; Cloud Run still routes at
    # most CR_MAX requests to one instance, so the concurrency is clamped there, with the reason in the notes
    vllm = size(SizingRequest(model=tiny, engine="vllm", gpu="nvidia-rtx-pro-6000", context_length=256, parallel=1024))
    assert vllm.max_parallel_sequences == 1024 and "--max-num-seqs" in vllm.engine_args
    assert vllm.engine_args[vllm.engine_args.index("--max-num-seqs") + 1] == "1024"
    assert vllm.max_instance_request_concurrency == CR_MAX
    assert any("Cloud Run's maximum per instance" in n for n in vllm.explain)
    below = size(SizingRequest(model=tiny, engine="vllm", gpu="nvidia-rtx-pro-6000", context_length=256, parallel=500))
    assert below.max_instance_request_concurrency == CR_MAX  # 500 + a batch clamped to 500


def test_kv_type_checks() -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, engine="vllm", kv_cache_type="q8_0"))
    assert (err.value.field, err.value.allowed) == ("engine.kv_cache_type", "auto, fp8")
    assert size(SizingRequest(model=LLAMA8, engine="vllm", context_length=2048)).kv_cache_type == "fp8"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("engine.name", {"engine": "tgi"}), ("gpu.type", {"gpu": "a100"}), ("loading.method", {"loading_method": "ftp"})],
)
def test_unknown_names_are_refused(field: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, **kwargs))  # type: ignore[arg-type]
    assert err.value.field == field


def test_fp8_kv_needs_a_gpu_with_an_fp8_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Cloud Run GPU has FP8 today; a GPU type without it must refuse fp8 but keep 'auto'."""
    monkeypatch.setitem(
        limits.GPU_TYPES, "old-gpu", replace(limits.GPU_TYPES["nvidia-l4"], name="old-gpu", fp8_kv=False)
    )
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, engine="vllm", gpu="old-gpu", context_length=2048, kv_cache_type="fp8"))
    assert (err.value.field, err.value.fix) == ("engine.kv_cache_type", "use 'auto'")
    auto = size(SizingRequest(model=LLAMA8, engine="vllm", gpu="old-gpu", context_length=2048, kv_cache_type="auto"))
    assert auto.kv_cache_type == "auto"


def _probe_with_load(load_s: float) -> tuple[int, int, int]:
    spec = replace(LLAMA8, weights_bytes=GIB, weights_quant="Q4_K_M")
    plan = size(SizingRequest(model=spec, context_length=2048, load_bytes_per_s=GIB / load_s))
    p = plan.startup_probe
    return p.window_seconds - p.initial_delay_seconds, p.period_seconds, p.failure_threshold


def test_probe_period_is_10_s_up_to_600_s_of_probing() -> None:
    """remaining = window − delay: 10 s periods while it is ≤ 600 s, 30 s above (fewer probes)."""
    found: dict[int, tuple[int, int]] = {}
    for tenths in range(4300, 4500):  # loads of 430.0-449.9 s: window − initial delay crosses 600
        remaining, period, threshold = _probe_with_load(tenths / 10 - 0.01)
        found.setdefault(remaining, (period, threshold))
    assert found[600] == (10, 60)
    assert found[601] == (30, ceil(601 / 30))


@pytest.mark.parametrize("max_context", [3 << 16, 250_000, 333_333, 1 << 20])
@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.95])
def test_largest_context_is_maximal(max_context: int, fraction: float) -> None:
    spec = replace(LLAMA8, max_context=max_context)
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=spec, context_length=max_context, kv_cache_type="f16", memory_fraction=fraction))
    largest = int(err.value.allowed.split("..")[1])
    room = int(L4_VRAM * fraction) - int(spec.n_params * 4.89 / 8) - runtime_overhead_bytes("llama.cpp", spec)
    assert largest % 256 == 0
    assert kv_bytes_per_sequence("llama.cpp", spec, largest, "f16") <= room
    assert kv_bytes_per_sequence("llama.cpp", spec, largest + 256, "f16") > room


def test_a_model_without_kv_cache_is_not_limited_by_it() -> None:
    """No layer keeps a cache (every kv_heads entry 0): the fit is unbounded (10**6), the cap decides."""
    no_kv = replace(LLAMA8, kv_heads=(0,) * 32)
    plan = size(SizingRequest(model=no_kv, context_length=4096))
    assert (plan.kv_cache_bytes_per_sequence, plan.parallel_fit, plan.max_parallel_sequences) == (0, 10**6, 32)
