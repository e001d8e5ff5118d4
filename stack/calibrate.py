"""Calibrate the sizing plan against an engine's own start-up log (``python -m stack calibrate LOG``).

Reads a vLLM, llama.cpp or Ollama start-up log, pulls out what the engine printed about its memory
(weights, non-torch, activation peak, CUDA graphs, KV pool in GiB / blocks / tokens, the flags it ran
with), predicts the same quantities the way the plan does for that exact configuration, and prints
both side by side with the stack setting that would make the plan match (for vLLM: the KV bytes to pin
with ``--kv-cache-memory-bytes``, the exact flag the vLLM profile renders, and the ``engine.memory_fraction`` that
gives the plan the engine's pool).

Each engine's profile reads its own log (``EngineProfile.parse_log``, ``cloudrun_gpu.engines.logs``); this module
only asks the registry and compares. Without a model (``--model``/``--gguf``/``--hf-config``) it prints what the
log says and the overhead the engine measured; with one it also predicts.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloudrun_gpu import limits
from cloudrun_gpu.engines import engine_names, profile
from cloudrun_gpu.engines.logs import LogFacts, parse_start_up_log
from cloudrun_gpu.engines.vllm import KV_CACHE_MEMORY_FLAG
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.limits import GIB
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

_FRACTION_LIMITS = vars(EngineSettings)["__pydantic_fields__"]["memory_fraction"].metadata
MAX_MEMORY_FRACTION = float(next(m.le for m in _FRACTION_LIMITS if getattr(m, "le", None)))
"""The largest ``engine.memory_fraction`` a stack accepts, read from ``EngineSettings`` (one place)."""


def parse_log(text: str, engine: str | None = None) -> LogFacts:
    """The memory facts in a start-up log, read by the engine's profile (``cloudrun_gpu.engines``): ``engine``, or
    the one that recognises the log. ConfigError on ``--engine`` for an engine without a log parser."""
    return parse_start_up_log(text, engine)


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
    """Compare by the memory rules the engine follows (its profile's sizing record: vLLM's, or llama.cpp's and
    Ollama's)."""
    if profile(facts.engine).sizing_name == "vllm":
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
            f"overhead are larger than this engine's; pin the pool with {KV_CACHE_MEMORY_FLAG} instead"
        )
    if match > MAX_MEMORY_FRACTION:
        return None, (
            f"engine.memory_fraction {match:.3f} would reproduce this pool, but the stack allows at most "
            f"{MAX_MEMORY_FRACTION} (R5 keeps the rest for the CUDA context); pin the pool with {KV_CACHE_MEMORY_FLAG}"
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
            settings.append(f"pin the pool this engine found: {KV_CACHE_MEMORY_FLAG}={f.kv_bytes} (vLLM ≥ 0.11)")
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
            f"pin the pool this engine found: {KV_CACHE_MEMORY_FLAG}={f.kv_bytes} ({f.kv_bytes / GIB:.2f} GiB; "
            "rendered by the plan itself when engine.version ≥ 0.11)"
        )
        if f.kv_cache_memory_hint is not None:
            # vLLM's log spells it --kv-cache-memory=N (an abbreviation argparse accepts); advise the exact flag.
            settings.append(
                f"vLLM's own advice for the requested budget: {KV_CACHE_MEMORY_FLAG}={f.kv_cache_memory_hint}"
            )
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
    engine = profile(f.engine).sizing_name  # the memory rules it follows (an extra engine may borrow llama.cpp's)
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
    p.add_argument("--engine", choices=engine_names(), help="default: detected from the log (the registered engines)")
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
    try:
        facts = parse_log(text, args.engine)
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
