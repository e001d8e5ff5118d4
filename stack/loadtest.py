"""Concurrency tuner (practice A3): load-test an OpenAI-compatible endpoint at several levels.

The A2 rule only gives a starting point. This drives streaming chat completions at each
concurrency level with a bounded number of requests and a time limit, reports throughput and
latency (p50/p95 time-to-first-token, inter-token latency, output tokens/s), and recommends
``max_instance_request_concurrency``: the smallest level that reaches 90 % of the best token throughput
while its p95 TTFT stays within the SLO.

Real shapes (#24): by default every request gets its own prompt and output length, drawn from normal
distributions (``--prompt-tokens 256:64 --output-tokens 128:32``: mean and standard deviation, the shape
``guidellm``'s synthetic data uses: ``prompt_tokens``/``prompt_tokens_stdev``/``output_tokens``/
``output_tokens_stdev``), seeded so a re-run sends the same requests. Prompts are distinct random
sequences of common English words (one BPE token each in most tokenizers, with a leading space), so no
request reuses another's prefix cache; the server's own ``usage`` counts are reported when it sends them.
``ignore_eos`` (llama.cpp server and vLLM extension) makes the model write the full drawn length;
``--no-ignore-eos`` for servers that refuse unknown fields. ``--prompt``/``--max-tokens`` keep the old
fixed request. ``--plot`` draws the curve (matplotlib); ``--from-guidellm`` reads a ``guidellm``
``benchmarks.json`` instead of driving the load here. The driver is standard library only, so it runs
anywhere the stack runs; only the plot needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable
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
    itl_s: float = float("nan")
    """Mean time between content chunks after the first (inter-token latency); NaN for one chunk."""
    prompt_tokens: int | None = None
    """The server's ``usage.prompt_tokens`` when it sends usage."""


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
    itl_p50_ms: float = float("nan")
    itl_p95_ms: float = float("nan")
    prompt_tokens_mean: float = float("nan")
    """Mean prompt tokens per request as the server counted them (NaN: it sent no usage)."""
    output_tokens_mean: float = float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value at rank ⌈q/100 × n⌉; NaN for no values.

    ``math.ceil``, not ``round(x + 0.5)``: Python rounds halves to even, so the old form put the median of 10
    values at rank 6 and of 4 values at rank 2 (issue 23, tests/test_loadtest_driver.py)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered) / 100)))
    return ordered[rank - 1]


def stream_chat(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> RequestResult:
    """One streaming chat completion; TTFT = first chunk carrying content."""
    parsed = urllib.parse.urlsplit(url)
    conn_cls = HTTPSConnection if parsed.scheme == "https" else HTTPConnection
    conn = conn_cls(parsed.netloc, timeout=timeout_s)
    start = time.perf_counter()
    ttft = 0.0
    tokens = 0
    last = 0.0
    gaps: list[float] = []
    prompt_tokens: int | None = None
    usage_tokens: int | None = None
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
            usage = chunk.get("usage") or {}
            if usage:
                prompt_tokens = usage.get("prompt_tokens", prompt_tokens)
                usage_tokens = usage.get("completion_tokens", usage_tokens)
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                now = time.perf_counter()
                tokens += 1
                if not ttft:
                    ttft = now - start
                else:
                    gaps.append(now - last)
                last = now
        # a chunk can carry more than one token; the server's count wins when it sends one
        count = usage_tokens if usage_tokens else tokens
        itl = statistics.fmean(gaps) if gaps else float("nan")
        return RequestResult(
            tokens > 0,
            ttft,
            time.perf_counter() - start,
            count,
            "" if tokens else "no tokens",
            itl_s=itl,
            prompt_tokens=prompt_tokens,
        )
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
    make_body: Callable[[int], dict[str, Any]] | None = None,
) -> LevelResult:
    """``requests`` streaming calls with ``concurrency`` in flight; stops starting new ones after ``max_seconds``.

    ``make_body(i)`` gives request ``i`` its own body (a real-shape workload); without it every request sends
    ``body``."""
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
                index = issued
                issued += 1
            r = stream_chat(url, make_body(index) if make_body else body, headers, timeout_s)
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
        itl_p50_ms=round(percentile(itls := [r.itl_s * 1000 for r in ok if r.itl_s == r.itl_s], 50), 2),
        itl_p95_ms=round(percentile(itls, 95), 2),
        prompt_tokens_mean=round(statistics.fmean(pt), 1)
        if (pt := [r.prompt_tokens for r in ok if r.prompt_tokens is not None])
        else float("nan"),
        output_tokens_mean=round(statistics.fmean(r.tokens for r in ok), 1) if ok else float("nan"),
    )


# --- real shapes (#24) ----------------------------------------------------------------------------------------

_WORD_TEXT = (
    "the of and to in is for on that with as it be by this are from at or an was have not but can all "
    "more one will data time new use also they which their has each would other when there what up out "
    "about so some like than into only over just most any could after first how our these two may well "
    "way make through much back years work before system model cloud service run plan"
)
WORDS = _WORD_TEXT.split()
"""Common English words: one token each (with a leading space) in the BPE vocabularies of the usual models."""


def parse_shape(text: str, flag: str) -> tuple[int, int]:
    """``MEAN`` or ``MEAN:STDEV`` (tokens) → (mean, stdev); refuses anything else naming the flag."""
    try:
        parts = [int(x) for x in str(text).split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or parts[0] < 1 or (len(parts) == 2 and parts[1] < 0):
        raise ValueError(f"{flag} {text!r}: give MEAN or MEAN:STDEV tokens, MEAN ≥ 1 and STDEV ≥ 0 (e.g. 256:64)")
    return parts[0], parts[1] if len(parts) == 2 else 0


@dataclass(frozen=True)
class Shape:
    """A synthetic workload: per-request prompt and output lengths from seeded normal distributions, clipped to
    [1, mean + 3 × stdev] so a long tail cannot overrun the context the server was sized for."""

    prompt_mean: int
    prompt_stdev: int
    output_mean: int
    output_stdev: int
    seed: int = 42
    ignore_eos: bool = True

    def lengths(self, i: int) -> tuple[int, int]:
        rng = random.Random(f"{self.seed}:{i}")

        def draw(mean: int, stdev: int) -> int:
            return max(1, min(mean + 3 * stdev, round(rng.gauss(mean, stdev)))) if stdev else mean

        return draw(self.prompt_mean, self.prompt_stdev), draw(self.output_mean, self.output_stdev)

    def body(self, i: int, model: str) -> dict[str, Any]:
        """Request ``i``: a distinct prompt of the drawn length and ``max_tokens`` the drawn output length."""
        prompt_len, output_len = self.lengths(i)
        rng = random.Random(f"{self.seed}:{i}:words")
        words = " ".join(rng.choice(WORDS) for _ in range(max(1, prompt_len - 8)))
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": output_len,
            "temperature": 0,
            "messages": [{"role": "user", "content": f"Continue this text: {words}"}],
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        return body

    def describe(self) -> str:
        return (
            f"prompt ~{self.prompt_mean}±{self.prompt_stdev} tokens, output {self.output_mean}±{self.output_stdev} "
            f"tokens (normal, seed {self.seed}{', ignore_eos' if self.ignore_eos else ''})"
        )


def plot_levels(levels: list[LevelResult], pick: int, path: Path, title: str, ttft_slo_s: float) -> Path:
    """Output tokens/s and p95 TTFT against concurrency, the recommended level marked; PNG or SVG by suffix.

    matplotlib (pinned in requirements-dev.txt) is imported here only, so the driver itself stays stdlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [lv.concurrency for lv in levels]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(xs, [lv.tokens_per_s for lv in levels], "o-", color="tab:blue", label="output tokens/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("output tokens/s", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(xs, [lv.ttft_p95_s for lv in levels], "s--", color="tab:red", label="p95 TTFT")
    ax2.axhline(ttft_slo_s, color="tab:red", alpha=0.3, lw=1)
    ax2.set_ylabel("p95 time to first token (s)", color="tab:red")
    chosen = next(lv for lv in levels if lv.concurrency == pick)
    ax.plot([pick], [chosen.tokens_per_s], marker="*", ms=18, color="gold", mec="black", zorder=5)
    ax.annotate(
        f"recommended: {pick}",
        (pick, chosen.tokens_per_s),
        textcoords="offset points",
        xytext=(-40, -22),
        fontsize=9,
    )
    ax.set_title(textwrap.fill(title, 90), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else {})
    plt.close(fig)
    return path


def levels_from_guidellm(report: Path) -> list[LevelResult]:
    """The levels of a ``guidellm`` ``benchmarks.json`` (one benchmark per concurrency, ``--profile concurrent``)
    as :class:`LevelResult`, so the same recommendation rule, plot and ``--write-stack`` apply to its numbers.

    Read by key, tolerant of the report's nesting (guidellm 0.8: ``benchmarks[].config.strategy.streams``,
    ``metrics.<name>.successful.{mean,median,percentiles.p95}``)."""
    doc = json.loads(report.read_text())
    out = []
    for b in doc.get("benchmarks", []):
        strategy = (b.get("config") or {}).get("strategy") or b.get("args", {}).get("strategy") or {}
        conc = strategy.get("streams") or strategy.get("max_concurrency")
        if isinstance(conc, list):
            conc = conc[0]
        m = b.get("metrics") or {}

        def stat(name: str, key: str, scale: float = 1.0, m: dict[str, Any] = m) -> float:
            dist = (m.get(name) or {}).get("successful") or {}
            v = dist.get(key) if key != "p95" else (dist.get("percentiles") or {}).get("p95")
            return round(float(v) * scale, 3) if v is not None else float("nan")

        totals = (m.get("request_totals") or {}) or (b.get("request_totals") or {})
        ok = int(totals.get("successful", 0))
        errs = int(totals.get("errored", 0))
        wall = float(b.get("duration") or 0.0)
        out.append(
            LevelResult(
                concurrency=int(conc or 0),
                requests=ok + errs,
                errors=errs,
                wall_s=round(wall, 3),
                requests_per_s=stat("requests_per_second", "mean"),
                tokens_per_s=stat("output_tokens_per_second", "mean"),
                ttft_p50_s=stat("time_to_first_token_ms", "median", 1e-3),
                ttft_p95_s=stat("time_to_first_token_ms", "p95", 1e-3),
                latency_p50_s=stat("request_latency", "median"),
                latency_p95_s=stat("request_latency", "p95"),
                itl_p50_ms=stat("inter_token_latency_ms", "median"),
                itl_p95_ms=stat("inter_token_latency_ms", "p95"),
                prompt_tokens_mean=stat("prompt_token_count", "mean"),
                output_tokens_mean=stat("output_token_count", "mean"),
            )
        )
    if not out or any(lv.concurrency < 1 for lv in out):
        raise ValueError(
            f"{report}: no concurrency levels found; run guidellm with --profile kind=concurrent and --output kind=json"
        )
    return sorted(out, key=lambda lv: lv.concurrency)


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
    p.add_argument(
        "url",
        nargs="?",
        help="base URL of an OpenAI-compatible server, e.g. https://llm-….run.app (or --from-guidellm)",
    )
    p.add_argument("--concurrency", default="1,2,4,8", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=16, help="requests per level (bounded)")
    p.add_argument("--max-seconds", type=float, default=120, help="stop starting requests after this per level")
    p.add_argument("--timeout", type=float, default=120, help="per-request timeout in seconds")
    p.add_argument("--prompt", help="one fixed prompt for every request (the old workload; default: real shapes)")
    p.add_argument("--max-tokens", type=int, help="fixed output length (overrides --output-tokens; 32 with --prompt)")
    p.add_argument("--prompt-tokens", default="256:64", help="prompt length MEAN[:STDEV] in tokens (normal)")
    p.add_argument("--output-tokens", default="128:32", help="output length MEAN[:STDEV] in tokens (normal)")
    p.add_argument("--seed", type=int, default=42, help="seed of the length and prompt draws")
    p.add_argument("--no-ignore-eos", action="store_true", help="don't ask the server to ignore end-of-sequence")
    p.add_argument("--plot", help="write throughput and p95 TTFT against concurrency here (.png or .svg)")
    p.add_argument("--from-guidellm", help="read a guidellm benchmarks.json instead of driving the load here")
    p.add_argument("--model", default="model")
    p.add_argument("--ttft-slo", type=float, default=2.0, help="p95 time-to-first-token target in seconds")
    p.add_argument("--header", action="append", default=[], help="extra header 'Name: value' (e.g. an ID token)")
    p.add_argument("--write-stack", help="path of a Pulumi.<stack>.yaml to store the recommendation in")
    p.add_argument("--json", action="store_true")


def _workload(args: argparse.Namespace) -> tuple[dict[str, Any], Callable[[int], dict[str, Any]] | None, str]:
    """The fixed body (``--prompt``/``--max-tokens``), or a real-shape :class:`Shape` and its description."""
    if args.prompt is not None:
        body = {
            "model": args.model,
            "stream": True,
            "max_tokens": args.max_tokens or 32,
            "temperature": 0,
            "messages": [{"role": "user", "content": args.prompt}],
        }
        return body, None, f"one fixed prompt, max_tokens {body['max_tokens']}"
    pm, ps = parse_shape(args.prompt_tokens, "--prompt-tokens")
    om, os_ = parse_shape(args.output_tokens, "--output-tokens")
    if args.max_tokens is not None:
        om, os_ = args.max_tokens, 0
    shape = Shape(pm, ps, om, os_, seed=args.seed, ignore_eos=not args.no_ignore_eos)
    return shape.body(0, args.model), lambda i: shape.body(i, args.model), shape.describe()


def main(args: argparse.Namespace) -> int:
    levels = sorted({int(x) for x in str(args.concurrency).split(",") if x.strip()})
    if not levels or min(levels) < 1 or max(levels) > 1000:
        print("error: --concurrency must list levels between 1 and 1000", file=sys.stderr)
        return 2
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    try:
        body, make_body, workload = _workload(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = []
    if args.from_guidellm:
        try:
            results = levels_from_guidellm(Path(args.from_guidellm))
        except (OSError, ValueError) as exc:
            print(f"error: --from-guidellm: {exc}", file=sys.stderr)
            return 2
        workload = f"guidellm report {args.from_guidellm}"
    elif not args.url:
        print("error: give the server's URL, or --from-guidellm REPORT.json", file=sys.stderr)
        return 2
    else:
        sys.stderr.write(f"workload: {workload}\n")
    for level in levels if not args.from_guidellm else []:
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
            make_body=make_body,
        )
        sys.stderr.write(
            f" {r.requests} req, {r.errors} err, {r.tokens_per_s} tok/s, TTFT p50 {r.ttft_p50_s}s p95 {r.ttft_p95_s}s"
            f", ITL p50 {r.itl_p50_ms} ms\n"
        )
        results.append(r)
    pick, why = recommend(results, args.ttft_slo)
    if args.plot:
        title = f"{args.url or args.from_guidellm}: {workload}"
        plot_levels(results, pick, Path(args.plot), title, args.ttft_slo)
        sys.stderr.write(f"plot: {args.plot}\n")
    if args.write_stack:
        for change in write_back(Path(args.write_stack), pick):
            sys.stderr.write(f"{args.write_stack}: {change}\n")
    if args.json:
        print(
            json.dumps(
                {
                    "workload": workload,
                    "levels": [asdict(r) for r in results],
                    "recommended_concurrency": pick,
                    "why": why,
                },
                indent=2,
            )
        )
    else:
        print(f"workload: {workload}")
        print(
            f"{'conc':>5} {'req':>5} {'err':>4} {'req/s':>7} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p95':>9}"
            f" {'ITL p50 ms':>10} {'ITL p95 ms':>10} {'lat p50':>8} {'lat p95':>8} {'in tok':>7} {'out tok':>7}"
        )
        for r in results:
            print(
                f"{r.concurrency:>5} {r.requests:>5} {r.errors:>4} {r.requests_per_s:>7} {r.tokens_per_s:>8} "
                f"{r.ttft_p50_s:>9} {r.ttft_p95_s:>9} {r.itl_p50_ms:>10} {r.itl_p95_ms:>10} {r.latency_p50_s:>8} "
                f"{r.latency_p95_s:>8} {r.prompt_tokens_mean:>7} {r.output_tokens_mean:>7}"
            )
        print(f"\nrecommended max_instance_request_concurrency: {pick} ({why})")
        print(f"  pulumi config set --path '{PROJECT}:scaling.max_concurrency' {pick}")
    return 0
