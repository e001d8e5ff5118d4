"""Mutation-strength tests (issue 23, session 6, survivors of seeds 101 and 171) for who is calling,
``semcache/identity.py``: Google's certificates are fetched for the first caller whatever the monotonic clock reads
(so a caller with a valid token is served from the cache from the first request on), and a caller's entries are
kept in the store under the documented tenant, which every revision sharing the store must derive alike.

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
import redis

from .conftest import ROOT
from .test_cache import chat, content
from .test_cache import store as store
from .test_cache import stub as stub
from .test_cache_support import AUDIENCE, ISSUER, StoreServer, StubUpstream, run_cache, signed_caller
from .test_strength_cache_identity_s4 import Certs

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache import identity
from semcache.identity import GOOGLE_CERTS_URL, GoogleCerts, Principal, Verifier


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


@pytest.mark.parametrize(
    ("issuer", "tenant"),
    [  # printf '%s' '["google-id-token","<issuer>","tenant-key-format"]' | sha256sum | cut -c1-32
        ("https://accounts.google.com", "e2c0471dfc38ac5433634cebb491d2ee"),
        ("accounts.google.com", "ca4a06bff79383dca1aeb69338d5fe39"),
    ],
)
def test_a_callers_entries_are_stored_under_the_documented_tenant(
    stub: tuple[StubUpstream, str], store: StoreServer, issuer: str, tenant: str
) -> None:
    """The tenant is the store's key format, not a private detail: every revision of the cache that shares one
    store (a rollout serves old and new side by side) must derive the same tenant for a caller, or it misses
    the caller's entries and leaves them to crowd the others' until their TTL. docs/cache.md gives it as the
    JSON array ``["google-id-token", iss, sub]``; the store names keys ``s1:e:<tenant>:…`` and
    ``s1:age:<tenant>`` and tags each entry with it. The expected tenants are computed outside Python (the
    command above), so a change to the array, its separators or the digest's length shows here."""
    header = {"authorization": f"Bearer {ISSUER.token('tenant-key-format', iss=issuer)}"}
    valkey = redis.Redis(port=store.port, decode_responses=True)
    before = set(valkey.scan_iter("s1:e:*"))
    with run_cache(stub[1], store.port, None, semantic=False) as base:
        first = chat(base, f"Where is my entry kept {uuid.uuid4().hex[:6]}?", header)
    assert first.headers["x-cache"] == "miss"
    (key,) = set(valkey.scan_iter("s1:e:*")) - before
    assert key.startswith(f"s1:e:{tenant}:") and valkey.hget(key, "tenant") == tenant
    assert valkey.zscore(f"s1:age:{tenant}", key) is not None


@pytest.mark.parametrize(
    "cache_control",
    [
        "public, max-age=100, s-maxage=900, must-revalidate, no-transform",
        "max-age=100, stale-while-revalidate=600, stale-if-error=86400",
        "max-age=100, community=7",
    ],
)
def test_only_max_age_sets_how_long_googles_certificates_are_kept(
    monkeypatch: pytest.MonkeyPatch, cache_control: str
) -> None:
    """Google's certificate endpoint answers with a Cache-Control header (``public, max-age=…, must-revalidate,
    no-transform``); only ``max-age`` says how long this client may keep the certificates. Other directives that
    carry numbers (``s-maxage`` is for shared caches, RFC 9111 §5.2.2.10; RFC 5861's ``stale-*``) and
    unrecognised extensions ("Unrecognized cache-directives MUST be ignored", RFC 2616 §14.9.6, whose example
    extension is ``community``) must not: the certificates are reused until 100 s and fetched again at 100 s."""
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(identity, "time", SimpleNamespace(monotonic=lambda: clock.now, time=time.time))
    google = Certs(cache_control)

    async def run() -> list[dict[str, str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(google.handler)) as client:
            certs = GoogleCerts(client)
            seen = [dict(await certs())]
            clock.now = 1099.5
            seen.append(dict(await certs()))
            clock.now = 1100.0
            seen.append(dict(await certs()))
            return seen

    assert asyncio.run(run()) == [{"k": "PEM1"}, {"k": "PEM1"}, {"k": "PEM2"}]


def test_a_verifier_trusts_no_stripped_token_unless_told_to() -> None:
    """Fail closed: anyone can write ``SIGNATURE_REMOVED_BY_GOOGLE`` after a victim's claims, so a verifier made
    without ``trust_cloud_run_iam`` (the cache in front of a public service, or any new caller of the class)
    gives no principal for it, and the decision log says why."""
    header, payload, _ = ISSUER.token("someone-else").split(".")
    headers = {"authorization": f"Bearer {header}.{payload}.{identity.STRIPPED}"}
    assert asyncio.run(Verifier([AUDIENCE], ISSUER.certs).principal(headers)) == (None, "caller identity not verified")
    trusted = asyncio.run(Verifier([AUDIENCE], ISSUER.certs, trust_cloud_run_iam=True).principal(headers))
    assert trusted == (Principal("https://accounts.google.com", "someone-else"), "")
