"""Capacity planner (``cloudrun_gpu.capacity``): properties, exact examples, and a real measurement.

The properties run on exact arithmetic (the planner works in :class:`fractions.Fraction`, each rate
as the decimal it was written as: ``capacity.exact``), so "capacity ≥ target" is checked exactly.
The slow test feeds the planner a throughput measured by the A3 load test against a real
llama-server (CPU build: a stand-in for the per-instance numbers you would measure on the real GPU).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.capacity import (
    FILL_RULE,
    CapacityPlan,
    CapacitySettings,
    DecodeRate,
    InstanceThroughput,
    Region,
    Target,
    estimate,
    exact,
    from_level,
    plan_capacity,
    render_region_table,
)
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.settings import parse
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

L4, RTX = "nvidia-l4", "nvidia-rtx-pro-6000"
OFFERED = [(region, gpu) for gpu, facts in limits.GPU_TYPES.items() for region in facts.regions]
NOT_OFFERED = [
    (region, gpu)
    for gpu in limits.GPU_TYPES
    for region in sorted({r for f in limits.GPU_TYPES.values() for r in f.regions} | {"us-west1", "europe-north1"})
    if region not in limits.GPU_TYPES[gpu].regions
]
METRICS = ("requests_per_s", "output_tokens_per_s")


def thr(rps: float, tps: float, conc: int = 4) -> InstanceThroughput:
    return InstanceThroughput(rps, tps, conc, "test numbers", measured=True)


# --- strategies -------------------------------------------------------------------------------

rates = st.floats(min_value=0.01, max_value=5000, allow_nan=False, allow_infinity=False)
throughputs = st.builds(thr, rates, rates, st.integers(1, 64))


@st.composite
def region_lists(draw: st.DrawFn) -> list[Region]:
    pairs = draw(st.lists(st.sampled_from(OFFERED), min_size=1, max_size=5, unique=True))
    out = []
    for name, gpu in pairs:
        quota = draw(st.integers(0, 12))
        max_instances = draw(st.none() | st.integers(1, 15))
        cap = quota if max_instances is None else min(quota, max_instances)
        out.append(Region(name, gpu, quota, max_instances, draw(st.integers(0, cap))))
    return out


targets = st.one_of(
    st.builds(Target, requests_per_s=rates),
    st.builds(Target, output_tokens_per_s=rates),
    st.builds(Target, requests_per_s=rates, output_tokens_per_s=rates),
)
throughput_maps = st.fixed_dictionaries({L4: throughputs, RTX: throughputs})


def quota_capacity(target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]) -> dict[str, Fraction]:
    """Computed here, independently of the planner: everything the quotas and max instances allow."""
    return {m: sum((r.cap * exact(getattr(tp[r.gpu], m)) for r in regions), Fraction(0)) for m, _ in target.items()}


def feasible(target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]) -> bool:
    allowed = quota_capacity(target, regions, tp)
    return all(allowed[m] >= exact(v) for m, v in target.items())


def plan_or_none(target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]) -> CapacityPlan | None:
    try:
        return plan_capacity(target, regions, tp)
    except ConfigError as e:
        assert e.field.startswith("target."), e
        return None


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- properties -------------------------------------------------------------------------------


@PROPS
@given(target=targets, regions=region_lists(), tp=throughput_maps)
def test_refuses_iff_the_quotas_cannot_meet_the_target(
    target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]
) -> None:
    plan = plan_or_none(target, regions, tp)
    assert (plan is None) == (not feasible(target, regions, tp))


@PROPS
@given(target=targets, regions=region_lists(), tp=throughput_maps)
def test_a_plan_meets_the_target_within_every_quota_and_min_instances(
    target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]
) -> None:
    plan = plan_or_none(target, regions, tp)
    assume(plan is not None)
    assert plan is not None
    assert plan.meets_target()
    for m, v in target.items():  # exact, recomputed from the instances
        assert sum((r.instances * exact(getattr(tp[r.gpu], m)) for r in plan.regions), Fraction(0)) >= exact(v)
    for r, given_region in zip(plan.regions, regions, strict=True):
        assert (r.name, r.gpu) == (given_region.name, given_region.gpu)  # same order as listed
        assert r.min_instances <= r.instances <= r.quota
        assert given_region.max_instances is None or r.instances <= given_region.max_instances
        assert r.quota_headroom == r.quota - r.instances >= 0


@PROPS
@given(target=targets, regions=region_lists(), tp=throughput_maps)
def test_fill_order_and_no_wasted_instance(
    target: Target, regions: list[Region], tp: dict[str, InstanceThroughput]
) -> None:
    plan = plan_or_none(target, regions, tp)
    assume(plan is not None)
    assert plan is not None
    grown = [i for i, r in enumerate(plan.regions) if r.instances > r.min_instances]
    if not grown:
        return
    last = grown[-1]
    # every region before the last one that grew is full: nothing spills while a listed-earlier region has room
    assert all(r.instances == r.cap for r in plan.regions[:last])
    # one instance fewer in the last region that grew would miss the target
    fewer = [r.instances - (1 if i == last else 0) for i, r in enumerate(plan.regions)]
    assert not all(
        sum((n * exact(getattr(tp[r.gpu], m)) for n, r in zip(fewer, plan.regions, strict=True)), Fraction(0))
        >= exact(v)
        for m, v in target.items()
    )


@PROPS
@given(
    target=targets,
    regions=region_lists(),
    tp=throughput_maps,
    factor=st.floats(min_value=1.0, max_value=5.0),
)
def test_a_larger_target_never_lowers_instances(
    target: Target, regions: list[Region], tp: dict[str, InstanceThroughput], factor: float
) -> None:
    bigger = Target(*(None if v is None else v * factor for v in (target.requests_per_s, target.output_tokens_per_s)))
    small, large = plan_or_none(target, regions, tp), plan_or_none(bigger, regions, tp)
    assume(large is not None)
    assert small is not None and large is not None  # a smaller target is never refused when a larger one fits
    assert all(s.instances <= b.instances for s, b in zip(small.regions, large.regions, strict=True))


@PROPS
@given(
    target=targets,
    regions=region_lists(),
    tp=throughput_maps,
    which=st.integers(0, 4),
    more=st.integers(1, 10),
)
def test_more_quota_never_lowers_capacity(
    target: Target, regions: list[Region], tp: dict[str, InstanceThroughput], which: int, more: int
) -> None:
    i = which % len(regions)
    r = regions[i]
    richer = [*regions[:i], Region(r.name, r.gpu, r.quota + more, r.max_instances, r.min_instances), *regions[i + 1 :]]
    before, after = quota_capacity(target, regions, tp), quota_capacity(target, richer, tp)
    assert all(after[m] >= before[m] for m in before)  # what the quotas allow never drops …
    p_before, p_after = plan_or_none(target, regions, tp), plan_or_none(target, richer, tp)
    if p_before is not None:  # … so a target once met stays met
        assert p_after is not None and p_after.meets_target()
        assert p_after.quota_capacity("requests_per_s") >= p_before.quota_capacity("requests_per_s")


@PROPS
@given(target=targets, regions=region_lists(), one=throughputs, which=st.integers(0, 4), more=st.integers(1, 10))
def test_more_quota_keeps_the_planned_capacity_with_one_throughput(
    target: Target, regions: list[Region], one: InstanceThroughput, which: int, more: int
) -> None:
    # with the same per-instance throughput everywhere, the instance count only depends on the target, so more
    # quota never changes the planned capacity (with mixed GPU types it can drop: see the example below)
    tp = {L4: one, RTX: one}
    i = which % len(regions)
    r = regions[i]
    richer = [*regions[:i], Region(r.name, r.gpu, r.quota + more, r.max_instances, r.min_instances), *regions[i + 1 :]]
    p_before, p_after = plan_or_none(target, regions, tp), plan_or_none(target, richer, tp)
    assume(p_before is not None)
    assert p_before is not None and p_after is not None
    assert p_after.instances == p_before.instances
    assert all(p_after.capacity(m) == p_before.capacity(m) for m in METRICS)


@settings(max_examples=100, deadline=None)
@given(pair=st.sampled_from(NOT_OFFERED), quota=st.integers(0, 5))
def test_regions_without_the_gpu_type_are_refused(pair: tuple[str, str], quota: int) -> None:
    name, gpu = pair
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=1), [Region(name, gpu, quota)], {L4: thr(1, 1), RTX: thr(1, 1)})
    (e,) = [e for e in err.value.errors if e.field == "regions[0].name"]
    assert f"{gpu} is not offered in {name}" in e.problem
    assert e.allowed == ", ".join(limits.GPU_TYPES[gpu].regions)


# --- examples with exact numbers --------------------------------------------------------------

TWO = [Region("europe-west1", L4, 3), Region("europe-west4", RTX, 2)]
TP = {L4: thr(10, 320, 4), RTX: thr(25, 800, 8)}


def test_example_fills_the_first_region_then_spills_over() -> None:
    plan = plan_capacity(Target(requests_per_s=42), TWO, TP)
    assert [(r.name, r.instances, r.quota_headroom) for r in plan.regions] == [
        ("europe-west1", 3, 0),
        ("europe-west4", 1, 1),
    ]
    assert plan.requests_per_s == 55 and plan.output_tokens_per_s == 1760 and plan.instances == 4
    assert plan.quota_requests_per_s == 80 and plan.quota_output_tokens_per_s == 2560
    assert [r.quota_id for r in plan.regions] == [
        "NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion",
        "NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion",
    ]
    small = plan_capacity(Target(requests_per_s=20), TWO, TP)
    assert [r.instances for r in small.regions] == [2, 0]  # the near region alone is enough


def test_example_tokens_target_and_both_metrics() -> None:
    # 2000 tok/s: 3 L4 give 960, then ceil(1040 / 800) = 2 RTX
    assert [r.instances for r in plan_capacity(Target(output_tokens_per_s=2000), TWO, TP).regions] == [3, 2]
    # 15 req/s needs 2 L4, 1000 tok/s needs 3 L4 + 1 RTX: both must hold
    plan = plan_capacity(Target(requests_per_s=15, output_tokens_per_s=1000), TWO, TP)
    assert [r.instances for r in plan.regions] == [3, 1] and plan.meets_target()


def test_example_min_and_max_instances() -> None:
    regions = [Region("europe-west1", L4, 5, max_instances=2), Region("europe-west4", RTX, 2, min_instances=1)]
    plan = plan_capacity(Target(requests_per_s=42), regions, TP)
    # RTX min 1 = 25 req/s first; 17 missing: L4 up to max_instances 2 (20) → 45 req/s
    assert [(r.instances, r.cap, r.quota_headroom) for r in plan.regions] == [(2, 2, 3), (1, 2, 1)]
    assert plan.requests_per_s == 45
    # min instances run even when the target needs none
    assert [r.instances for r in plan_capacity(Target(requests_per_s=0.1), regions, TP).regions] == [0, 1]


def test_example_refusal_says_what_is_missing_and_where() -> None:
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(requests_per_s=120), TWO, TP)
    e = err.value
    assert e.field == "target.requests_per_s" and e.value == 120
    assert e.problem == "target 120 req/s exceeds what the quotas allow (80 req/s, 40 missing)"
    assert e.fix == (
        "ask for 4 more nvidia-l4 GPUs (NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion) in europe-west1; "
        "or ask for 2 more nvidia-rtx-pro-6000 GPUs (NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion) "
        "in europe-west4; or lower the target to 80 req/s"
    )


def test_decimal_rates_are_exact_so_the_gpus_asked_for_are_not_off_by_one() -> None:
    # as floats, 1.836 - 5 × 0.306 is a hair above 0.306 and would ask for 2 more GPUs per region
    tp = {L4: thr(0.306, 9.8), RTX: thr(0.306, 9.8)}
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(requests_per_s=1.836), TWO, tp)
    assert err.value.problem == "target 1.836 req/s exceeds what the quotas allow (1.53 req/s, 0.306 missing)"
    assert err.value.fix.startswith("ask for 1 more nvidia-l4 GPU (")
    assert "; or ask for 1 more nvidia-rtx-pro-6000 GPU (" in err.value.fix
    assert [r.instances for r in plan_capacity(Target(requests_per_s=1.53), TWO, tp).regions] == [3, 2]


def test_example_refusal_with_max_instances_and_zonal_redundancy() -> None:
    regions = [Region("europe-west1", L4, 5, max_instances=2), Region("europe-west4", RTX, 2, max_instances=2)]
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(output_tokens_per_s=3000), regions, TP, zonal_redundancy=True)
    e = err.value
    assert e.field == "target.output_tokens_per_s"
    assert e.problem == "target 3000 output tok/s exceeds what the quotas allow (2240 output tok/s, 760 missing)"
    # L4: 3 more instances, quota already has room for them: only max_instances must rise
    assert e.fix.startswith("raise max_instances in europe-west1 to 5; or ask for 1 more nvidia-rtx-pro-6000 GPU (")
    assert (
        "(NvidiaRtxPro6000GpuAllocPerProjectRegion) in europe-west4 and raise max_instances in europe-west4 to 3"
        in (e.fix)
    )


def test_more_quota_in_an_early_region_can_lower_the_planned_capacity() -> None:
    # the documented consequence of the fill rule: the near region absorbs what a faster far GPU served
    tp = {L4: thr(3, 100), RTX: thr(10, 300)}
    before = plan_capacity(
        Target(requests_per_s=10), [Region("europe-west4", L4, 3), Region("us-central1", RTX, 1)], tp
    )
    after = plan_capacity(Target(requests_per_s=10), [Region("europe-west4", L4, 4), Region("us-central1", RTX, 1)], tp)
    assert [r.instances for r in before.regions] == [3, 1] and before.requests_per_s == 19
    assert [r.instances for r in after.regions] == [4, 0] and after.requests_per_s == 12
    assert after.quota_requests_per_s > before.quota_requests_per_s and after.meets_target()


def test_invalid_inputs_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(
            Target(requests_per_s=1),
            [Region("europe-west1", "nvidia-h100", 1), Region("europe-west1", L4, 2, min_instances=3)],
            {},
        )
    fields = [e.field for e in err.value.errors]
    assert fields == ["regions[0].gpu", "regions[1].min_instances", "throughput['nvidia-l4']"]
    assert "ask for 1 more nvidia-l4 GPU in europe-west1" in err.value.errors[1].fix
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=1), [Region("europe-west1", L4, 2), Region("europe-west1", L4, 3)], TP)
    assert [e.field for e in err.value.errors] == ["regions[1]"]
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=1), [], TP)
    assert [(e.field, e.value, e.problem) for e in err.value.errors] == [("regions", [], "is empty")]
    assert "at least one region" in err.value.errors[0].fix
    with pytest.raises(ConfigError, match="target"):
        Target()
    with pytest.raises(ConfigError, match=r"target\.requests_per_s"):
        Target(requests_per_s=-1)
    with pytest.raises(ConfigError, match=r"throughput\.requests_per_s"):
        thr(float("nan"), 1)
    with pytest.raises(ConfigError, match=r"decode_rate\.source"):
        DecodeRate(L4, 20, " ")


def test_estimate_is_labelled_and_exact() -> None:
    t = estimate(8, DecodeRate(L4, 25, "a benchmark we ran"), output_tokens_per_request=256)
    assert (t.output_tokens_per_s, t.requests_per_s, t.concurrency, t.measured) == (200, 0.78125, 8, False)
    assert "estimate: 8 parallel sequences × 25 tok/s per sequence on nvidia-l4 (a benchmark we ran)" in t.source
    plan = plan_capacity(Target(output_tokens_per_s=500), [Region("us-central1", L4, 3)], {L4: t})
    assert plan.regions[0].instances == 3
    assert any("ESTIMATED" in line for line in plan.explain)


def test_from_level_uses_the_measured_numbers_and_refuses_failed_levels() -> None:
    from stack.loadtest import LevelResult

    ok = LevelResult(4, 16, 0, 3.0, 5.333, 167.82, 0.04, 0.15, 0.7, 0.8)
    t = from_level(ok, "loadtest")
    assert (t.requests_per_s, t.output_tokens_per_s, t.concurrency, t.measured) == (5.333, 167.82, 4, True)
    with pytest.raises(ConfigError, match="failed request"):
        from_level(LevelResult(4, 16, 2, 3.0, 5.0, 160.0, 0.04, 0.15, 0.7, 0.8), "loadtest")


def test_region_table_renders_every_region_and_the_total() -> None:
    text = render_region_table(plan_capacity(Target(requests_per_s=42), TWO, TP))
    lines = text.splitlines()
    assert lines[0].startswith("| region | GPU | instances (min / cap) | concurrency | expected req/s")
    assert lines[2] == (
        "| europe-west1 | nvidia-l4 | 3 (0 / 3) | 4 | 30 | 960 "
        "| 3 (NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion) | 0 |"
    )
    assert lines[3].startswith("| europe-west4 | nvidia-rtx-pro-6000 | 1 (0 / 2) | 8 | 25 | 800 | 2 (")
    assert lines[4] == "| **total** | | 4 | | 55 | 1760 | 5 | 1 |"
    assert "Target: 42 req/s; the quotas allow at most 80 req/s, 2560 output tok/s." in text
    assert FILL_RULE in text


# --- the planner fed with a real measurement --------------------------------------------------


@pytest.mark.slow
def test_planner_with_a_throughput_measured_on_the_real_engine(
    engine_env: dict[str, str], smollm2_gguf: Path, tmp_path: Path
) -> None:
    from harness.llamacpp import free_port, local_args, plan_for_gguf, run_server, wait_ready
    from stack.loadtest import recommend, run_level

    sizing = plan_for_gguf(smollm2_gguf, 1024, 4, "q8_0")
    port = free_port()
    body = {
        "model": "m",
        "stream": True,
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Write one sentence about Cloud Run GPUs."}],
    }
    with run_server(
        [engine_env["LLAMA_SERVER"], *local_args(sizing.engine_args, port)], port, tmp_path / "server.log"
    ) as server:
        wait_ready(server)
        levels = [
            run_level(server.base, c, requests=4, max_seconds=60, body=body, headers={}, timeout_s=60)
            for c in (1, 2, 4)
        ]
    pick, _why = recommend(levels, ttft_slo_s=30)
    level = next(lv for lv in levels if lv.concurrency == pick)
    measured = from_level(level, "CPU-measured stand-in (llama-server CPU build, SmolLM2-135M, -np 4)")
    assert measured.measured and measured.concurrency == pick and measured.requests_per_s > 0
    # the same CPU measurement stands in for both GPU types: on GPUs each type gets its own loadtest
    tp = {L4: measured, RTX: measured}
    regions = [Region("europe-west1", L4, 3), Region("europe-west4", RTX, 2)]
    target = Target(requests_per_s=3.5 * measured.requests_per_s)  # more than the L4 quota alone serves
    plan = plan_capacity(target, regions, tp)
    assert [r.instances for r in plan.regions] == [3, 1]
    assert plan.meets_target() and plan.capacity("requests_per_s") == 4 * exact(measured.requests_per_s)
    assert [r.quota_headroom for r in plan.regions] == [0, 1]
    assert all(r.concurrency == pick for r in plan.regions)
    assert plan.quota_requests_per_s == pytest.approx(5 * measured.requests_per_s)
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(requests_per_s=6 * measured.requests_per_s), regions, tp)
    assert err.value.field == "target.requests_per_s" and "exceeds what the quotas allow" in err.value.problem
    assert "europe-west1" in render_region_table(plan)


def test_capacity_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location("capacity_report", ROOT / "scripts" / "capacity_report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    doc = tmp_path / "engine-results.md"
    doc.write_text("# Results\n\n## A3\n\ntable\n")
    report.write_section(doc, f"{report.HEADING}\n\nfirst\n")
    assert doc.read_text() == f"# Results\n\n## A3\n\ntable\n\n{report.HEADING}\n\nfirst\n"
    doc.write_text(doc.read_text() + "\n## Later\n\nkept\n")
    report.write_section(doc, f"{report.HEADING}\n\nsecond\n")
    assert doc.read_text() == f"# Results\n\n## A3\n\ntable\n\n{report.HEADING}\n\nsecond\n\n## Later\n\nkept\n"


# --- the ``cloudrun-gpu:capacity`` stack section ----------------------------------------------------------------


def _capacity_errors(raw: dict[str, object]) -> dict[str, ConfigError]:
    with pytest.raises(ConfigErrors) as err:
        parse(CapacitySettings, raw, "cloudrun-gpu:capacity.")
    return {e.field: e for e in err.value.errors}


def test_capacity_section_measured_or_estimated_throughput() -> None:
    cap = parse(
        CapacitySettings,
        {
            "target": {"requests_per_s": 2},
            "output_tokens_per_request": 200,
            "throughput": {
                L4: {"requests_per_s": 0.5, "output_tokens_per_s": 100, "concurrency": 8, "source": "loadtest"},
                RTX: {"tokens_per_s_per_sequence": 20, "source": "a benchmark"},
            },
        },
        "cloudrun-gpu:capacity.",
    )
    measured = cap.throughput[L4].instance(L4, 30, cap.output_tokens_per_request)
    assert (measured.requests_per_s, measured.concurrency, measured.measured) == (0.5, 8, True)
    est = cap.throughput[RTX].instance(RTX, 16, cap.output_tokens_per_request)
    assert (est.output_tokens_per_s, est.requests_per_s, est.concurrency, est.measured) == (320, 1.6, 16, False)
    assert cap.target.to_target() == Target(requests_per_s=2)


def test_capacity_section_errors_name_the_stack_key() -> None:
    errors = _capacity_errors(
        {
            "target": {},
            "throughput": {
                "nvidia-l5": {"tokens_per_s_per_sequence": 5, "source": "x"},
                L4: {"requests_per_s": 1, "tokens_per_s_per_sequence": 5, "source": "x"},
                RTX: {"requests_per_s": 1, "output_tokens_per_s": 9, "source": "x"},
            },
        }
    )
    assert "no load" in errors["cloudrun-gpu:capacity.target.requests_per_s"].problem
    assert errors["cloudrun-gpu:capacity.throughput.nvidia-l5"].fix == "did you mean nvidia-l4?"
    assert "not both" in errors[f"cloudrun-gpu:capacity.throughput.{L4}.requests_per_s"].problem
    assert "required" in errors[f"cloudrun-gpu:capacity.throughput.{RTX}.concurrency"].problem
    errors = _capacity_errors({"target": {"requests_per_s": -1}, "throughput": {L4: {"source": ""}}})
    assert set(errors) >= {
        "cloudrun-gpu:capacity.target.requests_per_s",
        f"cloudrun-gpu:capacity.throughput.{L4}.source",
    }
    assert "cloudrun-gpu:capacity.target" in _capacity_errors({"throughput": {}})
