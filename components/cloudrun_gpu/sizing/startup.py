"""The cold-start model behind the startup probe, and the published Cloud Run GPU starts it is held against.

Why a model of its own: a startup probe whose window is shorter than a real start kills a healthy instance
(it never becomes ready), and an initial delay longer than a real start adds to every cold start. So the
probe needs three numbers per configuration, not one:

- **expected** start (median rates): what the plan reports and the evidence's median error is measured on;
- **slowest** start (the slowest published rate for the loading method, the slow engine init, the Direct VPC
  allowance): the probe window covers it with a margin, so no comparable published start fails the probe;
- **fastest** start (the fastest published rate, no Direct VPC delay): the initial delay stays below it, so
  the probe is already polling when a fast start becomes ready.

``data/startup_evidence.csv`` holds one row per published cold start (a link on every row that was read,
the engine and its version, the GPU, the loading method and its options, the measured time, any breakdown).
:func:`fitted_rates` recomputes each loading method's read rate from those rows, :func:`check_row` puts
each row through the same probe arithmetic the plan uses, and ``docs/startup-evidence.md`` is the table
:func:`render_table` prints (``tests/test_startup_evidence.py`` keeps the three in step).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from math import ceil, floor
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing.engines import parse_vllm_version

EVIDENCE_FILE = "startup_evidence.csv"

PROBE_SAFETY_FACTOR = 1.25
"""Margin on the *slowest* start (the old rule put ×1.5 on the expected start, which two published starts
exceeded: the slow case is now modelled, so the margin covers measurement spread, not unknown rates)."""
PROBE_SAFETY_FLOOR_S = 30
"""Added to every window: three periods of 10 s, so a start that lands just after a probe still passes."""
INITIAL_DELAY_SHARE = 0.8
"""The initial delay is 80 % of the fastest start: below every comparable published start (checked per row)."""

UPDATE_ROLLOUT_S = 10.0
"""Estimate. The Ollama rows for gcs-fuse, gcs-download and internet were timed from before
``gcloud run services update`` (their cold-start-times.sh), so they include the new revision's roll-out,
which an instance's own start does not. The smallest models of the same tables (gemma3:270m, ~0.3 GB) took
26 s (FUSE), 28 s (internet) and 37 s (copy, 9 s of it copying); less ~7 s container start, ~5 s Ollama
init and a few seconds of reading leaves about 10 s. Only :func:`check_row` adds it, never the plan."""

FIT_MIN_BYTES = 3_000_000_000
"""Rates are fitted on models of 3 GB and more: below that the read takes a few seconds, inside the spread of
the fixed terms (gemma3:1b's baked-image start is 11-16 s in three runs), so the implied rate is noise."""


@dataclass(frozen=True)
class EngineInit:
    """Engine start beyond reading the weights: the expected, fastest and slowest seconds, and their source."""

    engine: str
    band: str
    seconds: float
    fast_seconds: float
    slow_seconds: float
    source: str
    evidence: bool
    """True when published Cloud Run starts back the number; False marks an estimate (and the plan says so)."""


ENGINE_INIT: dict[str, EngineInit] = {
    "ollama": EngineInit(
        "ollama",
        "all",
        5.0,
        4.0,
        10.0,
        source=(
            "Ollama 0.12.6 on an L4 (docs/startup-evidence.md): gemma3:1b (0.8 GB) baked in the image answered "
            "/api/generate 5.5-5.9 s after its first /api/version; 5 s expected, 4-10 s"
        ),
        evidence=True,
    ),
    "llama.cpp": EngineInit(
        "llama.cpp",
        "all",
        5.0,
        1.0,
        10.0,
        source="estimate: no published Cloud Run llama.cpp start; llama-server starts in ~1-3 s after mmap "
        "(llm-sizing §5), 5 s expected, up to 10 s",
        evidence=False,
    ),
}
"""Per engine name (the engine records in ``sizing/engines.py`` are another module's; this model is keyed by
name so it does not depend on where that record lives)."""

VLLM_INIT: dict[str, EngineInit] = {
    "V1": EngineInit(
        "vllm",
        ">=0.8 (V1: torch.compile and CUDA graphs on every start)",
        139.0,
        70.0,
        139.0,
        source=(
            "vLLM 0.17.2rc1, Gemma 4 31B on an RTX PRO 6000 (docs/startup-evidence.md, Cloud Run log): engine "
            "set-up 27 s before the weights + 'init engine (profile, create kv cache, warmup model) took 97.04 "
            "seconds' (torch.compile 62 s of it) + 15 s to the API server = 139 s. It does not grow with the "
            "parameter count: vLLM compiles the decoder layer's graph once and reuses it for identical layers, "
            "and an MoE model's experts add weights (the read term), not compile work; the fast case (70 s, "
            "estimate) allows for smaller models' shorter compile"
        ),
        evidence=True,
    ),
    "V0": EngineInit(
        "vllm",
        "<0.8 (V0)",
        139.0,
        30.0,
        139.0,
        source="estimate: no published Cloud Run start of a V0 vLLM; the V1 figure is kept as the expected and "
        "slow case (V0 has no torch.compile by default, so it is an upper bound), 30 s fast",
        evidence=False,
    ),
}
"""vLLM init per version band (``engine_version`` None: the V1 figures, the larger)."""


def vllm_band(version: str | None) -> str:
    """``"V0"`` for releases before 0.8 (the V1 engine's default), else ``"V1"`` (also when the string names no
    release). The version is read by the sizing's own reader, :func:`parse_vllm_version`."""
    parsed = parse_vllm_version(version)
    return "V0" if parsed is not None and parsed[:2] < (0, 8) else "V1"


def engine_init(engine: str, version: str | None = None) -> EngineInit:
    """The init term for ``engine`` (and, for vLLM, its version band)."""
    if engine == "vllm":
        return VLLM_INIT[vllm_band(version)]
    return ENGINE_INIT[engine]


@dataclass(frozen=True)
class StartupEstimate:
    """The start-up terms of one configuration and the three totals the probe is built from."""

    method: str
    container_s: float
    vpc_s: float
    vpc_window_s: float
    load_s: float
    slow_load_s: float
    fast_load_s: float
    init: EngineInit
    rate: float
    expected_s: float
    slowest_s: float
    fastest_s: float
    outside: list[str] = field(default_factory=list)
    """Why this configuration is outside what the published starts cover (empty: covered)."""


def _seconds(bytes_: int, rate: float) -> float:
    return ceil(bytes_ / rate * 10) / 10


def estimate(
    method: str,
    engine: str,
    weights_bytes: int,
    *,
    engine_version: str | None = None,
    direct_vpc: bool | None = None,
    gpu: str | None = None,
    load_bytes_per_s: float | None = None,
) -> StartupEstimate:
    """Expected, slowest and fastest start of one configuration.

    ``direct_vpc`` None means the project's rule: every method but ``image`` reads the model over Direct VPC
    egress (the network component gives the service a subnet for them). ``load_bytes_per_s`` (the user's
    ``loading.load_bytes_per_s``) replaces the expected rate and bounds the slow and fast ones.
    """
    facts = limits.LOADING_METHODS[method]
    rate = load_bytes_per_s or facts.bytes_per_s
    slow_rate = min(rate, facts.slow_bytes_per_s)
    fast_rate = max(rate, facts.fast_bytes_per_s)
    vpc = method != "image" if direct_vpc is None else direct_vpc
    init = engine_init(engine, engine_version)
    container = float(limits.CONTAINER_START_S.value)
    vpc_s = float(limits.DIRECT_VPC_CONNECT_S.value) if vpc else 0.0
    vpc_window_s = float(limits.DIRECT_VPC_WINDOW_S.value) if vpc else 0.0
    load_s = _seconds(weights_bytes, rate)
    slow_load_s = _seconds(weights_bytes, slow_rate)
    fast_load_s = _seconds(weights_bytes, fast_rate)
    expected = container + vpc_s + load_s + init.seconds
    slowest = float(limits.CONTAINER_START_SLOW_S.value) + vpc_window_s + slow_load_s + init.slow_seconds
    fastest = float(limits.CONTAINER_START_FAST_S.value) + fast_load_s + init.fast_seconds
    return StartupEstimate(
        method=method,
        container_s=container,
        vpc_s=vpc_s,
        vpc_window_s=vpc_window_s,
        load_s=load_s,
        slow_load_s=slow_load_s,
        fast_load_s=fast_load_s,
        init=init,
        rate=rate,
        expected_s=round(expected, 1),
        slowest_s=round(slowest, 1),
        fastest_s=round(fastest, 1),
        outside=coverage_gaps(method, engine, engine_version, weights_bytes, vpc, gpu),
    )


def probe_window(est: StartupEstimate) -> int:
    """Seconds the probe must keep trying: the slowest start with margin."""
    return ceil(est.slowest_s * PROBE_SAFETY_FACTOR + PROBE_SAFETY_FLOOR_S)


def initial_delay(est: StartupEstimate) -> int:
    """Seconds before the first probe: below the fastest start, within Cloud Run's cap."""
    return min(limits.PROBE_INITIAL_DELAY_MAX, floor(est.fastest_s * INITIAL_DELAY_SHARE))


# ------------------------------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class StartupEvidence:
    """One published Cloud Run GPU cold start."""

    id: str
    source_url: str
    date: str
    engine: str
    engine_version: str
    gpu: str
    region: str
    method: str
    method_options: str
    direct_vpc: bool
    model: str
    weights_bytes: int
    weights_source: str
    clock: str
    """``request``: timed from the first request to a scaled-to-zero service; ``update``: from before
    ``gcloud run services update`` (includes the revision roll-out); ``instance``: from the instance's start
    in Cloud Run's log."""
    measured_s: float
    breakdown: str
    note: str

    @property
    def rollout_s(self) -> float:
        """What the row's clock adds to an instance's own start (:data:`UPDATE_ROLLOUT_S` for ``update``)."""
        return UPDATE_ROLLOUT_S if self.clock == "update" else 0.0

    @property
    def instance_s(self) -> float:
        """The measured start less the roll-out its clock includes: what the initial delay must stay below."""
        return self.measured_s - self.rollout_s


def load_evidence() -> list[StartupEvidence]:
    """Every row of ``data/startup_evidence.csv``."""
    return list(_evidence_rows())


_CONVERT: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "bool": "true".__eq__}
"""CSV text to a field's type (``from __future__ import annotations`` keeps the types as their names)."""


@lru_cache(maxsize=1)
def _evidence_rows() -> tuple[StartupEvidence, ...]:
    """Parsed once per process: every plan asks :func:`coverage_gaps`, which reads the rows."""
    text = resources.files("cloudrun_gpu.sizing.data").joinpath(EVIDENCE_FILE).read_text(encoding="utf-8")
    types = {f.name: str(f.type) for f in fields(StartupEvidence)}
    rows = [
        StartupEvidence(**{name: _CONVERT[types[name]](value) for name, value in r.items()})
        for r in csv.DictReader(io.StringIO(text))
    ]
    return tuple(rows)


def implied_rate(row: StartupEvidence) -> float | None:
    """The read rate (bytes/s) the row implies once the fixed terms are taken off; None below
    :data:`FIT_MIN_BYTES` or when the fixed terms already exceed the measurement."""
    if row.weights_bytes < FIT_MIN_BYTES:
        return None
    init = engine_init(row.engine, row.engine_version)
    vpc = float(limits.DIRECT_VPC_CONNECT_S.value) if row.direct_vpc else 0.0
    fixed = float(limits.CONTAINER_START_S.value) + vpc + init.seconds + row.rollout_s
    reading = row.measured_s - fixed
    return row.weights_bytes / reading if reading > 0 else None


@dataclass(frozen=True)
class FittedRate:
    method: str
    median: float
    slowest: float
    fastest: float
    rows: int


def fitted_rates(rows: list[StartupEvidence] | None = None) -> dict[str, FittedRate]:
    """Per loading method: the median, slowest and fastest implied read rate of its published starts."""
    by_method: dict[str, list[float]] = {}
    for row in rows if rows is not None else load_evidence():
        rate = implied_rate(row)
        if rate is not None:
            by_method.setdefault(row.method, []).append(rate)
    return {
        m: FittedRate(m, statistics.median(rates), min(rates), max(rates), len(rates))
        for m, rates in sorted(by_method.items())
    }


def coverage_gaps(
    method: str, engine: str, version: str | None, weights_bytes: int, direct_vpc: bool, gpu: str | None
) -> list[str]:
    """What about a configuration no published start covers (the plan notes each)."""
    rows = [r for r in load_evidence() if r.method == method and r.engine == engine]
    if not rows:
        return [
            f"no published Cloud Run start of {engine} with {method}: the rate and init terms are not checked "
            "against a start of this pair"
        ]
    gaps = []
    sizes = [r.weights_bytes for r in rows]
    if not min(sizes) / 2 <= weights_bytes <= max(sizes) * 1.5:
        gaps.append(
            f"the published {engine}/{method} starts read {min(sizes) / GIB:.1f}-{max(sizes) / GIB:.1f} GiB; "
            f"this model is {weights_bytes / GIB:.1f} GiB"
        )
    if gpu is not None and gpu not in {r.gpu for r in rows}:
        gaps.append(f"the published {engine}/{method} starts ran on {', '.join(sorted({r.gpu for r in rows}))}")
    if direct_vpc and not any(r.direct_vpc for r in rows):
        gaps.append(
            f"the published {engine}/{method} starts used no Direct VPC; its set-up term comes from one vLLM start"
        )
    if engine == "vllm" and vllm_band(version) != "V1":
        gaps.append(f"vLLM {version} is a V0 release; every published vLLM start is V1")
    return gaps


@dataclass(frozen=True)
class RowCheck:
    """One published start put through the plan's arithmetic for the same configuration."""

    row: StartupEvidence
    predicted_s: float
    """The plan's expected start plus the roll-out the row's clock includes."""
    window_s: int
    initial_delay_s: int

    @property
    def error(self) -> float:
        """Relative error of the expected start against the measurement (+: over-predicted)."""
        return (self.predicted_s - self.row.measured_s) / self.row.measured_s

    @property
    def window_ok(self) -> bool:
        """The probe window covers the measured start (the roll-out included, so this is stricter)."""
        return self.window_s >= self.row.measured_s

    @property
    def delay_ok(self) -> bool:
        """The first probe comes no later than the instance's own start."""
        return self.initial_delay_s <= self.row.instance_s


def check_row(row: StartupEvidence) -> RowCheck:
    """The plan's expected start, window and initial delay for the row's configuration."""
    est = estimate(
        row.method, row.engine, row.weights_bytes, engine_version=row.engine_version, direct_vpc=row.direct_vpc
    )
    return RowCheck(row, round(est.expected_s + row.rollout_s, 1), probe_window(est), initial_delay(est))


def median_abs_error(checks: list[RowCheck]) -> float:
    return statistics.median(abs(c.error) for c in checks)


def render_table(checks: list[RowCheck] | None = None) -> str:
    """The Markdown table of docs/startup-evidence.md, recomputed from the data and the model."""
    checks = checks if checks is not None else [check_row(r) for r in load_evidence()]
    lines = [
        "| id | engine | GPU | method | model | GiB | clock | measured s | expected s | error | window s "
        "| initial delay s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        r = c.row
        lines.append(
            f"| [{r.id}]({r.source_url}) | {r.engine} {r.engine_version} | {r.gpu} | {r.method} | {r.model} "
            f"| {r.weights_bytes / GIB:.2f} | {r.clock} | {r.measured_s:.1f} | {c.predicted_s:.1f} "
            f"| {c.error:+.0%} | {c.window_s} | {c.initial_delay_s} |"
        )
    lines.append("")
    error = median_abs_error(checks)
    lines.append(f"Median absolute error of the expected start: {error:.0%} over {len(checks)} starts.")
    return "\n".join(lines)


def render_rates() -> str:
    """The fitted rates next to the ones ``limits.LOADING_METHODS`` uses."""
    lines = [
        "| method | rows ≥ 3 GB | median GiB/s | slowest GiB/s | fastest GiB/s | plan GiB/s (expected / slow / fast) |",
        "|---|---|---|---|---|---|",
    ]
    for m, f in fitted_rates().items():
        facts = limits.LOADING_METHODS[m]
        lines.append(
            f"| {m} | {f.rows} | {f.median / GIB:.3f} | {f.slowest / GIB:.3f} | {f.fastest / GIB:.3f} "
            f"| {facts.bytes_per_s / GIB:.3f} / {facts.slow_bytes_per_s / GIB:.3f} / "
            f"{facts.fast_bytes_per_s / GIB:.3f} |"
        )
    return "\n".join(lines)
