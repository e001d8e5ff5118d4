"""Every sizing formula against numbers checked by hand (the arithmetic is in each comment)."""

from __future__ import annotations

from math import ceil

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size
from cloudrun_gpu.sizing.engines import (
    engine_parallel_from_config,
    kv_bytes_per_sequence,
    kv_bytes_per_token_full,
    runtime_overhead_bytes,
)
from cloudrun_gpu.sizing.plan import a2_concurrency
from cloudrun_gpu.sizing.quant import kv_row_bytes

LLAMA8 = catalogue_model("llama-3.1-8b")


def test_kv_per_token_llama_3_1_8b_f16() -> None:
    # 2 (K,V) × 32 layers × 8 KV heads × 128 head_dim × 2 bytes = 131,072
    assert kv_bytes_per_token_full(LLAMA8, "f16") == 131_072


@pytest.mark.parametrize(
    ("kv", "expected"),
    [
        ("q8_0", 32 * 2 * (1024 // 32 * 34)),  # 1024 elements per row → 32 blocks × 34 B = 1088 B → 69,632
        ("q4_0", 32 * 2 * (1024 // 32 * 18)),  # 32 blocks × 18 B = 576 B per row → 36,864
        ("fp8", 32 * 2 * 1024),  # 1 byte per element → 65,536
    ],
)
def test_kv_per_token_quantised(kv: str, expected: int) -> None:
    assert kv_bytes_per_token_full(LLAMA8, kv) == expected


def test_kv_row_bytes_rounds_up_to_whole_blocks() -> None:
    assert kv_row_bytes("q8_0", 33) == 2 * 34
    assert kv_row_bytes("f16", 33) == 66


def test_llama_cpp_pads_each_slot_to_256_cells() -> None:
    # ctx 1000 → 1024 cells (GGML_PAD(n_ctx_seq, 256)); 1024 × 131,072 B = 128 MiB
    assert kv_bytes_per_sequence("llama.cpp", LLAMA8, 1000, "f16") == 1024 * 131_072
    # vLLM pages 16-token blocks: 1000 → 1008 tokens
    assert kv_bytes_per_sequence("vllm", LLAMA8, 1000, "f16") == 1008 * 131_072


def test_gemma2_sliding_window_layers_hold_only_window_plus_ubatch() -> None:
    g2 = catalogue_model("gemma-2-9b")
    assert g2.n_full_layers == 21
    per_layer = 2 * 8 * 256 * 2  # 8,192 B per layer per token (f16)
    assert kv_bytes_per_token_full(g2, "f16") == 21 * per_layer == 172_032  # CSV column "full layers only"
    # llama.cpp, ctx 8192: 21 full layers × 8192 cells + 21 SWA layers × PAD(min(8192, 4096 + 512), 256) = 4608 cells
    assert kv_bytes_per_sequence("llama.cpp", g2, 8192, "f16") == 21 * 8192 * per_layer + 21 * 4608 * per_layer


def test_gemma3_vllm_sliding_layers_hold_window_plus_one_block() -> None:
    g3 = catalogue_model("gemma-3-4b")
    per_layer = 2 * 4 * 256 * 2  # 4,096 B
    # vLLM's hybrid allocator (SlidingWindowSpec.max_memory_usage_bytes): a sliding layer keeps
    # cdiv(window − 1 + max_num_batched_tokens, 16) + 1 blocks. Window 1024, 2048 batched tokens:
    # cdiv(3071, 16) + 1 = 193 blocks = 3,088 tokens. The layers are grouped (kv_cache_utils.py
    # _get_kv_cache_groups_uniform_page_size): group size = the smallest type's count, 5 full layers, so the 29
    # sliding layers fill cdiv(29, 5) = 6 groups of 5 slots = 30 (one padding slot, which costs memory too:
    # every block spans group_size layer slots). 5 global × 32,768 + 30 local slots × 3,088.
    assert kv_bytes_per_sequence("vllm", g3, 32_768, "auto") == 5 * 32_768 * per_layer + 30 * 3088 * per_layer
    # 512 batched tokens: cdiv(1535, 16) + 1 = 97 blocks = 1,552 tokens
    assert kv_bytes_per_sequence("vllm", g3, 32_768, "auto", 512) == 5 * 32_768 * per_layer + 30 * 1552 * per_layer


def test_mla_caches_one_latent_per_layer() -> None:
    ds = catalogue_model("deepseek-v3")
    # 61 layers × (512 + 64) elements × 2 bytes = 70,272 (vs > 4 MB if K and V were per head)
    assert kv_bytes_per_token_full(ds, "f16") == 70_272


def test_weights_from_bits_per_weight() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=4096))
    assert plan.weights_quant == "Q4_K_M"  # B2: 4-bit by default
    assert plan.weights_bytes == int(8.03e9 * 4.89 / 8)  # 4,908,337,500 B ≈ 4.57 GiB


def test_awq_keeps_embeddings_in_bf16() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="vllm", context_length=4096))
    embed = 128_256 * 4096 * 2  # untied: embeddings + lm_head
    assert plan.weights_bytes == int((8.03e9 - embed) * 4.25 / 8 + embed * 16 / 8)


def test_a2_rule_matches_the_seed_example() -> None:
    # 3 model instances, 4 parallel queries, ideal batch 4 → (3 × 4) + (3 × 4) = 24
    assert a2_concurrency(3, 4, 4) == 24


def test_parallel_is_what_fits_and_concurrency_follows_a2() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=8192, kv_cache_type="f16"))
    room = plan.budget_bytes - plan.weights_bytes - plan.runtime_overhead_bytes
    assert plan.kv_cache_bytes_per_sequence == 8192 * 131_072  # exactly 1 GiB per sequence
    assert plan.parallel_fit == room // GIB
    assert plan.max_parallel_sequences == min(plan.parallel_fit, 32)
    assert plan.max_instance_request_concurrency == 2 * plan.max_parallel_sequences
    assert plan.used_bytes <= plan.budget_bytes


def test_engine_flags_carry_the_same_concurrency_r6() -> None:
    for engine in ("llama.cpp", "ollama", "vllm"):
        plan = size(SizingRequest(model=LLAMA8, engine=engine, context_length=4096))
        assert engine_parallel_from_config(engine, plan.engine_args, plan.engine_env) == plan.max_parallel_sequences


def test_llama_cpp_flags_split_total_context_across_slots() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=4096, parallel=4))
    a = plan.engine_args
    assert a[a.index("-c") + 1] == str(4096 * 4)  # -c is the TOTAL cells; each slot gets c / np
    assert a[a.index("-np") + 1] == "4"
    assert a[a.index("-ctk") + 1] == a[a.index("-ctv") + 1] == "q8_0"  # R4 default
    assert a[a.index("-fa") + 1] == "on"  # a quantised V cache needs flash attention


def test_ollama_env() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="ollama", context_length=4096, parallel=3))
    env = plan.engine_env
    assert env["OLLAMA_NUM_PARALLEL"] == "3"
    assert env["OLLAMA_CONTEXT_LENGTH"] == "4096"  # per request; Ollama multiplies by NUM_PARALLEL
    assert env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert env["OLLAMA_FLASH_ATTENTION"] == "1"  # without it the KV type is ignored
    assert env["OLLAMA_KEEP_ALIVE"] == "-1"


def test_vllm_args() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="vllm", context_length=16_384, parallel=8))
    a = plan.engine_args
    assert a[a.index("--max-model-len") + 1] == "16384"
    assert a[a.index("--max-num-seqs") + 1] == "8"
    assert a[a.index("--gpu-memory-utilization") + 1] == "0.90"
    assert a[a.index("--kv-cache-dtype") + 1] == "fp8"
    assert "--enable-prefix-caching" in a


def test_vllm_overhead_grows_with_model_size() -> None:
    small = runtime_overhead_bytes("vllm", catalogue_model("llama-3.2-1b"))
    big = runtime_overhead_bytes("vllm", catalogue_model("qwen2.5-32b"))
    assert 1.5 * GIB < small < big <= 6 * GIB


def test_probe_from_load_time() -> None:
    plan = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=4096, loading_method="gcs-fuse"))
    p = plan.startup_probe
    # expected: 7 s start + 34 s Direct VPC set-up + 4.57 GiB / 0.05 GiB/s (91.5 s) + 5 s init = 137.5 s;
    # slowest: 11.3 s + 60 s VPC allowance + 4.57 / 0.049 (93.3 s) + 10 s = 174.6 s → window ceil(× 1.25 + 30) = 249;
    # fastest: 5.6 s + 4.57 / 0.053 (86.3 s) + 1 s = 92.9 s → initial delay floor(× 0.8) = 74
    assert p.expected_start_seconds == pytest.approx(137.5, abs=0.1)
    assert p.window_seconds == 249
    assert p.initial_delay_seconds == 74
    assert p.initial_delay_seconds + p.failure_threshold * p.period_seconds >= p.window_seconds
    assert p.timeout_seconds < p.period_seconds
    assert p.path == "/health"


def test_image_method_needs_no_direct_vpc_set_up_before_loading() -> None:
    fuse = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=4096, loading_method="gcs-fuse"))
    image = size(SizingRequest(model=LLAMA8, engine="llama.cpp", context_length=4096, loading_method="image"))
    load = {m: 4.57 * 1024**3 / limits.LOADING_METHODS[m].bytes_per_s for m in ("gcs-fuse", "image")}
    gap = fuse.startup_probe.expected_start_seconds - image.startup_probe.expected_start_seconds
    assert gap == pytest.approx(limits.DIRECT_VPC_CONNECT_S.value + load["gcs-fuse"] - load["image"], abs=0.3)


def test_vllm_init_does_not_grow_with_total_parameters() -> None:
    """Issue 25: 45 s + 4.5 s per billion parameters gave 186 s for a 31B model whose Cloud Run log shows
    139 s of engine start (97 s init incl. torch.compile), and 571 s for gpt-oss-120b, most of whose
    parameters are experts that only add bytes to read. The init term is now the measured one per version
    band, and the model's size enters through the read term alone."""

    def init(name: str, version: str | None = None) -> float:
        plan = size(
            SizingRequest(
                model=catalogue_model(name),
                engine="vllm",
                gpu="nvidia-rtx-pro-6000",
                context_length=4096,
                engine_version=version,
            )
        )
        load = ceil(plan.weights_bytes / limits.LOADING_METHODS["image"].bytes_per_s * 10) / 10
        return round(plan.startup_probe.expected_start_seconds - limits.CONTAINER_START_S.value - load, 1)

    assert init("llama-3.2-3b") == init("gemma-3-27b") == 139.0
    assert init("gemma-3-27b", "0.7.3") == 139.0  # V0: no published start, the V1 figure as an upper bound
    assert 139.0 < 186  # the old term for a 31B model


def test_model_that_cannot_load_in_time_suggests_faster_method() -> None:
    big = catalogue_model("gpt-oss-120b")  # MXFP4: 116.8 B × 4.34 bit ≈ 59 GiB
    with pytest.raises(ConfigError) as err:
        size(
            SizingRequest(
                model=big,
                engine="llama.cpp",
                gpu="nvidia-rtx-pro-6000",
                weights_quant="MXFP4",
                context_length=8192,
                loading_method="internet",
            )
        )
    assert err.value.field == "loading.method"
    assert "gcs-download" in err.value.fix


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"model": catalogue_model("llama-3.1-70b")}, "model"),  # 40 GiB of 4-bit weights on a 24 GB L4
        (
            {"model": LLAMA8, "context_length": 131_072, "kv_cache_type": "f16", "weights_quant": "Q8_0"},
            "engine.context_length",
        ),
        ({"model": LLAMA8, "context_length": 8192, "parallel": 500}, "engine.parallel"),
        ({"model": LLAMA8, "engine": "llama.cpp", "kv_cache_type": "fp8"}, "engine.kv_cache_type"),
        ({"model": LLAMA8, "engine": "vllm", "kv_cache_type": "q8_0"}, "engine.kv_cache_type"),
        ({"model": LLAMA8, "engine": "vllm", "weights_quant": "Q4_K_M"}, "model.quantization"),
        ({"model": LLAMA8, "context_length": 200_000}, "engine.context_length"),
        ({"model": LLAMA8, "gpu": "nvidia-h100"}, "gpu.type"),
    ],
)
def test_impossible_configs_name_the_field(request_kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(**request_kwargs))  # type: ignore[arg-type]
    assert err.value.field == field
    assert err.value.fix


def test_context_error_suggests_the_largest_context_that_fits() -> None:
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=LLAMA8, context_length=131_072, kv_cache_type="f16", weights_quant="Q8_0"))
    largest = int(err.value.allowed.split("..")[1])
    ok = size(SizingRequest(model=LLAMA8, context_length=largest, kv_cache_type="f16", weights_quant="Q8_0"))
    assert ok.max_parallel_sequences == 1
    assert largest % 256 == 0


def test_gpu_data_carries_sources() -> None:
    for gpu in limits.GPU_TYPES.values():
        assert gpu.source and gpu.vram_bytes > 20_000 * MIB and gpu.min_cpu >= 4
    assert limits.STARTUP_WINDOW_GPU_S.conflict  # §9.1 recorded, not hidden


# --- issue 11: Ollama at its pinned version, llama.cpp with shared KV and per-layer head sizes -------------

from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from cloudrun_gpu.images import ENGINE_IMAGES  # noqa: E402
from cloudrun_gpu.sizing import read_hf  # noqa: E402
from cloudrun_gpu.sizing.engines import (  # noqa: E402
    OLLAMA_NUM_BATCH,
    OLLAMA_PINNED_VERSION,
    kv_bytes_total,
    kv_cells,
    ollama_engine_family,
)
from cloudrun_gpu.sizing.plan import ollama_sequences_that_fit  # noqa: E402

HF_DATA = Path(__file__).parent / "data" / "hf"


def test_ollama_rules_are_read_at_the_pinned_version() -> None:
    """The Ollama KV rules (engines.py) were read at v0.12.3; a new image tag must revisit them."""
    tags = {img.build_args.get("OLLAMA_TAG") for (engine, _gpu), img in ENGINE_IMAGES.items() if engine == "ollama"}
    assert tags == {OLLAMA_PINNED_VERSION}
    assert OLLAMA_NUM_BATCH == 512  # api/types.go:835 at v0.12.3: NumBatch: 512


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gemma-3-27b", "gemma3"),
        ("gemma-3-4b", "gemma3"),
        ("gpt-oss-20b", "gptoss"),
        ("qwen3-8b", "qwen3"),
        ("gemma-2-9b", None),  # gemma2 is not OllamaEngineRequired at v0.12.3: the llama.cpp runner
        ("llama-3.1-8b", None),
        ("qwen2.5-7b", None),
        ("mistral-7b-v0.3", None),
    ],
)
def test_ollama_engine_or_llama_cpp_runner(model: str, family: str | None) -> None:
    assert ollama_engine_family(catalogue_model(model)) == family


def test_ollama_engine_sliding_cache_is_shared_by_all_sequences() -> None:
    """Ollama engine (kvcache/causal.go:171-177): full cache = roundUp(parallel × context, 256), sliding cache =
    roundUp(parallel × window + min(512, context), 256)."""
    g3 = catalogue_model("gemma-3-4b")  # window 1024; layer 5 is global
    assert kv_cells("ollama", g3, 8192, 0, parallel=4) == 4 * 1024 + 512
    assert kv_cells("ollama", g3, 8192, 5, parallel=4) == 4 * 8192
    assert kv_cells("ollama", g3, 1000, 5, parallel=3) == 3072  # 3000 padded to 256
    assert kv_cells("ollama", g3, 1000, 0, parallel=3) == 3072  # the window (1024) exceeds the context: full
    assert kv_cells("ollama", g3, 1024, 0, parallel=2) == 2 * 1024 + 512
    assert kv_cells("ollama", g3, 8192, 0) == 1536  # one sequence
    # gpt-oss keeps 4096 tokens per sequence in its 128-token sliding layers (NewSWAMemCache(…, 4096, …))
    oss = catalogue_model("gpt-oss-20b")
    assert kv_cells("ollama", oss, 8192, 0, parallel=2) == 2 * 4096 + 512
    assert kv_cells("ollama", oss, 2048, 0, parallel=2) == 4096  # 4096 > the context: a full cache


def test_ollama_llama_cpp_runner_keeps_full_sliding_caches() -> None:
    """llama.cpp runner: swa_full defaults to true (llama-context.cpp:2269) and Ollama never clears it."""
    g2 = catalogue_model("gemma-2-9b")
    row = 2 * 8 * 256 * 2  # K and V, 8 heads × 256, 2 B: 8,192 B per token per layer
    assert kv_cells("ollama", g2, 8192, 0, parallel=3) == 3 * 8192
    assert kv_bytes_total("ollama", g2, 8192, "f16", 3) == 42 * 3 * 8192 * row  # all 42 layers, full context
    # llama-server itself trims the sliding cache to window + n_ubatch
    assert kv_bytes_per_sequence("llama.cpp", g2, 8192, "f16") < kv_bytes_per_sequence("ollama", g2, 8192, "f16")


def test_ollama_fit_uses_the_shared_total() -> None:
    """Four gemma-3 sequences cost less than four times one: the window cache is shared."""
    g3 = catalogue_model("gemma-3-4b")
    one = kv_bytes_total("ollama", g3, 8192, "q8_0", 1)
    four = kv_bytes_total("ollama", g3, 8192, "q8_0", 4)
    assert four < 4 * one
    assert ollama_sequences_that_fit(g3, 8192, "q8_0", four) == 4
    assert ollama_sequences_that_fit(g3, 8192, "q8_0", four - 1) == 3
    assert ollama_sequences_that_fit(g3, 8192, "q8_0", 0) == 0
    assert ollama_sequences_that_fit(g3, 8192, "q8_0", one - 1) == 0
    plan = size(SizingRequest(model=g3, engine="ollama", context_length=8192, kv_cache_type="q8_0"))
    total = kv_bytes_total("ollama", g3, 8192, "q8_0", plan.max_parallel_sequences)
    assert plan.kv_cache_bytes >= total  # the plan charges at least what Ollama allocates
    assert plan.used_bytes <= plan.budget_bytes


def test_shared_kv_layers_cost_nothing_in_every_engine() -> None:
    spec = read_hf(HF_DATA / "gemma-4-e2b-it" / "config.json")
    unshared = replace(spec, kv_shared_layers=0)
    for engine in ("llama.cpp", "ollama", "vllm"):
        assert kv_cells(engine, spec, 8192, 20) == 0
        assert kv_bytes_per_sequence(engine, spec, 8192, "f16" if engine != "vllm" else "auto") < (
            kv_bytes_per_sequence(engine, unshared, 8192, "f16" if engine != "vllm" else "auto")
        )
    # llama.cpp: 12 sliding layers × pad(min(8192, 512 + 512), 256) × (1 × 256 × 2 × 2 B)
    #          + 3 full layers × 8192 × (1 × 512 × 2 × 2 B)
    assert kv_bytes_per_sequence("llama.cpp", spec, 8192, "f16") == 12 * 1024 * 1024 + 3 * 8192 * 2048


def test_gemma4_31b_per_layer_head_sizes_in_llama_cpp() -> None:
    """n_embd_k_gqa(il) = n_embd_head_k(il) × n_head_kv(il): 16 × 256 on sliding layers, 4 × 512 on full ones."""
    spec = read_hf(HF_DATA / "gemma-4-31b-it" / "config.json")
    sliding_row = 2 * 16 * 256 * 2
    full_row = 2 * 4 * 512 * 2
    assert kv_bytes_per_sequence("llama.cpp", spec, 8192, "f16") == 50 * 1536 * sliding_row + 10 * 8192 * full_row
    plan = size(
        SizingRequest(
            model=spec, engine="vllm", gpu="nvidia-rtx-pro-6000", context_length=32_768, engine_version="0.14.1"
        )
    )
    assert any("hybrid allocator: 6 groups × 10 layer slots" in line for line in plan.explain)


def test_ollama_scheduler_estimate_reproduces_its_log_line() -> None:
    """tests/data/logs/ollama-llama-3.2-3b-parallel4.log (ollama/ollama#8098): 28 layers, f16 KV, 4 × 2048
    tokens: memory.required.kv="896.0 MiB" memory.graph.full="424.0 MiB" memory.graph.partial="570.7 MiB"."""
    from cloudrun_gpu.sizing.engines import OLLAMA_CUDA_MINIMUM_MEMORY, ollama_estimate

    est = ollama_estimate(catalogue_model("llama-3.2-3b"), 2048, 4, "f16", int(2.4 * GIB))
    assert est is not None
    assert est.kv == 896 * MIB
    assert round(est.graph_full / MIB, 1) == 424.0
    assert round(est.graph_partial / MIB, 1) == 570.7
    assert est.total == est.weights + est.kv + est.graph_partial + est.layer_buffer + OLLAMA_CUDA_MINIMUM_MEMORY
    assert ollama_estimate(catalogue_model("gemma-3-4b"), 2048, 4, "f16", GIB) is None  # the Ollama engine


def test_ollama_plan_keeps_every_layer_on_the_gpu_by_its_own_estimate() -> None:
    """Llama 3.1 8B on an L4: the runner's KV would allow ~30 sequences of 8k, but Ollama's scheduler estimate
    (graph ∝ context × parallel × heads) would then move layers to the CPU; the plan stops where it still fits."""
    from cloudrun_gpu.sizing.engines import ollama_gpu_overhead, ollama_scheduler_estimate

    plan = size(SizingRequest(model=LLAMA8, engine="ollama", context_length=8192))
    gpu = limits.GPU_TYPES["nvidia-l4"]
    free = limits.cuda_total_bytes(gpu) - ollama_gpu_overhead(gpu.vram_bytes, plan.memory_fraction)
    n = plan.parallel_fit
    assert ollama_scheduler_estimate(LLAMA8, 8192, n, "q8_0", plan.weights_bytes) <= free
    assert ollama_scheduler_estimate(LLAMA8, 8192, n + 1, "q8_0", plan.weights_bytes) > free
    assert plan.max_parallel_sequences == n < 30
    assert any("layer scheduler" in line for line in plan.explain)
    # 128 k tokens of q8_0 KV fit the runner's real cache (9.1 GB), not the scheduler's estimate (22.2 GiB)
    with pytest.raises(ConfigError) as exc:
        size(SizingRequest(model=LLAMA8, engine="ollama", context_length=131_072, kv_cache_type="q8_0"))
    assert exc.value.field == "engine.context_length"
    assert "layer scheduler" in exc.value.problem
