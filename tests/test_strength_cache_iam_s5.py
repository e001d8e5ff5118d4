"""Mutation-strength tests (issue 23, session 5, seed 101's survivors) for the store's IAM credentials,
``semcache/iam.py``: a token answer without ``expires_in`` lives the hour Google documents.

The provider's clock (``time.monotonic`` as ``semcache.iam`` sees it) is a settable one, so the refresh second is
checked exactly and nothing sleeps; the metadata server is a local HTTP stand-in on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .conftest import ROOT
from .test_cache_support import serve

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache import iam
from semcache.iam import MetadataToken

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def test_a_token_without_expires_in_is_kept_for_the_hour_less_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Access tokens expire "one hour after it's retrieved" (https://cloud.google.com/memorystore/docs/valkey/
    about-iam-auth): an answer that leaves ``expires_in`` out is taken to live 3600 s, so it is reused until
    3600 − 300 s after the fetch began and fetched again from that second on."""
    now = [1000.0]
    monkeypatch.setattr(iam, "time", SimpleNamespace(monotonic=lambda: now[0]))
    served = ["ya29.first"]

    async def token(request: Request) -> Response:
        return JSONResponse({"access_token": served[-1], "token_type": "Bearer"})

    app = Starlette(routes=[Route(TOKEN_PATH, token, methods=["GET"])])
    with serve(app) as base:
        provider = MetadataToken(base + TOKEN_PATH)

        def credentials() -> tuple[str, str]:
            creds: tuple[str, str] = asyncio.run(provider.get_credentials_async())
            return creds

        assert credentials() == ("default", "ya29.first") and provider.fetches == 1
        served.append("ya29.second")
        now[0] = 1000.0 + 3600 - 300 - 0.5
        assert credentials() == ("default", "ya29.first") and provider.fetches == 1, "reused before its time"
        now[0] = 1000.0 + 3600 - 300
        assert credentials() == ("default", "ya29.second") and provider.fetches == 2, "due at that second"


def test_a_short_token_is_fetched_again_at_half_its_lifetime_to_the_fraction(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token that lives less than ten minutes is refreshed after half its lifetime, not five minutes before its
    end: 401 s → due 200.5 s after the fetch began (half a second is not rounded away)."""
    now = [1000.0]
    monkeypatch.setattr(iam, "time", SimpleNamespace(monotonic=lambda: now[0]))
    served = ["ya29.first"]

    async def token(request: Request) -> Response:
        return JSONResponse({"access_token": served[-1], "expires_in": 401, "token_type": "Bearer"})

    app = Starlette(routes=[Route(TOKEN_PATH, token, methods=["GET"])])
    with serve(app) as base:
        provider = MetadataToken(base + TOKEN_PATH)
        assert asyncio.run(provider.get_credentials_async()) == ("default", "ya29.first")
        served.append("ya29.second")
        now[0] = 1000.0 + 200.25
        assert asyncio.run(provider.get_credentials_async()) == ("default", "ya29.first"), "reused before its time"
        now[0] = 1000.0 + 200.5
        assert asyncio.run(provider.get_credentials_async()) == ("default", "ya29.second"), "due at 200.5 s"
        assert provider.fetches == 2
