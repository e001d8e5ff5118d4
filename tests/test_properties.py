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
