"""Capacity planner: how many GPU instances per region serve a target load, within each region's quota.

Pure (no Pulumi). The sizing engine says what fits on *one* GPU; the concurrency tuner
(``python -m stack loadtest``, practice A3) measures what one instance serves at the concurrency it
recommends. This module turns that per-instance throughput into instances per region for a target
load, because GPU quota is granted per project, region, GPU type and redundancy mode
(``limits.GPU_TYPES[gpu].quota_zonal`` / ``quota_no_zonal``) and is usually small (3 by default,
``limits.DEFAULT_GPU_QUOTA``): a target one region cannot hold has to spill into another.

Inputs:

- a :class:`Target`: requests/s, output tokens/s, or both (every one given must be met);
- per-instance throughput per GPU type, an :class:`InstanceThroughput`: *measured* with
  :func:`from_level` from a load-test level (``stack.loadtest.LevelResult`` at the recommended
  concurrency), or *estimated* with :func:`estimate` from the sizing plan's parallel sequences and a
  per-sequence decode rate that the caller states with its source (this module ships no decode rates:
  a rate that nobody measured would make every plan look precise and be wrong);
- :class:`Region` entries, **nearest first**: region, GPU type, GPU quota for the chosen redundancy
  mode, optional max instances, min instances.

The fill rule (:data:`FILL_RULE`): every region first gets its min instances; then the regions are
filled in the order listed, each up to ``min(quota, max_instances)``, until the target is met; a
region is only used once every region before it is full. The order is the caller's preference
(nearest to the users first), so the plan never places an instance far away while a near region has
quota left. One consequence, by design: granting more quota to an early region can lower the total
capacity of the plan (that region absorbs instances a later, faster GPU type would have served); the
capacity the quotas *allow* (:attr:`CapacityPlan.quota_requests_per_s`) never drops.

The planner refuses, with a :class:`~cloudrun_gpu.errors.ConfigError` naming the field: a target the
quotas cannot meet (how much is missing and how many more GPUs per region would cover it), a region
where the GPU type is not offered (``limits.GPU_TYPES[gpu].regions``), min instances above quota or max
instances, a GPU type without a throughput. Arithmetic is exact (:func:`exact`: each rate as the decimal
it was written as, in :class:`fractions.Fraction`), so "capacity ≥ target" holds exactly, not up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Protocol

from pydantic import Field as PydField

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.settings import nested, settings, suggest

FILL_RULE = (
    "min instances in every region first; then regions in the order listed (nearest first), each filled up to "
    "min(quota, max_instances) before the next is used, until the target is met"
)
CHEAPEST_RULE = (
    "min instances in every region first; then regions from the lowest cost per unit of the target (an instance's "
    "USD per hour ÷ what it serves of the first target metric) to the highest, each filled up to "
    "min(quota, max_instances) before the next is used, until the target is met"
)
PREFER = ("nearest", "cheapest")
"""How the planner orders regions: as listed (nearest the users first) or by cost per unit of the target."""
METRICS = ("requests_per_s", "output_tokens_per_s")
"""The two target metrics, in the order errors report them."""
UNITS = {"requests_per_s": "req/s", "output_tokens_per_s": "output tok/s"}


def more_gpus(n: int, gpu: str) -> str:
    """``1 more nvidia-l4 GPU`` / ``4 more nvidia-l4 GPUs``."""
    return f"{n} more {gpu} GPU" + ("" if n == 1 else "s")


def exact(x: float) -> Fraction:
    """A rate as the exact decimal it was written as (``0.306`` → 306/1000, not the binary float's
    expansion), so 6 × 0.306 req/s is exactly 1.836 req/s and "N more GPUs" is never off by one."""
    return Fraction(repr(float(x)))


def fmt(x: float | Fraction) -> str:
    """A rate for messages and tables: integers as such, else at most 3 decimals."""
    v = float(x)
    if v.is_integer():
        return str(int(v))
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _positive(field_name: str, value: Any, meaning: str, fix: str) -> float:
    """A finite number > 0 (bools refused: ``True`` is not a rate)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(field_name, value, f"is not a valid {meaning}", fix, allowed="a finite number > 0")
    return float(value)


def _count(field_name: str, value: Any, low: int, meaning: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(field_name, value, f"is not a valid {meaning}", fix, allowed=f"an integer ≥ {low}")
    return value


@dataclass(frozen=True)
class Target:
    """The load to serve, over all regions together. Give one metric or both; a plan must meet each one given.

    Requests/s suits a known request mix; output tokens/s suits a token budget, and is what the loadtest
    measures most directly (requests/s depends on the ``max_tokens`` the test used)."""

    requests_per_s: float | None = None
    output_tokens_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.requests_per_s is None and self.output_tokens_per_s is None:
            raise ConfigError(
                "target",
                None,
                "names no load to serve",
                "give target.requests_per_s, target.output_tokens_per_s, or both",
            )
        for name in METRICS:
            v = getattr(self, name)
            if v is not None:
                _positive(f"target.{name}", v, f"target ({UNITS[name]})", f"give target.{name} as a rate > 0")

    def items(self) -> list[tuple[str, float]]:
        """``(metric, value)`` for each metric given, in :data:`METRICS` order."""
        return [(m, float(getattr(self, m))) for m in METRICS if getattr(self, m) is not None]


class LevelLike(Protocol):
    """What :func:`from_level` reads from a load-test level (``stack.loadtest.LevelResult``); a protocol so
    the library does not import the stack program (dependencies point one way)."""

    @property
    def concurrency(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def requests_per_s(self) -> float: ...
    @property
    def tokens_per_s(self) -> float: ...


@dataclass(frozen=True)
class InstanceThroughput:
    """What one instance (one GPU) serves at ``concurrency`` requests in flight.

    ``measured`` tells a load-test result from an estimate; tables and the explain lines show it, so an
    estimate is never mistaken for a measurement. ``source`` says where the numbers come from."""

    requests_per_s: float
    output_tokens_per_s: float
    concurrency: int
    source: str
    measured: bool

    def __post_init__(self) -> None:
        fix = "measure it with `python -m stack loadtest URL` and use the recommended level's numbers"
        _positive("throughput.requests_per_s", self.requests_per_s, "per-instance rate", fix)
        _positive("throughput.output_tokens_per_s", self.output_tokens_per_s, "per-instance rate", fix)
        _count("throughput.concurrency", self.concurrency, 1, "concurrency", fix)
        if not str(self.source).strip():
            raise ConfigError("throughput.source", self.source, "is empty", "say where the numbers come from")

    def per_instance(self, metric: str) -> float:
        return float(getattr(self, metric))


def from_level(level: LevelLike, source: str) -> InstanceThroughput:
    """The per-instance throughput a load-test level measured (use the level ``recommend`` picked).

    A level with failed requests is refused: its rates count only the successes, so they would overstate
    what the instance serves at that concurrency."""
    if level.errors:
        raise ConfigError(
            "throughput",
            f"concurrency {level.concurrency}",
            f"the load-test level had {level.errors} failed request(s) of {level.requests}",
            "use a level without errors (the one `recommend` picks when any level is healthy) or re-run the test",
        )
    return InstanceThroughput(
        requests_per_s=float(level.requests_per_s),
        output_tokens_per_s=float(level.tokens_per_s),
        concurrency=int(level.concurrency),
        source=source,
        measured=True,
    )


@dataclass(frozen=True)
class DecodeRate:
    """A per-sequence decode rate on one GPU type, as the caller states it: output tokens/s that *each*
    sequence gets while all of the plan's parallel sequences decode together (the batched rate, not the
    single-stream one), with where it comes from (a benchmark, a previous loadtest on that GPU)."""

    gpu: str
    tokens_per_s_per_sequence: float
    source: str

    def __post_init__(self) -> None:
        if self.gpu not in limits.GPU_TYPES:
            raise ConfigError(
                "decode_rate.gpu",
                self.gpu,
                "is not a Cloud Run GPU type",
                "use one of them",
                ", ".join(limits.GPU_TYPES),
            )
        _positive(
            "decode_rate.tokens_per_s_per_sequence",
            self.tokens_per_s_per_sequence,
            "decode rate",
            "give the batched per-sequence rate measured on this GPU type",
        )
        if not str(self.source).strip():
            raise ConfigError(
                "decode_rate.source",
                self.source,
                "is empty: an unsourced decode rate makes the plan look measured when it is a guess",
                "name the benchmark or load test the rate comes from, or measure with `python -m stack loadtest`",
            )


def estimate(parallel_sequences: int, rate: DecodeRate, output_tokens_per_request: int) -> InstanceThroughput:
    """The sizing estimate when nothing was measured: ``parallel_sequences × rate`` output tokens/s per
    instance, and that ÷ ``output_tokens_per_request`` requests/s, at concurrency ``parallel_sequences``.

    Pass the sizing plan's ``max_parallel_sequences``. The estimate ignores prefill time and queueing, so it
    is an upper bound for requests/s; it is marked ``measured=False`` and the plan says so."""
    _count("parallel_sequences", parallel_sequences, 1, "number of parallel sequences", "pass the plan's value")
    _count(
        "output_tokens_per_request",
        output_tokens_per_request,
        1,
        "token count",
        "give the typical max_tokens of a request",
    )
    tokens = parallel_sequences * rate.tokens_per_s_per_sequence
    return InstanceThroughput(
        requests_per_s=tokens / output_tokens_per_request,
        output_tokens_per_s=tokens,
        concurrency=parallel_sequences,
        source=(
            f"estimate: {parallel_sequences} parallel sequences × {fmt(rate.tokens_per_s_per_sequence)} tok/s per "
            f"sequence on {rate.gpu} ({rate.source}) = {fmt(tokens)} tok/s; ÷ {output_tokens_per_request} output "
            "tokens per request; ignores prefill and queueing — measure with `python -m stack loadtest`"
        ),
        measured=False,
    )


@dataclass(frozen=True)
class Region:
    """One region the service may run in, with the GPU quota granted there for the chosen redundancy mode.

    ``max_instances`` caps the region below its quota (e.g. to leave quota to another service);
    ``min_instances`` are kept warm whatever the target (they count towards capacity)."""

    name: str
    gpu: str
    quota: int
    max_instances: int | None = None
    min_instances: int = 0
    usd_per_hour: float | None = None
    """What one instance here costs per hour (``pricing.instance_cost``); needed when the plan prefers the
    cheapest mix."""

    @property
    def cap(self) -> int:
        """The most instances the plan may place here: the quota, or max instances when lower."""
        return self.quota if self.max_instances is None else min(self.quota, self.max_instances)


@dataclass(frozen=True)
class RegionPlan:
    """The plan for one region: instances, what they serve, and the quota left."""

    name: str
    gpu: str
    quota: int
    quota_id: str
    max_instances: int | None
    min_instances: int
    instances: int
    throughput: InstanceThroughput
    usd_per_hour: float | None = None

    @property
    def concurrency(self) -> int:
        return self.throughput.concurrency

    @property
    def cap(self) -> int:
        return self.quota if self.max_instances is None else min(self.quota, self.max_instances)

    @property
    def quota_headroom(self) -> int:
        """GPUs of the quota this plan leaves unused (what a burst or another service could still get)."""
        return self.quota - self.instances

    def capacity(self, metric: str) -> Fraction:
        """Exact expected capacity of the planned instances for ``metric``."""
        return self.instances * exact(self.throughput.per_instance(metric))

    def quota_capacity(self, metric: str) -> Fraction:
        """Exact capacity if the region ran all the instances its quota and max instances allow."""
        return self.cap * exact(self.throughput.per_instance(metric))

    @property
    def requests_per_s(self) -> float:
        return float(self.capacity("requests_per_s"))

    @property
    def output_tokens_per_s(self) -> float:
        return float(self.capacity("output_tokens_per_s"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.name,
            "gpu": self.gpu,
            "quota": self.quota,
            "quota_id": self.quota_id,
            "max_instances": self.max_instances,
            "min_instances": self.min_instances,
            "instances": self.instances,
            "concurrency": self.concurrency,
            "requests_per_s": self.requests_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "quota_headroom": self.quota_headroom,
            "throughput_measured": self.throughput.measured,
            "throughput_source": self.throughput.source,
            "usd_per_hour": None if self.usd_per_hour is None else round(self.instances * self.usd_per_hour, 4),
        }


@dataclass(frozen=True)
class CapacityPlan:
    """Instances per region for a target, with expected capacity and quota headroom."""

    target: Target
    zonal_redundancy: bool
    regions: tuple[RegionPlan, ...]
    rule: str = FILL_RULE
    explain: tuple[str, ...] = field(default_factory=tuple)
    prefer: str = "nearest"

    @property
    def instances(self) -> int:
        return sum(r.instances for r in self.regions)

    @property
    def usd_per_hour(self) -> float | None:
        """What the planned instances cost per hour; None when a region has no price."""
        if any(r.usd_per_hour is None for r in self.regions):
            return None
        return sum(r.instances * (r.usd_per_hour or 0.0) for r in self.regions)

    def capacity(self, metric: str) -> Fraction:
        """Exact total expected capacity for ``metric``."""
        return sum((r.capacity(metric) for r in self.regions), Fraction(0))

    def quota_capacity(self, metric: str) -> Fraction:
        """Exact capacity with every region at ``min(quota, max_instances)``: the most these quotas allow."""
        return sum((r.quota_capacity(metric) for r in self.regions), Fraction(0))

    @property
    def requests_per_s(self) -> float:
        return float(self.capacity("requests_per_s"))

    @property
    def output_tokens_per_s(self) -> float:
        return float(self.capacity("output_tokens_per_s"))

    @property
    def quota_requests_per_s(self) -> float:
        return float(self.quota_capacity("requests_per_s"))

    @property
    def quota_output_tokens_per_s(self) -> float:
        return float(self.quota_capacity("output_tokens_per_s"))

    def meets_target(self) -> bool:
        """Exact: expected capacity ≥ the target on every metric given."""
        return all(self.capacity(m) >= exact(v) for m, v in self.target.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": {m: v for m, v in self.target.items()},
            "zonal_redundancy": self.zonal_redundancy,
            "rule": self.rule,
            "regions": [r.to_dict() for r in self.regions],
            "instances": self.instances,
            "requests_per_s": self.requests_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "quota_requests_per_s": self.quota_requests_per_s,
            "quota_output_tokens_per_s": self.quota_output_tokens_per_s,
            "prefer": self.prefer,
            "usd_per_hour": None if self.usd_per_hour is None else round(self.usd_per_hour, 4),
            "explain": list(self.explain),
        }


def quota_id(gpu: str, zonal_redundancy: bool) -> str:
    facts = limits.GPU_TYPES[gpu]
    return facts.quota_zonal if zonal_redundancy else facts.quota_no_zonal


def _check_regions(regions: Sequence[Region], throughput: Mapping[str, InstanceThroughput]) -> list[ConfigError]:
    """Every problem with the regions, so one run shows them all."""
    errors: list[ConfigError] = []
    if not regions:
        return [ConfigError("regions", [], "is empty", "list at least one region with its GPU type and quota")]
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(regions):
        at = f"regions[{i}]"
        facts = limits.GPU_TYPES.get(r.gpu)
        if facts is None:
            errors.append(
                ConfigError(
                    f"{at}.gpu", r.gpu, "is not a Cloud Run GPU type", "use one of them", ", ".join(limits.GPU_TYPES)
                )
            )
            continue
        if r.name not in facts.regions:
            offered = [g for g, f in limits.GPU_TYPES.items() if r.name in f.regions]
            errors.append(
                ConfigError(
                    f"{at}.name",
                    r.name,
                    f"{r.gpu} is not offered in {r.name}",
                    f"pick a region that offers {r.gpu}"
                    + (f", or use {' / '.join(offered)} in {r.name}" if offered else ""),
                    allowed=", ".join(facts.regions),
                )
            )
        if (r.name, r.gpu) in seen:
            errors.append(ConfigError(at, f"{r.name}/{r.gpu}", "is listed twice", "list each region and GPU type once"))
        seen.add((r.name, r.gpu))
        counts_ok = True
        for name, low in (("quota", 0), ("min_instances", 0), ("max_instances", 1)):
            value = getattr(r, name)
            if name == "max_instances" and value is None:
                continue
            try:
                _count(f"{at}.{name}", value, low, name.replace("_", " "), f"give {at}.{name} as an integer ≥ {low}")
            except ConfigError as e:
                errors.append(e)
                counts_ok = False
        if counts_ok and r.min_instances > r.cap:
            limit = "quota" if r.cap == r.quota else "max_instances"
            errors.append(
                ConfigError(
                    f"{at}.min_instances",
                    r.min_instances,
                    f"exceeds the {limit} of {r.cap} in {r.name}: min instances always run, so they need quota",
                    f"lower {at}.min_instances to {r.cap}"
                    + (
                        f", or ask for {more_gpus(r.min_instances - r.quota, r.gpu)} in {r.name}"
                        if limit == "quota"
                        else f", or raise {at}.max_instances"
                    ),
                    allowed=f"0..{r.cap}",
                )
            )
        if r.gpu not in throughput:
            errors.append(
                ConfigError(
                    f"throughput[{r.gpu!r}]",
                    None,
                    f"no per-instance throughput for {r.gpu} (used by {at}, {r.name})",
                    f"measure one {r.gpu} instance with `python -m stack loadtest URL` (capacity.from_level), or "
                    "give capacity.estimate(...) a per-sequence decode rate with its source",
                )
            )
    return errors


def _shortfall(
    target: Target, regions: Sequence[Region], throughput: Mapping[str, InstanceThroughput], zonal: bool
) -> ConfigError:
    """The refusal for a target the quotas cannot meet: what is missing and how to get it, per region."""
    short: list[tuple[str, Fraction, Fraction]] = []
    for metric, value in target.items():
        allowed = sum((r.cap * exact(throughput[r.gpu].per_instance(metric)) for r in regions), Fraction(0))
        if allowed < exact(value):
            short.append((metric, exact(value), allowed))
    metric0, value0, _ = short[0]
    problem = "; ".join(
        f"target {fmt(v)} {UNITS[m]} exceeds what the quotas allow ({fmt(a)} {UNITS[m]}, {fmt(v - a)} missing)"
        for m, v, a in short
    )
    options: list[str] = []
    for r in regions:
        thr = throughput[r.gpu]
        more = max(math.ceil((v - a) / exact(thr.per_instance(m))) for m, v, a in short)
        room = r.quota - r.cap  # quota already granted but held back by max_instances
        extra_gpus = max(0, more - room)
        steps = []
        if extra_gpus:
            steps.append(f"ask for {more_gpus(extra_gpus, r.gpu)} ({quota_id(r.gpu, zonal)}) in {r.name}")
        if r.max_instances is not None and r.max_instances < r.cap + more:
            steps.append(f"raise max_instances in {r.name} to {r.cap + more}")
        options.append(" and ".join(steps))
    lower = " and ".join(f"{fmt(a)} {UNITS[m]}" for m, _, a in short)
    return ConfigError(
        f"target.{metric0}",
        float(value0),
        problem,
        "; or ".join(options) + f"; or lower the target to {lower}",
    )


def plan_capacity(
    target: Target,
    regions: Sequence[Region],
    throughput: Mapping[str, InstanceThroughput],
    *,
    zonal_redundancy: bool = False,
    prefer: str = "nearest",
) -> CapacityPlan:
    """Instances per region that serve ``target``, filled by :data:`FILL_RULE` (``prefer="nearest"``) or
    :data:`CHEAPEST_RULE` (``prefer="cheapest"``: every region needs ``usd_per_hour``).

    ``throughput`` maps a GPU type to one instance's throughput on it (different GPU types serve different
    rates, so a two-region plan with L4 and RTX needs one of each). ``zonal_redundancy`` only names the
    quota the regions' ``quota`` stands for in messages; give the quota of that mode.

    The cheapest order is greedy on cost per unit of the first target metric: whole instances can leave the last
    region used slightly over-filled, so the mix is the cheapest up to that last instance."""
    errors = _check_regions(regions, throughput)
    if prefer not in PREFER:
        errors.append(ConfigError("prefer", prefer, "is not a region order", "use one of them", ", ".join(PREFER)))
    elif prefer == "cheapest":
        for i, r in enumerate(regions):
            if r.usd_per_hour is None or not math.isfinite(r.usd_per_hour) or r.usd_per_hour <= 0:
                errors.append(
                    ConfigError(
                        f"regions[{i}].usd_per_hour",
                        r.usd_per_hour,
                        "is needed to prefer the cheapest mix",
                        "give each region its instance price (cloudrun_gpu.pricing.instance_cost), or prefer nearest",
                        allowed="a number > 0",
                    )
                )
    if errors:
        raise ConfigErrors(errors)
    wanted = target.items()
    instances = [r.min_instances for r in regions]
    order = list(range(len(regions)))
    if prefer == "cheapest":
        metric = wanted[0][0]
        order.sort(
            key=lambda i: exact(regions[i].usd_per_hour or 0.0) / exact(throughput[regions[i].gpu].per_instance(metric))
        )

    def deficit(metric: str, value: float) -> Fraction:
        have = sum(
            (n * exact(throughput[r.gpu].per_instance(metric)) for n, r in zip(instances, regions, strict=True)),
            Fraction(0),
        )
        return exact(value) - have

    for i in order:
        r = regions[i]
        thr = throughput[r.gpu]
        need = max(
            (max(0, math.ceil(deficit(m, v) / exact(thr.per_instance(m)))) for m, v in wanted),
            default=0,
        )
        instances[i] += min(r.cap - instances[i], need)
    if any(deficit(m, v) > 0 for m, v in wanted):
        raise _shortfall(target, regions, throughput, zonal_redundancy)

    planned = tuple(
        RegionPlan(
            name=r.name,
            gpu=r.gpu,
            quota=r.quota,
            quota_id=quota_id(r.gpu, zonal_redundancy),
            max_instances=r.max_instances,
            min_instances=r.min_instances,
            instances=n,
            throughput=throughput[r.gpu],
            usd_per_hour=r.usd_per_hour,
        )
        for r, n in zip(regions, instances, strict=True)
    )
    rule = CHEAPEST_RULE if prefer == "cheapest" else FILL_RULE
    explain = [f"fill rule: {rule}"]
    if prefer == "cheapest":
        explain.append("fill order (cheapest first): " + ", ".join(f"{regions[i].name}" for i in order))
    for gpu in dict.fromkeys(r.gpu for r in regions):
        t = throughput[gpu]
        kind = "measured" if t.measured else "ESTIMATED"
        explain.append(
            f"{gpu}: {fmt(t.requests_per_s)} req/s, {fmt(t.output_tokens_per_s)} output tok/s per instance at "
            f"concurrency {t.concurrency} ({kind}: {t.source})"
        )
    return CapacityPlan(target, zonal_redundancy, planned, rule=rule, explain=tuple(explain), prefer=prefer)


def render_region_table(plan: CapacityPlan) -> str:
    """The plan as a Markdown table (one row per region, then the total), followed by the target, the
    fill rule and where each GPU type's throughput comes from: printable as text, pasteable into docs."""
    lines = [
        "| region | GPU | instances (min / cap) | concurrency | expected req/s | expected output tok/s "
        "| quota | quota headroom |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in plan.regions:
        lines.append(
            f"| {r.name} | {r.gpu} | {r.instances} ({r.min_instances} / {r.cap}) | {r.concurrency} "
            f"| {fmt(r.capacity('requests_per_s'))} | {fmt(r.capacity('output_tokens_per_s'))} "
            f"| {r.quota} ({r.quota_id}) | {r.quota_headroom} |"
        )
    lines.append(
        f"| **total** | | {plan.instances} | | {fmt(plan.capacity('requests_per_s'))} "
        f"| {fmt(plan.capacity('output_tokens_per_s'))} | {sum(r.quota for r in plan.regions)} "
        f"| {sum(r.quota_headroom for r in plan.regions)} |"
    )
    want = ", ".join(f"{fmt(v)} {UNITS[m]}" for m, v in plan.target.items())
    allow = f"{fmt(plan.quota_capacity('requests_per_s'))} req/s, {fmt(plan.quota_capacity('output_tokens_per_s'))}"
    lines += ["", f"Target: {want}; the quotas allow at most {allow} output tok/s."]
    lines += [f"- {line}" for line in plan.explain]
    return "\n".join(lines)


# --- The stack section: ``cloudrun-gpu:capacity`` ------------------------------------------------------------
# Declared here, next to the planner it feeds, so a stack file and a Python caller share one definition.


@settings
class TargetSettings:
    """The load the stack must serve over all its regions together; give one metric or both."""

    requests_per_s: float | None = PydField(default=None, gt=0, allow_inf_nan=False)
    """Requests per second to serve (suits a known request mix)."""
    output_tokens_per_s: float | None = PydField(default=None, gt=0, allow_inf_nan=False)
    """Output tokens per second to serve (what the load test measures most directly)."""

    def problems(self) -> list[ConfigError]:
        if self.requests_per_s is None and self.output_tokens_per_s is None:
            return [
                ConfigError(
                    "requests_per_s",
                    None,
                    "the target names no load to serve",
                    "set requests_per_s, output_tokens_per_s, or both",
                )
            ]
        return []

    def to_target(self) -> Target:
        return Target(requests_per_s=self.requests_per_s, output_tokens_per_s=self.output_tokens_per_s)


@settings
class ThroughputSettings:
    """What one instance on one GPU type serves: *measured* (``requests_per_s``, ``output_tokens_per_s`` and
    ``concurrency`` from ``python -m stack loadtest``) or *estimated* (``tokens_per_s_per_sequence`` × the
    sizing plan's parallel sequences). Either way ``source`` says where the numbers come from, and the plan
    labels estimates as such."""

    source: str = PydField(min_length=1)
    """Where the numbers come from: the load test (date, image, model) or the benchmark a decode rate is from."""
    requests_per_s: float | None = PydField(default=None, gt=0, allow_inf_nan=False)
    """Measured: requests/s one instance served at ``concurrency`` (the level the load test recommends)."""
    output_tokens_per_s: float | None = PydField(default=None, gt=0, allow_inf_nan=False)
    """Measured: output tokens/s one instance served at ``concurrency``."""
    concurrency: int | None = PydField(default=None, ge=1)
    """Measured: the requests in flight the rates were measured at."""
    tokens_per_s_per_sequence: float | None = PydField(default=None, gt=0, allow_inf_nan=False)
    """Estimated instead: output tokens/s each sequence decodes while all the plan's parallel sequences run
    (the batched rate, not the single-stream one)."""

    @property
    def measured(self) -> bool:
        return self.tokens_per_s_per_sequence is None

    def problems(self) -> list[ConfigError]:
        measured = {k: getattr(self, k) for k in ("requests_per_s", "output_tokens_per_s", "concurrency")}
        given = [k for k, v in measured.items() if v is not None]
        if self.tokens_per_s_per_sequence is not None and given:
            return [
                ConfigError(
                    given[0],
                    measured[given[0]],
                    "a throughput is either measured or estimated, not both",
                    "keep requests_per_s, output_tokens_per_s and concurrency (measured) or "
                    "tokens_per_s_per_sequence (estimate)",
                )
            ]
        if self.tokens_per_s_per_sequence is None and len(given) != len(measured):
            missing = next(k for k, v in measured.items() if v is None)
            return [
                ConfigError(
                    missing,
                    None,
                    "is required for a measured throughput",
                    "set requests_per_s, output_tokens_per_s and concurrency from `python -m stack loadtest`, or "
                    "give tokens_per_s_per_sequence (an estimate) instead",
                )
            ]
        return []

    def instance(self, gpu: str, parallel_sequences: int, output_tokens_per_request: int) -> InstanceThroughput:
        """The per-instance throughput on ``gpu``: as measured, or estimated from the sizing plan's parallel
        sequences on that GPU (:func:`estimate`)."""
        if self.tokens_per_s_per_sequence is None:
            if self.requests_per_s is None or self.output_tokens_per_s is None or self.concurrency is None:
                # problems() names the missing number; a caller that collected problems instead of raising
                # (the stack reader) still gets them as an error here, never an AssertionError (issue 21).
                raise ConfigErrors(self.problems())
            return InstanceThroughput(
                self.requests_per_s, self.output_tokens_per_s, self.concurrency, self.source, measured=True
            )
        rate = DecodeRate(gpu, self.tokens_per_s_per_sequence, self.source)
        return estimate(parallel_sequences, rate, output_tokens_per_request)


@settings
class CapacitySettings:
    """The load the stack must serve and what one instance serves per GPU type: ``plan`` shows instances,
    expected capacity and quota headroom per region, and refuses a target the regions' quotas and max
    instances cannot meet (saying by how much)."""

    target: TargetSettings
    """The load to serve over all regions (required: without it there is nothing to plan)."""
    throughput: dict[str, ThroughputSettings] = PydField(default_factory=dict)
    """Per GPU type (``nvidia-l4``, ``nvidia-rtx-pro-6000``): what one instance on it serves. Every GPU type
    the stack's regions use needs one."""
    output_tokens_per_request: int = PydField(default=256, ge=1)
    """Typical ``max_tokens`` of a request: turns an estimated token rate into requests/s."""
    prefer: Literal["nearest", "cheapest"] = "nearest"
    """``nearest``: fill regions in the order listed (nearest the users first); ``cheapest``: fill them from the
    lowest cost per unit of the target (list prices in ``cloudrun_gpu.pricing``), for the cheapest mix."""

    def problems(self) -> list[ConfigError]:
        errors = nested(self.target, "target")
        for gpu, thr in self.throughput.items():
            if gpu not in limits.GPU_TYPES:
                guess = suggest(gpu, limits.GPU_TYPES)
                errors.append(
                    ConfigError(
                        f"throughput.{gpu}",
                        gpu,
                        "is not a Cloud Run GPU type",
                        f"did you mean {guess}?" if guess else "key each throughput by its GPU type",
                        ", ".join(limits.GPU_TYPES),
                    )
                )
            errors += nested(thr, f"throughput.{gpu}")
        return errors
