"""Mutation-strength tests (issue 23, session 4) for the store's IAM credentials, ``semcache/iam.py``: when the
access token is fetched again, how long a fetch may take, and what each kind of bad answer gives.

The clock is the provider's own (``time.monotonic`` as ``semcache.iam`` sees it), replaced by a settable one, so
"reused until five minutes before expiry" is checked at the exact second and no test sleeps for it. The
metadata server is a local HTTP stand-in (``test_cache_support.serve``) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .conftest import ROOT
from .test_cache_support import FakeMetadata, serve

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache import iam
from semcache.iam import MetadataToken, TokenUnavailable

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(1000.0)
    monkeypatch.setattr(iam, "time", SimpleNamespace(monotonic=c.monotonic))
    return c


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeMetadata, str]]:
    metadata = FakeMetadata("ya29.first")
    with serve(metadata.app()) as base:
        yield metadata, base + TOKEN_PATH


def credentials(provider: MetadataToken) -> tuple[str, str]:
    creds: tuple[str, str] = asyncio.run(provider.get_credentials_async())
    return creds


@pytest.mark.parametrize(
    ("expires_in", "due"),
    [(3599, 1000.0 + 3599 - 300), (400, 1000.0 + 400 - 200)],  # the margin is 5 minutes, at most half the lifetime
)
def test_the_token_is_reused_until_its_refresh_second_and_fetched_again_from_then_on(
    clock: Clock, fake: tuple[FakeMetadata, str], expires_in: int, due: float
) -> None:
    metadata, url = fake
    metadata.token, metadata.expires_in = "ya29.first", expires_in
    provider = MetadataToken(url)
    assert credentials(provider) == ("default", "ya29.first") and provider.fetches == 1
    metadata.token = "ya29.second"
    clock.now = due - 0.5
    assert credentials(provider) == ("default", "ya29.first") and provider.fetches == 1, "reused before its time"
    clock.now = due
    assert credentials(provider) == ("default", "ya29.second") and provider.fetches == 2, "due at the second"
    metadata.token = "ya29.third"
    clock.now = due + 10 * expires_in
    assert credentials(provider) == ("default", "ya29.third") and provider.fetches == 3, "and any time after"


def slow_metadata(delay_s: float) -> Starlette:
    async def token(request: Request) -> Response:
        await asyncio.sleep(delay_s)
        return JSONResponse({"access_token": "ya29.slow", "expires_in": 3599, "token_type": "Bearer"})

    return Starlette(routes=[Route(TOKEN_PATH, token, methods=["GET"])])


def test_a_metadata_answer_slower_than_two_seconds_is_no_token() -> None:
    """``FETCH_TIMEOUT_S`` (2 s, then the request skips the cache): an answer after 2.5 s is too late, one after
    1.2 s is in time (wide margins either side: the outcome, not a duration, is asserted)."""
    assert iam.FETCH_TIMEOUT_S == 2.0
    with serve(slow_metadata(2.5)) as base, pytest.raises(TokenUnavailable) as err:
        credentials(MetadataToken(base + TOKEN_PATH))
    assert str(err.value) == "no access token from the metadata server (ReadTimeout)"
    with serve(slow_metadata(1.2)) as base:
        assert credentials(MetadataToken(base + TOKEN_PATH)) == ("default", "ya29.slow")


def answering(body: bytes, status: int = 200) -> Starlette:
    async def token(request: Request) -> Response:
        return Response(body, status, media_type="application/json")

    return Starlette(routes=[Route(TOKEN_PATH, token, methods=["GET"])])


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b'{"access_token": "ya29.x"}', 500, "HTTPStatusError"),
        (b"<html>not json</html>", 200, "JSONDecodeError"),
        (b'{"token": "ya29.x"}', 200, "KeyError"),
        (b'["ya29.x"]', 200, "TypeError"),
        (b'{"access_token": "ya29.x", "expires_in": null}', 200, "TypeError"),
        (b'{"access_token": "ya29.x", "expires_in": "soon"}', 200, "ValueError"),
    ],
)
def test_every_bad_answer_is_no_token_naming_what_went_wrong(body: bytes, status: int, kind: str) -> None:
    with serve(answering(body, status)) as base:
        provider = MetadataToken(base + TOKEN_PATH)
        with pytest.raises(TokenUnavailable) as err:
            credentials(provider)
    assert str(err.value) == f"no access token from the metadata server ({kind})"
    assert (provider.token, provider.fetches) == ("", 0)


def test_an_empty_token_is_no_token() -> None:
    with serve(answering(b'{"access_token": "", "expires_in": 3599}')) as base, pytest.raises(TokenUnavailable) as err:
        credentials(MetadataToken(base + TOKEN_PATH))
    assert str(err.value) == "the metadata server returned an empty access token"


def test_the_sync_entry_point_refuses() -> None:
    """redis-py's asyncio client asks ``get_credentials_async``; the sync one must never hand out a token."""
    with pytest.raises(TokenUnavailable) as err:
        MetadataToken("http://127.0.0.1:9" + TOKEN_PATH).get_credentials()
    assert str(err.value) == "the metadata token provider is async only"


def test_the_request_carries_the_metadata_flavor_header(fake: tuple[FakeMetadata, str]) -> None:
    """The metadata server answers 403 without ``Metadata-Flavor: Google``; the stand-in does the same."""
    metadata, url = fake
    metadata.token, metadata.expires_in = "ya29.flavor", 3599
    assert credentials(MetadataToken(url)) == ("default", "ya29.flavor")
