"""Cloud Run GPU prices as data, and what a stack costs per hour and per million output tokens.

Pure (no Pulumi). A GPU service on Cloud Run must use instance-based billing, and "minimum instances are charged
at the full rate even when idle" (https://cloud.google.com/run/docs/configuring/services/gpu, "Pricing impact");
"There is a difference in cost between GPU zonal redundancy and non-zonal redundancy" (same page). So one instance
costs ``gpu + cpu × vCPU + memory × GiB`` per second whether it serves or not, at the instance-based rates of its
region's price tier and its GPU's redundancy mode; a stack costs its min instances that much when idle and its max
instances when full.

Where each number comes from (read 2026-12-06; every rate in USD, list price, before discounts, taxes, free tier
and committed-use discounts):

- **CPU, Tier 1, instance-based** ``$0.00001800 / vCPU-second``: quoted from https://cloud.google.com/run/pricing
  ("Pricing for regions in Tier 1 … Services with CPU always allocated / Jobs | $0.00001800 / vCPU-second beyond
  free tier"; a stored copy of the official page, found with the ``search`` tool, pages corpus).
- **Memory, Tier 1, instance-based** ``$0.00000200 / GiB-second``: the official page's stored excerpt stops before
  the memory column; the figure is from public write-ups that quote that page's table ("CPU: `$0.00001800 /
  vCPU-second` / Memory: `$0.00000200 / GiB-second`", and the same pair in a us-central1 "Tier 1" cost model).
  Marked ``secondary``.
- **GPUs, Tier 1** (NVIDIA L4 ``$0.0001867`` / ``$0.0002909`` per second without / with zonal redundancy; RTX PRO
  6000 ``$0.00036522`` / ``$0.00056913``): the official page's GPU table was not in the stored excerpts; the figures
  are from independent public write-ups that cite https://cloud.google.com/run/pricing or the Cloud Billing SKUs
  ("NVIDIA L4 | $0.0001867 (~$0.672/h) | $0.0002909 (~$1.047/h)", "Tier-1 regions, e.g. us-central1,
  europe-west1"; a us-central1 Billing-API SKU table with the same L4 pair; "RTX PRO 6000 … $0.00036522/second/GPU
  (no zonal redundancy); $0.00056913/second/GPU (with zonal redundancy)"). Marked ``secondary``; they agree with
  each other and with the ~$0.67/h an L4 hour is quoted at.
- **Tier 2 prices: not found.** The only regions named as Tier 1 in what was read are us-central1 and europe-west1.
  Every other GPU region is priced at the Tier 1 rates and the plan labels that cost ESTIMATED ("tier not
  verified; Tier 2 regions cost more"), so an estimate is never shown as a quote.

Check https://cloud.google.com/run/pricing before relying on a figure; update :data:`RETRIEVED` with the rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError

SOURCE_URL = "https://cloud.google.com/run/pricing"
RETRIEVED = "2026-12-06"
CURRENCY = "USD"
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Rate:
    """One list price: ``usd`` per ``unit`` (a second of a GPU, vCPU or GiB), and how sure we are of it."""

    usd: float
    unit: str
    quote: str
    """The text the figure was read from, as found."""
    secondary: bool
    """True when the figure comes from a page quoting the official table, not from the official page itself."""


CPU_TIER1 = Rate(
    0.000018,
    "vCPU-second",
    '"Services with CPU always allocated Jobs | $0.00001800 / vCPU-second beyond free tier" (official page)',
    secondary=False,
)
MEMORY_TIER1 = Rate(
    0.000002,
    "GiB-second",
    '"Memory: `$0.00000200 / GiB-second`" (write-ups quoting the official table)',
    secondary=True,
)
GPU_TIER1: dict[tuple[str, bool], Rate] = {
    ("nvidia-l4", False): Rate(
        0.0001867, "GPU-second", '"NVIDIA L4 | $0.0001867 (~$0.672/h)" without zonal redundancy', secondary=True
    ),
    ("nvidia-l4", True): Rate(
        0.0002909, "GPU-second", '"$0.0002909 (~$1.047/h)" with zonal redundancy', secondary=True
    ),
    ("nvidia-rtx-pro-6000", False): Rate(
        0.00036522, "GPU-second", '"$0.00036522/second/GPU (no zonal redundancy)"', secondary=True
    ),
    ("nvidia-rtx-pro-6000", True): Rate(
        0.00056913, "GPU-second", '"$0.00056913/second/GPU (with zonal redundancy)"', secondary=True
    ),
}
"""(GPU type, zonal redundancy) → the Tier 1 price per GPU-second."""

TIER1_REGIONS = frozenset({"us-central1", "europe-west1"})
"""Regions a source read here names as Tier 1 ("Tier-1 regions, e.g. us-central1, europe-west1"). Other regions'
tiers were not verified; they are priced at Tier 1 and labelled estimated."""


@dataclass(frozen=True)
class InstanceCost:
    """What one running instance costs per hour, by part, and whether any part is estimated."""

    region: str
    gpu: str
    zonal_redundancy: bool
    cpu: float
    memory_gib: float
    gpu_per_hour: float
    cpu_per_hour: float
    memory_per_hour: float
    estimated: tuple[str, ...]
    """Why the figure is not a quote (empty: every rate read from a source, the region's tier known)."""

    @property
    def per_hour(self) -> float:
        return self.gpu_per_hour + self.cpu_per_hour + self.memory_per_hour

    def to_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            "gpu": self.gpu,
            "zonal_redundancy": self.zonal_redundancy,
            "cpu": self.cpu,
            "memory_gib": self.memory_gib,
            "gpu_usd_per_hour": round(self.gpu_per_hour, 4),
            "cpu_usd_per_hour": round(self.cpu_per_hour, 4),
            "memory_usd_per_hour": round(self.memory_per_hour, 4),
            "usd_per_hour": round(self.per_hour, 4),
            "estimated": list(self.estimated),
        }


def instance_cost(region: str, gpu: str, zonal_redundancy: bool, cpu: float, memory_gib: float) -> InstanceCost:
    """One instance's hourly list price in ``region`` (instance-based billing: GPU, CPU and memory all billed for
    the instance's whole life). Refuses a GPU type with no price, naming the field."""
    rate = GPU_TIER1.get((gpu, bool(zonal_redundancy)))
    if rate is None:
        raise ConfigError(
            "gpu.type",
            gpu,
            "has no Cloud Run price in cloudrun_gpu.pricing",
            f"add its per-second price from {SOURCE_URL} to pricing.GPU_TIER1",
            ", ".join(sorted({g for g, _ in GPU_TIER1})),
        )
    for name, value in (("cpu", cpu), ("memory_gib", memory_gib)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ConfigError(name, value, "is not a valid instance size", "give a number > 0", "a number > 0")
    estimated = []
    if region not in TIER1_REGIONS:
        estimated.append(f"{region}: price tier not verified, Tier 1 rates used (Tier 2 regions cost more)")
    return InstanceCost(
        region=region,
        gpu=gpu,
        zonal_redundancy=bool(zonal_redundancy),
        cpu=float(cpu),
        memory_gib=float(memory_gib),
        gpu_per_hour=rate.usd * SECONDS_PER_HOUR,
        cpu_per_hour=CPU_TIER1.usd * cpu * SECONDS_PER_HOUR,
        memory_per_hour=MEMORY_TIER1.usd * memory_gib * SECONDS_PER_HOUR,
        estimated=tuple(estimated),
    )


def per_million_tokens(usd_per_hour: float, output_tokens_per_s: float) -> float:
    """USD per million output tokens for an instance (or fleet) that costs ``usd_per_hour`` while it serves
    ``output_tokens_per_s``, busy all the time: the floor of what a token costs (idle time only adds)."""
    if output_tokens_per_s <= 0:
        raise ConfigError(
            "output_tokens_per_s", output_tokens_per_s, "is not a throughput", "give a rate > 0", "a number > 0"
        )
    return usd_per_hour / (output_tokens_per_s * SECONDS_PER_HOUR) * 1e6


@dataclass(frozen=True)
class RegionCost:
    """One region of a stack: its instance price and how many instances run when idle and when full."""

    instance: InstanceCost
    min_instances: int
    max_instances: int
    output_tokens_per_s: float | None = None
    """Per-instance output tokens/s at the served concurrency (measured or declared); None: not known."""
    throughput_source: str = ""
    throughput_measured: bool = False

    @property
    def idle_per_hour(self) -> float:
        return self.min_instances * self.instance.per_hour

    @property
    def full_per_hour(self) -> float:
        return self.max_instances * self.instance.per_hour

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        if self.output_tokens_per_s is None:
            return None
        return per_million_tokens(self.instance.per_hour, self.output_tokens_per_s)


@dataclass(frozen=True)
class StackCost:
    """A stack's price: idle (min instances) and full (max instances) per hour, per million output tokens."""

    regions: tuple[RegionCost, ...]
    planned_per_hour: float | None = None
    """With a capacity plan: what the planned instances cost per hour."""
    planned_output_tokens_per_s: float | None = None

    @property
    def idle_per_hour(self) -> float:
        return sum(r.idle_per_hour for r in self.regions)

    @property
    def full_per_hour(self) -> float:
        return sum(r.full_per_hour for r in self.regions)

    @property
    def estimated(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for r in self.regions for e in r.instance.estimated))

    @property
    def planned_usd_per_million_output_tokens(self) -> float | None:
        if self.planned_per_hour is None or not self.planned_output_tokens_per_s:
            return None
        return per_million_tokens(self.planned_per_hour, self.planned_output_tokens_per_s)

    def to_dict(self) -> dict[str, object]:
        def r4(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "currency": CURRENCY,
            "source": SOURCE_URL,
            "retrieved": RETRIEVED,
            "idle_usd_per_hour": r4(self.idle_per_hour),
            "full_usd_per_hour": r4(self.full_per_hour),
            "regions": [
                {
                    **r.instance.to_dict(),
                    "min_instances": r.min_instances,
                    "max_instances": r.max_instances,
                    "idle_usd_per_hour": r4(r.idle_per_hour),
                    "full_usd_per_hour": r4(r.full_per_hour),
                    "output_tokens_per_s": r.output_tokens_per_s,
                    "throughput_measured": r.throughput_measured,
                    "throughput_source": r.throughput_source or None,
                    "usd_per_million_output_tokens": r4(r.usd_per_million_output_tokens),
                }
                for r in self.regions
            ],
            "planned_usd_per_hour": r4(self.planned_per_hour),
            "planned_usd_per_million_output_tokens": r4(self.planned_usd_per_million_output_tokens),
            "estimated": list(self.estimated),
        }


def usd(x: float) -> str:
    """Dollars for the text plan: cents above a dollar, 4 decimals below."""
    if x == 0:
        return "$0"
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def render_cost(cost: StackCost) -> list[str]:
    """The text plan's cost lines: idle and full per hour, per region, per million output tokens, the source."""
    lines = [
        f"idle {usd(cost.idle_per_hour)}/h (min instances), full {usd(cost.full_per_hour)}/h (max instances)"
        f" — {CURRENCY} list prices, instance-based billing",
    ]
    for r in cost.regions:
        i = r.instance
        per_m = r.usd_per_million_output_tokens
        tokens = (
            f"{usd(per_m)} per million output tokens at {r.output_tokens_per_s:g} tok/s per instance "
            f"({'measured' if r.throughput_measured else 'ESTIMATED'})"
            if per_m is not None
            else "per million output tokens: no throughput declared (measure with `python -m stack loadtest`, "
            "set cloudrun-gpu:capacity.throughput)"
        )
        lines.append(
            f"  {i.region}: one instance {usd(i.per_hour)}/h = {i.gpu} {usd(i.gpu_per_hour)}"
            f" ({'zonal redundancy' if i.zonal_redundancy else 'no zonal redundancy'}) + {i.cpu:g} vCPU "
            f"{usd(i.cpu_per_hour)} + {i.memory_gib:g} GiB {usd(i.memory_per_hour)}; × {r.min_instances}.."
            f"{r.max_instances} instances; {tokens}"
        )
    if cost.planned_usd_per_million_output_tokens is not None and cost.planned_per_hour is not None:
        lines.append(
            f"  capacity plan: {usd(cost.planned_per_hour)}/h for {cost.planned_output_tokens_per_s:g} output tok/s"
            f" = {usd(cost.planned_usd_per_million_output_tokens)} per million output tokens"
        )
    lines += [f"  ESTIMATED: {e}" for e in cost.estimated]
    lines.append(f"  prices: {SOURCE_URL} (read {RETRIEVED}; sources per rate in cloudrun_gpu/pricing.py)")
    return lines


def gpu_types_priced() -> list[str]:
    """GPU types with a price for both redundancy modes (every Cloud Run GPU type should be here)."""
    return [g for g in limits.GPU_TYPES if (g, True) in GPU_TIER1 and (g, False) in GPU_TIER1]
