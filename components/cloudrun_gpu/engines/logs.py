"""Start-up logs: what an engine printed about its memory, and which profile reads a given log (issue 18).

Each engine profile owns its parser (:meth:`EngineProfile.parse_log`, :meth:`EngineProfile.recognises_log`); this
module holds what they share: the :class:`LogFacts` record they fill, the number/unit helpers, and the two registry
look-ups ``python -m stack calibrate`` asks (:func:`detect_log_engine`, :func:`parse_start_up_log`). A profile
without a parser is refused by name, not guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cloudrun_gpu.engines.base import PROFILES, profile
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.limits import GIB, MIB

NUM = r"([\d.,]+)"
"""A printed number, with thousands separators (``12,345``) or a decimal point."""


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


def number(text: str) -> float:
    """A printed number, thousands separators dropped."""
    return float(text.replace(",", ""))


def size_bytes(text: str, unit: str) -> int:
    """Bytes from a number and a unit; vLLM's older "GB" means GiB (it divides by 2**30)."""
    scale = {"gib": GIB, "gb": GIB, "mib": MIB, "mb": MIB, "kib": 1024, "b": 1}[unit.lower()]
    return int(number(text) * scale)


def last(pattern: str, text: str, flags: int = 0) -> re.Match[str] | None:
    """The last match: a log that restarts or re-profiles prints its final state last."""
    found = list(re.finditer(pattern, text, flags))
    return found[-1] if found else None


def detect_log_engine(text: str) -> str:
    """The engine whose log this is: the first registered profile, in :attr:`EngineProfile.log_detect_order`, that
    recognises it (Ollama's runner prints llama.cpp's lines too, so Ollama asks first; llama.cpp is the fallback)."""
    for p in sorted(PROFILES.values(), key=lambda p: p.log_detect_order):
        if p.recognises_log(text):
            return p.name
    return "llama.cpp"


def parse_start_up_log(text: str, engine: str | None = None) -> LogFacts:
    """The memory facts in a start-up log, read by the engine's own profile (``engine`` or the detected one); a
    ConfigError on ``--engine`` for an engine that is not registered or has no log parser."""
    name = engine or detect_log_engine(text)
    try:
        p = profile(name)
    except ConfigError as exc:
        raise ConfigError("--engine", name, exc.problem, exc.fix, exc.allowed) from None
    facts = p.parse_log(text)
    if facts is None:
        readable = ", ".join(n for n, q in PROFILES.items() if q.reads_logs)
        raise ConfigError(
            "--engine",
            name,
            f"engine {name} has no start-up log parser (its profile defines no parse_log)",
            f"pass the log of an engine calibrate reads, or add parse_log to the {name} profile",
            readable,
        )
    return facts
