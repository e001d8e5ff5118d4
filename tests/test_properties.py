"""Hypothesis properties of the sizing engine and the config validation."""

from __future__ import annotations

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, catalogue_model, catalogue_names, size
from cloudrun_gpu.sizing.engines import ENGINES
from hypothesis import given, settings
from hypothesis import strategies as st

ENGINE_KV = [(e, kv) for e, eng in ENGINES.items() for kv in eng.kv_types]


def _try(req: SizingRequest) -> SizingPlan | None:
    try:
        return size(req)
    except ConfigError:
        return None


requests = st.builds(
    lambda model, ekv, gpu, ctx, loading: SizingRequest(
        model=catalogue_model(model),
        engine=ekv[0],
        kv_cache_type=ekv[1],
        gpu=gpu,
        context_length=ctx,
        loading_method=loading,
    ),
    st.sampled_from(catalogue_names()),
    st.sampled_from(ENGINE_KV),
    st.sampled_from(sorted(limits.GPU_TYPES)),
    st.integers(256, 131_072),
    st.sampled_from(sorted(limits.LOADING_METHODS)),
)


@settings(max_examples=300, deadline=None)
@given(req=requests, extra=st.integers(1, 65_536))
def test_more_context_never_raises_concurrency(req: SizingRequest, extra: int) -> None:
    assert req.context_length is not None
    small = _try(req)
    big = _try(SizingRequest(**{**req.__dict__, "context_length": req.context_length + extra}))
    if big is not None:
        assert small is not None
        assert big.max_instance_request_concurrency <= small.max_instance_request_concurrency
        assert big.max_parallel_sequences <= small.max_parallel_sequences


@settings(max_examples=300, deadline=None)
@given(req=requests)
def test_a_larger_gpu_never_lowers_concurrency(req: SizingRequest) -> None:
    l4 = _try(SizingRequest(**{**req.__dict__, "gpu": "nvidia-l4"}))
    rtx = _try(SizingRequest(**{**req.__dict__, "gpu": "nvidia-rtx-pro-6000"}))
    if l4 is not None:
        assert rtx is not None
        assert rtx.max_instance_request_concurrency >= l4.max_instance_request_concurrency


@settings(max_examples=300, deadline=None)
@given(req=requests, rate=st.one_of(st.none(), st.floats(0.001, 50)))
def test_every_probe_setting_stays_inside_cloud_run_bounds(req: SizingRequest, rate: float | None) -> None:
    plan = _try(SizingRequest(**{**req.__dict__, "load_bytes_per_s": rate * limits.GIB if rate else None}))
    if plan is None:
        return
    p = plan.startup_probe
    assert 0 <= p.initial_delay_seconds <= limits.PROBE_INITIAL_DELAY_MAX
    assert limits.PROBE_PERIOD_MIN <= p.period_seconds <= limits.PROBE_PERIOD_MAX
    assert limits.PROBE_TIMEOUT_MIN <= p.timeout_seconds < p.period_seconds
    assert p.failure_threshold >= limits.PROBE_FAILURE_THRESHOLD_MIN
    assert p.failure_threshold * p.period_seconds <= limits.STARTUP_WINDOW_GPU_S.value
    assert p.initial_delay_seconds + p.failure_threshold * p.period_seconds >= p.window_seconds
    assert limits.CONCURRENCY_MIN <= plan.max_instance_request_concurrency <= limits.CONCURRENCY_MAX.value


# --- issue 11: monotonicity for vLLM and Ollama, including shared-KV and per-layer-head models ------------

from pathlib import Path  # noqa: E402

from cloudrun_gpu.sizing import read_hf  # noqa: E402
from cloudrun_gpu.sizing.engines import kv_bytes_total  # noqa: E402

_HF = Path(__file__).parent / "data" / "hf"
KV_MODELS = {
    "gemma-4-e2b (20 shared KV layers, 256/512 heads)": read_hf(_HF / "gemma-4-e2b-it" / "config.json"),
    "gemma-4-31b (16×256 local, 4×512 global)": read_hf(_HF / "gemma-4-31b-it" / "config.json"),
    **{m: catalogue_model(m) for m in ("gemma-3-4b", "gemma-2-9b", "gpt-oss-20b", "llama-3.2-3b", "qwen3-8b")},
}
_GIB = limits.GIB

kv_requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(sorted(KV_MODELS)).map(KV_MODELS.__getitem__),
        "engine": st.sampled_from(["vllm", "ollama", "llama.cpp"]),
        "context_length": st.integers(256, 32_768),
        "vram_bytes": st.integers(12, 96).map(lambda g: g * _GIB),
        "max_num_batched_tokens": st.sampled_from([None, 512, 2048, 8192]),
    }
)


def _kv_try(**kw: object) -> SizingPlan | None:
    engine = kw["engine"]
    extra: dict[str, object] = {"gpu": "nvidia-rtx-pro-6000"}
    if engine == "vllm":
        extra |= {"kv_cache_type": "auto", "engine_version": "0.14.1", "weights_quant": "bf16"}
    else:
        kw = {k: v for k, v in kw.items() if k != "max_num_batched_tokens"}
    return _try(SizingRequest(**{**kw, **extra}))  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(req=kv_requests, extra=st.integers(1, 32_768))
def test_more_context_never_raises_parallel_on_any_kv_layout(req: dict[str, object], extra: int) -> None:
    small = _kv_try(**req)
    big = _kv_try(**{**req, "context_length": int(req["context_length"]) + extra})  # type: ignore[call-overload]
    if big is not None:
        assert small is not None
        assert big.max_parallel_sequences <= small.max_parallel_sequences
        assert big.parallel_fit <= small.parallel_fit


@settings(max_examples=120, deadline=None)
@given(req=kv_requests, more=st.integers(1, 64 * _GIB))
def test_a_larger_gpu_never_lowers_parallel_on_any_kv_layout(req: dict[str, object], more: int) -> None:
    small = _kv_try(**req)
    big = _kv_try(**{**req, "vram_bytes": int(req["vram_bytes"]) + more})  # type: ignore[call-overload]
    if small is not None:
        assert big is not None
        assert big.max_parallel_sequences >= small.max_parallel_sequences
        assert big.parallel_fit >= small.parallel_fit


@settings(max_examples=120, deadline=None)
@given(req=kv_requests, seqs=st.integers(1, 32), more=st.integers(1, 32))
def test_more_sequences_never_raise_what_fits_on_any_kv_layout(req: dict[str, object], seqs: int, more: int) -> None:
    few = _kv_try(**{**req, "parallel": seqs})
    many = _kv_try(**{**req, "parallel": seqs + more})
    if many is not None:
        assert few is not None
        assert many.parallel_fit <= few.parallel_fit


@settings(max_examples=120, deadline=None)
@given(req=kv_requests, tokens=st.sampled_from([512, 1024, 2048, 4096]), more=st.integers(1, 8192))
def test_more_batched_tokens_never_raise_parallel_on_any_kv_layout(
    req: dict[str, object], tokens: int, more: int
) -> None:
    req = {**req, "engine": "vllm"}
    few = _kv_try(**{**req, "max_num_batched_tokens": tokens})
    many = _kv_try(**{**req, "max_num_batched_tokens": tokens + more})
    if many is not None:
        assert few is not None
        assert many.max_parallel_sequences <= few.max_parallel_sequences


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(sorted(KV_MODELS)),
    ctx=st.integers(1, 65_536),
    more_ctx=st.integers(0, 65_536),
    n=st.integers(1, 64),
    more_n=st.integers(0, 64),
)
def test_ollama_total_kv_grows_with_sequences_and_context(
    model: str, ctx: int, more_ctx: int, n: int, more_n: int
) -> None:
    spec = KV_MODELS[model]
    base = kv_bytes_total("ollama", spec, ctx, "q8_0", n)
    assert kv_bytes_total("ollama", spec, ctx + more_ctx, "q8_0", n) >= base
    assert kv_bytes_total("ollama", spec, ctx, "q8_0", n + more_n) >= base
