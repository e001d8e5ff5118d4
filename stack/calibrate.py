"""Calibrate the sizing plan against an engine's own start-up log (``python -m stack calibrate LOG``).

Reads a vLLM, llama.cpp or Ollama start-up log, pulls out what the engine printed about its memory
(weights, non-torch, activation peak, CUDA graphs, KV pool in GiB / blocks / tokens, the flags it ran
with), predicts the same quantities the way the plan does for that exact configuration, and prints
both side by side with the stack setting that would make the plan match (for vLLM: the KV bytes to pin
with ``--kv-cache-memory`` and the ``engine.memory_fraction`` that gives the plan the engine's pool).

Without a model (``--model``/``--gguf``/``--hf-config``) it prints what the log says and the overhead
the engine measured; with one it also predicts. Standard library + the sizing package only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.limits import GIB, MIB
from cloudrun_gpu.sizing.engines import (
    LLAMA_CPP_N_UBATCH,
    VllmProfile,
    kv_bytes_per_token_full,
    kv_bytes_total,
    mlp_shape,
    ollama_estimate,
    parse_vllm_version,
    runtime_overhead_bytes,
    vllm_overhead,
)
from cloudrun_gpu.sizing.plan import weights_from_quant
from cloudrun_gpu.sizing.quant import FOUR_BIT_DEFAULT, WEIGHT_QUANTS
from cloudrun_gpu.sizing.settings import EngineSettings
from cloudrun_gpu.sizing.spec import ModelSpec

_NUM = r"([\d.,]+)"
_FRACTION_LIMITS = vars(EngineSettings)["__pydantic_fields__"]["memory_fraction"].metadata
MAX_MEMORY_FRACTION = float(next(m.le for m in _FRACTION_LIMITS if getattr(m, "le", None)))
"""The largest ``engine.memory_fraction`` a stack accepts, read from ``EngineSettings`` (one place)."""


def _f(text: str) -> float:
    return float(text.replace(",", ""))


def _gib(text: str, unit: str) -> int:
    """Bytes from a number and a unit; vLLM's older "GB" means GiB (it divides by 2**30)."""
    scale = {"gib": GIB, "gb": GIB, "mib": MIB, "mb": MIB, "kib": 1024, "b": 1}[unit.lower()]
    return int(_f(text) * scale)


@dataclass
class LogFacts:
    """What an engine printed at start-up (None where it printed nothing)."""

    engine: str
    version: str | None = None
    v0: bool = False
    v1: bool = False
    """The log names the V1 engine ("Initializing a V1 LLM engine"); with ``v0`` the mode that really ran."""
    model: str | None = None
    weights_bytes: int | None = None
    cuda_total_bytes: int | None = None
    memory_fraction: float | None = None
    budget_bytes: int | None = None
    non_torch_bytes: int | None = None
    activation_bytes: int | None = None
    cudagraph_bytes: int | None = None
    kv_bytes: int | None = None
    kv_tokens: int | None = None
    kv_blocks: int | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    chunked_prefill: bool | None = None
    kv_cache_dtype: str | None = None
    kv_cache_memory_hint: int | None = None
    ctx_size: int | None = None
    parallel: int | None = None
    n_ubatch: int | None = None
    compute_bytes: int | None = None
    ollama_graph_partial_bytes: int | None = None
    """Ollama's ``memory.graph.partial`` (its scheduler's graph estimate when layers are split)."""
    notes: list[str] = field(default_factory=list)


def detect_engine(text: str) -> str:
    if "ollama" in text.lower() and ("offload to cuda" in text or "starting llama server" in text or "msg=" in text):
        return "ollama"
    vllm_words = ("vLLM", "vllm", "KV Cache is", "GPU KV cache size", "blocks:")
    llama_words = ("llama_kv_cache", "KV self size")
    if any(w in text for w in vllm_words) and not any(w in text for w in llama_words):
        return "vllm"
    return "llama.cpp"


def parse_log(text: str, engine: str | None = None) -> LogFacts:
    """Pull the memory facts out of a start-up log (vLLM V0/V1, llama.cpp, Ollama)."""
    eng = engine or detect_engine(text)
    facts = LogFacts(engine=eng)
    if eng == "vllm":
        _parse_vllm(text, facts)
    else:
        _parse_llama(text, facts)
        if eng == "ollama":
            _parse_ollama(text, facts)
    return facts


def _last(pattern: str, text: str, flags: int = 0) -> re.Match[str] | None:
    found = list(re.finditer(pattern, text, flags))
    return found[-1] if found else None


def _parse_vllm(text: str, f: LogFacts) -> None:
    if m := _last(r"(?:vLLM API server version|version)\s+v?(\d+\.\d+[\w.+-]*)", text):
        f.version = m.group(1)
    if m := _last(r"Initializing an? (V0|V1) LLM engine \(v?([\w.+-]+)\)", text):
        f.v0 = m.group(1) == "V0"
        f.v1 = m.group(1) == "V1"
        f.version = f.version or m.group(2)
    if m := _last(r"Initializing an LLM engine \(v?([\w.+-]+)\)", text):  # V0 before it was named V0
        f.v0 = True
        f.version = f.version or m.group(1)
    if re.search(r"worker\.py:\d+\] Memory profiling|Memory profiling results:|# (?:GPU|CUDA|cuda) blocks", text):
        f.v0 = f.v0 or "gpu_worker.py" not in text
    if m := _last(r"model='([^']+)'", text) or _last(r"Starting to load model ([^\s.]+(?:\.[^\s.]+)*)\.\.\.", text):
        f.model = m.group(1)
    if m := _last(r"(?:Model loading took|Loading model weights took)\s+" + _NUM + r"\s*(GiB|GB)", text):
        f.weights_bytes = _gib(m.group(1), m.group(2))
    # V0 (0.6.5+): "total_gpu_memory (23.57GiB) x gpu_memory_utilization (0.90) = 21.21GiB"
    if m := _last(r"total_gpu_memory \(" + _NUM + r"\s*GiB\) x gpu_memory_utilization \(" + _NUM + r"\)", text):
        f.cuda_total_bytes = _gib(m.group(1), "GiB")
        f.memory_fraction = _f(m.group(2))
    # V0 (0.6.4): "total_gpu_memory=23.58GiB ... gpu_memory_utilization=0.90"
    if m := _last(r"total_gpu_memory=" + _NUM + r"GiB", text):
        f.cuda_total_bytes = _gib(m.group(1), "GiB")
    # V1: "Free memory on device (F/T GiB) on startup. Desired GPU memory utilization is (u, B GiB)"
    if m := _last(r"Free memory on device(?: cuda:\d+)? \(" + _NUM + r"/" + _NUM + r"\s*GiB\)", text):
        f.cuda_total_bytes = _gib(m.group(2), "GiB")
    if m := _last(r"Desired GPU memory utilization is \(" + _NUM + r",\s*" + _NUM + r"\s*GiB\)", text):
        f.memory_fraction = _f(m.group(1))
        f.budget_bytes = _gib(m.group(2), "GiB")
    if m := _last(r"--gpu-memory-utilization=" + _NUM + r" is equivalent", text):
        f.memory_fraction = _f(m.group(1).rstrip("."))
    if m := _last(r"non_torch_memory(?: takes |=)" + _NUM + r"\s*GiB", text):
        f.non_torch_bytes = _gib(m.group(1), "GiB")
    if m := _last(r"PyTorch activation peak memory takes " + _NUM + r"\s*GiB", text):
        f.activation_bytes = _gib(m.group(1), "GiB")
    if (m := _last(r"peak_torch_memory=" + _NUM + r"GiB", text)) and f.weights_bytes is not None:
        f.activation_bytes = max(0, _gib(m.group(1), "GiB") - f.weights_bytes)
    consumed = _last(r"Actual usage is " + _NUM + r" GiB for consumed memory \(weights \+ non-torch\)", text)
    if consumed and f.weights_bytes is not None:
        f.non_torch_bytes = max(0, _gib(consumed.group(1), "GiB") - f.weights_bytes)
    if m := _last(_NUM + r"\s*GiB for peak activation", text):
        f.activation_bytes = _gib(m.group(1), "GiB")
    if m := _last(_NUM + r"\s*GiB for non-torch memory", text):
        f.non_torch_bytes = _gib(m.group(1), "GiB")
    graphs = _last(_NUM + r"\s*GiB for CUDAGraph memory", text) or _last(
        r"Estimated CUDA graph memory: " + _NUM + r"\s*GiB", text
    )
    if graphs:
        f.cudagraph_bytes = _gib(graphs.group(1), "GiB")
    for pattern in (
        r"the rest of the memory reserved for KV Cache is " + _NUM + r"\s*GiB",
        r"kv_cache_size=" + _NUM + r"GiB",
        r"Available KV cache memory: " + _NUM + r"\s*GiB",
        r"Current kv cache memory in use is " + _NUM + r"\s*GiB",
        r"reserved " + _NUM + r" GiB memory for KV Cache",
    ):
        if m := _last(pattern, text):
            f.kv_bytes = _gib(m.group(1), "GiB")
    if m := _last(r"GPU KV cache size: " + _NUM + r" tokens", text):
        f.kv_tokens = int(_f(m.group(1)))
    if m := _last(r"(?:# ?)?(?:GPU|CUDA|cuda) blocks: " + _NUM, text):
        f.kv_blocks = int(_f(m.group(1)))
        f.kv_tokens = f.kv_tokens or f.kv_blocks * 16
    if m := _last(r"Maximum concurrency for " + _NUM + r" tokens per request", text):
        f.max_model_len = int(_f(m.group(1)))
    if m := _last(r"max_seq_len=(\d+)", text):
        f.max_model_len = f.max_model_len or int(m.group(1))
    if m := _last(r"max_num_batched_tokens[=:'\s]+(\d+)", text):
        f.max_num_batched_tokens = int(m.group(1))
    if m := _last(r"chunked_prefill_enabled=(True|False)", text):
        f.chunked_prefill = m.group(1) == "True"
    if "Chunked prefill is enabled" in text:
        f.chunked_prefill = True
    _parse_vllm_args(text, f)
    if m := _last(r"--kv-cache-memory=(\d+)`? \(" + _NUM + r" GiB\) to fit into requested memory", text):
        f.kv_cache_memory_hint = int(m.group(1))


_VLLM_ARG_VALUE = r"""(?:'([^']*)'|"([^"]*)"|([\w.+-]+))"""


def _vllm_arg(text: str, key: str) -> str | None:
    """The last value ``key`` has in vLLM's argument dumps: the ``non-default args: {'key': value}`` dict
    (v0.10+), ``Namespace(key=value)`` / ``EngineArgs(key=value)`` (older servers) and the engine's
    ``with config: key=value`` line."""
    m = _last(r"(?:'" + key + r"'\s*:\s*|\b" + key + r"=)" + _VLLM_ARG_VALUE, text)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def _arg_float(text: str, key: str) -> float | None:
    value = _vllm_arg(text, key)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _parse_vllm_args(text: str, f: LogFacts) -> None:
    """Every memory setting vLLM's argument dump prints (``gpu_memory_utilization`` 0.65 in a
    ``non-default args`` dict is the run's fraction, not the 0.90 default)."""
    if (u := _arg_float(text, "gpu_memory_utilization")) is not None:
        f.memory_fraction = u
    for key in ("max_model_len", "max_num_seqs", "max_num_batched_tokens"):
        if (v := _arg_float(text, key)) is not None:
            setattr(f, key, int(v))
    if (b := _arg_float(text, "kv_cache_memory_bytes")) is not None:
        f.kv_cache_memory_hint = int(b)
    if (dtype := _vllm_arg(text, "kv_cache_dtype")) is not None:
        f.kv_cache_dtype = dtype
    if (chunked := _vllm_arg(text, "enable_chunked_prefill")) in ("True", "False"):
        f.chunked_prefill = chunked == "True"


def _parse_llama(text: str, f: LogFacts) -> None:
    # llama.cpp ≥ mid-2025: "llama_kv_cache: size = 112.00 MiB (2048 cells, 28 layers, 1/1 seqs), K (f16): …"
    if m := _last(
        r"llama_kv_cache(?:_unified)?:\s+size =\s+"
        + _NUM
        + r" MiB \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+)/(\d+) seqs\),"
        r" K \((\w+)\)",
        text,
    ):
        f.kv_bytes = _gib(m.group(1), "MiB")
        f.ctx_size = int(m.group(2))
        f.parallel = int(m.group(5))
        f.kv_cache_dtype = m.group(6)
    elif m := _last(r"KV self size\s+=\s+" + _NUM + r" MiB, K \((\w+)\)", text):
        f.kv_bytes = _gib(m.group(1), "MiB")
        f.kv_cache_dtype = m.group(2)
    elif m := _last(r"CUDA0 KV buffer size =\s+" + _NUM + r" MiB", text):
        f.kv_bytes = _gib(m.group(1), "MiB")
    if m := _last(r"n_ctx\s+=\s+(\d+)", text):
        f.ctx_size = f.ctx_size or int(m.group(1))
    if m := _last(r"n_seq_max\s+=\s+(\d+)", text):
        f.parallel = f.parallel or int(m.group(1))
    if m := _last(r"n_ubatch\s+=\s+(\d+)", text):
        f.n_ubatch = int(m.group(1))
    if m := _last(r"CUDA0 model buffer size =\s+" + _NUM + r" MiB", text):
        f.weights_bytes = _gib(m.group(1), "MiB")
    if m := _last(r"CUDA0 compute buffer size =\s+" + _NUM + r" MiB", text):
        f.compute_bytes = _gib(m.group(1), "MiB")


def _parse_ollama(text: str, f: LogFacts) -> None:
    if m := _last(r'memory\.required\.kv="' + _NUM + r" (GiB|MiB)\"", text):
        f.kv_bytes = f.kv_bytes or _gib(m.group(1), m.group(2))
        if "llama_kv_cache" not in text and "KV self size" not in text:
            f.notes.append(
                "KV from Ollama's own estimate (memory.required.kv); the runner's llama.cpp lines are absent"
            )
    if m := _last(r'memory\.weights\.total="' + _NUM + r" (GiB|MiB)\"", text):
        f.weights_bytes = f.weights_bytes or _gib(m.group(1), m.group(2))
    if m := _last(r'memory\.graph\.full="' + _NUM + r" (GiB|MiB)\"", text):
        f.compute_bytes = f.compute_bytes or _gib(m.group(1), m.group(2))
    if m := _last(r'memory\.graph\.partial="' + _NUM + r" (GiB|MiB)\"", text):
        f.ollama_graph_partial_bytes = _gib(m.group(1), m.group(2))
    if m := _last(r"--ctx-size (\d+)", text):
        f.ctx_size = int(m.group(1))
    if m := _last(r"--parallel (\d+)", text):
        f.parallel = int(m.group(1))
    if m := _last(r"--batch-size (\d+)", text):
        f.n_ubatch = f.n_ubatch or int(m.group(1))
    if m := _last(r"OLLAMA_KV_CACHE_TYPE[=:]\s*(\w+)", text):
        f.kv_cache_dtype = m.group(1)


@dataclass
class Row:
    quantity: str
    plan: float | None
    log: float | None
    unit: str = "GiB"


@dataclass
class Calibration:
    facts: LogFacts
    rows: list[Row]
    settings: list[str]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": asdict(self.facts),
            "rows": [asdict(r) for r in self.rows],
            "settings": self.settings,
            "warnings": self.warnings,
        }


def _g(n: int | None) -> float | None:
    return None if n is None else n / GIB


def _spec(args: argparse.Namespace) -> ModelSpec | None:
    from cloudrun_gpu.sizing import catalogue_model, read_gguf, read_hf

    if getattr(args, "model", None):
        return catalogue_model(args.model, field="--model")
    if getattr(args, "gguf", None):
        return read_gguf(Path(args.gguf), field="--gguf")
    if getattr(args, "hf_config", None):
        return read_hf(Path(args.hf_config), field="--hf-config")
    return None


def _weights(spec: ModelSpec, engine: str, quant_name: str | None) -> int:
    if spec.weights_bytes is not None:
        return spec.weights_bytes
    name = quant_name or FOUR_BIT_DEFAULT[engine]
    quant = WEIGHT_QUANTS.get(name)
    if quant is None:
        raise ConfigError("--quant", name, "is not a known weight format", "pick one", ", ".join(WEIGHT_QUANTS))
    return weights_from_quant(spec, quant)[0]


def calibrate(facts: LogFacts, spec: ModelSpec | None, args: argparse.Namespace) -> Calibration:
    if facts.engine == "vllm":
        return _calibrate_vllm(facts, spec, args)
    return _calibrate_llama(facts, spec, args)


def _vllm_total(f: LogFacts, args: argparse.Namespace) -> int:
    """The CUDA total the log's fraction applies to: printed, derived from a printed budget and fraction, or
    given (``--vram-gib``, or ``--gpu`` named explicitly). Never a guess: a log without it is refused with the
    flag to pass, as an L4 assumed silently once proposed ``memory_fraction 7.452``."""
    if f.cuda_total_bytes is not None:
        return f.cuda_total_bytes
    if f.budget_bytes is not None and f.memory_fraction:
        return int(f.budget_bytes / f.memory_fraction)
    vram_gib = getattr(args, "vram_gib", None)
    if vram_gib is not None:
        if not 1 <= vram_gib <= 1024:
            raise ConfigError("--vram-gib", vram_gib, "is not a GPU's memory", "pass the CUDA total in GiB", "1..1024")
        return int(vram_gib * GIB)
    gpu_name = getattr(args, "gpu", None)
    if gpu_name is not None:
        gpu = limits.GPU_TYPES.get(gpu_name)
        if gpu is None:
            raise ConfigError("--gpu", gpu_name, "not a Cloud Run GPU type", "pick one", ", ".join(limits.GPU_TYPES))
        return limits.cuda_total_bytes(gpu)
    raise ConfigError(
        "--vram-gib",
        "not given",
        "the log prints no GPU total (no 'Free memory on device (F/T GiB)' or 'total_gpu_memory') and none was given",
        "pass --vram-gib with the GPU's CUDA total in GiB (torch.cuda.mem_get_info()[1] / 2**30), or --gpu TYPE",
        "a number of GiB, e.g. --vram-gib 22.03 for an L4",
    )


def _pool_from_tokens(f: LogFacts, spec: ModelSpec, kv_type: str, warnings: list[str]) -> None:
    """A log that prints only ``GPU KV cache size: N tokens`` (vLLM 0.30 on the L4 rows) still gives the pool:
    N × bytes per token when every layer caches every token. For sliding-window or shared-KV models the count is
    derived from the concurrency (``max_concurrency × max_model_len``, vllm-project/vllm#51041), so no pool."""
    per_token = kv_bytes_per_token_full(spec, kv_type)
    if f.kv_bytes is not None or f.kv_tokens is None or not per_token:
        return
    if spec.n_full_layers == spec.n_layers and not spec.kv_shared_layers:
        f.kv_bytes = f.kv_tokens * per_token
        warnings.append(
            f"the log prints {f.kv_tokens:,} KV tokens and no GiB: pool = tokens × {per_token:,} B/token "
            f"({kv_type}) = {f.kv_bytes / GIB:.2f} GiB"
        )
    else:
        warnings.append(
            "the log prints only a KV token count, and for a model with sliding-window or shared-KV layers that "
            "count is derived from the concurrency, not the pool (vllm-project/vllm#51041): no pool inferred"
        )


def _printed_overhead(f: LogFacts, budget: int, total: int, fraction: float) -> int | None:
    """What the engine kept outside weights and KV (budget − weights − pool); a negative one means the total
    used here is not the GPU the log ran on, and every number derived from it would be wrong: refused."""
    if f.kv_bytes is None or f.weights_bytes is None:
        return None
    overhead = budget - f.weights_bytes - f.kv_bytes
    if overhead < 0:
        raise ConfigError(
            "--vram-gib" if f.cuda_total_bytes is None else "log",
            f"{total / GIB:.2f} GiB",
            f"the log's weights ({f.weights_bytes / GIB:.2f} GiB) and KV pool ({f.kv_bytes / GIB:.2f} GiB) exceed "
            f"{fraction:.2f} × {total / GIB:.2f} GiB: this engine ran on a larger GPU than the total used here",
            "pass the CUDA total of the GPU the log ran on (--vram-gib), or the log's own gpu_memory_utilization",
            f"≥ {(f.weights_bytes + f.kv_bytes) / fraction / GIB:.2f} GiB",
        )
    return overhead


def _fraction_advice(need: int, total: int, fraction: float, margin: int) -> tuple[str | None, str | None]:
    """(setting, warning): the ``engine.memory_fraction`` that gives the plan the engine's pool, or why none can.
    A share above 1 is impossible and one above the stack's 0.98 cap cannot be set (EngineSettings)."""
    match = need / total
    if match > 1:
        return None, (
            f"no engine.memory_fraction reproduces this pool: it would take {match:.3f} of the GPU "
            f"({need / GIB:.2f} GiB of {total / GIB:.2f}), more than the whole GPU, because the plan's weights and "
            "overhead are larger than this engine's; pin the pool with --kv-cache-memory instead"
        )
    if match > MAX_MEMORY_FRACTION:
        return None, (
            f"engine.memory_fraction {match:.3f} would reproduce this pool, but the stack allows at most "
            f"{MAX_MEMORY_FRACTION} (R5 keeps the rest for the CUDA context); pin the pool with --kv-cache-memory"
        )
    return (
        f"engine.memory_fraction: {match:.3f} makes the plan's pool equal this engine's "
        f"(the log ran {fraction:.3f}; the plan keeps a {margin / GIB:.2f} GiB margin on top)"
    ), None


def _calibrate_vllm(f: LogFacts, spec: ModelSpec | None, args: argparse.Namespace) -> Calibration:
    warnings: list[str] = list(f.notes)
    settings: list[str] = []
    total = _vllm_total(f, args)
    fraction = f.memory_fraction or getattr(args, "memory_fraction", None) or 0.9
    if f.memory_fraction is None:
        warnings.append(f"the log prints no gpu_memory_utilization: {fraction:.2f} assumed (--memory-fraction)")
    budget = f.budget_bytes or int(total * fraction)
    version_text = getattr(args, "engine_version", None) or f.version
    mode = getattr(args, "vllm_mode", None) or ("v0" if f.v0 else "v1" if f.v1 else None)
    max_len = f.max_model_len or getattr(args, "context", None) or 0
    seqs = f.max_num_seqs or getattr(args, "parallel", None) or 256
    if f.max_num_batched_tokens:
        tokens = f.max_num_batched_tokens
    elif f.v0 and not f.chunked_prefill:
        tokens = max(max_len, 2048)  # V0 without chunked prefill profiles a whole max_model_len prompt
    else:
        tokens = getattr(args, "max_num_batched_tokens", None) or 2048
    kv_type = f.kv_cache_dtype if f.kv_cache_dtype in ("fp8", "auto") else (getattr(args, "kv_type", None) or "auto")
    if spec is not None:
        _pool_from_tokens(f, spec, kv_type, warnings)
    printed_overhead = _printed_overhead(f, budget, total, fraction)
    rows = [
        Row("budget (fraction × CUDA total)", budget / GIB, _g(f.budget_bytes) or budget / GIB),
    ]
    if spec is None:
        rows += [
            Row("weights", None, _g(f.weights_bytes)),
            Row("non-torch", None, _g(f.non_torch_bytes)),
            Row("peak activation", None, _g(f.activation_bytes)),
            Row("CUDA graphs", None, _g(f.cudagraph_bytes)),
            Row("overhead (budget − weights − KV)", None, _g(printed_overhead)),
            Row("KV pool", None, _g(f.kv_bytes)),
            Row("KV tokens", None, f.kv_tokens, "tokens"),
        ]
        if f.kv_bytes is not None:
            settings.append(f"pin the pool this engine found: --kv-cache-memory={f.kv_bytes} (vLLM ≥ 0.11)")
        warnings.append("no model given (--model/--gguf/--hf-config): printed values only")
        return Calibration(f, rows, settings, warnings)
    weights = _weights(spec, "vllm", getattr(args, "quant", None))
    mlp = mlp_shape(spec)
    ov = vllm_overhead(
        hidden=spec.hidden_size,
        intermediate=mlp.active_intermediate,
        vocab=spec.vocab_size,
        weights_bytes=weights,
        budget_bytes=budget,
        profile=VllmProfile(
            max_num_seqs=seqs,
            max_num_batched_tokens=max(tokens, seqs),
            version=parse_vllm_version(version_text),
            mode=mode,
        ),
        mlp=mlp,
    )
    kv = budget - weights - ov.total
    per_token = kv_bytes_per_token_full(spec, kv_type)
    rows += [
        Row("weights", weights / GIB, _g(f.weights_bytes)),
        Row("non-torch", ov.non_torch / GIB, _g(f.non_torch_bytes)),
        Row("peak activation", ov.activation / GIB, _g(f.activation_bytes)),
        Row("CUDA graphs (deducted from the pool)", ov.cudagraph / GIB, _g(f.cudagraph_bytes)),
        Row("safety margin", ov.margin / GIB, None),
        Row("overhead (budget − weights − KV)", ov.total / GIB, _g(printed_overhead)),
        Row("KV pool", kv / GIB, _g(f.kv_bytes)),
        Row("KV tokens", kv // per_token if per_token else None, f.kv_tokens, "tokens"),
    ]
    if f.kv_bytes is not None:
        if kv > f.kv_bytes:
            warnings.append(
                f"OVER-COMMIT: the plan promises {kv / GIB:.2f} GiB of KV but this engine found {f.kv_bytes / GIB:.2f}"
            )
        settings.append(
            f"pin the pool this engine found: --kv-cache-memory={f.kv_bytes} ({f.kv_bytes / GIB:.2f} GiB; rendered by "
            "the plan itself when engine.version ≥ 0.11)"
        )
        if f.kv_cache_memory_hint is not None:
            settings.append(f"vLLM's own advice for the requested budget: --kv-cache-memory={f.kv_cache_memory_hint}")
        setting, refusal = _fraction_advice(f.kv_bytes + weights + ov.total, total, fraction, ov.margin)
        settings += [setting] if setting else []
        warnings += [refusal] if refusal else []
        if printed_overhead is not None:
            settings.append(
                f"measured overhead {printed_overhead / GIB:.2f} GiB vs the plan's {ov.total / GIB:.2f} GiB "
                f"({ov.band}); add this log to sizing/data/vllm_evidence.csv to refit"
            )
    if version_text is None and mode is None:
        warnings.append("no vLLM version in the log: the plan used the largest overhead of every version band")
    return Calibration(f, rows, settings, warnings)


def _calibrate_llama(f: LogFacts, spec: ModelSpec | None, args: argparse.Namespace) -> Calibration:
    engine = f.engine
    warnings: list[str] = list(f.notes)
    settings: list[str] = []
    kv_type = getattr(args, "kv_type", None) or f.kv_cache_dtype or "f16"
    parallel = f.parallel or getattr(args, "parallel", None) or 1
    rows: list[Row] = []
    if spec is None:
        rows = [
            Row("weights", None, _g(f.weights_bytes)),
            Row("compute buffer", None, _g(f.compute_bytes)),
            Row("KV cache", None, _g(f.kv_bytes)),
            Row("KV cells (total)", None, f.ctx_size, "cells"),
        ]
        warnings.append("no model given (--model/--gguf/--hf-config): printed values only")
        return Calibration(f, rows, settings, warnings)
    per_token = kv_bytes_per_token_full(spec, kv_type)
    ctx_total = f.ctx_size or getattr(args, "context", None)
    if ctx_total is None and f.kv_bytes is not None and per_token:
        ctx_total = f.kv_bytes // per_token
        warnings.append(f"the log prints no n_ctx: {ctx_total} cells inferred from the KV size")
    ctx_total = ctx_total or 4096
    per_seq_ctx = ctx_total // parallel
    # Ollama sizes each cache for all its sequences at once (sizing/engines.py::kv_bytes_total).
    kv = kv_bytes_total(engine, spec, per_seq_ctx, kv_type, parallel)
    weights = _weights(spec, engine, getattr(args, "quant", None))
    overhead = runtime_overhead_bytes(engine, spec)
    rows = [
        Row("weights", weights / GIB, _g(f.weights_bytes)),
        Row("engine overhead (plan: CUDA context + compute buffer)", overhead / GIB, _g(f.compute_bytes)),
        Row("KV cache", kv / GIB, _g(f.kv_bytes)),
        Row("KV cells (total)", ctx_total, f.ctx_size, "cells"),
    ]
    if f.kv_bytes is not None and abs(kv - f.kv_bytes) > 0.01 * f.kv_bytes:
        warnings.append(
            f"KV differs by {(kv - f.kv_bytes) / f.kv_bytes:+.1%}: check the KV type ({kv_type}), the slots and "
            f"the micro-batch (n_ubatch {f.n_ubatch or '?'} here, the plan assumes {LLAMA_CPP_N_UBATCH})"
        )
    estimate = ollama_estimate(spec, per_seq_ctx, parallel, kv_type, weights) if engine == "ollama" else None
    if estimate is not None:
        # Ollama's layer scheduler (llm/memory.go, GraphSize at v0.12.3): what the plan keeps on the GPU.
        rows += [
            Row("Ollama scheduler: graph, all layers on the GPU", estimate.graph_full / GIB, _g(f.compute_bytes)),
            Row(
                "Ollama scheduler: graph, layers split", estimate.graph_partial / GIB, _g(f.ollama_graph_partial_bytes)
            ),
            Row("Ollama scheduler: required on the GPU (plan)", estimate.total / GIB, None),
        ]
    if engine == "ollama":
        settings.append(
            f"engine.context_length: {per_seq_ctx} and engine.parallel: {parallel} reproduce this runner "
            f"(--ctx-size {ctx_total} = OLLAMA_CONTEXT_LENGTH × OLLAMA_NUM_PARALLEL)"
        )
    else:
        settings.append(
            f"engine.context_length: {per_seq_ctx} and engine.parallel: {parallel} reproduce "
            f"-c {ctx_total} -np {parallel}"
        )
    if kv_type != "f16":
        settings.append(f"engine.kv_cache_type: {kv_type}")
    return Calibration(f, rows, settings, warnings)


def render(cal: Calibration) -> str:
    f = cal.facts
    head = f"calibrate: {f.engine}" + (f" {f.version}" if f.version else "") + (" (V0 engine)" if f.v0 else "")
    if f.model:
        head += f", model {f.model}"
    lines = [head, f"{'':56s}{'plan':>12s}{'log':>12s}{'Δ':>10s}"]
    for r in cal.rows:

        def cell(v: float | None, unit: str = r.unit) -> str:
            if v is None:
                return "-"
            return f"{v:,.0f}" if unit != "GiB" else f"{v:.2f}"

        delta = ""
        if r.plan is not None and r.log is not None:
            delta = f"{r.plan - r.log:+.2f}" if r.unit == "GiB" else f"{r.plan - r.log:+,.0f}"
        lines.append(f"{r.quantity:56s}{cell(r.plan):>12s}{cell(r.log):>12s}{delta:>10s}  {r.unit}")
    if cal.settings:
        lines.append("to make the plan match this engine:")
        lines += [f"  - {s}" for s in cal.settings]
    lines += [f"warning: {w}" for w in cal.warnings]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("log", help="a vLLM, llama.cpp or Ollama start-up log (file path, '-' for stdin)")
    p.add_argument("--engine", choices=["vllm", "llama.cpp", "ollama"], help="default: detected from the log")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="catalogue model the log ran (python -m stack size --list)")
    src.add_argument("--gguf", help="the GGUF file the log ran")
    src.add_argument("--hf-config", help="the config.json of the model the log ran")
    p.add_argument("--quant", help="weight format when no file is given (e.g. bf16, awq-int4, Q4_K_M)")
    p.add_argument("--kv-type", help="KV type when the log does not print it")
    p.add_argument("--gpu", help="Cloud Run GPU type the log ran on, when it prints no total")
    p.add_argument("--vram-gib", type=float, help="the GPU's CUDA total in GiB, when the log prints none")
    p.add_argument("--vllm-mode", choices=["v0", "v1"], help="vLLM engine (VLLM_USE_V1) when the log does not name it")
    p.add_argument("--context", type=int, help="max_model_len / per-request context when the log does not print it")
    p.add_argument("--parallel", type=int, help="sequences when the log does not print them")
    p.add_argument("--engine-version", help="engine release when the log does not print it")
    p.add_argument("--memory-fraction", type=float, help="vLLM --gpu-memory-utilization when not printed")
    p.add_argument("--max-num-batched-tokens", type=int, help="vLLM batched tokens when not printed")
    p.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.log == "-" else Path(args.log).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"error: cannot read {args.log}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    facts = parse_log(text, args.engine)
    try:
        cal = calibrate(facts, _spec(args), args)
    except (ConfigError, ConfigErrors) as exc:
        print(f"error: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(cal.to_dict(), indent=2))
    else:
        print(render(cal))
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="python -m stack.calibrate", description=__doc__)
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
