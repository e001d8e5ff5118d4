"""Feed the capacity planner a throughput measured on a real llama-server and write the region table.

    .venv/bin/python scripts/capacity_report.py            # measure, print, and update docs/engine-results.md
    .venv/bin/python scripts/capacity_report.py --print    # measure and print only

Starts llama-server (CPU build, ``make engine``) on loopback with the flags the sizing renders, runs the A3
load test (``stack.loadtest.run_level``) at a few bounded levels, takes the level ``recommend`` picks as the
per-instance throughput, and plans a two-region example (europe-west1 L4 quota 3, then europe-west4 RTX PRO
6000 quota 2). The box is a CPU, not a GPU: the measured numbers stand in for the per-instance numbers you
would measure with ``python -m stack loadtest`` against one instance of each GPU type. The section it writes
(``## Capacity plan …``) replaces its previous version in the doc, or is appended; the rest is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloudrun_gpu.capacity import (  # noqa: E402
    Region,
    Target,
    fmt,
    from_level,
    plan_capacity,
    render_region_table,
)
from cloudrun_gpu.errors import ConfigError  # noqa: E402

from harness.llamacpp import (  # noqa: E402
    CACHE,
    free_port,
    local_args,
    plan_for_gguf,
    read_engine_env,
    run_server,
    wait_ready,
)
from stack.loadtest import LevelResult, recommend, run_level  # noqa: E402

HEADING = "## Capacity plan from a measured throughput (issue 13)"
DOC = ROOT / "docs" / "engine-results.md"
REGIONS = [Region("europe-west1", "nvidia-l4", 3), Region("europe-west4", "nvidia-rtx-pro-6000", 2)]
TARGET_INSTANCES = 3.5
"""The example target, in measured instances' worth of requests/s: more than the L4 quota alone serves."""
REFUSED_INSTANCES = 6
"""A target above both quotas together (5 instances), to show the refusal."""


def measure(
    levels: list[int], requests: int, max_tokens: int
) -> tuple[list[LevelResult], str, str, list[tuple[float, float]]]:
    """Load-test a real llama-server (-c 1024 -np 4 q8_0, as the A3 section) at each level; returns the
    levels, the flags used, a note on when, and the 1-minute load average before and after each level:
    other jobs share the cores, so a level can be slow because of them, and the doc shows it."""
    env = read_engine_env(CACHE)
    sizing = plan_for_gguf(Path(env["SMOLLM2_GGUF"]), 1024, 4, "q8_0")
    port = free_port()
    body = {
        "model": "m",
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Write one sentence about Cloud Run GPUs."}],
    }
    rows = []
    loads: list[tuple[float, float]] = []
    load = os.getloadavg()[0]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as tmp:
        argv = [env["LLAMA_SERVER"], *local_args(sizing.engine_args, port)]
        with run_server(argv, port, Path(tmp) / "server.log") as srv:
            wait_ready(srv)
            for level in levels:
                before = os.getloadavg()[0]
                rows.append(
                    run_level(srv.base, level, requests=requests, max_seconds=60, body=body, headers={}, timeout_s=60)
                )
                loads.append((before, os.getloadavg()[0]))
                sys.stderr.write(f"concurrency {level}: {rows[-1]}\n")
    flags = " ".join(Path(a).name if a.startswith("/") else a for a in sizing.engine_args)
    note = f"measured {when}; 1-minute load average {load:.2f} on the {os.cpu_count()} cores at the start"
    return rows, flags, note, loads


def section(
    rows: list[LevelResult], flags: str, note: str, loads: list[tuple[float, float]], args: argparse.Namespace
) -> str:
    pick, why = recommend(rows, args.ttft_slo)
    level = next(r for r in rows if r.concurrency == pick)
    source = (
        f"CPU-measured stand-in: llama-server CPU build on {platform.machine()} (2 shared cores), SmolLM2-135M Q4_1, "
        f"loadtest level {pick}"
    )
    measured = from_level(level, source)
    throughput = {"nvidia-l4": measured, "nvidia-rtx-pro-6000": measured}
    target = Target(requests_per_s=round(TARGET_INSTANCES * measured.requests_per_s, 3))
    plan = plan_capacity(target, REGIONS, throughput)
    refused_target = round(REFUSED_INSTANCES * measured.requests_per_s, 3)
    try:
        plan_capacity(Target(requests_per_s=refused_target), REGIONS, throughput)
        refusal = "(not refused: unexpected)"
    except ConfigError as e:
        refusal = e.render()
    out = [
        HEADING,
        "",
        "`.venv/bin/python scripts/capacity_report.py` starts llama-server on loopback with the flags the sizing "
        f"renders (`{flags}`, listen address moved to loopback), runs the A3 load test (`stack.loadtest.run_level`, "
        f"{args.requests} requests per level, `max_tokens` {args.max_tokens}) and feeds the level `recommend` picks "
        "into `cloudrun_gpu.capacity.plan_capacity` for two regions listed nearest first: europe-west1 (L4, GPU "
        "quota 3) then europe-west4 (RTX PRO 6000, GPU quota 2), no zonal redundancy.",
        "",
        "**These are CPU-measured numbers, not GPU numbers.** The planner's inputs are per-instance throughputs; on "
        "Cloud Run you measure one instance of each GPU type with `python -m stack loadtest URL` and pass each "
        "type its own. Here the one CPU measurement stands in for both types, so the table shows how the planner "
        "fills and spills, not what an L4 or an RTX PRO 6000 serves.",
        "",
        f"Load test ({note}; the cores are shared, so rates vary from level to level and run to run; "
        "the last column shows when other jobs were busy):",
        "",
        "| concurrency | requests | errors | req/s | output tok/s | TTFT p50 (s) | TTFT p95 (s) "
        "| load avg before → after |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r.concurrency} | {r.requests} | {r.errors} | {r.requests_per_s} | {r.tokens_per_s} "
            f"| {r.ttft_p50_s} | {r.ttft_p95_s} | {a:.2f} → {b:.2f} |"
            for r, (a, b) in zip(rows, loads, strict=True)
        ),
        "",
        f"Recommended concurrency: **{pick}** ({why}). Per-instance throughput fed to the planner: "
        f"{fmt(measured.requests_per_s)} req/s, {fmt(measured.output_tokens_per_s)} output tok/s at concurrency "
        f"{pick}.",
        "",
        f"Target {fmt(target.requests_per_s or 0)} req/s ({TARGET_INSTANCES} × the measured instance): the L4 quota "
        "in the nearer region fills first, the rest spills into europe-west4.",
        "",
        render_region_table(plan),
        "",
        f"A target of {fmt(refused_target)} req/s ({REFUSED_INSTANCES} instances' worth, above both quotas "
        "together) is refused:",
        "",
        "```",
        refusal,
        "```",
        "",
    ]
    return "\n".join(out)


def write_section(doc: Path, text: str) -> None:
    """Replace this script's section (from its heading to the next ``## `` heading or the end), else append."""
    current = doc.read_text()
    start = current.find(HEADING)
    if start < 0:
        doc.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    nxt = current.find("\n## ", start + len(HEADING))
    rest = "" if nxt < 0 else current[nxt + 1 :]
    doc.write_text(current[:start] + text + ("\n" + rest if rest else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", default="1,2,4,8", help="comma-separated levels (bounded)")
    p.add_argument("--requests", type=int, default=8, help="requests per level (bounded)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--ttft-slo", type=float, default=2.0)
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--print", action="store_true", help="print the section only; leave the doc alone")
    args = p.parse_args(argv)
    levels = sorted({int(x) for x in args.concurrency.split(",") if x.strip()})
    rows, flags, note, loads = measure(levels, args.requests, args.max_tokens)
    text = section(rows, flags, note, loads, args)
    print(text)
    if not args.print:
        write_section(args.doc, text)
        sys.stderr.write(f"wrote '{HEADING}' into {args.doc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
