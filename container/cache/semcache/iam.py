"""Memorystore IAM authentication for the store connections.

With ``authorization_mode: IAM_AUTH`` a client authenticates each new connection with the Valkey ``AUTH``
command and an OAuth access token of a principal holding ``roles/memorystore.dbConnectionUser``; "default" is
the only supported username (https://cloud.google.com/memorystore/docs/valkey/manage-iam-auth, troubleshooting
``WRONGPASS``), so the command is ``AUTH default <token>``, as Google's redis-py sample sends it through a
``CredentialProvider`` that returns ``("default", token)``
(https://cloud.google.com/memorystore/docs/valkey/client-library-code-samples). A token "expires one hour after
it's retrieved"; "if the token expires, then you must get a new token to establish new connections. However,
if you already authenticated an existing connection, then it continues to work, even if the token expires"
(https://cloud.google.com/memorystore/docs/valkey/about-iam-auth). Authenticated connections are valid for
12 hours (manage-iam-auth); the connection pool replaces one the server closed with a new, freshly
authenticated one.

So: redis-py asks :class:`MetadataToken` for credentials each time it opens a connection; the token comes
from the metadata server and is reused until shortly before it expires. Any failure to get one raises
:class:`TokenUnavailable`, a redis ``ConnectionError``, which the store turns into "store unavailable"
(the request passes through to the model).
"""

from __future__ import annotations

import asyncio
import time

import httpx
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError

USERNAME = "default"
"""The only username Memorystore accepts with IAM authentication."""
REFRESH_MARGIN_S = 300.0
"""Fetch a new token this long before the old one expires (at most half its lifetime), so a connection
opened just before expiry never sends a token that dies in flight."""
FETCH_TIMEOUT_S = 2.0
"""The metadata server answers locally; a slower answer counts as no token (the request skips the cache)."""


class TokenUnavailable(RedisConnectionError):
    """No access token: the metadata server failed, timed out or answered without a token."""


class MetadataToken(CredentialProvider):
    """``AUTH default <token>`` credentials from the metadata server's access-token endpoint, cached until
    :data:`REFRESH_MARGIN_S` before they expire. ``fetches`` counts the tokens fetched (tests)."""

    def __init__(self, url: str, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.token = ""
        self.refresh_at = 0.0
        self.fetches = 0
        self._lock = asyncio.Lock()

    def get_credentials(self) -> tuple[str, str]:
        # The service only uses the asyncio client, which calls get_credentials_async.
        raise TokenUnavailable("the metadata token provider is async only")

    async def get_credentials_async(self) -> tuple[str, str]:
        async with self._lock:  # one fetch when many connections open at once
            if not self.token or time.monotonic() >= self.refresh_at:
                await self._fetch()
            return USERNAME, self.token

    async def _fetch(self) -> None:
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                resp = await client.get(self.url, headers={"Metadata-Flavor": "Google"})
            resp.raise_for_status()
            body = resp.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.token = ""
            raise TokenUnavailable(f"no access token from the metadata server ({type(exc).__name__})") from None
        if not token:
            raise TokenUnavailable("the metadata server returned an empty access token")
        self.fetches += 1
        self.token = token
        self.refresh_at = started + expires_in - min(REFRESH_MARGIN_S, expires_in / 2)
