"""The sizing derivation: memory budget → parallel sequences → Cloud Run concurrency → probe.

Every step records a human sentence in ``SizingPlan.explain`` so that ``plan`` can show *why*
each number is what it is. Configurations that cannot work raise :class:`ConfigError` naming
the field to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import ceil, floor
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing.engines import (
    ENGINES,
    engine_parallel_from_config,
    kv_bytes_per_sequence,
    kv_bytes_per_token_full,
    render_engine_config,
    runtime_overhead_bytes,
    seconds_to_load,
)
from cloudrun_gpu.sizing.quant import FOUR_BIT_DEFAULT, WEIGHT_QUANTS
from cloudrun_gpu.sizing.spec import ModelSpec

DEFAULT_CONTEXT = 8192
PROBE_SAFETY_FACTOR = 1.5
PROBE_SAFETY_FLOOR_S = 30
PROBE_TIMEOUT_S = 5


@dataclass(frozen=True)
class SizingRequest:
    """Everything the derivation depends on; plain values so property tests can generate it."""

    model: ModelSpec
    engine: str = "llama.cpp"
    gpu: str = "nvidia-l4"
    context_length: int | None = None
    kv_cache_type: str | None = None
    weights_quant: str | None = None
    parallel: int | None = None
    max_parallel: int | None = None
    ideal_batch_size: int | None = None
    memory_fraction: float | None = None
    loading_method: str = "image"
    load_bytes_per_s: float | None = None
    model_path: str = "/models/model.gguf"
    slot_save_path: str | None = None


@dataclass(frozen=True)
class StartupProbe:
    initial_delay_seconds: int
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int
    path: str
    expected_start_seconds: float
    window_seconds: int


@dataclass
class SizingPlan:
    model: str
    engine: str
    gpu: str
    context_length: int
    kv_cache_type: str
    weights_quant: str
    weights_bytes: int
    kv_cache_bytes_per_token: int
    kv_cache_bytes_per_sequence: int
    runtime_overhead_bytes: int
    vram_bytes: int
    memory_fraction: float
    budget_bytes: int
    max_parallel_sequences: int
    parallel_fit: int
    model_instances: int
    ideal_batch_size: int
    max_instance_request_concurrency: int
    startup_probe: StartupProbe
    engine_args: list[str]
    engine_env: dict[str, str]
    explain: list[str] = field(default_factory=list)

    @property
    def kv_cache_bytes(self) -> int:
        return self.kv_cache_bytes_per_sequence * self.max_parallel_sequences

    @property
    def used_bytes(self) -> int:
        return self.weights_bytes + self.runtime_overhead_bytes + self.kv_cache_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kv_cache_bytes"] = self.kv_cache_bytes
        d["used_bytes"] = self.used_bytes
        return d


def a2_concurrency(model_instances: int, parallel_per_instance: int, ideal_batch_size: int) -> int:
    """Practice A2: (instances × parallel queries) + (instances × ideal batch size)."""
    return model_instances * parallel_per_instance + model_instances * ideal_batch_size


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _weights(req: SizingRequest, engine: str, notes: list[str]) -> tuple[int, str]:
    spec = req.model
    if spec.weights_bytes is not None:
        notes.append(f"weights: {_gib(spec.weights_bytes)} summed from the file's tensors ({spec.source})")
        return spec.weights_bytes, spec.weights_quant or "as stored"
    quant_name = req.weights_quant or FOUR_BIT_DEFAULT[engine]
    quant = WEIGHT_QUANTS.get(quant_name)
    if quant is None or engine not in quant.engines:
        allowed = [q.name for q in WEIGHT_QUANTS.values() if engine in q.engines]
        raise ConfigError(
            "model.quantization",
            quant_name,
            f"is not a weight format {engine} serves",
            f"pick one of {allowed} (4-bit is the default, practice B2)",
            ", ".join(allowed),
        )
    embed = spec.vocab_size * spec.hidden_size * (1 if spec.tied_embeddings else 2)
    if quant.embeddings_bits is not None:
        total = (spec.n_params - embed) * quant.bits_per_weight / 8 + embed * quant.embeddings_bits / 8
        how = f"(params − embeddings) × {quant.bits_per_weight} bit + embeddings × {quant.embeddings_bits} bit"
    else:
        total = spec.n_params * quant.bits_per_weight / 8
        how = f"{spec.n_params / 1e9:.2f} B params × {quant.bits_per_weight} bit"
    notes.append(f"weights: {_gib(total)} = {how} ({quant.name}; B2 default is 4-bit)")
    return int(total), quant.name


def _kv_type(req: SizingRequest, engine_name: str) -> str:
    engine = ENGINES[engine_name]
    kv = req.kv_cache_type or engine.default_kv
    if kv not in engine.kv_types:
        raise ConfigError(
            "engine.kv_cache_type",
            kv,
            f"is not a KV-cache type {engine_name} supports",
            f"use one of {list(engine.kv_types)} (quantised KV saves memory, practice R4)",
            ", ".join(engine.kv_types),
        )
    if kv == "fp8" and not limits.GPU_TYPES[req.gpu].fp8_kv:
        raise ConfigError("engine.kv_cache_type", kv, f"{req.gpu} has no FP8 path", "use 'auto'")
    return kv


def _largest_context(engine: str, spec: ModelSpec, kv: str, room: int) -> int:
    """Largest context (multiple of 256) whose single sequence fits in ``room`` bytes."""
    lo, hi = 0, max(spec.max_context, 256)
    while lo < hi:
        mid = (lo + hi + 256) // 512 * 256
        if mid <= lo:
            break
        if kv_bytes_per_sequence(engine, spec, mid, kv) <= room:
            lo = mid
        else:
            hi = mid - 256
    return lo


def _probe(req: SizingRequest, weights: int, engine_name: str, notes: list[str]) -> StartupProbe:
    engine = ENGINES[engine_name]
    method = limits.LOADING_METHODS[req.loading_method]
    rate = req.load_bytes_per_s or method.bytes_per_s
    load_s = seconds_to_load(weights, rate)
    start = float(limits.CONTAINER_START_S.value)
    expected = start + load_s + engine.init_seconds
    window = ceil(expected * PROBE_SAFETY_FACTOR + PROBE_SAFETY_FLOOR_S)
    max_window = int(limits.STARTUP_WINDOW_GPU_S.value)
    largest = limits.PROBE_INITIAL_DELAY_MAX + max_window
    if window > largest:
        faster = [
            f"{m.name}: ~{start + seconds_to_load(weights, m.bytes_per_s) + engine.init_seconds:.0f} s"
            for m in limits.LOADING_METHODS.values()
            if m.bytes_per_s > rate
        ]
        raise ConfigError(
            "loading.method",
            req.loading_method,
            f"the model ({_gib(weights)}) needs ~{expected:.0f} s to load at {rate / GIB:.2f} GiB/s "
            f"(×{PROBE_SAFETY_FACTOR} margin = {window} s), beyond Cloud Run's largest startup window "
            f"({limits.PROBE_INITIAL_DELAY_MAX} s delay + {max_window} s probing)",
            "use a faster loading method ("
            + ("; ".join(faster) or "none is faster")
            + "), a smaller quantisation, or a smaller model (practices D2, L2)",
        )
    initial_delay = min(limits.PROBE_INITIAL_DELAY_MAX, floor(expected * 0.5))
    remaining = window - initial_delay
    period = 10 if remaining <= 600 else 30
    failure_threshold = max(limits.PROBE_FAILURE_THRESHOLD_MIN, ceil(remaining / period))
    timeout = min(PROBE_TIMEOUT_S, period - 1)
    notes.append(
        f"startup: ~{start:.0f} s container start + {load_s:.1f} s reading {_gib(weights)} via {method.name} "
        f"at {rate / GIB:.2f} GiB/s ({method.source}) + {engine.init_seconds:.0f} s engine init = "
        f"~{expected:.0f} s expected"
    )
    notes.append(
        f"probe: window {window} s = expected × {PROBE_SAFETY_FACTOR} + {PROBE_SAFETY_FLOOR_S} s; "
        f"initial delay {initial_delay} s (half the expected time, ≤ {limits.PROBE_INITIAL_DELAY_MAX}), then "
        f"{failure_threshold} × {period} s (≤ {max_window} s GPU limit), timeout {timeout} s < period; "
        f"HTTP GET {engine.readiness_path}: {engine.readiness_note}"
    )
    return StartupProbe(initial_delay, period, timeout, failure_threshold, engine.readiness_path, expected, window)


def size(req: SizingRequest) -> SizingPlan:
    """Derive the full sizing plan for one model on one GPU with one engine."""
    if req.engine not in ENGINES:
        raise ConfigError(
            "engine.name", req.engine, "unknown serving engine", "pick a supported engine", ", ".join(ENGINES)
        )
    if req.gpu not in limits.GPU_TYPES:
        raise ConfigError(
            "gpu.type", req.gpu, "not a Cloud Run GPU type", "pick a supported GPU", ", ".join(limits.GPU_TYPES)
        )
    if req.loading_method not in limits.LOADING_METHODS:
        raise ConfigError(
            "loading.method",
            req.loading_method,
            "unknown loading method",
            "pick one of the seed's four methods (L2)",
            ", ".join(limits.LOADING_METHODS),
        )
    if req.load_bytes_per_s is not None and req.load_bytes_per_s < limits.MIB:
        raise ConfigError(
            "loading.throughput_gib_per_s",
            req.load_bytes_per_s / GIB,
            "is below 1 MiB/s",
            "measure the real rate (e.g. time a gcloud storage cp) and set it in GiB/s",
            "≥ 0.001",
        )
    engine = ENGINES[req.engine]
    gpu = limits.GPU_TYPES[req.gpu]
    spec = req.model
    notes: list[str] = [f"model: {spec.name} ({spec.architecture}, {spec.n_layers} layers) from {spec.source}"]
    notes.extend(f"note: {n}" for n in spec.notes)

    context = req.context_length or min(DEFAULT_CONTEXT, spec.max_context or DEFAULT_CONTEXT)
    if spec.max_context and context > spec.max_context:
        raise ConfigError(
            "engine.context_length",
            context,
            f"exceeds the model's trained context ({spec.max_context})",
            f"set engine.context_length ≤ {spec.max_context} (smaller contexts allow more "
            "parallel requests, practice R1)",
            f"1..{spec.max_context}",
        )
    kv = _kv_type(req, req.engine)
    weights, quant = _weights(req, req.engine, notes)
    fraction = req.memory_fraction or engine.default_memory_fraction
    budget = int(gpu.vram_bytes * fraction)
    overhead = runtime_overhead_bytes(req.engine, spec)
    per_token = kv_bytes_per_token_full(spec, kv)
    per_seq = kv_bytes_per_sequence(req.engine, spec, context, kv)
    notes.append(
        f"budget: {_gib(budget)} = {fraction:.2f} × {_gib(gpu.vram_bytes)} ({gpu.display}; R5 reserves the rest)"
    )
    notes.append(f"engine overhead: {_gib(overhead)} (CUDA context, compute/activation buffers; {engine.name})")
    swa = spec.n_layers - spec.n_full_layers
    notes.append(
        f"KV cache: {per_token:,} B/token over {spec.n_full_layers} full-attention layers ({kv})"
        + (f"; {swa} sliding-window layers hold only their window" if swa else "")
        + f" → {_gib(per_seq)} per {context:,}-token sequence as {engine.name} allocates it"
    )
    room = budget - weights - overhead
    if room <= 0:
        raise ConfigError(
            "model",
            spec.name,
            f"weights ({_gib(weights)}) + engine overhead ({_gib(overhead)}) exceed the {_gib(budget)} "
            f"budget on {gpu.name}",
            "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory"
            + (" (nvidia-rtx-pro-6000: 96 GB)" if gpu.name == "nvidia-l4" else ""),
        )
    fit = room // per_seq if per_seq else 10**6
    if fit < 1:
        largest = _largest_context(req.engine, spec, kv, room)
        raise ConfigError(
            "engine.context_length",
            context,
            f"one {context:,}-token sequence needs {_gib(per_seq)} of KV cache but only {_gib(room)} is left "
            "after weights and overhead",
            f"set engine.context_length ≤ {largest} (R1), or a smaller KV type such as q4_0/fp8 (R4)",
            f"1..{largest}",
        )
    cap = req.max_parallel or engine.max_parallel_default
    cr_max = int(limits.CONCURRENCY_MAX.value)
    if req.parallel is not None:
        if req.parallel > fit:
            raise ConfigError(
                "engine.parallel",
                req.parallel,
                f"only {fit} sequences of {context:,} tokens fit in GPU memory",
                f"set engine.parallel ≤ {fit}, or lower engine.context_length (R1)",
                f"1..{fit}",
            )
        if req.parallel > cr_max:
            raise ConfigError(
                "engine.parallel",
                req.parallel,
                "exceeds Cloud Run's concurrency maximum",
                f"set engine.parallel ≤ {cr_max}",
                f"1..{cr_max}",
            )
        parallel = req.parallel
        notes.append(f"parallel: {parallel} as configured (≤ {fit} that fit)")
    else:
        parallel = int(min(fit, cap, cr_max))
        notes.append(
            f"parallel: {parallel} = min({fit} sequences that fit in {_gib(room)}, cap {cap}"
            + ("" if req.max_parallel else f" ({engine.name} default; raise engine.max_parallel after a load test, A3)")
            + ")"
        )
    instances = 1
    batch = parallel if req.ideal_batch_size is None else req.ideal_batch_size
    batch = max(0, min(batch, cr_max // instances - parallel))
    concurrency = a2_concurrency(instances, parallel, batch)
    notes.append(
        f"Cloud Run concurrency: {concurrency} = ({instances} model instance × {parallel} parallel) + "
        f"({instances} × ideal batch {batch}) (A2: the second term queues the next batch; too high adds "
        "latency, too low idles the GPU; load-test it, A3)"
    )
    probe = _probe(req, weights, req.engine, notes)
    args, env = render_engine_config(
        req.engine,
        model_path=req.model_path,
        context=context,
        parallel=parallel,
        kv_type=kv,
        memory_fraction=fraction,
        vram_bytes=gpu.vram_bytes,
        slot_save_path=req.slot_save_path,
    )
    assert engine_parallel_from_config(req.engine, args, env) == parallel  # R6 by construction
    notes.append(f"engine flags: {' '.join(args) or ' '.join(f'{k}={v}' for k, v in env.items())}")
    return SizingPlan(
        model=spec.name,
        engine=req.engine,
        gpu=req.gpu,
        context_length=context,
        kv_cache_type=kv,
        weights_quant=quant,
        weights_bytes=weights,
        kv_cache_bytes_per_token=per_token,
        kv_cache_bytes_per_sequence=per_seq,
        runtime_overhead_bytes=overhead,
        vram_bytes=gpu.vram_bytes,
        memory_fraction=fraction,
        budget_bytes=budget,
        max_parallel_sequences=parallel,
        parallel_fit=int(fit),
        model_instances=instances,
        ideal_batch_size=batch,
        max_instance_request_concurrency=concurrency,
        startup_probe=probe,
        engine_args=args,
        engine_env=env,
        explain=notes,
    )
