"""Concurrency tuner (practice A3): load-test an OpenAI-compatible endpoint at several levels.

The A2 rule only gives a starting point. This drives streaming chat completions at each
concurrency level with a bounded number of requests and a time limit, reports throughput and
latency (p50/p95 time-to-first-token, tokens/s), and recommends ``max_instance_request_concurrency``:
the smallest level that reaches 90 % of the best token throughput while its p95 TTFT stays
within the SLO. Standard library only, so it runs anywhere the stack runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any, TextIO

import yaml

from stack.config import PROJECT

GOOD_ENOUGH = 0.9


@dataclass
class RequestResult:
    ok: bool
    ttft_s: float
    latency_s: float
    tokens: int
    error: str = ""


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    wall_s: float
    requests_per_s: float
    tokens_per_s: float
    ttft_p50_s: float
    ttft_p95_s: float
    latency_p50_s: float
    latency_p95_s: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def stream_chat(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> RequestResult:
    """One streaming chat completion; TTFT = first chunk carrying content."""
    parsed = urllib.parse.urlsplit(url)
    conn_cls = HTTPSConnection if parsed.scheme == "https" else HTTPConnection
    conn = conn_cls(parsed.netloc, timeout=timeout_s)
    start = time.perf_counter()
    ttft = 0.0
    tokens = 0
    try:
        conn.request(
            "POST",
            parsed.path.rstrip("/") + "/v1/chat/completions",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        )
        resp = conn.getresponse()
        if resp.status != 200:
            return RequestResult(False, 0, time.perf_counter() - start, 0, f"HTTP {resp.status}")
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                tokens += 1
                if not ttft:
                    ttft = time.perf_counter() - start
        return RequestResult(tokens > 0, ttft, time.perf_counter() - start, tokens, "" if tokens else "no tokens")
    except (OSError, ValueError) as exc:
        return RequestResult(False, 0, time.perf_counter() - start, 0, str(exc))
    finally:
        conn.close()


def run_level(
    url: str,
    concurrency: int,
    *,
    requests: int,
    max_seconds: float,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout_s: float,
    progress: TextIO | None = None,
) -> LevelResult:
    """``requests`` streaming calls with ``concurrency`` in flight; stops starting new ones after ``max_seconds``."""
    results: list[RequestResult] = []
    lock = threading.Lock()
    issued = 0
    start = time.perf_counter()

    def worker() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= requests or time.perf_counter() - start > max_seconds:
                    return
                issued += 1
            r = stream_chat(url, body, headers, timeout_s)
            with lock:
                results.append(r)
                if progress is not None:
                    progress.write("." if r.ok else "x")
                    progress.flush()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    wall = time.perf_counter() - start
    ok = [r for r in results if r.ok]
    return LevelResult(
        concurrency=concurrency,
        requests=len(results),
        errors=len(results) - len(ok),
        wall_s=round(wall, 3),
        requests_per_s=round(len(ok) / wall, 3) if wall else 0.0,
        tokens_per_s=round(sum(r.tokens for r in ok) / wall, 2) if wall else 0.0,
        ttft_p50_s=round(percentile([r.ttft_s for r in ok], 50), 3),
        ttft_p95_s=round(percentile([r.ttft_s for r in ok], 95), 3),
        latency_p50_s=round(percentile([r.latency_s for r in ok], 50), 3),
        latency_p95_s=round(percentile([r.latency_s for r in ok], 95), 3),
    )


def recommend(levels: list[LevelResult], ttft_slo_s: float) -> tuple[int, str]:
    """Smallest level within 90 % of the best throughput among levels that meet the TTFT SLO."""
    healthy = [lv for lv in levels if lv.errors == 0 and lv.ttft_p95_s <= ttft_slo_s]
    if not healthy:
        lowest = min(levels, key=lambda lv: lv.concurrency)
        return lowest.concurrency, f"no level met p95 TTFT ≤ {ttft_slo_s}s without errors; keeping the lowest"
    best = max(lv.tokens_per_s for lv in healthy)
    pick = min((lv for lv in healthy if lv.tokens_per_s >= GOOD_ENOUGH * best), key=lambda lv: lv.concurrency)
    return pick.concurrency, (
        f"{pick.tokens_per_s} tok/s is ≥ {GOOD_ENOUGH:.0%} of the best {best} tok/s with "
        f"p95 TTFT {pick.ttft_p95_s}s ≤ {ttft_slo_s}s; higher levels only add queueing"
    )


def write_back(stack_path: Path, concurrency: int) -> list[str]:
    """Store the recommendation in a stack file (comments are not preserved); returns what changed.

    Sets ``scaling.max_concurrency``; when that is below the engine's parallel slots it lowers
    ``engine.parallel`` too, so the engine and Cloud Run keep agreeing (R6).
    """
    from stack.config import load_stack

    stack = stack_path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    parallel = load_stack(stack, stack_path.parent).sizing.max_parallel_sequences
    data = yaml.safe_load(stack_path.read_text()) or {}
    config = data.setdefault("config", {})
    config.setdefault(f"{PROJECT}:scaling", {})["max_concurrency"] = concurrency
    changed = [f"scaling.max_concurrency = {concurrency}"]
    if concurrency < parallel:
        config.setdefault(f"{PROJECT}:engine", {})["parallel"] = concurrency
        changed.append(f"engine.parallel = {concurrency} (was {parallel})")
    stack_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return changed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="base URL of an OpenAI-compatible server, e.g. https://llm-….run.app")
    p.add_argument("--concurrency", default="1,2,4,8", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=16, help="requests per level (bounded)")
    p.add_argument("--max-seconds", type=float, default=120, help="stop starting requests after this per level")
    p.add_argument("--timeout", type=float, default=120, help="per-request timeout in seconds")
    p.add_argument("--prompt", default="Write one sentence about Cloud Run GPUs.")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--model", default="model")
    p.add_argument("--ttft-slo", type=float, default=2.0, help="p95 time-to-first-token target in seconds")
    p.add_argument("--header", action="append", default=[], help="extra header 'Name: value' (e.g. an ID token)")
    p.add_argument("--write-stack", help="path of a Pulumi.<stack>.yaml to store the recommendation in")
    p.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    levels = sorted({int(x) for x in str(args.concurrency).split(",") if x.strip()})
    if not levels or min(levels) < 1 or max(levels) > 1000:
        print("error: --concurrency must list levels between 1 and 1000", file=sys.stderr)
        return 2
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    body = {
        "model": args.model,
        "stream": True,
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": args.prompt}],
    }
    results = []
    for level in levels:
        sys.stderr.write(f"concurrency {level:>4}: ")
        r = run_level(
            args.url,
            level,
            requests=args.requests,
            max_seconds=args.max_seconds,
            body=body,
            headers=headers,
            timeout_s=args.timeout,
            progress=sys.stderr,
        )
        sys.stderr.write(
            f" {r.requests} req, {r.errors} err, {r.tokens_per_s} tok/s, TTFT p50 {r.ttft_p50_s}s p95 {r.ttft_p95_s}s\n"
        )
        results.append(r)
    pick, why = recommend(results, args.ttft_slo)
    if args.write_stack:
        for change in write_back(Path(args.write_stack), pick):
            sys.stderr.write(f"{args.write_stack}: {change}\n")
    if args.json:
        print(
            json.dumps({"levels": [asdict(r) for r in results], "recommended_concurrency": pick, "why": why}, indent=2)
        )
    else:
        print(
            f"{'conc':>5} {'req':>5} {'err':>4} {'req/s':>7} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p95':>9}"
            f" {'lat p50':>8} {'lat p95':>8}"
        )
        for r in results:
            print(
                f"{r.concurrency:>5} {r.requests:>5} {r.errors:>4} {r.requests_per_s:>7} {r.tokens_per_s:>8} "
                f"{r.ttft_p50_s:>9} {r.ttft_p95_s:>9} {r.latency_p50_s:>8} {r.latency_p95_s:>8}"
            )
        print(f"\nrecommended max_instance_request_concurrency: {pick} ({why})")
        print(f"  pulumi config set --path '{PROJECT}:scaling.max_concurrency' {pick}")
    return 0
