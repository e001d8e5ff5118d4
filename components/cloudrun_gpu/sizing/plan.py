"""The sizing derivation: memory budget → parallel sequences → Cloud Run concurrency → probe.

Every step records a human sentence in ``SizingPlan.explain`` so that ``plan`` can show *why*
each number is what it is. Configurations that cannot work raise :class:`ConfigError` naming
the field to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import ceil
from typing import Any, NoReturn

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.images import GPU_DRIVERS
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import startup
from cloudrun_gpu.sizing.engines import (
    ENGINE_MAX_SEQUENCES,
    ENGINES,
    OLLAMA_LLAMA_SERVER_SINCE,
    OLLAMA_NUM_BATCH,
    OLLAMA_PINNED_VERSION,
    VLLM_DEFAULT_BATCHED_TOKENS,
    VLLM_ENGINE_MODES,
    VllmOverhead,
    VllmProfile,
    attention_params,
    cold_start_is_free,
    engine_memory_from_config,
    engine_parallel_from_config,
    kv_bytes_per_sequence,
    kv_bytes_per_token_full,
    kv_bytes_total,
    mlp_shape,
    ollama_engine_family,
    ollama_gpu_overhead,
    ollama_on_llama_server,
    ollama_scheduler_estimate,
    parse_vllm_version,
    render_engine_config,
    runtime_overhead_bytes,
    seconds_to_load,
    supports_hybrid_kv,
    supports_kv_cache_memory,
    vllm_kv_layout,
    vllm_overhead,
)
from cloudrun_gpu.sizing.quant import (
    FOUR_BIT_DEFAULT,
    MXFP4_BACKENDS,
    WEIGHT_QUANTS,
    WeightQuant,
    mxfp4_backends,
    mxfp4_expert_bytes,
)
from cloudrun_gpu.sizing.spec import ModelSpec

DEFAULT_CONTEXT = 8192
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
    served_model_name: str | None = None
    """The name clients send as ``model`` (``engines.EngineProfile.served_model_name``); None: the engine's default."""
    profile: str | None = None
    """The engine profile that renders the flags when it differs from ``engine``, the sizing record it follows
    (``engines.EngineProfile.sizing_engine``)."""
    engine_version: str | None = None
    """The engine's release (vLLM: ``"0.14.1"``); its memory profile differs by version. None: the
    most conservative of every version band."""
    vram_bytes: int | None = None
    """Override the GPU's memory (``size --vram-gib``). For vLLM this is the CUDA-visible total the
    fraction applies to; for llama.cpp/Ollama the device total, as ``GpuType.vram_bytes``."""
    max_num_batched_tokens: int | None = None
    """vLLM ``--max-num-batched-tokens``; default: vLLM's own serve default for the GPU (2048, or 8192 on
    GPUs with ≥ 70 GiB). More tokens per step cost activation memory and the sliding-window cache."""
    vllm_mode: str | None = None
    """vLLM's engine, ``"v0"`` or ``"v1"`` (``VLLM_USE_V1``; ``size --vllm-mode``, read from a log by
    ``calibrate``): V0 forced on a V1 release, or V1 forced before v0.8, profile differently from the version's
    default. None: the version's default engine."""
    high_precision_params: int = 0
    """Parameters kept in 16 bit whatever the quantisation: per-layer embeddings (Gemma 3n / Gemma 4
    "E" models), vision/audio towers. 0 when the engine drops them (vLLM ``--language-model-only``)."""


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
    engine_memory: dict[str, Any] | None = None
    """vLLM: the start-up profile the plan predicts (``kv_pool_bytes``, each overhead part, the batched
    tokens, the version band); None for llama.cpp/Ollama (and then absent from :meth:`to_dict`)."""

    @property
    def kv_cache_bytes(self) -> int:
        return self.kv_cache_bytes_per_sequence * self.max_parallel_sequences

    @property
    def used_bytes(self) -> int:
        return self.weights_bytes + self.runtime_overhead_bytes + self.kv_cache_bytes

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["engine_memory"] is None:
            del d["engine_memory"]
        d["kv_cache_bytes"] = self.kv_cache_bytes
        d["used_bytes"] = self.used_bytes
        return d


def a2_concurrency(model_instances: int, parallel_per_instance: int, ideal_batch_size: int) -> int:
    """Practice A2: (instances × parallel queries) + (instances × ideal batch size)."""
    return model_instances * parallel_per_instance + model_instances * ideal_batch_size


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _mxfp4_expert_weights(spec: ModelSpec, backends: tuple[str, ...]) -> tuple[int, str] | None:
    """An MXFP4 mixture of experts as vLLM loads it: every parameter outside the experts (attention, router,
    embeddings, lm_head, norms, sinks) in bf16 — the ``mxfp4`` quantisation applies only to ``FusedMoE`` layers
    (``Mxfp4Config.get_quant_method``, vllm/model_executor/layers/quantization/mxfp4.py:90-106 of v0.10.1.1) — and
    the experts in the layout of the kernel vLLM picks (:func:`~cloudrun_gpu.sizing.quant.mxfp4_expert_bytes`; the
    largest of ``backends``). None when the expert width is not declared (the flat bits then apply)."""
    width = spec.expert_intermediate_size
    if not (spec.is_moe and width):
        return None
    h, e = spec.hidden_size, spec.n_experts
    expert_params = spec.n_layers * e * (3 * h * width + 2 * width + h)  # gate/up, down and their biases
    if expert_params >= spec.n_params:
        return None
    sizes = {
        b: mxfp4_expert_bytes(b, n_layers=spec.n_layers, n_experts=e, hidden=h, intermediate=width) for b in backends
    }
    backend = max(sizes, key=lambda b: sizes[b])
    rest = spec.n_params - expert_params
    total = rest * 2 + sizes[backend]
    how = (
        f"{rest / 1e9:.2f} B non-expert params × 16 bit + {e} × {spec.n_layers} MXFP4 experts in vLLM's "
        f"{backend} layout ({_gib(sizes[backend])})"
    )
    if len(backends) > 1:
        how += f"; the largest of the kernels vLLM may pick here ({', '.join(backends)})"
    return total, how


def weights_from_quant(
    spec: ModelSpec,
    quant: WeightQuant,
    high_precision_params: int = 0,
    *,
    mxfp4_kernels: tuple[str, ...] = MXFP4_BACKENDS,
) -> tuple[int, str]:
    """Weight bytes of ``spec`` stored as ``quant`` (parameters × bits, with the parts the format keeps in
    16 bit), and the formula in words. ``mxfp4_kernels``: the MXFP4 MoE kernels vLLM may pick on the GPU
    (:func:`~cloudrun_gpu.sizing.quant.mxfp4_backends`; each lays the experts out differently)."""
    if quant.name == "mxfp4" and not high_precision_params:
        laid_out = _mxfp4_expert_weights(spec, mxfp4_kernels)
        if laid_out is not None:
            return laid_out
    embed = spec.vocab_size * spec.hidden_size * (1 if spec.tied_embeddings else 2)
    high = min(max(0, high_precision_params), spec.n_params)
    if quant.attention_bits is not None or high:
        attention = attention_params(spec) if quant.attention_bits is not None else 0
        emb = embed if quant.embeddings_bits is not None else 0
        emb_bits = quant.embeddings_bits or quant.bits_per_weight
        att_bits = quant.attention_bits or quant.bits_per_weight
        rest = max(0, spec.n_params - emb - attention - high)
        total = rest * quant.bits_per_weight / 8 + emb * emb_bits / 8 + attention * att_bits / 8 + high * 2
        how = f"(params − embeddings − attention − 16-bit extras) × {quant.bits_per_weight} bit"
        if emb:
            how += f" + embeddings × {emb_bits:g} bit"
        if attention:
            how += f" + attention × {att_bits:g} bit"
        if high:
            how += f" + {high / 1e9:.2f} B per-layer-embedding/tower params × 16 bit"
    elif quant.embeddings_bits is not None:
        total = (spec.n_params - embed) * quant.bits_per_weight / 8 + embed * quant.embeddings_bits / 8
        how = f"(params − embeddings) × {quant.bits_per_weight} bit + embeddings × {quant.embeddings_bits} bit"
    else:
        total = spec.n_params * quant.bits_per_weight / 8
        how = f"{spec.n_params / 1e9:.2f} B params × {quant.bits_per_weight} bit"
    return int(total), how


def _file_weights(spec: ModelSpec, engine: str, version: str | None, notes: list[str]) -> int:
    """The bytes of a model file that the engine puts on the GPU: llama.cpp and Ollama keep the input tables on the
    CPU (``ModelSpec.host_input_bytes``), llama.cpp also the per-layer embeddings, which Ollama's own engine puts on
    the GPU (``ModelSpec.per_layer_embedding_bytes``). vLLM loads every tensor, encoder included unless run
    language-model-only (not rendered by this plan, so counted)."""
    assert spec.weights_bytes is not None
    total = spec.weights_bytes
    off: list[str] = []
    if engine in ("llama.cpp", "ollama") and spec.host_input_bytes:
        total -= spec.host_input_bytes
        off.append(f"{_gib(spec.host_input_bytes)} of input embeddings (kept on the CPU)")
    on_cpu_ple = engine == "llama.cpp" or (
        engine == "ollama" and (ollama_engine_family(spec) is None or ollama_on_llama_server(version))
    )
    if on_cpu_ple and spec.per_layer_embedding_bytes:
        total -= spec.per_layer_embedding_bytes
        off.append(f"{_gib(spec.per_layer_embedding_bytes)} of per-layer embeddings (an input table, on the CPU)")
    notes.append(
        f"weights: {_gib(total)} on the GPU of {_gib(spec.weights_bytes)} summed from the file's tensors "
        f"({spec.source})" + (" less " + " and ".join(off) if off else "")
    )
    if engine == "vllm" and spec.tower_bytes:
        notes.append(
            f"weights: {_gib(spec.tower_bytes)} of it is the vision/audio encoder, which vLLM loads unless served "
            "--language-model-only (that flag would free it for the KV cache)"
        )
    return total


def _weights(req: SizingRequest, engine: str, notes: list[str]) -> tuple[int, str]:
    spec = req.model
    if spec.weights_bytes is not None:
        return _file_weights(spec, engine, req.engine_version, notes), spec.weights_quant or "as stored"
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
    driver = GPU_DRIVERS.get(req.gpu)
    kernels = mxfp4_backends(driver.compute_capability if driver else None, parse_vllm_version(req.engine_version))
    total, how = weights_from_quant(spec, quant, req.high_precision_params, mxfp4_kernels=kernels)
    notes.append(f"weights: {_gib(total)} = {how} ({quant.name}; B2 default is 4-bit)")
    return total, quant.name


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


NO_KV_FIT = 10**6
"""Sequences that "fit" when one costs no KV memory at all: any cap applies first."""


def sequences_that_fit(room: int, per_seq: int) -> int:
    """Whole sequences of ``per_seq`` KV bytes in ``room``: 0 when there is no room (``room`` ≤ 0 means the
    weights and overhead already fill the budget), :data:`NO_KV_FIT` when a sequence costs nothing."""
    if room <= 0:
        return 0
    return room // per_seq if per_seq > 0 else NO_KV_FIT


def ollama_sequences_that_fit(
    spec: ModelSpec, context: int, kv: str, room: int, *, weights: int = 0, free: int | None = None
) -> int:
    """The most sequences whose shared Ollama caches (:func:`kv_bytes_total`) fit in ``room`` and, when ``free``
    is given, for which Ollama's own layer scheduler (:func:`ollama_scheduler_estimate`) keeps every layer on the
    GPU (``free``: the GPU memory it sees, less ``OLLAMA_GPU_OVERHEAD``).

    Ollama sizes each cache for all sequences together (a sliding cache is ``parallel × window + batch``), so the
    total is not ``parallel ×`` one sequence: find the largest count by doubling, then bisecting (both totals only
    grow with the count).
    """
    if room <= 0:
        return 0

    def fits(n: int) -> bool:
        if kv_bytes_total("ollama", spec, context, kv, n) > room:
            return False
        return free is None or ollama_scheduler_estimate(spec, context, n, kv, weights) <= free

    if not fits(1):
        return 0
    lo = 1
    while lo < NO_KV_FIT and fits(min(2 * lo, NO_KV_FIT)):
        lo = min(2 * lo, NO_KV_FIT)
    hi = min(2 * lo, NO_KV_FIT)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _largest_context(
    engine: str,
    spec: ModelSpec,
    kv: str,
    room: int,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
    hybrid: bool = True,
) -> int:
    """Largest context (multiple of 256) whose single sequence fits in ``room`` bytes."""
    lo, hi = 0, max(spec.max_context, 256)
    while lo < hi:
        mid = (lo + hi + 256) // 512 * 256
        if mid <= lo:
            break
        if kv_bytes_per_sequence(engine, spec, mid, kv, batched_tokens, hybrid=hybrid) <= room:
            lo = mid
        else:
            hi = mid - 256
    return lo


def _probe(req: SizingRequest, weights: int, engine_name: str, notes: list[str]) -> StartupProbe:
    """The startup probe from the start-up model (``sizing/startup.py``, held against published starts in
    docs/startup-evidence.md): the window covers the slowest start with margin, the initial delay stays
    below the fastest one, and the explain text names each term's source."""
    engine = ENGINES[engine_name]
    est = startup.estimate(
        method=req.loading_method,
        engine=engine_name,
        weights_bytes=weights,
        engine_version=req.engine_version,
        gpu=req.gpu,
        load_bytes_per_s=req.load_bytes_per_s,
    )
    method = limits.LOADING_METHODS[req.loading_method]
    window = startup.probe_window(est)
    max_window = int(limits.STARTUP_WINDOW_GPU_S.value)
    initial_delay = startup.initial_delay(est)
    # The probing after the initial delay is what Cloud Run caps (failureThreshold × periodSeconds ≤ 1800 s).
    largest = initial_delay + max_window
    if window > largest:
        faster = [
            f"{m.name}: ~{est.container_s + seconds_to_load(weights, m.bytes_per_s) + est.init.seconds:.0f} s"
            for m in limits.LOADING_METHODS.values()
            if m.bytes_per_s > est.rate
        ]
        raise ConfigError(
            "loading.method",
            req.loading_method,
            f"the model ({_gib(weights)}) needs ~{est.expected_s:.0f} s to start at {est.rate / GIB:.3f} GiB/s and up "
            f"to ~{est.slowest_s:.0f} s at the slowest published rate (×{startup.PROBE_SAFETY_FACTOR} + "
            f"{startup.PROBE_SAFETY_FLOOR_S} s = {window} s), beyond Cloud Run's largest startup window "
            f"({initial_delay} s delay + {max_window} s probing)",
            "use a faster loading method ("
            + ("; ".join(faster) or "none is faster")
            + "), a smaller quantisation, or a smaller model (practices D2, L2)",
        )
    remaining = window - initial_delay
    period = 10 if remaining <= 600 else 30
    failure_threshold = max(limits.PROBE_FAILURE_THRESHOLD_MIN, ceil(remaining / period))
    timeout = min(PROBE_TIMEOUT_S, period - 1)
    notes.append(
        f"startup: ~{est.container_s:.0f} s container start ({limits.CONTAINER_START_S.source})"
        + (f" + {est.vpc_s:.0f} s Direct VPC set-up ({limits.DIRECT_VPC_CONNECT_S.source})" if est.vpc_s else "")
        + f" + {est.load_s:.1f} s reading {_gib(weights)} via {method.name} at {est.rate / GIB:.3f} GiB/s "
        f"({method.source if req.load_bytes_per_s is None else 'loading.load_bytes_per_s'})"
        f" + {est.init.seconds:.0f} s {engine_name} init ({est.init.source}) = ~{est.expected_s:.0f} s expected"
    )
    notes.append(
        f"probe: window {window} s = slowest start {est.slowest_s:.0f} s (container "
        f"{limits.CONTAINER_START_SLOW_S.value:g} s"
        + (f" + {est.vpc_window_s:.0f} s Direct VPC allowance" if est.vpc_window_s else "")
        + f" + {est.slow_load_s:.0f} s at {min(est.rate, method.slow_bytes_per_s) / GIB:.3f} GiB/s + "
        f"{est.init.slow_seconds:.0f} s init) × {startup.PROBE_SAFETY_FACTOR} + {startup.PROBE_SAFETY_FLOOR_S} s; "
        f"initial delay {initial_delay} s = {startup.INITIAL_DELAY_SHARE:.0%} of the fastest start "
        f"{est.fastest_s:.0f} s (≤ {limits.PROBE_INITIAL_DELAY_MAX}), then {failure_threshold} × {period} s "
        f"(≤ {max_window} s GPU limit), timeout {timeout} s < period; "
        f"HTTP GET {engine.readiness_path}: {engine.readiness_note}"
    )
    if est.outside:
        notes.append("startup evidence: outside what the published starts cover: " + "; ".join(est.outside))
    return StartupProbe(
        initial_delay, period, timeout, failure_threshold, engine.readiness_path, est.expected_s, window
    )


def _full_kv_layers(spec: ModelSpec) -> int:
    """Full-attention layers that own a cache (a shared layer reuses another's and costs nothing)."""
    return sum(1 for i in range(spec.n_kv_layers) if spec.layer_windows[i] is None)


def _kv_layers_note(
    engine: str, spec: ModelSpec, batched_tokens: int = 0, kv: str = "auto", hybrid: bool = True
) -> str:
    """How the engine caches the layers that are not plain full attention (sliding, shared, hybrid groups)."""
    parts: list[str] = []
    swa = sum(1 for i in range(spec.n_kv_layers) if spec.layer_windows[i] is not None)
    if spec.kv_shared_layers:
        parts.append(f"{spec.kv_shared_layers} trailing layers reuse earlier layers' KV and cache nothing")
    if spec.head_dims_k or len(set(spec.kv_heads)) > 1:
        parts.append("per-layer head sizes / KV heads")
    if swa and engine == "vllm" and not hybrid:
        parts.append(
            f"{swa} sliding-window layers cached at full length: vLLM before v0.10 (or an unknown version) has no "
            "hybrid KV cache manager"
        )
    elif swa and engine == "vllm":
        layout = vllm_kv_layout(spec, kv)
        parts.append(
            f"{swa} sliding-window layers hold window − 1 + {batched_tokens} batched tokens + 1 block"
            + (
                ""
                if layout.per_layer
                else f"; hybrid allocator: {len(layout.groups)} groups × {layout.group_size} layer slots of "
                f"{layout.page_bytes:,} B pages (page sizes unified, padding slots included)"
            )
        )
    elif swa and engine == "ollama":
        if ollama_engine_family(spec) is None:
            parts.append(f"{swa} sliding-window layers hold the full context (llama.cpp runner: swa_full)")
        else:
            parts.append(
                f"{swa} sliding-window layers hold parallel × window + {OLLAMA_NUM_BATCH} cells (Ollama engine)"
            )
    elif swa:
        parts.append(f"{swa} sliding-window layers hold only their window")
    return "".join(f"; {p}" for p in parts)


def _raise_no_room(spec: ModelSpec, gpu: limits.GpuType, weights: int, overhead: int, budget: int) -> NoReturn:
    raise ConfigError(
        "model",
        spec.name,
        f"weights ({_gib(weights)}) + engine overhead ({_gib(overhead)}) exceed the {_gib(budget)} "
        f"budget on {gpu.name}",
        "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory"
        + (" (nvidia-rtx-pro-6000: 96 GB)" if gpu.name == "nvidia-l4" else ""),
    )


def _raise_context(
    engine: str,
    spec: ModelSpec,
    kv: str,
    context: int,
    per_seq: int,
    room: int,
    batched_tokens: int = VLLM_DEFAULT_BATCHED_TOKENS,
    hybrid: bool = True,
) -> NoReturn:
    largest = _largest_context(engine, spec, kv, room, batched_tokens, hybrid)
    if largest < 1:  # no context at all fits: shortening it is no fix ("≤ 0"), the model or the GPU must change
        raise ConfigError(
            "model",
            spec.name,
            f"weights and engine overhead leave {_gib(room)} for the KV cache: not even the shortest context fits "
            f"(one {context:,}-token sequence needs {_gib(per_seq)})",
            "use a 4-bit quantisation (B2), a smaller model, or a GPU with more memory",
        )
    raise ConfigError(
        "engine.context_length",
        context,
        f"one {context:,}-token sequence needs {_gib(per_seq)} of KV cache but only {_gib(room)} is left "
        "after weights and overhead",
        f"set engine.context_length ≤ {largest} (R1), or a smaller KV type such as q4_0/fp8 (R4)",
        f"1..{largest}",
    )


@dataclass(frozen=True)
class _VllmFit:
    cuda_total: int
    budget: int
    overhead: VllmOverhead
    batched_tokens: int
    max_num_seqs: int
    per_seq: int
    room: int
    fit: int
    version: str | None
    kv_cache_memory: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cuda_total_bytes": self.cuda_total,
            "kv_pool_bytes": self.room,
            "kv_cache_memory_flag": self.kv_cache_memory is not None,
            "max_num_seqs_profiled": self.max_num_seqs,
            "max_num_batched_tokens": self.batched_tokens,
            "engine_version": self.version,
            "profile_band": self.overhead.band,
            "non_torch_bytes": self.overhead.non_torch,
            "activation_bytes": self.overhead.activation,
            "cudagraph_bytes": self.overhead.cudagraph,
            "loading_buffers_bytes": self.overhead.weights_extra,
            "margin_bytes": self.overhead.margin,
        }


def _fit_vllm(
    req: SizingRequest,
    spec: ModelSpec,
    gpu: limits.GpuType,
    context: int,
    kv: str,
    weights: int,
    fraction: float,
    cap: int,
    notes: list[str],
) -> _VllmFit:
    """vLLM's budget, start-up profile and KV pool; the sequences its profile runs with are the plan's parallel
    (``--max-num-seqs``), so the search finds the largest count whose own profile still leaves room for it."""
    total = req.vram_bytes or limits.cuda_total_bytes(gpu)
    budget = int(total * fraction)
    version = parse_vllm_version(req.engine_version)
    batched = req.max_num_batched_tokens or VLLM_DEFAULT_BATCHED_TOKENS
    mlp = mlp_shape(spec)
    hybrid = supports_hybrid_kv(version)

    def evaluate(seqs: int) -> tuple[VllmOverhead, int, int, int, int]:
        tokens = max(batched, seqs)  # vLLM refuses max_num_batched_tokens < max_num_seqs
        ov = vllm_overhead(
            hidden=spec.hidden_size,
            intermediate=mlp.active_intermediate,
            vocab=spec.vocab_size,
            weights_bytes=weights,
            budget_bytes=budget,
            profile=VllmProfile(max_num_seqs=seqs, max_num_batched_tokens=tokens, version=version, mode=req.vllm_mode),
            mlp=mlp,
        )
        per_seq = kv_bytes_per_sequence("vllm", spec, context, kv, tokens, hybrid=hybrid)
        room = budget - weights - ov.total
        return ov, tokens, per_seq, room, sequences_that_fit(room, per_seq)

    if req.parallel is not None:
        seqs = req.parallel
    else:
        # The profile's sequences are the plan's parallel, and more sequences cost sampler memory: the largest
        # s ≤ cap whose own profile leaves room for s sequences (fit(s) − s falls as s grows: binary search).
        lo, hi = 1, max(1, cap)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if evaluate(mid)[4] >= mid:
                lo = mid
            else:
                hi = mid - 1
        seqs = lo
    ov, tokens, per_seq, room, fit = evaluate(seqs)
    if room <= 0:
        _raise_no_room(spec, gpu, weights, ov.total, budget)
    if fit < 1:
        _raise_context("vllm", spec, kv, context, per_seq, room, tokens, hybrid)
    smi = gpu.vram_bytes
    notes.append(
        f"budget: {_gib(budget)} = {fraction:.2f} × {_gib(total)} that CUDA reports on the {gpu.display} "
        f"(nvidia-smi: {_gib(smi)}; vLLM's --gpu-memory-utilization is a share of the CUDA total; R5 reserves the rest)"
    )
    free = ""
    if cold_start_is_free(version):
        free = " (no compile allowance: vLLM 0.10.1-0.19 start cold at no extra cost)"
    notes.append(
        f"engine overhead: {ov.describe()}; profiled with {seqs} sequences × {tokens} batched tokens on a cold "
        f"torch.compile cache{free} (docs/sizing-evidence.md)"
    )
    per_token = kv_bytes_per_token_full(spec, kv)
    notes.append(
        f"KV cache: {per_token:,} B/token over {_full_kv_layers(spec)} full-attention layers ({kv})"
        + _kv_layers_note("vllm", spec, tokens, kv, hybrid)
        + f" → {_gib(per_seq)} per {context:,}-token sequence as vllm allocates it"
    )
    pinned = room if supports_kv_cache_memory(version) else None
    notes.append(
        f"KV pool: {_gib(room)} pinned with --kv-cache-memory-bytes (vLLM ≥ 0.11)"
        if pinned is not None
        else f"KV pool: vLLM's own profile should find ≥ {_gib(room)} (no --kv-cache-memory-bytes: vLLM version "
        f"{req.engine_version or 'unknown'})"
    )
    return _VllmFit(
        cuda_total=total,
        budget=budget,
        overhead=ov,
        batched_tokens=tokens,
        max_num_seqs=seqs,
        per_seq=per_seq,
        room=room,
        fit=int(fit),
        version=req.engine_version,
        kv_cache_memory=pinned,
    )


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
            "pick one of the loading methods (L2; gcs-stream: R7)",
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
    if req.vllm_mode is not None and (req.engine != "vllm" or req.vllm_mode not in VLLM_ENGINE_MODES):
        raise ConfigError(
            "engine.vllm_mode",
            req.vllm_mode,
            "is not a vLLM engine" if req.engine == "vllm" else f"applies to vLLM only, not {req.engine}",
            "v0 (VLLM_USE_V1=0) or v1 (VLLM_USE_V1=1), as the start-up log names it; leave it unset otherwise",
            ", ".join(VLLM_ENGINE_MODES),
        )
    ollama_server = req.engine == "ollama" and ollama_on_llama_server(req.engine_version)
    if req.engine == "ollama" and req.engine_version is not None and not ollama_server:
        asked = parse_vllm_version(req.engine_version)
        if asked != parse_vllm_version(OLLAMA_PINNED_VERSION):
            # Every Ollama rule here (engine vs llama.cpp runner, cache cells, scheduler estimate) was read at one
            # tag (and llama-server's from 0.30); a release in between lays out its caches in ways not read here.
            raise ConfigError(
                "engine.version",
                req.engine_version,
                f"Ollama's memory rules were read at v{OLLAMA_PINNED_VERSION} (its own runners) and from "
                f"v{'.'.join(map(str, OLLAMA_LLAMA_SERVER_SINCE))} (llama-server); this release is not modelled, "
                "and sizing it by either could over-commit",
                f"use Ollama {OLLAMA_PINNED_VERSION} (the pinned image) or ≥ 0.30, or size with a log: "
                "python -m stack calibrate",
                f"{OLLAMA_PINNED_VERSION}, or ≥ {'.'.join(map(str, OLLAMA_LLAMA_SERVER_SINCE))}",
            )
    # The engine whose cache layout applies: Ollama ≥ 0.30 allocates llama-server's (llama.cpp's) caches.
    kv_engine = "llama.cpp" if ollama_server else req.engine
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
    cap = req.max_parallel or engine.max_parallel_default
    cr_max = int(limits.CONCURRENCY_MAX.value)
    per_token = kv_bytes_per_token_full(spec, kv)
    limit = ENGINE_MAX_SEQUENCES[req.engine]
    if req.parallel is not None and limit is not None and req.parallel > limit:
        raise ConfigError(
            "engine.parallel",
            req.parallel,
            f"{engine.name} accepts at most {limit} parallel sequences (LLAMA_MAX_SEQ, src/llama-cparams.h)",
            f"set engine.parallel ≤ {limit}, or serve with vllm (no such limit)",
            f"1..{limit}",
        )
    vfit: _VllmFit | None = None
    if req.engine == "vllm":
        vfit = _fit_vllm(req, spec, gpu, context, kv, weights, fraction, cap, notes)
        total, budget, overhead, per_seq = vfit.cuda_total, vfit.budget, vfit.overhead.total, vfit.per_seq
        room, fit = vfit.room, vfit.fit
    else:
        total = req.vram_bytes or gpu.vram_bytes
        budget = int(total * fraction)
        overhead = runtime_overhead_bytes(req.engine, spec)
        per_seq = kv_bytes_per_sequence(kv_engine, spec, context, kv)
        notes.append(f"budget: {_gib(budget)} = {fraction:.2f} × {_gib(total)} ({gpu.display}; R5 reserves the rest)")
        notes.append(f"engine overhead: {_gib(overhead)} (CUDA context, compute/activation buffers; {engine.name})")
        notes.append(
            f"KV cache: {per_token:,} B/token over {_full_kv_layers(spec)} full-attention layers ({kv})"
            + _kv_layers_note(kv_engine, spec)
            + f" → {_gib(per_seq)} per {context:,}-token sequence as {engine.name} allocates it"
            + (
                f" (Ollama {req.engine_version} runs GGUF models on llama-server: llama.cpp's caches; Ollama's "
                f"{OLLAMA_PINNED_VERSION} layer-scheduler estimate is not applied)"
                if ollama_server
                else ""
            )
        )
        room = budget - weights - overhead
        if room <= 0:
            _raise_no_room(spec, gpu, weights, overhead, budget)
        if req.engine == "ollama" and not ollama_server:
            free = (req.vram_bytes or limits.cuda_total_bytes(gpu)) - ollama_gpu_overhead(gpu.vram_bytes, fraction)
            fit = ollama_sequences_that_fit(spec, context, kv, room, weights=weights, free=free)
            estimate = ollama_scheduler_estimate(spec, context, max(1, fit), kv, weights)
            if estimate:
                notes.append(
                    f"Ollama {OLLAMA_PINNED_VERSION} runs {spec.architecture} on its llama.cpp runner, whose layer "
                    f"scheduler keeps every layer on the GPU only while its own estimate ({_gib(estimate)} for "
                    f"{max(1, fit)} sequence{'s' if fit > 1 else ''}: weights, KV at its bytes per element, graph, "
                    "457 MiB minimum) fits "
                    f"in {_gib(free)} (GPU less OLLAMA_GPU_OVERHEAD)"
                )
            if fit < 1 and sequences_that_fit(room, per_seq) >= 1:
                raise ConfigError(
                    "engine.context_length",
                    context,
                    f"Ollama's layer scheduler estimates {_gib(estimate)} for one {context:,}-token sequence, more "
                    f"than the {_gib(free)} it sees free: it would put layers on the CPU",
                    "lower engine.context_length, use a smaller KV type (q4_0), or a GPU with more memory",
                )
        else:
            fit = sequences_that_fit(room, per_seq)
        if fit < 1:
            _raise_context(kv_engine, spec, kv, context, per_seq, room)
    if req.parallel is not None:
        if req.parallel > fit:
            raise ConfigError(
                "engine.parallel",
                req.parallel,
                f"only {fit} sequences of {context:,} tokens fit in GPU memory",
                f"set engine.parallel ≤ {fit}, or lower engine.context_length (R1)",
                f"1..{fit}",
            )
        parallel = req.parallel
        notes.append(f"parallel: {parallel} as configured (≤ {fit} that fit)")
    elif vfit is not None:
        parallel = vfit.max_num_seqs
        notes.append(
            f"parallel: {parallel} = the most sequences whose own start-up profile (--max-num-seqs {parallel}) "
            f"leaves room for them ({fit} fit in {_gib(room)}; cap {cap}"
            + (
                ""
                if req.max_parallel
                else f", our default for {engine.name}; raise engine.max_parallel after a load test, A3"
            )
            + ")"
        )
    else:
        parallel = int(min(fit, cap, cr_max))
        notes.append(
            f"parallel: {parallel} = min({fit} sequences that fit in {_gib(room)}, cap {cap}"
            + (
                ""
                if req.max_parallel
                else f" (our default for {engine.name}, not the engine's; raise engine.max_parallel after a load "
                "test, A3)"
            )
            + ")"
        )
    if req.engine == "ollama" and not ollama_server:
        # Ollama's caches are shared by its sequences: charge each its share of the total for this many.
        total_kv = kv_bytes_total("ollama", spec, context, kv, parallel)
        shared = -(-total_kv // parallel)
        if shared != per_seq:
            per_seq = shared
            notes.append(
                f"KV cache (Ollama {OLLAMA_PINNED_VERSION}): {parallel} sequences share each layer's cache → "
                f"{_gib(total_kv)} in all ({_gib(per_seq)} a sequence)"
            )
    instances = 1
    batch = parallel if req.ideal_batch_size is None else req.ideal_batch_size
    batch = max(0, min(batch, cr_max // instances - parallel))
    concurrency = a2_concurrency(instances, parallel, batch)
    if concurrency > cr_max:
        concurrency = cr_max
        notes.append(
            f"Cloud Run concurrency: {cr_max}, Cloud Run's maximum per instance: fewer than the {parallel} parallel "
            "sequences sized (vLLM --max-num-seqs), so at most that many reach the engine at once"
        )
    else:
        notes.append(
            f"Cloud Run concurrency: {concurrency} = ({instances} model instance × {parallel} parallel) + "
            f"({instances} × ideal batch {batch}) (A2: the second term queues the next batch; too high adds "
            "latency, too low idles the GPU; load-test it, A3)"
        )
    probe = _probe(req, weights, req.engine, notes)
    args, env = render_engine_config(
        req.profile or req.engine,
        model_path=req.model_path,
        context=context,
        parallel=parallel,
        kv_type=kv,
        memory_fraction=fraction,
        vram_bytes=gpu.vram_bytes,
        slot_save_path=req.slot_save_path,
        max_num_batched_tokens=vfit.batched_tokens if vfit else None,
        kv_cache_memory_bytes=vfit.kv_cache_memory if vfit else None,
        served_model_name=req.served_model_name,
        engine_mode=req.vllm_mode,  # R6: the vLLM profile renders what selects the engine sized (VLLM_USE_V1)
        engine_version=req.engine_version,
    )
    if req.vllm_mode is not None:
        selected = f"VLLM_USE_V1={env['VLLM_USE_V1']}" if "VLLM_USE_V1" in env else "its only engine: no VLLM_USE_V1"
        notes.append(f"vLLM engine: {req.vllm_mode.upper()} ({selected}), sized as that engine")
    assert engine_parallel_from_config(req.profile or req.engine, args, env) == parallel  # R6 by construction
    engine_memory: dict[str, Any] | None = None
    if vfit is not None:
        back = engine_memory_from_config(req.engine, args, env)
        assert back["max_model_len"] == context and back["max_num_seqs"] == parallel  # R6
        assert back["max_num_batched_tokens"] == vfit.batched_tokens
        assert back.get("kv_cache_memory") == vfit.kv_cache_memory
        engine_memory = vfit.to_dict()
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
        vram_bytes=total,
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
        engine_memory=engine_memory,
    )
