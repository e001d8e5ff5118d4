"""Strength tests for ``cloudrun_gpu.pricing`` (issue 23: the module had no mutation row; a fresh sample, seed 51,
left survivors in the cost lines ``plan`` prints and the refusals).

Every figure below is worked out by hand from the list prices the module cites (https://cloud.google.com/run/pricing,
read 2026-12-06; the quotes are in the module's docstring): an NVIDIA L4 without zonal redundancy at $0.0001867 per
GPU-second, with it $0.0002909; an RTX PRO 6000 at $0.00036522 / $0.00056913; CPU at $0.000018 per vCPU-second and
memory at $0.000002 per GiB-second, Tier 1, instance-based billing. The tests compare the whole printed lines and
the whole ``plan --json`` cost object, as a user reads them.
"""

from __future__ import annotations

import dataclasses

import pytest
from cloudrun_gpu import pricing
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.pricing import RegionCost, StackCost, instance_cost, render_cost, usd

L4, RTX = "nvidia-l4", "nvidia-rtx-pro-6000"
ESTIMATED_WEST4 = "europe-west4: price tier not verified, Tier 1 rates used (Tier 2 regions cost more)"


def two_region_cost() -> StackCost:
    # europe-west1, one L4 without zonal redundancy, 8 vCPU, 32 GiB:
    #   GPU 0.0001867 × 3600 = 0.67212, CPU 8 × 0.000018 × 3600 = 0.5184, memory 32 × 0.000002 × 3600 = 0.2304,
    #   one instance 1.42092 $/h; at a measured 240 tok/s: 1.42092 / (240 × 3600) × 1e6 = 1.644583 $ per million.
    # europe-west4 (tier not verified), one RTX PRO 6000 with zonal redundancy, 20 vCPU, 80 GiB:
    #   GPU 0.00056913 × 3600 = 2.048868, CPU 1.296, memory 0.576: 3.920868 $/h.
    west1 = RegionCost(instance_cost("europe-west1", L4, False, 8, 32), 1, 3, 240.0, "loadtest 2026-12-01", True)
    west4 = RegionCost(instance_cost("europe-west4", RTX, True, 20, 80), 0, 2)
    return StackCost((west1, west4), planned_per_hour=2.84184, planned_output_tokens_per_s=480.0)


def test_the_plans_cost_lines_word_for_word() -> None:
    # idle: 1 × 1.42092; full: 3 × 1.42092 + 2 × 3.920868 = 12.104496; the plan: 2.84184 / (480 × 3600) × 1e6
    assert render_cost(two_region_cost()) == [
        "idle $1.42/h (min instances), full $12.10/h (max instances) — USD list prices, instance-based billing",
        "  europe-west1: one instance $1.42/h = nvidia-l4 $0.6721 (no zonal redundancy) + 8 vCPU $0.5184 + 32 GiB "
        "$0.2304; × 1..3 instances; $1.64 per million output tokens at 240 tok/s per instance (measured)",
        "  europe-west4: one instance $3.92/h = nvidia-rtx-pro-6000 $2.05 (zonal redundancy) + 20 vCPU $1.30 + 80 GiB "
        "$0.5760; × 0..2 instances; per million output tokens: no throughput declared (measure with `python -m "
        "stack loadtest`, set cloudrun-gpu:capacity.throughput)",
        "  capacity plan: $2.84/h for 480 output tok/s = $1.64 per million output tokens",
        f"  ESTIMATED: {ESTIMATED_WEST4}",
        "  prices: https://cloud.google.com/run/pricing (read 2026-12-06; sources per rate in cloudrun_gpu/pricing.py)",
    ]


def test_the_plans_json_cost_object_whole() -> None:
    assert two_region_cost().to_dict() == {
        "currency": "USD",
        "source": "https://cloud.google.com/run/pricing",
        "retrieved": "2026-12-06",
        "idle_usd_per_hour": 1.4209,
        "full_usd_per_hour": 12.1045,
        "regions": [
            {
                "region": "europe-west1",
                "gpu": L4,
                "zonal_redundancy": False,
                "cpu": 8.0,
                "memory_gib": 32.0,
                "gpu_usd_per_hour": 0.6721,
                "cpu_usd_per_hour": 0.5184,
                "memory_usd_per_hour": 0.2304,
                "usd_per_hour": 1.4209,
                "estimated": [],
                "min_instances": 1,
                "max_instances": 3,
                "idle_usd_per_hour": 1.4209,
                "full_usd_per_hour": 4.2628,
                "output_tokens_per_s": 240.0,
                "throughput_measured": True,
                "throughput_source": "loadtest 2026-12-01",
                "usd_per_million_output_tokens": 1.6446,
            },
            {
                "region": "europe-west4",
                "gpu": RTX,
                "zonal_redundancy": True,
                "cpu": 20.0,
                "memory_gib": 80.0,
                "gpu_usd_per_hour": 2.0489,
                "cpu_usd_per_hour": 1.296,
                "memory_usd_per_hour": 0.576,
                "usd_per_hour": 3.9209,
                "estimated": [ESTIMATED_WEST4],
                "min_instances": 0,
                "max_instances": 2,
                "idle_usd_per_hour": 0.0,
                "full_usd_per_hour": 7.8417,
                "output_tokens_per_s": None,
                "throughput_measured": False,
                "throughput_source": None,
                "usd_per_million_output_tokens": None,
            },
        ],
        "planned_usd_per_hour": 2.8418,
        "planned_usd_per_million_output_tokens": 1.6446,
        "estimated": [ESTIMATED_WEST4],
    }


def test_a_plan_without_throughput_has_no_price_per_token_and_says_so_once_per_region() -> None:
    west4 = RegionCost(instance_cost("europe-west4", RTX, True, 20, 80), 1, 1)
    cost = StackCost((west4, west4), planned_per_hour=3.920868, planned_output_tokens_per_s=0.0)
    assert cost.planned_usd_per_million_output_tokens is None  # 0 tok/s is "not known", not a division by zero
    assert cost.estimated == (ESTIMATED_WEST4,)  # the same region twice: one line
    lines = render_cost(cost)
    assert not any(line.startswith("  capacity plan:") for line in lines)
    assert lines.count(f"  ESTIMATED: {ESTIMATED_WEST4}") == 1
    assert StackCost((west4,)).to_dict()["planned_usd_per_hour"] is None


def test_dollars_are_cents_from_one_dollar_and_four_decimals_below() -> None:
    assert [usd(x) for x in (0, 0.0, 0.00004, 0.5, 0.99994, 1, 1.005, 1234.5)] == [
        "$0",
        "$0",
        "$0.0000",
        "$0.5000",
        "$0.9999",
        "$1.00",
        "$1.00",  # 1.005 is 1.00499… in binary
        "$1,234.50",
    ]


def test_every_rate_with_its_quote_and_how_sure_we_are() -> None:
    """The figure, its unit, and the quote it was read from; only the CPU rate is from the official page itself."""
    rates = {
        "cpu": pricing.CPU_TIER1,
        "memory": pricing.MEMORY_TIER1,
        **{str(k): v for k, v in pricing.GPU_TIER1.items()},
    }
    assert {k: (r.usd, r.unit, r.secondary) for k, r in rates.items()} == {
        "cpu": (0.000018, "vCPU-second", False),
        "memory": (0.000002, "GiB-second", True),
        "('nvidia-l4', False)": (0.0001867, "GPU-second", True),
        "('nvidia-l4', True)": (0.0002909, "GPU-second", True),
        "('nvidia-rtx-pro-6000', False)": (0.00036522, "GPU-second", True),
        "('nvidia-rtx-pro-6000', True)": (0.00056913, "GPU-second", True),
    }
    written = {"cpu": "$0.00001800", "memory": "$0.00000200"}
    for k, r in rates.items():
        assert written.get(k, f"${r.usd}") in r.quote, (k, r.quote)
    assert "(no zonal redundancy)" in pricing.GPU_TIER1[(RTX, False)].quote
    assert "(with zonal redundancy)" in pricing.GPU_TIER1[(RTX, True)].quote
    assert frozenset({"us-central1", "europe-west1"}) == pricing.TIER1_REGIONS
    assert (pricing.SOURCE_URL, pricing.RETRIEVED, pricing.CURRENCY, pricing.SECONDS_PER_HOUR) == (
        "https://cloud.google.com/run/pricing",
        "2026-12-06",
        "USD",
        3600,
    )


def test_us_central1_is_a_quoted_tier_1_price() -> None:
    c = instance_cost("us-central1", L4, 1, 4, 16)  # type: ignore[arg-type]  # a truthy flag (a bag's 1) reads as True
    assert c.zonal_redundancy is True and c.estimated == ()
    assert c.to_dict()["gpu_usd_per_hour"] == 1.0472  # 0.0002909 × 3600 = 1.04724
    assert (c.cpu, c.memory_gib) == (4.0, 16.0) and isinstance(c.cpu, float)


def test_the_refusals_word_for_word() -> None:
    with pytest.raises(ConfigError) as err:
        instance_cost("us-central1", "nvidia-h100", False, 8, 32)
    assert str(err.value) == (
        "gpu.type = 'nvidia-h100': has no Cloud Run price in cloudrun_gpu.pricing\n"
        "  allowed: nvidia-l4, nvidia-rtx-pro-6000\n"
        "  fix: add its per-second price from https://cloud.google.com/run/pricing to pricing.GPU_TIER1"
    )
    for name, cpu, memory, bad in (
        ("cpu", 0, 32, 0),
        ("cpu", True, 32, True),
        ("memory_gib", 8, float("inf"), float("inf")),
        ("memory_gib", 8, -1, -1),
        ("memory_gib", 8, "32", "32"),
    ):
        with pytest.raises(ConfigError) as err:
            instance_cost("us-central1", L4, False, cpu, memory)  # type: ignore[arg-type]
        assert str(err.value) == (
            f"{name} = {bad!r}: is not a valid instance size\n  allowed: a number > 0\n  fix: give a number > 0"
        )
    with pytest.raises(ConfigError) as err:
        pricing.per_million_tokens(1.0, -5)
    assert str(err.value) == (
        "output_tokens_per_s = -5: is not a throughput\n  allowed: a number > 0\n  fix: give a rate > 0"
    )


def test_a_gpu_type_priced_in_one_redundancy_mode_only_is_not_priced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU type counts as priced only with both modes: the plan prices either, as the stack's redundancy says."""
    assert pricing.gpu_types_priced() == [L4, RTX]
    monkeypatch.delitem(pricing.GPU_TIER1, (RTX, True))
    assert pricing.gpu_types_priced() == [L4]
    monkeypatch.delitem(pricing.GPU_TIER1, (L4, False))
    assert pricing.gpu_types_priced() == []


def test_every_dollar_figure_in_the_json_is_rounded_to_a_hundredth_of_a_cent() -> None:
    """``plan --json`` rounds each USD figure to 4 decimals. With the stack's integer vCPU and GiB the CPU and memory
    parts have 4 decimals already ($0.0648 and $0.0072 an hour each), so this instance is built with longer ones."""
    from cloudrun_gpu.pricing import InstanceCost

    c = InstanceCost("us-central1", L4, False, 4.0, 16.0, 0.123456, 0.234567, 0.345678, ())
    assert c.to_dict() == {
        "region": "us-central1",
        "gpu": L4,
        "zonal_redundancy": False,
        "cpu": 4.0,
        "memory_gib": 16.0,
        "gpu_usd_per_hour": 0.1235,
        "cpu_usd_per_hour": 0.2346,
        "memory_usd_per_hour": 0.3457,
        "usd_per_hour": 0.7037,  # 0.703701
        "estimated": [],
    }


def test_prices_and_costs_are_frozen() -> None:
    """One cost is printed in ``plan`` and written in ``plan --json``; nothing may change it in between."""
    cost = two_region_cost()
    west1 = cost.regions[0]
    for obj, name in (
        (pricing.CPU_TIER1, "usd"),
        (west1.instance, "cpu"),
        (west1, "max_instances"),
        (cost, "planned_per_hour"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(obj, name, 0)
