"""Mutation-strength tests (issue 23, session 6, seed 101's survivor) for who is calling, ``semcache/identity.py``:
Google's certificates are fetched for the first caller whatever the monotonic clock reads, so a caller with a valid
token is served from the cache from the first request on.

Real parts: the real cache app over HTTP, a real store, the counting stand-in upstream, and ID tokens signed by
the local issuer of ``test_cache_support``. Google's certificate endpoint is a mock transport (no network) that
serves that issuer's certificate; the clock is ``time.monotonic`` as ``semcache.identity`` sees it, set by the test.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from .conftest import ROOT
from .test_cache import chat, content
from .test_cache import store as store
from .test_cache import stub as stub
from .test_cache_support import ISSUER, StoreServer, StubUpstream, run_cache, signed_caller

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache import identity
from semcache.identity import GOOGLE_CERTS_URL, GoogleCerts


@pytest.mark.parametrize("reading", [0.0, 0.5])
def test_the_first_caller_is_verified_whatever_the_monotonic_clock_reads(
    monkeypatch: pytest.MonkeyPatch, stub: tuple[StubUpstream, str], store: StoreServer, reading: float
) -> None:
    """``time.monotonic``'s "reference point ... is undefined" (https://docs.python.org/3/library/time.html#time.
    monotonic); on Linux it counts from boot (man 2 clock_gettime, CLOCK_MONOTONIC), so a process that starts
    with a fresh machine reads under a second. The certificates must still be fetched for the first caller: a
    valid token then misses once (the model answers, the answer is stored) and hits the second time, with one
    fetch from Google. Were they not fetched, the caller would be sent past the cache as unverified."""
    monkeypatch.setattr(identity, "time", SimpleNamespace(monotonic=lambda: reading, time=time.time))
    fetches: list[str] = []

    def google(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        return httpx.Response(200, json={ISSUER.kid: ISSUER.public_pem}, headers={"cache-control": "max-age=21600"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(google))
    upstream, _ = stub
    who = signed_caller(f"early-{uuid.uuid4().hex[:8]}")
    question = f"Which caller came first {uuid.uuid4().hex[:6]}?"
    try:
        with run_cache(stub[1], store.port, None, semantic=False, certs=GoogleCerts(client)) as base:
            calls = len(upstream.calls)
            first = chat(base, question, who)
            second = chat(base, question, who)
    finally:
        asyncio.run(client.aclose())
    assert (first.headers["x-cache"], first.headers.get("x-cache-reason")) == ("miss", None)
    assert second.headers["x-cache"] == "hit" and content(second) == content(first)
    assert len(upstream.calls) == calls + 1, "the second answer came from the cache, not the model"
    assert fetches == [GOOGLE_CERTS_URL], "Google's certificates are fetched once, for the first caller"
