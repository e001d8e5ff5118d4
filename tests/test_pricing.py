"""Prices (#24): Cloud Run list prices as data, each stack's cost in ``plan`` and ``plan --json``, and the
capacity planner's cheapest mix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cloudrun_gpu import limits, pricing
from cloudrun_gpu.capacity import InstanceThroughput, Region, Target, plan_capacity
from cloudrun_gpu.errors import ConfigError, ConfigErrors

from stack.cli import main, plan_json

from .conftest import ROOT

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
L4, RTX = "nvidia-l4", "nvidia-rtx-pro-6000"


def test_every_gpu_type_has_a_price_in_both_redundancy_modes_and_zonal_costs_more() -> None:
    assert pricing.gpu_types_priced() == list(limits.GPU_TYPES)
    for gpu in limits.GPU_TYPES:
        assert pricing.GPU_TIER1[(gpu, True)].usd > pricing.GPU_TIER1[(gpu, False)].usd
    assert pricing.SOURCE_URL == "https://cloud.google.com/run/pricing"
    every = [pricing.CPU_TIER1, pricing.MEMORY_TIER1, *pricing.GPU_TIER1.values()]
    assert all(r.quote and r.unit.endswith("-second") for r in every)


def test_instance_cost_is_gpu_plus_cpu_plus_memory_per_second_times_3600() -> None:
    c = pricing.instance_cost("europe-west1", L4, False, 8, 32)
    assert math.isclose(c.gpu_per_hour, 0.0001867 * 3600)
    assert math.isclose(c.cpu_per_hour, 8 * 0.000018 * 3600)
    assert math.isclose(c.memory_per_hour, 32 * 0.000002 * 3600)
    assert math.isclose(c.per_hour, 0.67212 + 0.5184 + 0.2304)
    assert c.estimated == ()  # europe-west1 is a verified Tier 1 region
    zonal = pricing.instance_cost("europe-west1", L4, True, 8, 32)
    assert math.isclose(zonal.gpu_per_hour, 0.0002909 * 3600)


def test_a_region_whose_tier_was_not_verified_is_labelled_estimated() -> None:
    c = pricing.instance_cost("europe-west4", RTX, True, 20, 80)
    assert c.estimated and "europe-west4" in c.estimated[0] and "Tier 1 rates used" in c.estimated[0]


def test_per_million_tokens() -> None:
    # $1.42/h serving 240 tok/s: 864,000 tokens an hour
    assert math.isclose(pricing.per_million_tokens(1.42, 240), 1.42 / 0.864)
    with pytest.raises(ConfigError) as err:
        pricing.per_million_tokens(1.0, 0)
    assert err.value.field == "output_tokens_per_s"


def test_unpriced_gpu_and_bad_sizes_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        pricing.instance_cost("us-central1", "nvidia-h100", False, 8, 32)
    assert err.value.field == "gpu.type" and "nvidia-l4" in str(err.value)
    with pytest.raises(ConfigError) as err:
        pricing.instance_cost("us-central1", L4, False, 0, 32)
    assert err.value.field == "cpu"


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_plan_prints_its_cost(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", stack]) == 0
    text = capsys.readouterr().out
    cost = text[text.index("\nCost\n") :]
    assert "idle $" in cost and "full $" in cost and "/h (max instances)" in cost
    assert "https://cloud.google.com/run/pricing" in cost
    doc = plan_json(stack, ROOT)["cost"]
    assert doc["source"] == pricing.SOURCE_URL and doc["currency"] == "USD"
    assert doc["full_usd_per_hour"] > 0 and doc["idle_usd_per_hour"] >= 0
    for r in doc["regions"]:
        assert r["usd_per_hour"] > 0
        assert math.isclose(r["full_usd_per_hour"], r["max_instances"] * r["usd_per_hour"], abs_tol=1e-3)


def test_prod_idle_cost_is_its_warm_zonal_instance() -> None:
    doc = plan_json("prod", ROOT)["cost"]
    (region,) = doc["regions"]
    assert region["zonal_redundancy"] is True and region["min_instances"] == 1
    expected = (0.00056913 + 20 * 0.000018 + 80 * 0.000002) * 3600
    assert math.isclose(doc["idle_usd_per_hour"], round(expected, 4))
    assert math.isclose(doc["full_usd_per_hour"], round(3 * expected, 4), rel_tol=1e-6)
    assert region["usd_per_million_output_tokens"] is None  # prod declares no throughput
    assert doc["estimated"]  # europe-west4: tier not verified


def test_multi_prints_cost_per_million_tokens_at_its_declared_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    doc = plan_json("multi", ROOT)
    cost, cap = doc["cost"], doc["capacity"]
    l4 = next(r for r in cost["regions"] if r["gpu"] == L4)
    assert l4["output_tokens_per_s"] == 240 and l4["throughput_measured"] is False
    assert math.isclose(l4["usd_per_million_output_tokens"], round(l4["usd_per_hour"] / (240 * 3600) * 1e6, 4))
    assert cost["planned_usd_per_hour"] == cap["usd_per_hour"]
    assert cap["prefer"] == "nearest"
    assert main(["plan", "--stack", "multi"]) == 0
    assert "per million output tokens at 240 tok/s per instance (ESTIMATED)" in capsys.readouterr().out


# --- the capacity planner's cheapest mix -------------------------------------------------------------------------

TWO = [Region("europe-west1", L4, 3, usd_per_hour=1.42), Region("us-central1", RTX, 2, usd_per_hour=3.19)]
TP = {
    L4: InstanceThroughput(1, 240, 30, "test", measured=True),
    RTX: InstanceThroughput(3, 800, 32, "test", measured=True),
}


def test_cheapest_fills_the_lowest_cost_per_unit_first_and_nearest_keeps_the_listed_order() -> None:
    # per req/s: L4 1.42 $/h per 1 req/s, RTX 3.19 / 3 = 1.06: RTX first when cheapest
    near = plan_capacity(Target(requests_per_s=3), TWO, TP)
    cheap = plan_capacity(Target(requests_per_s=3), TWO, TP, prefer="cheapest")
    assert [r.instances for r in near.regions] == [3, 0]
    assert [r.instances for r in cheap.regions] == [0, 1]
    assert near.usd_per_hour is not None and cheap.usd_per_hour is not None
    assert cheap.usd_per_hour < near.usd_per_hour
    assert cheap.prefer == "cheapest" and "lowest cost per unit" in cheap.rule
    assert "fill order (cheapest first): us-central1, europe-west1" in cheap.explain
    assert cheap.to_dict()["usd_per_hour"] == 3.19


def test_cheapest_keeps_min_instances_and_spills_when_the_cheap_region_is_full() -> None:
    regions = [Region("europe-west1", L4, 3, min_instances=1, usd_per_hour=1.42), TWO[1]]
    plan = plan_capacity(Target(requests_per_s=8), regions, TP, prefer="cheapest")
    assert [r.instances for r in plan.regions] == [2, 2]  # 1 warm L4, 2 RTX (6 req/s), then 1 more L4


def test_cheapest_needs_a_price_per_region_and_prefer_is_checked() -> None:
    unpriced = [Region("europe-west1", L4, 3), TWO[1]]
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=3), unpriced, TP, prefer="cheapest")
    assert [e.field for e in err.value.errors] == ["regions[0].usd_per_hour"]
    with pytest.raises(ConfigErrors) as err:
        plan_capacity(Target(requests_per_s=3), TWO, TP, prefer="fastest")
    assert [e.field for e in err.value.errors] == ["prefer"]


def test_a_stack_can_prefer_the_cheapest_mix(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.multi.yaml").read_text()
    line = "    output_tokens_per_request: 256\n"
    text = text.replace(line, line + "    prefer: cheapest\n")
    (tmp_path / "Pulumi.cheap.yaml").write_text(text)
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    near, cheap = plan_json("multi", ROOT), plan_json("cheap", tmp_path)
    assert cheap["capacity"]["prefer"] == "cheapest"
    assert cheap["cost"]["planned_usd_per_hour"] <= near["cost"]["planned_usd_per_hour"]
    by_region = {r["region"]: r["instances"] for r in cheap["capacity"]["regions"]}
    # the warm L4 serves 0.9375 req/s; one RTX (3.125 req/s, cheaper per req/s) covers the rest of 3.5
    assert by_region == {"europe-west1": 1, "us-central1": 1}, json.dumps(cheap["capacity"], indent=1)
    assert cheap["cost"]["planned_usd_per_hour"] < near["cost"]["planned_usd_per_hour"]


def test_a_bad_prefer_in_a_stack_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "Pulumi.multi.yaml").read_text()
    line = "    output_tokens_per_request: 256\n"
    text = text.replace(line, line + "    prefer: fastest\n")
    (tmp_path / "Pulumi.bad.yaml").write_text(text)
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    assert main(["plan", "--stack", "bad", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "capacity.prefer" in err and "fastest" in err and "Traceback" not in err
