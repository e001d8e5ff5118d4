"""Mutation-strength tests (issue 23, session 4) for who is calling, ``semcache/identity.py``: the verifier's
answer (a principal, or none and the reason the decision log shows) for each kind of token, the skew on a
stripped token's expiry to the second, and how long Google's certificates are kept.

Tokens are signed by the local issuer of ``test_cache_support`` (RS256, Google's claim layout); the clocks are
the module's own (``time.time`` for expiry, ``time.monotonic`` for the certificate cache), replaced by fixed ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from .conftest import ROOT
from .test_cache_support import AUDIENCE, ISSUER

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache import identity
from semcache.identity import GOOGLE_CERTS_URL, STRIPPED, GoogleCerts, Principal, Verifier, bearer

NOT_VERIFIED = "caller identity not verified"
NOW = 1_000_000_000  # a multiple of 512: its low bits are 0, so the second before it has them all set


def b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def stripped(**claims: Any) -> dict[str, str]:
    """The Authorization header Cloud Run hands the container after verifying a token: claims, no signature."""
    body = {"iss": "https://accounts.google.com", "sub": "1234", "aud": AUDIENCE, "iat": NOW - 60, "exp": NOW + 3600}
    return {"authorization": f"Bearer {b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64({**body, **claims})}.{STRIPPED}"}


def principal(headers: Mapping[str, str], trust: bool = True) -> tuple[Principal | None, str]:
    found: tuple[Principal | None, str] = asyncio.run(
        Verifier([AUDIENCE], ISSUER.certs, trust_cloud_run_iam=trust).principal(headers)
    )
    return found


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "time", SimpleNamespace(time=lambda: float(NOW), monotonic=lambda: 0.0))


@pytest.mark.parametrize(
    ("exp", "ok"),
    [(NOW + 3600, True), (NOW - 1, True), (NOW - 30, True), (NOW - 31, False), (NOW - 7200, False)],
)
def test_a_stripped_tokens_expiry_has_thirty_seconds_of_skew(now: None, exp: int, ok: bool) -> None:
    who, why = principal(stripped(exp=exp))
    assert (who, why) == ((Principal("https://accounts.google.com", "1234"), "") if ok else (None, NOT_VERIFIED))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": str(NOW + 3600)},  # a string is no expiry
        {"exp": None},
        {"iss": "https://evil.example.com"},
        {"aud": "https://other.run.app"},
        {"sub": ""},
        {"sub": 1234},
        {"sub": None},
        {"iss": None},
    ],
)
def test_a_stripped_token_with_a_bad_claim_is_nobody(now: None, claims: dict[str, Any]) -> None:
    assert principal(stripped(**claims)) == (None, NOT_VERIFIED)


def test_a_stripped_token_is_nobody_without_cloud_run_iam(now: None) -> None:
    assert principal(stripped(), trust=False) == (None, NOT_VERIFIED)
    assert principal(stripped())[0] == Principal("https://accounts.google.com", "1234")


@pytest.mark.parametrize("sub", ["a", "ab", "abc", "abcd", "ünïcødé-subject"])
def test_every_payload_length_decodes_without_its_padding(now: None, sub: str) -> None:
    """JWTs drop base64's ``=`` padding: each payload length modulo 4 must decode (the padding is put back)."""
    assert principal(stripped(sub=sub)) == (Principal("https://accounts.google.com", sub), "")


@pytest.mark.parametrize(
    "payload",
    ["!!!!", base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), b64(["not", "an", "object"]), b64("text")],
)
def test_an_undecodable_stripped_payload_is_nobody(now: None, payload: str) -> None:
    headers = {"authorization": f"Bearer {b64({'alg': 'RS256'})}.{payload}.{STRIPPED}"}
    assert principal(headers) == (None, NOT_VERIFIED)


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"authorization": "Bearer a.b.c"}, "a.b.c"),
        ({"authorization": "bearer  a.b.c "}, "a.b.c"),
        ({"authorization": "Bearer a.b.c.d"}, None),
        ({"authorization": "Bearer a.b"}, None),
        ({"authorization": "Basic a.b.c"}, None),
        ({"authorization": "Token a.b.c"}, None),  # a scheme that sorts after "bearer" is not Bearer either
        ({"authorization": "DPoP a.b.c"}, None),
        ({"authorization": ""}, None),
        ({}, None),
        ({"x-serverless-authorization": "Bearer x.y.z", "authorization": "Bearer a.b.c"}, "x.y.z"),
        ({"x-serverless-authorization": "", "authorization": "Bearer a.b.c"}, None),
    ],
)
def test_the_bearer_token_is_read_from_the_header_cloud_run_checked(headers: dict[str, str], token: str | None) -> None:
    assert bearer(headers) == token


def test_the_reasons_the_log_shows() -> None:
    assert principal({}) == (None, "no caller identity")
    assert asyncio.run(Verifier([""], ISSUER.certs).principal({"authorization": f"Bearer {ISSUER.token('u')}"})) == (
        None,
        "no audience configured",
    )
    assert principal({"authorization": f"Bearer {ISSUER.token('u')}"}) == (
        Principal("https://accounts.google.com", "u"),
        "",
    )
    assert principal({"authorization": f"Bearer {ISSUER.token('u', aud='https://x.run.app')}"}) == (None, NOT_VERIFIED)

    async def down() -> Mapping[str, str]:
        raise httpx.ConnectError("no route")

    async def garbled() -> Mapping[str, str]:
        raise ValueError("not JSON")

    token = {"authorization": f"Bearer {ISSUER.token('u')}"}
    assert asyncio.run(Verifier([AUDIENCE], down).principal(token)) == (None, "certificates unavailable (ConnectError)")
    assert asyncio.run(Verifier([AUDIENCE], garbled).principal(token)) == (
        None,
        "certificates unavailable (ValueError)",
    )


def test_a_token_google_auth_cannot_parse_is_nobody() -> None:
    for bad in ("a.b.c", f"{b64({'alg': 'RS256', 'kid': ISSUER.kid})}.{b64({'sub': 'x'})}.c2ln"):
        assert principal({"authorization": f"Bearer {bad}"}) == (None, NOT_VERIFIED)


class Certs:
    """Google's certificate endpoint behind a mock transport; ``max_age`` is what its Cache-Control says."""

    def __init__(self, cache_control: str) -> None:
        self.cache_control, self.fetches = cache_control, 0
        self.timeouts: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == GOOGLE_CERTS_URL
        self.fetches += 1
        self.timeouts.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json={"k": f"PEM{self.fetches}"}, headers={"cache-control": self.cache_control})


@pytest.mark.parametrize(
    ("cache_control", "kept_s"),
    [("public, max-age=100, must-revalidate", 100), ("no-cache", 300), ("max-age=abc", 300)],
)
def test_googles_certificates_are_kept_for_their_max_age(
    monkeypatch: pytest.MonkeyPatch, cache_control: str, kept_s: int
) -> None:
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(identity, "time", SimpleNamespace(monotonic=lambda: clock.now, time=lambda: float(NOW)))
    google = Certs(cache_control)

    async def run() -> list[dict[str, str]]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(google.handler)) as client:
            certs = GoogleCerts(client)
            seen = [dict(await certs())]
            clock.now = 1000.0 + kept_s - 0.5
            seen.append(dict(await certs()))
            clock.now = 1000.0 + kept_s
            seen.append(dict(await certs()))
            clock.now = 1000.0 + 50 * kept_s
            seen.append(dict(await certs()))
            return seen

    assert asyncio.run(run()) == [{"k": "PEM1"}, {"k": "PEM1"}, {"k": "PEM2"}, {"k": "PEM3"}]
    assert google.timeouts == [5.0] * 3, "a slow Google gives up after 5 s (then no caller is verified)"
