"""The cache service's request keys and response handling where tests/test_cache*.py never went: message shapes
that are (or are not) the same request, answers that must not be stored, streams that must not be stored, the
upstream-token failure (502), the Cloud Run audience and the container's start-up with a bad environment.

The store-touching cases use Debian's real redis-server (tests/test_cache.py's ``store`` fixture) and the real
app over HTTP; the metadata server, which exists only on Google Cloud, is an ``httpx.MockTransport`` answering as
its documented endpoints do (paths, ``Metadata-Flavor: Google``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .test_cache import store as store
from .test_cache_support import ROOT, StoreServer, run_cache, serve, signed_caller

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.app import (
    METADATA,
    METADATA_IDENTITY,
    Refused,
    UpstreamAuth,
    app_from_env,
    assemble,
    cloud_run_audience,
    complete_answer,
    create_app,
    parse,
    replay_chunks,
)
from semcache.config import ENV, Config
from semcache.keys import CHAT, COMPLETIONS, NotCacheable, key_request

# --- keys: which requests are the same, which are never cached -----------------------------------------------


def chat_body(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": content}], **extra}


def test_text_parts_are_the_same_request_as_the_plain_string() -> None:
    """OpenAI clients send content as a string or as a list of ``{"type": "text"}`` parts: one cache entry."""
    plain = key_request(CHAT, chat_body("What is the capital of France?"))
    parts = key_request(
        CHAT, chat_body([{"type": "text", "text": "What is the capital "}, {"type": "text", "text": "of France?"}])
    )
    assert (parts.exact, parts.scope, parts.text) == (plain.exact, plain.scope, plain.text)


def test_a_one_string_prompt_list_is_the_same_completion_as_the_string() -> None:
    body = {"model": "m", "temperature": 0}
    listed = key_request(COMPLETIONS, {**body, "prompt": ["Once upon a time"]})
    plain = key_request(COMPLETIONS, {**body, "prompt": "Once upon a time"})
    assert (listed.exact, listed.scope, listed.text) == (plain.exact, plain.scope, "Once upon a time")
    assert listed.exact != key_request(CHAT, chat_body("Once upon a time")).exact, "endpoints never share entries"


@pytest.mark.parametrize(
    ("endpoint", "body", "reason"),
    [
        (CHAT, ["not", "an", "object"], "body is not a JSON object"),
        (CHAT, {"model": "m"}, "no messages"),
        (CHAT, {"model": "m", "messages": []}, "no messages"),
        (CHAT, {"model": "m", "messages": ["hi"]}, "no messages"),
        (CHAT, chat_body([{"type": "image_url", "image_url": {"url": "x"}}]), "non-text message content"),
        (CHAT, {"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages carry tool calls or names"),
        (CHAT, {"messages": [{"role": "tool", "content": "42"}]}, "messages carry tool calls or names"),
        (
            CHAT,
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]},
            "last message is not a user turn",
        ),
        (COMPLETIONS, {"prompt": ["two", "prompts"]}, "prompt is not a single string"),
        (COMPLETIONS, {"prompt": [1, 2, 3]}, "prompt is not a single string"),
        (COMPLETIONS, {"model": "m"}, "prompt is not a single string"),
    ],
)
def test_requests_that_cannot_be_cached_say_why(endpoint: str, body: Any, reason: str) -> None:
    """The reason is what the caller reads in ``x-cache-reason``."""
    with pytest.raises(NotCacheable) as err:
        key_request(endpoint, body)
    assert str(err.value) == reason


# --- which answers are stored, and a replay that reassembles to the stored answer ----------------------------


def chat_answer(**choice: Any) -> dict[str, Any]:
    base = {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{**base, **choice}]}


@pytest.mark.parametrize(
    ("endpoint", "body", "stored"),
    [
        (CHAT, chat_answer(), True),
        (CHAT, chat_answer(finish_reason="length"), True),
        (COMPLETIONS, {"choices": [{"index": 0, "text": "Paris.", "finish_reason": "stop"}]}, True),
        (CHAT, "Paris.", False),
        (CHAT, {**chat_answer(), "error": {"message": "overloaded"}}, False),
        (CHAT, {"choices": []}, False),
        (CHAT, {"choices": [chat_answer()["choices"][0]] * 2}, False),
        (CHAT, {"choices": ["Paris."]}, False),
        (CHAT, chat_answer(finish_reason="tool_calls"), False),
        (CHAT, chat_answer(finish_reason=None), False),
        (CHAT, chat_answer(message={"role": "assistant", "content": None, "tool_calls": [{"id": "t"}]}), False),
        (CHAT, chat_answer(message="Paris."), False),
        (COMPLETIONS, {"choices": [{"index": 0, "text": None, "finish_reason": "stop"}]}, False),
    ],
)
def test_only_one_finished_plain_text_answer_is_stored(endpoint: str, body: Any, stored: bool) -> None:
    assert complete_answer(endpoint, body) is stored


def sse_chunks(events: list[bytes]) -> list[dict[str, Any]]:
    payloads = [e.decode().removeprefix("data: ").strip() for e in events]
    assert payloads[-1] == "[DONE]"
    return [json.loads(d) for d in payloads[:-1]]


@pytest.mark.parametrize("endpoint", [CHAT, COMPLETIONS])
def test_a_replayed_stream_reassembles_to_the_stored_answer(endpoint: str) -> None:
    """The stream a hit replays carries the stored answer, word for word, its finish reason and usage."""
    usage = {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}
    text = "The  capital of France\nis Paris, on the Seine."
    if endpoint == CHAT:
        stored = chat_answer(finish_reason="length", message={"role": "assistant", "content": text})
    else:
        stored = {
            "id": "c1",
            "object": "text_completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
        }
    stored["usage"] = usage
    with_usage = sse_chunks(replay_chunks(endpoint, stored, include_usage=True))
    assert with_usage[-1]["usage"] == usage and with_usage[-1]["choices"] == []
    assert assemble(endpoint, with_usage) == stored
    without = sse_chunks(replay_chunks(endpoint, stored, include_usage=False))
    assert all("usage" not in c for c in without)
    assert assemble(endpoint, without) == {k: v for k, v in stored.items() if k != "usage"}


def test_streams_that_are_not_one_whole_plain_answer_are_not_assembled() -> None:
    def delta(content: str | None = None, finish: str | None = None, index: int = 0, **d: Any) -> dict[str, Any]:
        return {"id": "c", "choices": [{"index": index, "delta": {"content": content, **d}, "finish_reason": finish}]}

    assert assemble(CHAT, []) is None
    assert assemble(CHAT, [delta("Par"), delta("is.", "stop")]) is not None
    assert assemble(CHAT, [delta("Par"), delta("is.")]) is None, "never finished"
    assert assemble(CHAT, [delta("A"), delta("B", index=1), delta(finish="stop")]) is None, "a second choice"
    assert assemble(CHAT, [delta(tool_calls=[{"id": "t"}]), delta(finish="tool_calls")]) is None
    text: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "text": "Once", "finish_reason": None}]},
        {"choices": [{"text": " more"}]},
    ]
    assert assemble(COMPLETIONS, text) is None, "no finish reason"
    text[-1]["choices"][0]["finish_reason"] = "stop"
    done = assemble(COMPLETIONS, text)
    assert done is not None and done["choices"][0]["text"] == "Once more" and done["object"] == "text_completion"


def test_bodies_nested_beyond_what_the_parser_can_hold_are_a_400() -> None:
    """Deeper than Python's own JSON recursion limit: still a 400 naming the cap, never a 500."""
    with pytest.raises(Refused) as deep:
        parse(b"[" * 200_000 + b"]" * 200_000, 32)
    assert (deep.value.status, str(deep.value)) == (400, "JSON nested deeper than 32 levels")
    with pytest.raises(Refused) as bad:
        parse(b"{not json", 32)
    assert (bad.value.status, str(bad.value)) == (400, "body is not JSON")


# --- the metadata server: upstream ID tokens and the Cloud Run audience ---------------------------------------


class Metadata:
    """The metadata server's identity, project-number and region endpoints, as httpx transport; records requests."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("metadata-flavor") != "Google":
            return httpx.Response(403, text="Missing Metadata-Flavor:Google header")
        if self.status != 200:
            return httpx.Response(self.status, text="metadata server error")
        url = str(request.url).split("?")[0]
        texts = {
            METADATA_IDENTITY: f"id-token-{len(self.requests)}",
            METADATA + "project/numeric-project-id": "123456789\n",
            METADATA + "instance/region": "projects/123456789/regions/europe-west1",
        }
        return httpx.Response(200, text=texts[url]) if url in texts else httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


def test_the_upstream_id_token_is_fetched_for_the_gpu_service_and_reused() -> None:
    metadata = Metadata()

    async def scenario() -> list[dict[str, str]]:
        async with metadata.client() as client:
            auth = UpstreamAuth("google-id-token", "https://llm-gpu-123.europe-west1.run.app", client)
            return [await auth.headers(), await auth.headers()]

    assert asyncio.run(scenario()) == [{"authorization": "Bearer id-token-1"}] * 2
    (request,) = metadata.requests  # reused until shortly before it expires: one request
    assert request.url.params["audience"] == "https://llm-gpu-123.europe-west1.run.app"

    async def local() -> dict[str, str]:
        async with metadata.client() as client:
            return await UpstreamAuth("none", "http://127.0.0.1:8080", client).headers()

    assert asyncio.run(local()) == {} and len(metadata.requests) == 1


def test_the_cache_adds_its_own_run_app_url_as_an_audience_only_on_cloud_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def audience(metadata: Metadata) -> str | None:
        async with metadata.client() as client:
            return await cloud_run_audience(client)

    monkeypatch.delenv("K_SERVICE", raising=False)
    assert asyncio.run(audience(Metadata())) is None
    monkeypatch.setenv("K_SERVICE", "llm-cache")
    assert asyncio.run(audience(Metadata())) == "https://llm-cache-123456789.europe-west1.run.app"

    class Unreachable(Metadata):
        def handle(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("metadata.google.internal: no such host", request=request)

    assert asyncio.run(audience(Unreachable())) is None


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[str]]]:
    """An engine stand-in that answers 200 with an HTML page (a proxy's error page) on chat, and a stream with an
    unparseable chunk on completions; records each call."""
    calls: list[str] = []

    async def chat(request: Request) -> Response:
        calls.append("chat")
        return PlainTextResponse("<html>upstream proxy page</html>", 200)

    async def completions(request: Request) -> Response:
        calls.append("completions")

        async def events() -> Any:
            yield b'data: {"id": "c", "choices": [{"index": 0, "text": "Once", "finish_reason": null}]}\n\n'
            yield b"data: {not json\n\n"
            yield b'data: {"id": "c", "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}\n\n'
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), 200, media_type="text/event-stream")

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
        ]
    )
    with serve(app) as base:
        yield base, calls


def test_answers_that_are_not_json_or_streams_with_a_broken_chunk_are_relayed_but_never_stored(
    upstream: tuple[str, list[str]], store: StoreServer
) -> None:
    base_up, calls = upstream
    with run_cache(base_up, store.port, None, semantic=False) as base:
        who = signed_caller()
        for _ in range(2):
            r = httpx.post(f"{base}/v1/chat/completions", json=chat_body("Hi"), headers=who, timeout=30)
            assert r.status_code == 200 and r.text == "<html>upstream proxy page</html>"
            assert r.headers["x-cache"] == "miss"
        body = {"model": "m", "temperature": 0, "prompt": "Once", "stream": True}
        for _ in range(2):
            s = httpx.post(f"{base}/v1/completions", json=body, headers=who, timeout=30)
            assert s.status_code == 200 and s.headers["x-cache"] == "miss"
            assert "data: {not json" in s.text and s.text.rstrip().endswith("data: [DONE]"), "relayed as sent"
    assert calls == ["chat", "chat", "completions", "completions"], "nothing was served from the cache"


def test_no_upstream_token_is_a_502_naming_the_failure() -> None:
    """On Cloud Run the cache calls the GPU service with the metadata server's ID token: when the metadata server
    fails, the caller gets a 502 that says so, and the GPU service is never called without credentials."""
    metadata = Metadata(status=500)
    config = Config(upstream_url="http://127.0.0.1:9", upstream_auth="google-id-token", semantic=False)
    app = create_app(config)
    app.state.cache.auth.client = metadata.client()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cache") as client:
            return await client.post(
                "/v1/chat/completions", json=chat_body("Hi"), headers={"x-cache-control": "bypass"}
            )

    r = asyncio.run(call())
    assert r.status_code == 502 and r.headers["x-cache"] == "bypass"
    assert r.json() == {"error": {"message": "cache: no upstream token (HTTPStatusError)", "type": "upstream_error"}}
    assert [str(q.url).split("?")[0] for q in metadata.requests] == [METADATA_IDENTITY]


def test_the_container_refuses_to_start_without_its_upstream_and_says_which_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as stopped:
        app_from_env()
    assert stopped.value.code == 2
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["severity"] == "ERROR"
    assert line["message"] == "cache cannot start: CACHE_UPSTREAM_URL is required: the GPU service's URL"
    monkeypatch.setenv("CACHE_UPSTREAM_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("CACHE_SEMANTIC", "false")
    app = app_from_env()
    assert app.state.cache.config.upstream_url == "http://127.0.0.1:8080" and app.state.cache.embedder is None
