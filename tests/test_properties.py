"""Hypothesis properties of the sizing engine and the config validation."""

from __future__ import annotations

from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.sizing import SizingPlan, SizingRequest, catalogue_model, catalogue_names, size
from cloudrun_gpu.sizing.engines import ENGINES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.config import parse_config, validate

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


junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=False), st.text(max_size=12))
section_values: dict[str, Any] = {
    "gpu": st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["nvidia-l4", "nvidia-rtx-pro-6000", "tpu"]),
            "quota": st.integers(-1, 20),
            "zonal_redundancy": junk,
        },
    ),
    "model": st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from([*catalogue_names(), "nope"]),
            "quantization": st.sampled_from(["Q4_K_M", "awq-int4", "fp8", "x"]),
            "file": st.sampled_from(["m.gguf", "m.bin", "dir"]),
        },
    ),
    "engine": st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["llama.cpp", "ollama", "vllm", "tgi"]),
            "context_length": st.integers(0, 300_000),
            "kv_cache_type": st.sampled_from(["f16", "q8_0", "q4_0", "fp8", "auto"]),
            "parallel": st.integers(-1, 2000),
            "bogus": junk,
        },
    ),
    "loading": st.fixed_dictionaries(
        {},
        optional={
            "method": st.sampled_from([*sorted(limits.LOADING_METHODS), "ftp"]),
            "throughput_gib_per_s": st.floats(-1, 10),
        },
    ),
    "resources": st.fixed_dictionaries({}, optional={"cpu": st.integers(0, 40), "memory_gib": st.integers(0, 400)}),
    "scaling": st.fixed_dictionaries(
        {},
        optional={
            "max_instances": st.integers(-1, 50),
            "min_instances": st.integers(-1, 5),
            "max_concurrency": st.integers(-1, 1500),
        },
    ),
    "network": st.fixed_dictionaries(
        {},
        optional={
            "subnet_cidr": st.sampled_from(
                ["10.8.0.0/26", "10.8.0.0/28", "10.8.0.1/24", "8.8.8.0/24", "nonsense", "10.255.255.0/24"]
            ),
            "nat": st.fixed_dictionaries(
                {}, optional={"enabled": st.booleans(), "min_ports_per_vm": st.integers(1, 9000)}
            ),
        },
    ),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    region=st.sampled_from(["europe-west1", "us-central1", "europe-west4", "mars-north1"]),
    sections=st.fixed_dictionaries({}, optional=section_values),
)
def test_random_configs_give_a_plan_or_a_clear_config_error(region: str, sections: dict[str, Any]) -> None:
    raw = {"project": "my-project", "region": region, **sections}
    try:
        vs = validate(parse_config(raw))
    except ConfigErrors as exc:
        assert exc.errors and all(e.field and e.fix for e in exc.errors)
        return
    except ConfigError as exc:
        assert exc.field and exc.fix
        return
    assert vs.sizing.max_parallel_sequences >= 1
    assert vs.concurrency >= vs.sizing.max_parallel_sequences
