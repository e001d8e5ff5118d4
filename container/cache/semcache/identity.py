"""Who is calling: a Google ID token, verified, or nobody.

Entries are shared only inside one **verified principal** (issuer + subject of a Google-signed ID token).
The token comes from the header Cloud Run itself checks: ``X-Serverless-Authorization`` when present, else
``Authorization`` ("If both headers are present, Cloud Run uses X-Serverless-Authorization", confirmed by
the Cloud Run PM in GoogleCloudPlatform/cloud-run-proxy#25 against
https://cloud.google.com/run/docs/authenticating/service-to-service#acquire-token). A token in the *other*
header is never used: Cloud Run passes it through unchecked, so an invoker could put anyone's claims there.

Two cases:

- **a signed token**: verified here with ``google-auth`` (``google.oauth2.id_token.verify_oauth2_token``):
  RS256 signature against Google's certificates (https://www.googleapis.com/oauth2/v1/certs), issuer
  ``accounts.google.com``, ``iat``/``exp`` with 30 s of clock skew, and ``aud`` one of the cache's
  audiences (its ``run.app`` URL or a custom audience). ``alg: none``, an empty or forged signature, an
  unknown key id, another audience or an expired token give no principal.
- **a token whose signature Cloud Run removed**: Cloud Run replaces the signature of the token it
  verified with ``SIGNATURE_REMOVED_BY_GOOGLE`` before the request reaches the container
  (https://cloud.google.com/run/docs/troubleshooting#signature-removed; seen for
  ``X-Serverless-Authorization`` in pomerium/pomerium#6677). Its claims are trusted only when the service
  is deployed with Cloud Run's invoker IAM check on and no public invoker (``trust_cloud_run_iam``, set by
  the component from ``CacheSettings.invokers``): then Cloud Run verified that very token before the
  request got here. The issuer, audience and expiry are still checked. Anywhere else the stripped token is
  worthless (anyone can write that string) and gives no principal.

No principal → the request passes through to the model: nothing is read from or written to the cache.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from google.auth import exceptions as auth_exceptions
from google.auth import transport
from google.oauth2 import id_token

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
"""Google's ID-token signing certificates (PEM by key id), the URL ``verify_oauth2_token`` fetches."""
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
"""The issuers ``verify_oauth2_token`` accepts (google/oauth2/id_token.py ``_GOOGLE_ISSUERS``)."""
STRIPPED = "SIGNATURE_REMOVED_BY_GOOGLE"
CLOCK_SKEW_S = 30
CertFetcher = Callable[[], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True)
class Principal:
    """A verified caller. ``tenant`` binds issuer and subject as a JSON array (no separator to collide on)."""

    issuer: str
    subject: str

    @property
    def tenant(self) -> str:
        ident = json.dumps(["google-id-token", self.issuer, self.subject], separators=(",", ":"))
        return hashlib.sha256(ident.encode()).hexdigest()[:32]


class GoogleCerts:
    """Google's certificates, fetched once and kept for the response's ``max-age`` (one fetch at a time)."""

    def __init__(self, client: httpx.AsyncClient, url: str = GOOGLE_CERTS_URL) -> None:
        self.client = client
        self.url = url
        self.certs: dict[str, str] = {}
        self.until = 0.0
        self.lock = asyncio.Lock()

    async def __call__(self) -> Mapping[str, str]:
        async with self.lock:
            if time.monotonic() >= self.until:
                resp = await self.client.get(self.url, timeout=5.0)
                resp.raise_for_status()
                self.certs = {str(k): str(v) for k, v in resp.json().items()}
                max_age = 300
                for part in resp.headers.get("cache-control", "").split(","):
                    name, _, value = part.strip().partition("=")
                    if name == "max-age" and value.isdigit():
                        max_age = int(value)
                self.until = time.monotonic() + max_age
            return self.certs


class _CertsRequest(transport.Request):
    """A google-auth transport that answers the certificate GET from certificates already fetched (the
    fetch itself is async, outside the verification): google-auth does all the checking."""

    def __init__(self, certs: Mapping[str, str]) -> None:
        self.certs = certs

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None,
                 **kwargs: Any) -> transport.Response:  # fmt: skip
        certs = self.certs

        class _Resp(transport.Response):
            @property
            def status(self) -> int:
                return 200

            @property
            def headers(self) -> Mapping[str, str]:
                return {}

            @property
            def data(self) -> bytes:
                return json.dumps(dict(certs)).encode()

        return _Resp()


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token in the header Cloud Run checks: ``X-Serverless-Authorization`` if present, else
    ``Authorization``; None without a ``Bearer`` token there."""
    value = headers.get("x-serverless-authorization")
    if value is None:
        value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token.count(".") == 2 else None


def _claims(token: str) -> dict[str, Any] | None:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


class Verifier:
    """Turns request headers into a :class:`Principal`, or None (with the reason, for the log)."""

    def __init__(self, audiences: Sequence[str], certs: CertFetcher, trust_cloud_run_iam: bool = False) -> None:
        self.audiences = [a for a in audiences if a]
        self.certs = certs
        self.trust_cloud_run_iam = trust_cloud_run_iam

    async def principal(self, headers: Mapping[str, str]) -> tuple[Principal | None, str]:
        token = bearer(headers)
        if token is None:
            return None, "no caller identity"
        if not self.audiences:
            return None, "no audience configured"
        if token.endswith("." + STRIPPED):
            return self._stripped(token)
        try:
            certs = await self.certs()
        except (httpx.HTTPError, ValueError) as exc:
            return None, f"certificates unavailable ({type(exc).__name__})"
        try:
            claims = id_token.verify_oauth2_token(  # type: ignore[no-untyped-call]
                token, _CertsRequest(certs), audience=list(self.audiences), clock_skew_in_seconds=CLOCK_SKEW_S
            )
        except (auth_exceptions.GoogleAuthError, ValueError, TypeError, KeyError):
            return None, "caller identity not verified"
        return self._from_claims(claims)

    def _stripped(self, token: str) -> tuple[Principal | None, str]:
        if not self.trust_cloud_run_iam:
            return None, "caller identity not verified"
        claims = _claims(token)
        if claims is None:
            return None, "caller identity not verified"
        exp = claims.get("exp")
        if claims.get("iss") not in GOOGLE_ISSUERS or claims.get("aud") not in self.audiences:
            return None, "caller identity not verified"
        if not isinstance(exp, int | float) or exp + CLOCK_SKEW_S < time.time():
            return None, "caller identity not verified"
        return self._from_claims(claims)

    @staticmethod
    def _from_claims(claims: Mapping[str, Any]) -> tuple[Principal | None, str]:
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str) or not isinstance(sub, str) or not sub:
            return None, "caller identity not verified"
        return Principal(iss, sub), ""
