"""Real parts for the semantic-cache tests and ``scripts/cache_report.py``: a Valkey/Redis server from the
OS packages on a free loopback port, the cache app served by uvicorn on another, and a small
OpenAI-compatible upstream that counts its calls (the fast tests; the slow ones use real llama.cpp)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "container" / "cache"))

from semcache.app import create_app  # noqa: E402
from semcache.config import Config  # noqa: E402
from semcache.embed import Embedder as Embedder  # noqa: E402  (re-exported for the tests)

STORE_BINARIES = ("valkey-server", "redis-server")
HOW_TO_GET_A_STORE = (
    "the semantic-cache tests need a real Valkey or Redis server binary (valkey-server or redis-server) on PATH; "
    "install it with `make cache-store` (runs `apt-get install -y valkey-server`, or `redis-server` on Debian "
    "bookworm, which has no valkey package), or your OS's package manager"
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def store_binary() -> str | None:
    """The first of valkey-server / redis-server on PATH."""
    return next((found for b in STORE_BINARIES if (found := shutil.which(b))), None)


def required_store_binary() -> str:
    """:func:`store_binary`, or the test fails saying how to install one (a missing store is never a skip)."""
    binary = store_binary()
    if binary is None:
        pytest.fail(HOW_TO_GET_A_STORE, pytrace=False)
    return binary


@dataclass
class StoreServer:
    proc: subprocess.Popen[bytes]
    port: int
    binary: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def run_store(binary: str, *extra: str) -> Iterator[StoreServer]:
    """``binary`` on a free loopback port, no persistence, stopped afterwards; ``extra`` arguments follow (e.g.
    ``--loadmodule``)."""
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = StoreServer(proc, port, binary)
    try:
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start on port {port}") from None
                time.sleep(0.02)
        client.close()
        yield server
    finally:
        server.stop()


@dataclass
class Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 (IP SAN, as Memorystore's certificates carry the
    endpoint IPs), made with the ``openssl`` CLI."""

    ca: Path
    cert: Path
    key: Path

    @property
    def ca_pem(self) -> str:
        return self.ca.read_text()


def make_tls(folder: Path, name: str = "store") -> Tls:
    """A CA (``<name>-ca.pem``) and a server certificate for 127.0.0.1 signed by it."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS store tests need the openssl CLI on PATH (apt-get install -y openssl)")
    ca, ca_key = folder / f"{name}-ca.pem", folder / f"{name}-ca.key"
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    )

    def run(*argv: str) -> None:
        subprocess.run(["openssl", *argv], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} test CA",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return Tls(ca, cert, key)


def store_client(server: StoreServer, password: str | None = None, tls: Tls | None = None) -> redis.Redis:
    """An admin client of ``server`` (AUTH default ``password`` when given, TLS when ``tls``)."""
    extra: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(tls.ca)} if tls else {}
    return redis.Redis(
        host="127.0.0.1", port=server.port, username="default" if password else None, password=password,
        socket_timeout=2, socket_connect_timeout=2, **extra,
    )  # fmt: skip


@contextmanager
def run_secure_store(binary: str, password: str, tls: Tls | None) -> Iterator[StoreServer]:
    """``binary`` as Memorystore runs it with IAM authentication: the ``default`` user needs ``password`` (the
    access token) and nothing works before ``AUTH``; with ``tls`` only TLS connections on the port (no plain
    port), no client certificates (server authentication only)."""
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", password]
    if tls:
        argv += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        argv += ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key), "--tls-ca-cert-file", str(tls.ca)]
    else:
        argv += ["--port", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        server = StoreServer(proc, port, binary)
        try:
            client = store_client(server, password, tls)
            deadline = time.monotonic() + 10
            while True:
                try:
                    if client.ping():
                        break
                except redis.RedisError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        out = log.read().decode(errors="replace")
                        raise RuntimeError(
                            f"{binary} did not start with auth/TLS on port {port}: {out[-2000:]}"
                        ) from None
                    time.sleep(0.02)
            client.close()
            yield server
        finally:
            server.stop()


@dataclass
class FakeMetadata:
    """The metadata server's access-token endpoint as Cloud Run serves it: JSON ``access_token``,
    ``expires_in``, ``token_type``, only with ``Metadata-Flavor: Google`` (403 without). Tests change
    ``token`` / ``expires_in`` / ``status`` between requests; ``requests`` counts the calls."""

    token: str
    expires_in: int = 3599
    status: int = 200
    requests: int = 0

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            self.requests += 1
            if request.headers.get("metadata-flavor") != "Google":
                return Response("Missing Metadata-Flavor:Google header", 403)
            if self.status != 200:
                return Response("metadata server error", self.status)
            return JSONResponse({"access_token": self.token, "expires_in": self.expires_in, "token_type": "Bearer"})

        path = "/computeMetadata/v1/instance/service-accounts/default/token"
        return Starlette(routes=[Route(path, token, methods=["GET"])])


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on loopback; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


AUDIENCE = "https://llm-cache-123456789.europe-west1.run.app"
"""The audience the test cache accepts (a Cloud Run deterministic URL)."""


class TokenIssuer:
    """Google's ID-token issuer, played locally: an RSA key made here signs RS256 tokens the way Google's do
    (header ``alg``/``kid``/``typ``, claims ``iss``/``sub``/``aud``/``iat``/``exp``), and :meth:`certs` is the
    cache's injected certificate fetcher (Google's ``oauth2/v1/certs`` shape: key id → PEM). No network."""

    def __init__(self, kid: str = "test-key-1") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.public_pem = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        self.fetches = 0

    def token(self, sub: str, *, aud: str = AUDIENCE, iss: str = "https://accounts.google.com",
              lifetime_s: int = 3600, issued: float | None = None, **claims: Any) -> str:  # fmt: skip
        from google.auth import crypt, jwt

        now = int(time.time() if issued is None else issued)
        payload = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + lifetime_s, **claims}
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)  # type: ignore[no-untyped-call]
        token: bytes = jwt.encode(signer, payload)  # type: ignore[no-untyped-call]
        return token.decode()

    async def certs(self) -> dict[str, str]:
        self.fetches += 1
        return {self.kid: self.public_pem}


ISSUER = TokenIssuer()


def signed_caller(sub: str | None = None, header: str = "authorization") -> dict[str, str]:
    """Headers of a verified caller (a fresh subject unless given), so tests never share entries."""
    import uuid

    return {header: f"Bearer {ISSUER.token(sub or str(uuid.uuid4()))}"}


@contextmanager
def run_cache(upstream: str, store_port: int, embedder: Embedder | None, **settings: Any) -> Iterator[str]:
    """The real cache app in front of ``upstream``; ``settings`` override :class:`Config` fields. Callers are
    verified against :data:`ISSUER` (``certs`` setting to replace it) for the audience :data:`AUDIENCE`."""
    certs = settings.pop("certs", ISSUER.certs)
    config = Config(upstream_url=upstream, valkey_port=store_port, **{"audiences": (AUDIENCE,), **settings})
    with serve(create_app(config, embedder, certs)) as base:
        yield base


@dataclass
class StubUpstream:
    """An OpenAI-compatible model stand-in: answers ``answer #<n> to: <question>`` (n counts calls), so a
    test sees whether an answer came from the model or the cache. ``FAIL`` in the question → HTTP 500;
    ``BREAK`` in a streamed question → the stream dies after two chunks."""

    delay_s: float = 0.05
    calls: list[dict[str, Any]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    """Requests to any other path (the engine's admin and metrics endpoints): the cache must send none."""

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            return await self.answer(request, chat=True)

        async def completions(request: Request) -> Response:
            return await self.answer(request, chat=False)

        async def models(request: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": "stub"}]})

        async def other(request: Request) -> Response:
            self.others.append(f"{request.method} {request.url.path}?{request.url.query}")
            return JSONResponse({"ok": True, "auth": request.headers.get("authorization")})

        return Starlette(
            routes=[
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/v1/completions", completions, methods=["POST"]),
                Route("/v1/models", models, methods=["GET"]),
                Route("/{path:path}", other, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    async def answer(self, request: Request, chat: bool) -> Response:
        body = await request.json()
        self.calls.append({"body": body, "headers": dict(request.headers)})
        question = body["messages"][-1]["content"] if chat else body["prompt"]
        await asyncio.sleep(self.delay_s)
        if "FAIL" in question:
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        text = f"answer #{len(self.calls)} to: {question}"
        base = {"id": f"cmpl-{len(self.calls)}", "created": 1, "model": body.get("model", "stub")}
        if not body.get("stream"):
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": text, "finish_reason": "stop"}
            )
            obj = "chat.completion" if chat else "text_completion"
            usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
            return JSONResponse({**base, "object": obj, "choices": [choice], "usage": usage})
        words = text.split(" ")
        broken = "BREAK" in question

        async def events() -> AsyncIterator[bytes]:
            for i, w in enumerate(words):
                if broken and i == 2:
                    raise ConnectionResetError("upstream died mid-stream")
                piece = w if i == 0 else " " + w
                choice = (
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                    if chat
                    else {"index": 0, "text": piece, "finish_reason": None}
                )
                obj = "chat.completion.chunk" if chat else "text_completion"
                yield f"data: {json.dumps({**base, 'object': obj, 'choices': [choice]})}\n\n".encode()
            last = (
                {"index": 0, "delta": {}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": "", "finish_reason": "stop"}
            )
            obj = "chat.completion.chunk" if chat else "text_completion"
            yield f"data: {json.dumps({**base, 'object': obj, 'choices': [last]})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def sse_events(raw: str) -> list[Any]:
    """The JSON payloads of an SSE body, ``"[DONE]"`` kept as the string."""
    out: list[Any] = []
    for line in raw.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def streamed_text(events: list[Any], chat: bool = True) -> str:
    """The text a client reassembles from streamed chunks."""
    parts: list[str] = []
    for e in events:
        if e == "[DONE]":
            continue
        for c in e.get("choices") or []:
            parts.append((c.get("delta") or {}).get("content") or "" if chat else c.get("text") or "")
    return "".join(parts)
