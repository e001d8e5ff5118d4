"""Mutation-strength tests for the cache service's request handling (container/cache/semcache/app.py; issue 23:
never sampled before this pass).

What a client of the cache sees, pinned whole: the error bodies (status, ``type``, ``message``), which answers are
complete enough to store, the non-streamed answer rebuilt from an SSE stream, the SSE events a stored answer is
replayed as, the structured log line, the per-instance counters, the upstream ID token (fetched once, with the
audience, refreshed when it expires) and the Cloud Run URL the service accepts as its own audience. The metadata
server and the upstream are ``httpx.MockTransport`` stand-ins (no network); the request paths through the running
app, with a real Valkey/Redis store, are in ``tests/test_cache.py`` and ``tests/test_cache_safety.py``, plus the
end-to-end cases at the bottom of this file.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from .test_cache import store as store  # the real Valkey/Redis server, started once per session
from .test_cache_support import (
    AUDIENCE,
    ISSUER,
    ROOT,
    StoreServer,
    StubUpstream,
    free_port,
    run_cache,
    serve,
    signed_caller,
)

sys.path.insert(0, str(ROOT / "container" / "cache"))  # as the container runs it (test_cache_support does too)

from semcache import app as A
from semcache.app import (
    METADATA,
    METADATA_IDENTITY,
    Refused,
    Stats,
    UpstreamAuth,
    assemble,
    cloud_run_audience,
    complete_answer,
    create_app,
    parse,
    read_body,
    replay_chunks,
)
from semcache.config import Config
from semcache.store import StoreDown

CHAT_ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 7,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "one two three four five"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- refusals and the gateway error ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (413, "invalid_request_error"),
        (499, "invalid_request_error"),
        (500, "server_error"),
        (503, "server_error"),  # any 5xx
    ],
)
def test_a_refusal_is_an_openai_error_body_prefixed_cache(status: int, kind: str) -> None:
    resp = A._refusal(status, "no thanks")
    assert resp.status_code == status
    assert json.loads(bytes(resp.body)) == {"error": {"message": "cache: no thanks", "type": kind}}


def test_a_bad_gateway_is_a_502_upstream_error_that_keeps_the_decision_headers() -> None:
    resp = A._bad_gateway("upstream unreachable (ConnectError)", {"x-cache": "miss"})
    assert resp.status_code == 502 and resp.headers["x-cache"] == "miss"
    assert json.loads(bytes(resp.body)) == {
        "error": {"message": "cache: upstream unreachable (ConnectError)", "type": "upstream_error"}
    }


# --- the request body --------------------------------------------------------------------------------------------


def _request(body: bytes, declared: int | None = None, pieces: int = 1) -> Request:
    chunks = [body[i::pieces] for i in range(pieces)] if pieces > 1 else [body]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


def test_a_body_at_the_limit_is_read_whole() -> None:
    assert _run(read_body(_request(b"x" * 10, declared=10), 10)) == b"x" * 10
    assert _run(read_body(_request(b"abcdef", pieces=3), 6)) == b"adbecf"  # the pieces, joined in order


@pytest.mark.parametrize(("declared", "pieces"), [(11, 1), (None, 1), (None, 4), (5, 4)])
def test_a_body_past_the_limit_is_a_413_declared_or_streamed(declared: int | None, pieces: int) -> None:
    with pytest.raises(Refused) as err:
        _run(read_body(_request(b"x" * 11, declared=declared, pieces=pieces), 10))
    assert (err.value.status, str(err.value)) == (413, "request body above 10 bytes")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b'{"a": [[[1]]]}', "JSON nested deeper than 3 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than 3 levels"),  # past the parser's recursion limit
    ],
)
def test_a_body_that_is_no_json_or_too_deep_is_a_400(raw: bytes, message: str) -> None:
    with pytest.raises(Refused) as err:
        parse(raw, 3)
    assert (err.value.status, str(err.value)) == (400, message)


def test_a_body_at_the_depth_limit_is_parsed() -> None:
    assert parse(b'{"a": [1]}', 3) == {"a": [1]}


# --- which answers are stored --------------------------------------------------------------------------------------


def _chat(**choice: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop", **choice}]
    }


@pytest.mark.parametrize(
    ("endpoint", "body", "stored"),
    [
        ("chat", _chat(), True),
        ("chat", _chat(finish_reason="length"), True),  # cut at max_tokens is still the answer to that request
        ("chat", _chat(finish_reason="tool_calls"), False),
        ("chat", _chat(finish_reason=None), False),
        ("chat", _chat(message={"role": "assistant", "content": None}), False),
        ("chat", _chat(message={"role": "assistant", "content": "x", "tool_calls": [{"id": "t"}]}), False),
        ("chat", _chat(message="hi"), False),
        ("chat", {**_chat(), "error": {"message": "x"}}, False),
        ("chat", {"choices": []}, False),
        ("chat", {"choices": [_chat()["choices"][0]] * 2}, False),
        ("chat", {"choices": ["hi"]}, False),
        ("chat", {"choices": "hi"}, False),
        ("chat", ["not", "an", "object"], False),
        ("completions", {"choices": [{"index": 0, "text": "hi", "finish_reason": "stop"}]}, True),
        ("completions", {"choices": [{"index": 0, "text": None, "finish_reason": "stop"}]}, False),
        ("completions", _chat(), False),  # a chat-shaped body on the completions endpoint has no text
    ],
)
def test_only_one_finished_plain_text_choice_is_worth_storing(endpoint: str, body: Any, stored: bool) -> None:
    assert complete_answer(endpoint, body) is stored


# --- a streamed answer, rebuilt -------------------------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [choice], **extra}


def test_a_complete_chat_stream_is_rebuilt_as_the_answer_the_engine_would_have_sent() -> None:
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "one two"}),
        _chunk({"content": " three"}),
        _chunk({}, "stop"),
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}},
    ]
    assert assemble("chat", chunks) == {
        "id": "c1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "one two three"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }


def test_a_completions_stream_is_rebuilt_without_usage_when_none_was_sent() -> None:
    chunks = [
        {"id": "t1", "created": 9, "model": "m", "choices": [{"index": 0, "text": "a b", "finish_reason": None}]},
        {"id": "t2", "created": 10, "model": "n", "choices": [{"index": 0, "text": "", "finish_reason": "length"}]},
    ]
    assert assemble("completions", chunks) == {
        "id": "t1",
        "object": "text_completion",
        "created": 9,
        "model": "m",
        "choices": [{"index": 0, "text": "a b", "finish_reason": "length"}],
    }


@pytest.mark.parametrize(
    "chunks",
    [
        [],
        [_chunk({"content": "no end"})],  # never finished
        [_chunk({"content": "x"}), {"choices": [{"index": 1, "delta": {"content": "y"}, "finish_reason": "stop"}]}],
        [_chunk({"tool_calls": [{"id": "t"}]}), _chunk({}, "stop")],
    ],
    ids=["empty", "unfinished", "second-choice", "tool-call"],
)
def test_an_incomplete_or_unstorable_stream_rebuilds_nothing(chunks: list[dict[str, Any]]) -> None:
    assert assemble("chat", chunks) is None


# --- a stored answer, replayed -------------------------------------------------------------------------------------


def _events(raw: list[bytes]) -> list[Any]:
    assert raw[-1] == b"data: [DONE]\n\n"
    assert all(e.startswith(b"data: ") and e.endswith(b"\n\n") for e in raw)
    return [json.loads(e[6:]) for e in raw[:-1]]


def test_a_stored_chat_answer_is_replayed_as_the_engines_chunks_four_words_each() -> None:
    base = {"id": "c1", "created": 7, "model": "m", "object": "chat.completion.chunk"}
    events = _events(replay_chunks("chat", CHAT_ANSWER, include_usage=True))
    assert events == [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "one two three four "}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "five"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": CHAT_ANSWER["usage"]},
    ]
    assert len(_events(replay_chunks("chat", CHAT_ANSWER, include_usage=False))) == 4


def test_a_stored_completion_is_replayed_as_text_chunks() -> None:
    answer = {
        "id": "t",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": "a  b\nc", "finish_reason": "length"}],
    }
    base = {"id": "t", "created": 1, "model": "m", "object": "text_completion"}
    assert _events(replay_chunks("completions", answer, include_usage=True)) == [
        {**base, "choices": [{"index": 0, "text": "a  b\nc", "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "text": "", "finish_reason": "length"}]},
    ]


# --- the log line and the counters --------------------------------------------------------------------------------


def test_a_log_line_is_one_json_object_cloud_logging_maps(capsys: pytest.CaptureFixture[str]) -> None:
    A.log("WARNING", "cache store failed", event="store-failed", reason="x")
    assert capsys.readouterr().out == (
        '{"severity": "WARNING", "message": "cache store failed", "component": "semantic-cache", '
        '"event": "store-failed", "reason": "x"}\n'
    )


def test_the_counters_start_at_zero_and_round_the_saved_seconds() -> None:
    stats = Stats()
    assert stats.as_dict() == {"hit": 0, "miss": 0, "bypass": 0, "saved_gpu_s": 0.0}
    stats.hit, stats.miss, stats.bypass, stats.saved_gpu_s = 3, 2, 1, 1.23456
    assert stats.as_dict() == {"hit": 3, "miss": 2, "bypass": 1, "saved_gpu_s": 1.235}


# --- the upstream's ID token and the service's own audience ----------------------------------------------------


class Metadata:
    """The metadata server, played by an ``httpx.MockTransport``: it records each request."""

    def __init__(self, status: int = 200, token: str = "tok-1\n") -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.token = token

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = str(request.url)
        if path.startswith(METADATA_IDENTITY):
            return httpx.Response(self.status, text=self.token)
        if path == METADATA + "project/numeric-project-id":
            return httpx.Response(200, text="123456789\n")
        if path == METADATA + "instance/region":
            return httpx.Response(200, text="projects/123456789/regions/europe-west1\n")
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


def test_a_local_upstream_gets_no_authorization_header() -> None:
    md = Metadata()
    assert _run(UpstreamAuth("none", "https://llm", md.client()).headers()) == {}
    assert md.requests == []


def test_the_id_token_is_fetched_once_for_the_upstreams_audience_and_renewed_when_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    md = Metadata()
    auth = UpstreamAuth("google-id-token", "https://llm-1.europe-west1.run.app", md.client())
    now = [1000.0]
    # only the app's clock moves (the event loop keeps the real one)
    monkeypatch.setattr(A, "time", SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter))

    async def twice() -> list[dict[str, str]]:
        return [await auth.headers(), await auth.headers()]

    assert _run(twice()) == [{"authorization": "Bearer tok-1"}] * 2
    [first] = md.requests
    assert first.url.params["audience"] == "https://llm-1.europe-west1.run.app"
    assert first.headers["Metadata-Flavor"] == "Google"
    assert auth.expires == 1000.0 + 45 * 60  # ID tokens live one hour; renewed 15 minutes before
    now[0] = 1000.0 + 45 * 60  # still valid at the very second
    _run(auth.headers())
    assert len(md.requests) == 1
    now[0] += 1
    md.token = "tok-2"
    assert _run(auth.headers()) == {"authorization": "Bearer tok-2"}
    assert len(md.requests) == 2


def test_a_metadata_server_error_is_raised_not_sent_as_an_empty_token() -> None:
    auth = UpstreamAuth("google-id-token", "https://llm", Metadata(status=500).client())
    with pytest.raises(httpx.HTTPStatusError):
        _run(auth.headers())


def test_off_cloud_run_there_is_no_own_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_SERVICE", raising=False)
    md = Metadata()
    assert _run(cloud_run_audience(md.client())) is None
    assert md.requests == []


def test_on_cloud_run_the_own_audience_is_the_deterministic_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "llm-cache")
    md = Metadata()
    assert _run(cloud_run_audience(md.client())) == "https://llm-cache-123456789.europe-west1.run.app"
    assert [r.headers["Metadata-Flavor"] for r in md.requests] == ["Google", "Google"]
    # a metadata server that does not answer is given up on after 2 s, not the client's 900 s upstream timeout
    two = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert [r.extensions["timeout"] for r in md.requests] == [two, two]


def test_an_unreachable_metadata_server_means_no_own_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "llm-cache")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no metadata server", request=request)

    assert _run(cloud_run_audience(httpx.AsyncClient(transport=httpx.MockTransport(down)))) is None


# --- through the running app, with the real store -----------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[tuple[StubUpstream, str]]:
    stub = StubUpstream(delay_s=0.0)
    with serve(stub.app()) as base:
        yield stub, base


def test_a_hit_says_how_it_matched_and_the_gpu_seconds_it_saved(
    upstream: tuple[StubUpstream, str], store: StoreServer
) -> None:
    stub, base = upstream
    who = signed_caller()
    body = {"model": "m", "messages": [{"role": "user", "content": "Why is the sky blue?"}], "temperature": 0}
    with run_cache(base, store.port, None, semantic=False) as cache:
        miss = httpx.post(f"{cache}/v1/chat/completions?x=1", json=body, headers=who)
        hit = httpx.post(f"{cache}/v1/chat/completions?x=1", json=body, headers=who)
        stats = httpx.get(f"{cache}/cache/stats").json()
    assert (miss.headers["x-cache"], "x-cache-reason" in miss.headers) == ("miss", False)
    assert hit.headers["x-cache"] == "hit" and hit.headers["x-cache-match"] == "exact"
    assert hit.headers["x-cache-similarity"] == "1.0000"
    saved = hit.headers["x-cache-saved-gpu-seconds"]
    assert len(saved.split(".")[1]) == 3 and float(saved) > 0
    assert hit.json() == miss.json()
    # vector_search: None, as no vector was written or searched yet (the store decides its mode on the first one)
    assert stats == {"hit": 1, "miss": 1, "bypass": 0, "saved_gpu_s": round(float(saved), 3), "vector_search": None}
    assert len(stub.calls) == 1
    assert stub.calls[0]["headers"]["content-type"] == "application/json"


def test_a_refresh_is_a_miss_that_says_so(upstream: tuple[StubUpstream, str], store: StoreServer) -> None:
    stub, base = upstream
    who = signed_caller()
    body = {"model": "m", "prompt": "Count to three", "temperature": 0}
    with run_cache(base, store.port, None, semantic=False) as cache:
        httpx.post(f"{cache}/v1/completions", json=body, headers=who)
        again = httpx.post(f"{cache}/v1/completions", json=body, headers={**who, "x-cache-control": "Refresh"})
    assert (again.headers["x-cache"], again.headers["x-cache-reason"]) == ("miss", "refresh requested")
    assert len(stub.calls) == 2


def test_an_answer_above_max_entry_bytes_is_served_not_stored(
    upstream: tuple[StubUpstream, str], store: StoreServer, capfd: pytest.CaptureFixture[str]
) -> None:
    stub, base = upstream
    who = signed_caller()
    body = {"model": "m", "prompt": "Say something long", "temperature": 0}
    with run_cache(base, store.port, None, semantic=False, max_entry_bytes=50) as cache:
        first = httpx.post(f"{cache}/v1/completions", json=body, headers=who)
        second = httpx.post(f"{cache}/v1/completions", json=body, headers=who)
    assert first.status_code == 200 and [first.headers["x-cache"], second.headers["x-cache"]] == ["miss", "miss"]
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    assert {"severity": "INFO", "message": "cache not stored", "component": "semantic-cache", "event": "not-stored",
            "reason": "response above max_entry_bytes"} in lines  # fmt: skip
    assert len(stub.calls) == 2


def test_other_paths_get_a_404_that_lists_what_is_served(
    upstream: tuple[StubUpstream, str], store: StoreServer
) -> None:
    _, base = upstream
    with run_cache(base, store.port, None, semantic=False) as cache:
        r = httpx.delete(f"{cache}/metrics")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "cache: only POST /v1/chat/completions, POST /v1/completions and GET /v1/models are served",
            "type": "invalid_request_error",
        }
    }


def test_the_model_list_is_forwarded_as_a_bypass(upstream: tuple[StubUpstream, str], store: StoreServer) -> None:
    _, base = upstream
    with run_cache(base, store.port, None, semantic=False) as cache:
        r = httpx.get(f"{cache}/v1/models")
        ready = httpx.get(f"{cache}/cache/ready").json()
    assert r.json() == {"object": "list", "data": [{"id": "stub"}]}
    assert (r.headers["x-cache"], r.headers["x-cache-reason"]) == ("bypass", "not a cached endpoint")
    assert ready == {"ready": True, "semantic": False}


def test_without_an_upstream_token_the_answer_is_a_502_naming_why(
    upstream: tuple[StubUpstream, str], store: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``upstream_auth: google-id-token`` and the metadata server unreachable (a closed loopback port stands in
    for it): no token, and the caller gets a 502 that says so, never a request sent to the model without it."""
    stub, base = upstream
    monkeypatch.setattr(A, "METADATA_IDENTITY", f"http://127.0.0.1:{free_port()}/identity")
    with run_cache(base, store.port, None, semantic=False, upstream_auth="google-id-token") as cache:
        r = httpx.post(
            f"{cache}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-cache-control": "bypass"},
        )
    assert r.status_code == 502 and r.headers["x-cache"] == "bypass"
    assert r.json() == {"error": {"message": "cache: no upstream token (ConnectError)", "type": "upstream_error"}}
    assert stub.calls == []


@pytest.mark.parametrize(
    ("failure", "line"),
    [
        (
            StoreDown("store timed out"),
            {"severity": "WARNING", "message": "cache store failed", "component": "semantic-cache",
             "event": "store-failed", "reason": "store timed out"},
        ),
        (
            RuntimeError("a bug"),
            {"severity": "ERROR", "message": "cache store failed", "component": "semantic-cache",
             "event": "store-failed", "reason": "RuntimeError"},
        ),
    ],
    ids=["store-down", "unexpected"],
)  # fmt: skip
def test_a_failed_store_write_is_logged_and_the_answer_still_served(
    upstream: tuple[StubUpstream, str],
    store: StoreServer,
    capfd: pytest.CaptureFixture[str],
    failure: Exception,
    line: dict[str, str],
) -> None:
    """After the model answered nothing may fail the response: a store that went down is a WARNING with its
    reason, anything else an ERROR naming only the exception's type (never its text, which may hold the answer)."""
    _, base = upstream
    app = create_app(Config(upstream_url=base, valkey_port=store.port, audiences=(AUDIENCE,), semantic=False),
                     None, ISSUER.certs)  # fmt: skip

    async def put(*args: Any, **kwargs: Any) -> None:
        raise failure

    app.state.cache.store.put = put
    body = {"model": "m", "prompt": "Store me", "temperature": 0}
    with serve(app) as cache:
        r = httpx.post(f"{cache}/v1/completions", json=body, headers=signed_caller())
    assert r.status_code == 200 and r.json()["choices"][0]["text"].endswith("Store me")
    logged = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith("{")]
    assert [x for x in logged if x.get("event") == "store-failed"] == [line]


def test_the_start_up_line_says_what_the_instance_serves_with(
    upstream: tuple[StubUpstream, str], store: StoreServer, capfd: pytest.CaptureFixture[str]
) -> None:
    _, base = upstream
    with run_cache(base, store.port, None, semantic=False, ttl_s=600):
        pass
    logged = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith("{")]
    assert [x for x in logged if x["message"] == "cache ready"] == [
        {"severity": "INFO", "message": "cache ready", "component": "semantic-cache", "semantic": False,
         "threshold": Config(upstream_url="").threshold, "ttl_s": 600, "audiences": 1}
    ]  # fmt: skip


def test_a_streamed_answer_is_stored_with_the_gpu_seconds_it_took(
    upstream: tuple[StubUpstream, str], store: StoreServer
) -> None:
    """The replay's saved seconds are the first answer's own duration: no more than the wall time around it."""
    _, base = upstream
    who = signed_caller()
    body = {"model": "m", "messages": [{"role": "user", "content": "Stream me"}], "temperature": 0, "stream": True}
    with run_cache(base, store.port, None, semantic=False) as cache:
        before = time.perf_counter()
        first = httpx.post(f"{cache}/v1/chat/completions", json=body, headers=who)
        took = time.perf_counter() - before
        hit = httpx.post(f"{cache}/v1/chat/completions", json=body, headers=who)
    assert first.headers["x-cache"] == "miss" and hit.headers["x-cache"] == "hit"
    assert 0 < float(hit.headers["x-cache-saved-gpu-seconds"]) <= took


def _error_stream_upstream() -> Any:
    """An upstream whose stream finishes ([DONE]) but carried an error event, or an event that is not JSON."""
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> StreamingResponse:
        question = (await request.json())["messages"][-1]["content"]
        bad = b'data: {"error": {"message": "overloaded"}}\n\n' if "error" in question else b"data: {oops\n\n"

        async def events() -> Any:
            yield b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "partial"}}]}\n\n'
            yield bad
            yield b'data: {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.mark.parametrize("question", ["an error event", "a broken event"])
def test_a_finished_stream_with_an_error_or_broken_event_is_never_stored(question: str, store: StoreServer) -> None:
    who = signed_caller()
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "temperature": 0, "stream": True}
    with serve(_error_stream_upstream()) as base, run_cache(base, store.port, None, semantic=False) as cache:
        first = httpx.post(f"{cache}/v1/chat/completions", json=body, headers=who)
        again = httpx.post(f"{cache}/v1/chat/completions", json=body, headers=who)
    assert first.status_code == 200 and b"[DONE]" in first.content  # relayed to the client as it came
    assert [first.headers["x-cache"], again.headers["x-cache"]] == ["miss", "miss"]


def test_the_decision_and_refusal_lines_say_what_happened(
    upstream: tuple[StubUpstream, str], store: StoreServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """The decision line's latency is the cache's own time for the request (never more than the wall time around
    it); a refused path is a WARNING naming the method."""
    _, base = upstream
    with run_cache(base, store.port, None, semantic=False) as cache:
        capfd.readouterr()
        before = time.perf_counter()
        httpx.post(
            f"{cache}/v1/completions", json={"model": "m", "prompt": "hi"}, headers={"x-cache-control": "bypass"}
        )
        took_ms = (time.perf_counter() - before) * 1000
        httpx.put(f"{cache}/admin")
    logged = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith("{")]
    [decision] = [x for x in logged if x.get("cache") == "bypass"]
    assert 0 <= decision["latency_ms"] <= took_ms
    assert {k: v for k, v in decision.items() if k != "latency_ms"} == {
        "severity": "INFO", "message": "cache bypass", "component": "semantic-cache", "cache": "bypass",
        "endpoint": "completions", "reason": "bypass requested",
    }  # fmt: skip
    assert [x for x in logged if x.get("event") == "refused"] == [
        {"severity": "WARNING", "message": "cache refused a path", "component": "semantic-cache", "event": "refused",
         "method": "PUT"}
    ]  # fmt: skip
