"""Mutation-strength tests for capacity.py: the fill rule's exact instance counts, the shortfall's numbers and
options, every region/throughput refusal, the rendered table, and the stack section's rules."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from cloudrun_gpu import capacity as C
from cloudrun_gpu.capacity import (
    CapacitySettings,
    DecodeRate,
    InstanceThroughput,
    Region,
    Target,
    TargetSettings,
    ThroughputSettings,
    estimate,
    from_level,
    plan_capacity,
    render_region_table,
)
from cloudrun_gpu.errors import ConfigError, ConfigErrors

L4, RTX = "nvidia-l4", "nvidia-rtx-pro-6000"
L4_Q, RTX_Q = (
    "NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion",
    "NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion",
)
THR = {L4: InstanceThroughput(0.5, 100.0, 8, "lt-l4", True), RTX: InstanceThroughput(2.0, 400.0, 32, "lt-rtx", False)}
REGIONS = [
    Region("europe-west1", L4, 3),
    Region("europe-west4", RTX, 2, max_instances=1),
    Region("us-central1", L4, 3, min_instances=1),
]


def test_small_helpers() -> None:
    assert (C.more_gpus(1, L4), C.more_gpus(2, L4), C.more_gpus(0, L4)) == (
        "1 more nvidia-l4 GPU",
        "2 more nvidia-l4 GPUs",
        "0 more nvidia-l4 GPUs",
    )
    assert C.exact(0.306) == Fraction(306, 1000)
    assert 6 * C.exact(0.306) == Fraction(1836, 1000)
    assert (C.fmt(2.0), C.fmt(1.23456), C.fmt(0.5), C.fmt(1.1), C.fmt(Fraction(1, 3))) == (
        "2",
        "1.235",
        "0.5",
        "1.1",
        "0.333",
    )
    assert C.METRICS == ("requests_per_s", "output_tokens_per_s")
    assert C.UNITS == {"requests_per_s": "req/s", "output_tokens_per_s": "output tok/s"}


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "1"])
def test_positive_refuses(bad: Any) -> None:
    with pytest.raises(ConfigError) as err:
        C._positive("f", bad, "rate", "fix it")
    assert (err.value.field, err.value.problem, err.value.fix, err.value.allowed) == (
        "f",
        "is not a valid rate",
        "fix it",
        "a finite number > 0",
    )


def test_positive_and_count_accept_their_edges() -> None:
    assert C._positive("f", 1e-9, "rate", "x") == 1e-9
    assert C._positive("f", 3, "rate", "x") == 3.0 and isinstance(C._positive("f", 3, "rate", "x"), float)
    assert C._count("f", 2, 2, "n", "x") == 2
    for bad in (1, True, 2.0):
        with pytest.raises(ConfigError) as err:
            C._count("f", bad, 2, "n", "x")
        assert (err.value.problem, err.value.allowed) == ("is not a valid n", "an integer ≥ 2")


def test_target() -> None:
    with pytest.raises(ConfigError) as err:
        Target()
    assert (err.value.field, err.value.problem, err.value.fix) == (
        "target",
        "names no load to serve",
        "give target.requests_per_s, target.output_tokens_per_s, or both",
    )
    assert Target(output_tokens_per_s=5, requests_per_s=2).items() == [
        ("requests_per_s", 2.0),
        ("output_tokens_per_s", 5.0),
    ]
    assert Target(output_tokens_per_s=5).items() == [("output_tokens_per_s", 5.0)]
    with pytest.raises(ConfigError) as err:
        Target(requests_per_s=1, output_tokens_per_s=0)
    assert (err.value.field, err.value.problem, err.value.fix) == (
        "target.output_tokens_per_s",
        "is not a valid target (output tok/s)",
        "give target.output_tokens_per_s as a rate > 0",
    )


def test_instance_throughput_checks() -> None:
    t = InstanceThroughput(1, 2, 1, "s", True)
    assert (t.per_instance("requests_per_s"), t.per_instance("output_tokens_per_s")) == (1.0, 2.0)
    for kw, field in (
        ({"requests_per_s": 0}, "throughput.requests_per_s"),
        ({"output_tokens_per_s": -1}, "throughput.output_tokens_per_s"),
        ({"concurrency": 0}, "throughput.concurrency"),
        ({"source": "  "}, "throughput.source"),
    ):
        args: dict[str, Any] = {
            "requests_per_s": 1,
            "output_tokens_per_s": 2,
            "concurrency": 1,
            "source": "s",
            "measured": True,
        }
        args.update(kw)
        with pytest.raises(ConfigError) as err:
            InstanceThroughput(**args)
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        InstanceThroughput(1, 2, 0, "s", True)
    assert err.value.fix == "measure it with `python -m stack loadtest URL` and use the recommended level's numbers"


class Level:
    def __init__(self, errors: int) -> None:
        self.concurrency, self.requests, self.errors, self.requests_per_s, self.tokens_per_s = 8, 40, errors, 1.5, 300


def test_from_level() -> None:
    t = from_level(Level(0), "loadtest 2026-11-25")
    assert t == InstanceThroughput(1.5, 300.0, 8, "loadtest 2026-11-25", True)
    with pytest.raises(ConfigError) as err:
        from_level(Level(3), "x")
    e = err.value
    assert (e.field, e.value, e.problem) == (
        "throughput",
        "concurrency 8",
        "the load-test level had 3 failed request(s) of 40",
    )


def test_decode_rate_and_estimate() -> None:
    with pytest.raises(ConfigError) as err:
        DecodeRate("h100", 10, "b")
    assert (err.value.field, err.value.allowed) == ("decode_rate.gpu", "nvidia-l4, nvidia-rtx-pro-6000")
    with pytest.raises(ConfigError) as err:
        DecodeRate(L4, 10, " ")
    assert err.value.field == "decode_rate.source"
    with pytest.raises(ConfigError) as err:
        DecodeRate(L4, 0, "b")
    assert err.value.field == "decode_rate.tokens_per_s_per_sequence"
    t = estimate(4, DecodeRate(L4, 12.5, "bench"), 100)
    assert (t.requests_per_s, t.output_tokens_per_s, t.concurrency, t.measured) == (0.5, 50.0, 4, False)
    assert t.source == (
        "estimate: 4 parallel sequences × 12.5 tok/s per sequence on nvidia-l4 (bench) = 50 tok/s; ÷ 100 output "
        "tokens per request; ignores prefill and queueing — measure with `python -m stack loadtest`"
    )
    assert estimate(1, DecodeRate(L4, 10, "b"), 1).requests_per_s == 10.0
    for args, field in (((0, 1), "parallel_sequences"), ((1, 0), "output_tokens_per_request")):
        with pytest.raises(ConfigError) as err:
            estimate(args[0], DecodeRate(L4, 10, "b"), args[1])
        assert err.value.field == field


def test_region_cap() -> None:
    assert Region("r", L4, 3).cap == 3
    assert Region("r", L4, 3, max_instances=2).cap == 2
    assert Region("r", L4, 3, max_instances=5).cap == 3
    assert Region("r", L4, 3).min_instances == 0


def test_fill_rule_exact() -> None:
    p = plan_capacity(Target(requests_per_s=2.6), REGIONS, THR)
    assert [r.instances for r in p.regions] == [3, 1, 1]
    assert (p.instances, p.requests_per_s, p.output_tokens_per_s) == (5, 4.0, 800.0)
    assert (p.quota_requests_per_s, p.quota_output_tokens_per_s) == (5.0, 1000.0)
    assert p.meets_target()
    assert [r.quota_headroom for r in p.regions] == [0, 1, 2]
    assert [r.cap for r in p.regions] == [3, 1, 3]
    assert [r.quota_id for r in p.regions] == [L4_Q, RTX_Q, L4_Q]
    assert [r.concurrency for r in p.regions] == [8, 32, 8]
    # exactly met: 1 req/s from the us-central1 min instance and one europe-west1 instance
    exact = plan_capacity(Target(requests_per_s=1.0), REGIONS, THR)
    assert [r.instances for r in exact.regions] == [1, 0, 1]
    assert plan_capacity(Target(requests_per_s=0.5), REGIONS, THR).instances == 1  # the min instance suffices


def test_both_metrics_take_the_larger_need() -> None:
    p = plan_capacity(Target(requests_per_s=0.5, output_tokens_per_s=350), REGIONS[:1] + REGIONS[2:], THR)
    assert [r.instances for r in p.regions] == [3, 1]


def test_zonal_quota_ids() -> None:
    p = plan_capacity(Target(requests_per_s=0.5), REGIONS, THR, zonal_redundancy=True)
    assert p.zonal_redundancy is True
    assert p.regions[0].quota_id == "NvidiaL4GpuAllocPerProjectRegion"


def test_to_dict_and_table() -> None:
    p = plan_capacity(Target(requests_per_s=2.6), REGIONS, THR)
    d = p.to_dict()
    assert d["target"] == {"requests_per_s": 2.6}
    assert (d["zonal_redundancy"], d["rule"], d["instances"]) == (False, C.FILL_RULE, 5)
    assert d["regions"][1] == {
        "region": "europe-west4",
        "gpu": RTX,
        "quota": 2,
        "quota_id": RTX_Q,
        "max_instances": 1,
        "min_instances": 0,
        "instances": 1,
        "concurrency": 32,
        "requests_per_s": 2.0,
        "output_tokens_per_s": 400.0,
        "quota_headroom": 1,
        "throughput_measured": False,
        "throughput_source": "lt-rtx",
        "usd_per_hour": None,  # #24: no price given to these regions
    }
    assert (d["prefer"], d["usd_per_hour"]) == ("nearest", None)
    assert d["explain"] == [
        f"fill rule: {C.FILL_RULE}",
        "nvidia-l4: 0.5 req/s, 100 output tok/s per instance at concurrency 8 (measured: lt-l4)",
        "nvidia-rtx-pro-6000: 2 req/s, 400 output tok/s per instance at concurrency 32 (ESTIMATED: lt-rtx)",
    ]
    assert render_region_table(p).splitlines()[2:7] == [
        f"| europe-west1 | nvidia-l4 | 3 (0 / 3) | 8 | 1.5 | 300 | 3 ({L4_Q}) | 0 |",
        f"| europe-west4 | nvidia-rtx-pro-6000 | 1 (0 / 1) | 32 | 2 | 400 | 2 ({RTX_Q}) | 1 |",
        f"| us-central1 | nvidia-l4 | 1 (1 / 3) | 8 | 0.5 | 100 | 3 ({L4_Q}) | 2 |",
        "| **total** | | 5 | | 4 | 800 | 8 | 3 |",
        "",
    ]
    assert "Target: 2.6 req/s; the quotas allow at most 5 req/s, 1000 output tok/s." in render_region_table(p)


def test_shortfall_exact() -> None:
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(requests_per_s=10, output_tokens_per_s=100), REGIONS, THR)
    e = err.value
    assert (e.field, e.value) == ("target.requests_per_s", 10.0)
    assert e.problem == "target 10 req/s exceeds what the quotas allow (5 req/s, 5 missing)"
    assert e.fix == (
        f"ask for 10 more nvidia-l4 GPUs ({L4_Q}) in europe-west1; or ask for 2 more nvidia-rtx-pro-6000 GPUs "
        f"({RTX_Q}) in europe-west4 and raise max_instances in europe-west4 to 4; or ask for 10 more nvidia-l4 "
        f"GPUs ({L4_Q}) in us-central1; or lower the target to 5 req/s"
    )


def test_shortfall_on_both_metrics_and_held_back_quota() -> None:
    regions = [Region("europe-west1", L4, 4, max_instances=1)]
    with pytest.raises(ConfigError) as err:
        plan_capacity(Target(requests_per_s=1.0, output_tokens_per_s=250), regions, THR)
    e = err.value
    assert e.field == "target.requests_per_s"
    assert e.problem == (
        "target 1 req/s exceeds what the quotas allow (0.5 req/s, 0.5 missing); "
        "target 250 output tok/s exceeds what the quotas allow (100 output tok/s, 150 missing)"
    )
    # 2 more instances cover both; the quota already holds 3 more, so only max_instances must rise
    assert e.fix == "raise max_instances in europe-west1 to 3; or lower the target to 0.5 req/s and 100 output tok/s"
    only_tokens = pytest.raises(ConfigError)
    with only_tokens as err2:
        plan_capacity(Target(requests_per_s=0.1, output_tokens_per_s=250), [Region("europe-west1", L4, 1)], THR)
    assert err2.value.field == "target.output_tokens_per_s"
    assert (
        err2.value.fix
        == f"ask for 2 more nvidia-l4 GPUs ({L4_Q}) in europe-west1; or lower the target to 100 output tok/s"
    )


def test_region_refusals_exact() -> None:
    regions = [
        Region("europe-west1", L4, 1, min_instances=2),
        Region("mars1", L4, 1),
        Region("europe-west1", L4, 1),
        Region("x", "gpu9", 1),
        Region("europe-west4", RTX, 1, max_instances=0),
        Region("asia-south2", RTX, 2, max_instances=1, min_instances=2),
        Region("us-east4", L4, True),
        Region("asia-south2", L4, 1),
    ]
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=1), regions, {L4: THR[L4]})
    got = [(e.field, e.value, e.problem, e.fix, e.allowed) for e in err.value.errors]
    missing_rtx = (
        "measure one nvidia-rtx-pro-6000 instance with `python -m stack loadtest URL` (capacity.from_level), or "
        "give capacity.estimate(...) a per-sequence decode rate with its source"
    )
    l4_regions = "us-central1, us-east4, europe-west1, europe-west4, asia-southeast1, asia-south1"
    assert got == [
        (
            "regions[0].min_instances",
            2,
            "exceeds the quota of 1 in europe-west1: min instances always run, so they need quota",
            "lower regions[0].min_instances to 1, or ask for 1 more nvidia-l4 GPU in europe-west1",
            "0..1",
        ),
        (
            "regions[1].name",
            "mars1",
            "nvidia-l4 is not offered in mars1",
            "pick a region that offers nvidia-l4",
            l4_regions,
        ),
        ("regions[2]", "europe-west1/nvidia-l4", "is listed twice", "list each region and GPU type once", ""),
        ("regions[3].gpu", "gpu9", "is not a Cloud Run GPU type", "use one of them", "nvidia-l4, nvidia-rtx-pro-6000"),
        (
            "regions[4].max_instances",
            0,
            "is not a valid max instances",
            "give regions[4].max_instances as an integer ≥ 1",
            "an integer ≥ 1",
        ),
        (
            "throughput['nvidia-rtx-pro-6000']",
            None,
            "no per-instance throughput for nvidia-rtx-pro-6000 (used by regions[4], europe-west4)",
            missing_rtx,
            "",
        ),
        (
            "regions[5].min_instances",
            2,
            "exceeds the max_instances of 1 in asia-south2: min instances always run, so they need quota",
            "lower regions[5].min_instances to 1, or raise regions[5].max_instances",
            "0..1",
        ),
        (
            "throughput['nvidia-rtx-pro-6000']",
            None,
            "no per-instance throughput for nvidia-rtx-pro-6000 (used by regions[5], asia-south2)",
            missing_rtx,
            "",
        ),
        ("regions[6].quota", True, "is not a valid quota", "give regions[6].quota as an integer ≥ 0", "an integer ≥ 0"),
        (
            "regions[7].name",
            "asia-south2",
            "nvidia-l4 is not offered in asia-south2",
            "pick a region that offers nvidia-l4, or use nvidia-rtx-pro-6000 in asia-south2",
            l4_regions,
        ),
    ]
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=1), [], THR)
    assert [(e.field, e.value, e.problem) for e in err.value.errors] == [("regions", [], "is empty")]
    ok_min = plan_capacity(Target(requests_per_s=0.1), [Region("europe-west1", L4, 2, min_instances=2)], THR)
    assert ok_min.regions[0].instances == 2  # min instances equal to the cap are fine
    neg = pytest.raises(ConfigErrors)
    with neg as err3:
        plan_capacity(Target(requests_per_s=0.1), [Region("europe-west1", L4, 1, min_instances=-1)], THR)
    assert [e.field for e in err3.value.errors] == ["regions[0].min_instances"]


def test_target_settings() -> None:
    assert TargetSettings(requests_per_s=2).to_target() == Target(requests_per_s=2)
    with pytest.raises(ConfigErrors) as err:
        TargetSettings()
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == ("TargetSettings.requests_per_s", None, "the target names no load to serve")


def test_throughput_settings() -> None:
    measured = ThroughputSettings(source="lt", requests_per_s=1, output_tokens_per_s=200, concurrency=4)
    assert measured.measured is True
    assert measured.instance(L4, 99, 99) == InstanceThroughput(1.0, 200.0, 4, "lt", True)
    est = ThroughputSettings(source="bench", tokens_per_s_per_sequence=10)
    assert est.measured is False
    assert est.instance(L4, 8, 40) == estimate(8, DecodeRate(L4, 10, "bench"), 40)
    with pytest.raises(ConfigErrors) as err:
        ThroughputSettings(source="x", tokens_per_s_per_sequence=10, output_tokens_per_s=5)
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == (
        "ThroughputSettings.output_tokens_per_s",
        5.0,
        "a throughput is either measured or estimated, not both",
    )
    with pytest.raises(ConfigErrors) as err:
        ThroughputSettings(source="x", requests_per_s=1, concurrency=2)
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == (
        "ThroughputSettings.output_tokens_per_s",
        None,
        "is required for a measured throughput",
    )
    with pytest.raises(ConfigErrors) as err:
        ThroughputSettings(source="x")
    assert [x.field for x in err.value.errors] == ["ThroughputSettings.requests_per_s"]


def test_capacity_settings() -> None:
    s = CapacitySettings(target=TargetSettings(requests_per_s=1))
    assert (s.throughput, s.output_tokens_per_request) == ({}, 256)
    with pytest.raises(ConfigErrors) as err:
        CapacitySettings(
            target=TargetSettings(requests_per_s=1),
            throughput={
                "nvidia-l5": ThroughputSettings(source="b", tokens_per_s_per_sequence=1),
                "h100": ThroughputSettings(source="b", tokens_per_s_per_sequence=1),
            },
        )
    got = [(e.field, e.value, e.fix, e.allowed) for e in err.value.errors]
    assert got == [
        (
            "CapacitySettings.throughput.nvidia-l5",
            "nvidia-l5",
            "did you mean nvidia-l4?",
            "nvidia-l4, nvidia-rtx-pro-6000",
        ),
        (
            "CapacitySettings.throughput.h100",
            "h100",
            "key each throughput by its GPU type",
            "nvidia-l4, nvidia-rtx-pro-6000",
        ),
    ]
    with pytest.raises(ConfigErrors) as err:
        CapacitySettings(target=TargetSettings(requests_per_s=1), output_tokens_per_request=0)
    assert err.value.errors[0].field == "CapacitySettings.output_tokens_per_request"


@pytest.mark.parametrize(
    ("cls", "field", "base", "bad", "allowed"),
    [
        (TargetSettings, "requests_per_s", {}, 0, "> 0.0"),
        (TargetSettings, "output_tokens_per_s", {}, 0, "> 0.0"),
        (ThroughputSettings, "requests_per_s", {"source": "s"}, 0, "> 0.0"),
        (ThroughputSettings, "output_tokens_per_s", {"source": "s"}, 0, "> 0.0"),
        (ThroughputSettings, "concurrency", {"source": "s"}, 0, "≥ 1"),
        (ThroughputSettings, "tokens_per_s_per_sequence", {"source": "s"}, 0, "> 0.0"),
    ],
)
def test_settings_rates_must_be_positive(cls: Any, field: str, base: dict[str, Any], bad: Any, allowed: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        cls(**base, **{field: bad})
    first = err.value.errors[0]
    assert (first.field, first.value, first.allowed) == (f"{cls.__name__}.{field}", bad, allowed)
    with pytest.raises(ConfigErrors) as err:
        cls(**base, **{field: -0.5 if allowed == "> 0.0" else -1})
    assert err.value.errors[0].field == f"{cls.__name__}.{field}"


def test_settings_source_and_infinity() -> None:
    with pytest.raises(ConfigErrors) as err:
        ThroughputSettings(source="", tokens_per_s_per_sequence=1)
    assert err.value.errors[0].field == "ThroughputSettings.source"
    with pytest.raises(ConfigErrors) as err:
        TargetSettings(requests_per_s=math.inf)
    assert err.value.errors[0].field == "TargetSettings.requests_per_s"
