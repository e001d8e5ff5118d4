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
    intermediate_size_estimate,
    kv_bytes_per_token_full,
    kv_bytes_total,
    ollama_estimate,
    parse_vllm_version,
    runtime_overhead_bytes,
    vllm_overhead,
)
from cloudrun_gpu.sizing.plan import weights_from_quant
from cloudrun_gpu.sizing.quant import FOUR_BIT_DEFAULT, WEIGHT_QUANTS
from cloudrun_gpu.sizing.spec import ModelSpec

_NUM = r"([\d.,]+)"


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
        f.version = f.version or m.group(2)
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
    if m := _last(r"gpu_memory_utilization=" + _NUM, text):
        f.memory_fraction = _f(m.group(1))
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
    if m := _last(r"'max_model_len': (\d+)", text):
        f.max_model_len = int(m.group(1))
    if m := _last(r"'max_num_seqs': (\d+)", text) or _last(r"max_num_seqs=(\d+)", text):
        f.max_num_seqs = int(m.group(1))
    if m := _last(r"max_num_batched_tokens[=:'\s]+(\d+)", text):
        f.max_num_batched_tokens = int(m.group(1))
    if m := _last(r"chunked_prefill_enabled=(True|False)", text):
        f.chunked_prefill = m.group(1) == "True"
    if "Chunked prefill is enabled" in text:
        f.chunked_prefill = True
    if m := _last(r"kv_cache_dtype[=:'\s]+'?([\w]+)", text):
        f.kv_cache_dtype = m.group(1)
    if m := _last(r"--kv-cache-memory=(\d+)`? \(" + _NUM + r" GiB\) to fit into requested memory", text):
        f.kv_cache_memory_hint = int(m.group(1))


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


def _calibrate_vllm(f: LogFacts, spec: ModelSpec | None, args: argparse.Namespace) -> Calibration:
    warnings: list[str] = list(f.notes)
    settings: list[str] = []
    gpu = limits.GPU_TYPES.get(getattr(args, "gpu", None) or "nvidia-l4", limits.GPU_TYPES["nvidia-l4"])
    total = f.cuda_total_bytes or limits.cuda_total_bytes(gpu)
    if f.cuda_total_bytes is None:
        warnings.append(f"the log prints no GPU total: using {gpu.name}'s CUDA total {total / GIB:.2f} GiB")
    fraction = f.memory_fraction or getattr(args, "memory_fraction", None) or 0.9
    budget = f.budget_bytes or int(total * fraction)
    version_text = getattr(args, "engine_version", None) or f.version
    version = parse_vllm_version(version_text)
    version_band = "V0" if f.v0 else None  # a V0 log is V0 whatever its version number
    max_len = f.max_model_len or getattr(args, "context", None) or 0
    seqs = f.max_num_seqs or getattr(args, "parallel", None) or 256
    if f.max_num_batched_tokens:
        tokens = f.max_num_batched_tokens
    elif f.v0 and not f.chunked_prefill:
        tokens = max(max_len, 2048)  # V0 without chunked prefill profiles a whole max_model_len prompt
    else:
        tokens = getattr(args, "max_num_batched_tokens", None) or 2048
    printed_overhead = None
    if f.kv_bytes is not None and f.weights_bytes is not None:
        printed_overhead = budget - f.weights_bytes - f.kv_bytes
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
    ov = vllm_overhead(
        hidden=spec.hidden_size,
        intermediate=intermediate_size_estimate(spec),
        vocab=spec.vocab_size,
        weights_bytes=weights,
        budget_bytes=budget,
        profile=VllmProfile(max_num_seqs=seqs, max_num_batched_tokens=max(tokens, seqs), version=version),
        band=version_band,
    )
    kv = budget - weights - ov.total
    kv_type = f.kv_cache_dtype if f.kv_cache_dtype in ("fp8", "auto") else (getattr(args, "kv_type", None) or "auto")
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
        target = f.kv_bytes
        settings.append(
            f"pin the pool this engine found: --kv-cache-memory={target} ({target / GIB:.2f} GiB; rendered by the "
            "plan itself when engine.version ≥ 0.11)"
        )
        if f.kv_cache_memory_hint is not None:
            settings.append(f"vLLM's own advice for the requested budget: --kv-cache-memory={f.kv_cache_memory_hint}")
        match = (f.kv_bytes + weights + ov.total) / total
        settings.append(
            f"engine.memory_fraction: {match:.3f} makes the plan's pool equal this engine's "
            f"(the log ran {fraction:.3f}; the plan keeps a {ov.margin / GIB:.2f} GiB margin on top)"
        )
        if printed_overhead is not None:
            settings.append(
                f"measured overhead {printed_overhead / GIB:.2f} GiB vs the plan's {ov.total / GIB:.2f} GiB "
                f"({ov.band}); add this log to sizing/data/vllm_evidence.csv to refit"
            )
    if version_text is None and not f.v0:
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
    p.add_argument("--gpu", default="nvidia-l4", help="GPU type when the log prints no total")
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
