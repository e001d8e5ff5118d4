"""The cache service: an OpenAI-compatible reverse proxy that answers repeated questions itself.

Per request to ``/v1/chat/completions`` or ``/v1/completions``:

1. **bypass** (straight to the model, nothing read or written) when the caller sends
   ``x-cache-control: bypass``, has no verified identity (``semcache.identity``), the request is not
   reuse-safe (temperature is not 0 and there is no ``x-cache-reuse: allow`` opt-in), it is not cacheable
   (images, tools, function calling, logprobs, ``n`` > 1 …), or the store fails in any way;
2. **hit**: the exact key, else the nearest embedding in the same tenant and scope at or above the
   threshold; the stored answer is returned as JSON, or replayed as SSE chunks when ``stream`` is true;
3. **miss**: the model answers (streamed through as it comes when ``stream`` is true); a complete,
   successful answer is stored (never an error, never a stream that broke or was cut off).
   ``x-cache-control: refresh`` skips step 2 and overwrites the entry.

Only these two paths and ``GET /v1/models`` reach the model; every other path is refused with 404 (the
cache never lends its own identity to the engine's admin or metrics endpoints). Bodies above
``max_body_bytes`` get 413, bodies nested deeper than ``max_json_depth`` get 400, both before any work.

Every answer carries ``x-cache: hit|miss|bypass`` (with ``x-cache-match``, ``x-cache-similarity``,
``x-cache-saved-gpu-seconds`` on hits and ``x-cache-reason`` on bypasses), and every decision is one
JSON log line on stdout, which Cloud Run turns into a structured ``jsonPayload`` entry that a
log-based metric can count (https://cloud.google.com/run/docs/logging#writing_structured_logs).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from semcache.config import Config
from semcache.embed import Embedder, Vector
from semcache.guard import same_order
from semcache.iam import MetadataToken
from semcache.identity import CertFetcher, GoogleCerts, Verifier
from semcache.keys import CHAT, ENDPOINTS, Keyed, NotCacheable, json_depth, key_request
from semcache.store import Entry, Store, StoreDown

METADATA_IDENTITY = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity"
"""Where a Cloud Run instance gets an ID token for its service account, with the audience the receiving
service expects (https://cloud.google.com/run/docs/authenticating/service-to-service)."""
METADATA = "http://metadata.google.internal/computeMetadata/v1/"
MODELS = "/v1/models"
"""The one non-inference path served (GET): clients list the model before they ask it."""
_WORDS = re.compile(r"\S+\s*|\s+")


class Refused(Exception):
    """A request refused before any work: the HTTP status and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refusal(status: int, message: str) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": f"cache: {message}", "type": kind}}, status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"request body above {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body above {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes, depth: int) -> Any:
    """JSON with a nesting cap: a body nested deeper than ``depth`` is a 400, never a 500."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise Refused(400, f"JSON nested deeper than {depth} levels") from None
    except ValueError:
        raise Refused(400, "body is not JSON") from None
    if not json_depth(body, depth):
        raise Refused(400, f"JSON nested deeper than {depth} levels")
    return body


async def cloud_run_audience(client: httpx.AsyncClient) -> str | None:
    """The service's deterministic URL ``https://<service>-<project number>.<region>.run.app``
    (https://cloud.google.com/run/docs/triggering/https-request#deterministic), from ``K_SERVICE`` (set by
    Cloud Run, https://cloud.google.com/run/docs/container-contract#env-vars) and the metadata server's
    ``project/numeric-project-id`` and ``instance/region`` (container contract, metadata server). None off
    Cloud Run."""
    service = os.environ.get("K_SERVICE")
    if not service:
        return None
    flavor = {"Metadata-Flavor": "Google"}
    try:
        number = (await client.get(METADATA + "project/numeric-project-id", headers=flavor, timeout=2)).text
        region = (await client.get(METADATA + "instance/region", headers=flavor, timeout=2)).text
    except httpx.HTTPError:
        return None
    return f"https://{service}-{number.strip()}.{region.strip().rsplit('/', 1)[-1]}.run.app"


def log(severity: str, message: str, **fields: Any) -> None:
    """One structured log line: ``severity`` and ``message`` are the fields Cloud Logging maps; the rest
    land in ``jsonPayload``. Only decision lines carry a ``cache`` field (hit/miss/bypass), which the
    component's log-based metrics count; other lines use ``event``."""
    print(json.dumps({"severity": severity, "message": message, "component": "semantic-cache", **fields}), flush=True)


class UpstreamAuth:
    """The Authorization header for the GPU service: an ID token from the metadata server (cached until
    shortly before it expires), or nothing for a local upstream."""

    def __init__(self, mode: str, audience: str, client: httpx.AsyncClient) -> None:
        self.mode = mode
        self.audience = audience
        self.client = client
        self.token = ""
        self.expires = 0.0

    async def headers(self) -> dict[str, str]:
        if self.mode != "google-id-token":
            return {}
        if time.monotonic() > self.expires:
            resp = await self.client.get(
                METADATA_IDENTITY, params={"audience": self.audience}, headers={"Metadata-Flavor": "Google"}
            )
            resp.raise_for_status()
            self.token = resp.text.strip()
            self.expires = time.monotonic() + 45 * 60  # ID tokens live one hour
        return {"authorization": f"Bearer {self.token}"}


class Stats:
    """Per-instance counters (``GET /cache/stats``); the fleet-wide numbers come from the log lines."""

    def __init__(self) -> None:
        self.hit = 0
        self.miss = 0
        self.bypass = 0
        self.saved_gpu_s = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"hit": self.hit, "miss": self.miss, "bypass": self.bypass, "saved_gpu_s": round(self.saved_gpu_s, 3)}


def _bad_gateway(why: str, headers: dict[str, str]) -> Response:
    return JSONResponse({"error": {"message": f"cache: {why}", "type": "upstream_error"}}, 502, headers)


def complete_answer(endpoint: str, body: Any) -> bool:
    """A response worth storing: one choice that finished, plain text, no tool calls, no error."""
    if not isinstance(body, dict) or "error" in body:
        return False
    choices = body.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return False
    choice = choices[0]
    if choice.get("finish_reason") not in ("stop", "length"):
        return False
    if endpoint == CHAT:
        msg = choice.get("message")
        return isinstance(msg, dict) and isinstance(msg.get("content"), str) and not msg.get("tool_calls")
    return isinstance(choice.get("text"), str)


def assemble(endpoint: str, chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The non-streamed response equivalent to a complete SSE stream, or None if it was not complete."""
    if not chunks:
        return None
    text: list[str] = []
    finish: str | None = None
    usage: Any = None
    for c in chunks:
        if c.get("usage"):
            usage = c["usage"]
        for choice in c.get("choices") or []:
            if choice.get("index", 0) != 0:
                return None
            if endpoint == CHAT:
                delta = choice.get("delta") or {}
                if delta.get("tool_calls"):
                    return None
                text.append(delta.get("content") or "")
            else:
                text.append(choice.get("text") or "")
            finish = choice.get("finish_reason") or finish
    first = chunks[0]
    if endpoint == CHAT:
        choice_out: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": "".join(text)}}
        obj = "chat.completion"
    else:
        choice_out = {"index": 0, "text": "".join(text)}
        obj = "text_completion"
    choice_out["finish_reason"] = finish
    out = {"id": first.get("id"), "object": obj, "created": first.get("created"), "model": first.get("model")}
    out["choices"] = [choice_out]
    if usage:
        out["usage"] = usage
    return out if complete_answer(endpoint, out) else None


def replay_chunks(endpoint: str, answer: dict[str, Any], include_usage: bool) -> list[bytes]:
    """A stored answer as the SSE events the engine would have streamed (same chunk objects, ``[DONE]`` last)."""
    choice = answer["choices"][0]
    base = {"id": answer.get("id"), "created": answer.get("created"), "model": answer.get("model")}
    pieces = [m.group(0) for m in _WORDS.finditer(choice["message"]["content"] if endpoint == CHAT else choice["text"])]
    groups = ["".join(pieces[i : i + 4]) for i in range(0, len(pieces), 4)]
    events: list[dict[str, Any]] = []
    if endpoint == CHAT:
        obj = "chat.completion.chunk"
        events.append(
            {
                **base,
                "object": obj,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
            }
        )
        events += [
            {**base, "object": obj, "choices": [{"index": 0, "delta": {"content": g}, "finish_reason": None}]}
            for g in groups
        ]
        events.append(
            {**base, "object": obj, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
        )
    else:
        obj = "text_completion"
        events += [{**base, "object": obj, "choices": [{"index": 0, "text": g, "finish_reason": None}]} for g in groups]
        events.append(
            {**base, "object": obj, "choices": [{"index": 0, "text": "", "finish_reason": choice["finish_reason"]}]}
        )
    if include_usage and answer.get("usage"):
        events.append({**base, "object": obj, "choices": [], "usage": answer["usage"]})
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


class CacheApp:
    """The request handling; :func:`create_app` wires it into Starlette."""

    def __init__(self, config: Config, embedder: Embedder | None = None, certs: CertFetcher | None = None) -> None:
        self.config = config
        self.embedder = embedder if embedder is not None or not config.semantic else Embedder(config.embedding_model)
        if not config.semantic:
            self.embedder = None
        self.store = Store(
            config.valkey_host,
            config.valkey_port,
            ttl_s=config.ttl_s,
            max_entries=config.max_entries,
            timeout_s=config.store_timeout_s,
            max_entries_per_tenant=config.max_entries_per_tenant,
            vector_search=config.vector_search,
            credentials=MetadataToken(config.metadata_token_url) if config.valkey_auth == "iam" else None,
            ca_pem=config.valkey_ca_pem,
        )
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(900.0, connect=10.0))
        self.auth = UpstreamAuth(config.upstream_auth, config.upstream_url, self.client)
        self.verifier = Verifier(config.audiences, certs or GoogleCerts(self.client), config.trust_cloud_run_iam)
        self.stats = Stats()
        # Embeddings run on their own threads (one per CPU), never on the event loop; at most ``embed_queue``
        # wait or run at once, and a request beyond that skips the semantic lookup instead of queueing.
        self.pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="embed")
        self.embed_slots = asyncio.Semaphore(config.embed_queue)

    async def embed(self, text: str) -> Vector | None:
        """The embedding of ``text``, or None: no model, a text longer than the model's window (never matched
        semantically), or the embedding queue full."""
        if self.embedder is None or self.embed_slots.locked():
            return None
        async with self.embed_slots:
            embedder = self.embedder
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(self.pool, embedder.fits, text):
                return None
            return await loop.run_in_executor(self.pool, embedder.embed, text)

    def _record(self, outcome: str, endpoint: str, started: float, **fields: Any) -> dict[str, str]:
        """Count, log and turn one decision into response headers."""
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        headers = {"x-cache": outcome}
        if outcome == "hit":
            self.stats.saved_gpu_s += fields["saved_gpu_s"]
            headers["x-cache-match"] = fields["match"]
            headers["x-cache-similarity"] = f"{fields['similarity']:.4f}"
            headers["x-cache-saved-gpu-seconds"] = f"{fields['saved_gpu_s']:.3f}"
        if fields.get("reason"):
            headers["x-cache-reason"] = fields["reason"]
        log(
            "INFO", f"cache {outcome}", cache=outcome, endpoint=endpoint,
            latency_ms=round((time.perf_counter() - started) * 1000, 2), **fields,
        )  # fmt: skip
        return headers

    async def cached(self, request: Request) -> Response:
        started = time.perf_counter()
        endpoint = ENDPOINTS[request.url.path]
        try:
            raw = await read_body(request, self.config.max_body_bytes)
            body = await run_in_threadpool(parse, raw, self.config.max_json_depth)
        except Refused as exc:
            return _refusal(exc.status, str(exc))
        control = request.headers.get("x-cache-control", "").strip().lower()
        keyed: Keyed | None = None
        tenant: str | None = None
        reason = ""
        if control == "bypass":
            reason = "bypass requested"
        else:
            principal, reason = await self.verifier.principal(request.headers)
            if principal is not None:
                tenant = principal.tenant
                try:
                    keyed = await run_in_threadpool(key_request, endpoint, body, request.url.query)
                except NotCacheable as exc:
                    reason = str(exc)
                opted_in = request.headers.get("x-cache-reuse", "").lower() == "allow"
                if keyed is not None and not keyed.temperature_zero and not opted_in:
                    reason, keyed = "temperature is not 0", None
        if keyed is None or tenant is None:
            skipped = self._record("bypass", endpoint, started, reason=reason)
            return await self.forward(request, raw, None, None, None, skipped)
        vec: Vector | None = None
        if control != "refresh":
            try:
                entry: Entry | None = await self.store.get_exact(tenant, keyed.exact)
                match = "exact"
                if entry is None and self.embedder is not None:
                    vec = await self.embed(keyed.text)
                    if vec is not None:
                        words = list(keyed.words)
                        entry = await self.store.get_similar(
                            tenant, keyed.scope, vec, self.config.threshold, lambda w: same_order(words, w)
                        )
                        match = "semantic"
            except StoreDown as exc:
                down = self._record("bypass", endpoint, started, reason="store unavailable", detail=str(exc))
                return await self.forward(request, raw, None, None, None, down)
            if entry is not None:
                headers = self._record(
                    "hit", endpoint, started, match=match, similarity=entry.similarity, saved_gpu_s=entry.gpu_s
                )
                return self.replay(keyed, entry, headers)
        headers = self._record("miss", endpoint, started, reason="refresh requested" if control == "refresh" else "")
        return await self.forward(request, raw, keyed, tenant, vec, headers)

    def replay(self, keyed: Keyed, entry: Entry, headers: dict[str, str]) -> Response:
        if not keyed.stream:
            return Response(entry.response, 200, headers=headers, media_type="application/json")
        events = replay_chunks(keyed.endpoint, json.loads(entry.response), keyed.include_usage)

        async def gen() -> AsyncIterator[bytes]:
            for e in events:
                yield e

        return StreamingResponse(gen(), 200, headers=headers, media_type="text/event-stream")

    async def _store(self, keyed: Keyed, tenant: str, vec: Vector | None, answer: bytes, gpu_s: float) -> None:
        if len(answer) > self.config.max_entry_bytes:
            log("INFO", "cache not stored", event="not-stored", reason="response above max_entry_bytes")
            return
        # Runs after the model answered: nothing here may fail the response or cut the stream.
        try:
            if vec is None and self.embedder is not None:
                vec = await self.embed(keyed.text)
            await self.store.put(tenant, keyed.scope, keyed.exact, answer, gpu_s, vec, keyed.words)
            log("INFO", "cache stored", event="stored", endpoint=keyed.endpoint, gpu_s=round(gpu_s, 4))
        except StoreDown as exc:
            log("WARNING", "cache store failed", event="store-failed", reason=str(exc))
        except Exception as exc:
            log("ERROR", "cache store failed", event="store-failed", reason=type(exc).__name__)

    async def forward(
        self,
        request: Request,
        raw: bytes,
        keyed: Keyed | None,
        tenant: str | None,
        vec: Vector | None,
        headers: dict[str, str],
    ) -> Response:
        """Send the request to the GPU service; store a complete answer when ``keyed`` (a miss)."""
        url = self.config.upstream_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        out_headers = {"content-type": request.headers.get("content-type", "application/json")}
        try:
            out_headers.update(await self.auth.headers())
        except httpx.HTTPError as exc:
            return _bad_gateway(f"no upstream token ({type(exc).__name__})", headers)
        started = time.perf_counter()
        upstream = self.client.build_request(request.method, url, content=raw, headers=out_headers)
        try:
            resp = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            return _bad_gateway(f"upstream unreachable ({type(exc).__name__})", headers)
        media = resp.headers.get("content-type", "application/json")
        if keyed is None or not keyed.stream or resp.status_code != 200:
            body = await resp.aread()
            await resp.aclose()
            if keyed is not None and tenant is not None and resp.status_code == 200:
                try:
                    ok = complete_answer(keyed.endpoint, json.loads(body))
                except ValueError:
                    ok = False
                if ok:
                    await self._store(keyed, tenant, vec, body, time.perf_counter() - started)
            return Response(body, resp.status_code, headers=headers, media_type=media.split(";")[0])
        assert tenant is not None

        async def relay() -> AsyncIterator[bytes]:
            buf = b""
            chunks: list[dict[str, Any]] = []
            done = False
            try:
                async for part in resp.aiter_raw():
                    yield part
                    buf += part
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        data = line.strip()
                        if not data.startswith(b"data:"):
                            continue
                        data = data[5:].strip()
                        if data == b"[DONE]":
                            done = True
                        elif data:
                            try:
                                chunks.append(json.loads(data))
                            except ValueError:
                                chunks.append({"error": "unparseable chunk"})
            finally:
                await resp.aclose()
            # Reached only when the whole stream went through: a client that left or an upstream that broke
            # raises out of the loop above, and nothing partial is stored.
            answer = assemble(keyed.endpoint, chunks) if done and not any("error" in c for c in chunks) else None
            if answer is not None:
                await self._store(keyed, tenant, vec, json.dumps(answer).encode(), time.perf_counter() - started)

        return StreamingResponse(relay(), 200, headers=headers, media_type="text/event-stream")

    async def models(self, request: Request) -> Response:
        """``GET /v1/models`` goes to the model (no body, nothing cached)."""
        started = time.perf_counter()
        headers = self._record("bypass", MODELS, started, reason="not a cached endpoint")
        return await self.forward(request, b"", None, None, None, headers)

    async def refused(self, request: Request) -> Response:
        """Every other path: 404, never forwarded (the engine's admin and metrics endpoints stay out of reach)."""
        log("WARNING", "cache refused a path", event="refused", method=request.method)
        return _refusal(404, "only POST /v1/chat/completions, POST /v1/completions and GET /v1/models are served")

    async def ready(self, request: Request) -> Response:
        """Startup probe: the embedding model is loaded (construction), the store need not be up."""
        return JSONResponse({"ready": True, "semantic": self.embedder is not None})

    async def stats_endpoint(self, request: Request) -> Response:
        return JSONResponse({**self.stats.as_dict(), "vector_search": self.store.mode})


def create_app(config: Config, embedder: Embedder | None = None, certs: CertFetcher | None = None) -> Starlette:
    """The ASGI app; loads the embedding model now, so the startup probe passes only once it can serve.
    ``certs`` replaces Google's certificate endpoint (tests sign their own tokens)."""
    cache = CacheApp(config, embedder, certs)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = await cloud_run_audience(cache.client)
        if own and own not in cache.verifier.audiences:
            cache.verifier.audiences.append(own)
        log("INFO", "cache ready", semantic=cache.embedder is not None, threshold=config.threshold, ttl_s=config.ttl_s,
            audiences=len(cache.verifier.audiences))  # fmt: skip
        yield
        await cache.client.aclose()
        await cache.store.close()
        cache.pool.shutdown(wait=False)

    routes = [
        Route("/cache/ready", cache.ready, methods=["GET"]),
        Route("/cache/stats", cache.stats_endpoint, methods=["GET"]),
        *(Route(path, cache.cached, methods=["POST"]) for path in ENDPOINTS),
        Route(MODELS, cache.models, methods=["GET"]),
        Route("/{path:path}", cache.refused, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.cache = cache
    return app


def app_from_env() -> Starlette:
    """``uvicorn --factory semcache.app:app_from_env``: the container's entry point."""
    try:
        return create_app(Config.from_env())
    except ValueError as exc:
        log("ERROR", f"cache cannot start: {exc}")
        sys.exit(2)
