"""The cache's store connection as Memorystore for Valkey runs it by default: IAM authentication over TLS.

Real parts: ``redis-server`` with TLS only (a throwaway CA, a certificate for 127.0.0.1) whose ``default`` user
needs the current access token (``requirepass``; rotated with ``ACL SETUSER default resetpass >new``), a local
HTTP stand-in for the metadata server's token endpoint, the real cache app over HTTP and a counting upstream.
Memorystore's protocol (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth, manage-iam-auth):
``AUTH default <access token>`` on every new connection; a token lives an hour; an authenticated connection
keeps working after its token expires; new connections need a current token.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis

from .test_cache_support import (
    ROOT,
    FakeMetadata,
    StoreServer,
    StubUpstream,
    Tls,
    free_port,
    make_tls,
    required_store_binary,
    run_cache,
    run_secure_store,
    serve,
    signed_caller,
    store_client,
)

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.iam import MetadataToken

TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[StubUpstream, str]]:
    upstream = StubUpstream(delay_s=0.01)
    with serve(upstream.app()) as base:
        yield upstream, base


@pytest.fixture
def token() -> str:
    return f"ya29.{uuid.uuid4().hex}"


@pytest.fixture
def store(tls: Tls, token: str) -> Iterator[StoreServer]:
    """A TLS-only store whose ``default`` user needs ``token`` (a fresh one per test)."""
    binary = required_store_binary()
    with run_secure_store(binary, token, tls) as server:
        yield server


@pytest.fixture
def metadata(token: str) -> Iterator[tuple[FakeMetadata, str]]:
    fake = FakeMetadata(token)
    with serve(fake.app()) as base:
        yield fake, base + TOKEN_PATH


def cache_for(stub: tuple[StubUpstream, str], store: StoreServer, url: str, ca_pem: str, **kw: Any) -> Any:
    """The real cache app with IAM auth and TLS, exact hits only (no embedding model needed here)."""
    settings: dict[str, Any] = {"valkey_auth": "iam", "valkey_ca_pem": ca_pem, "metadata_token_url": url}
    return run_cache(stub[1], store.port, None, semantic=False, **{**settings, **kw})


WHO = signed_caller("auth-tests")["authorization"]


def ask(base: str, question: str, who: str = WHO) -> httpx.Response:
    body = {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": question}]}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers={"authorization": who}, timeout=30)


def kill_cache_connections(admin: redis.Redis) -> int:
    """Close every store connection but the admin's own, as the server does after 12 hours
    (https://cloud.google.com/memorystore/docs/valkey/manage-iam-auth: "Authenticated connections are valid
    for 12 hours")."""
    return int(admin.client_kill_filter(skipme=True, _type="normal"))


def test_iam_token_over_tls_gives_hits_and_is_fetched_once(
    stub: tuple[StubUpstream, str], store: StoreServer, tls: Tls, token: str, metadata: tuple[FakeMetadata, str]
) -> None:
    fake, url = metadata
    admin = store_client(store, token, tls)
    # the store is set up like an IAM_AUTH + TLS instance: no plain TCP, nothing before AUTH
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=store.port, socket_timeout=1, socket_connect_timeout=1).ping()
    with pytest.raises(redis.AuthenticationError):
        store_client(store, None, tls).ping()
    upstream, _ = stub
    with cache_for(stub, store, url, tls.ca_pem) as base:
        q = f"What is the capital of France? {uuid.uuid4()}"
        first = ask(base, q)
        assert first.status_code == 200 and first.headers["x-cache"] == "miss", first.headers
        calls = len(upstream.calls)
        assert kill_cache_connections(admin) >= 1  # the next request must open (and authenticate) a new one
        again = ask(base, q)
        assert again.headers["x-cache"] == "hit", again.headers
        assert again.json() == first.json() and len(upstream.calls) == calls
    # the entry really is in the authenticated store; one token served both connections (cached, not per connection)
    assert int(admin.get("s1:total") or 0) >= 1
    assert fake.requests == 1


def test_credentials_are_the_default_user_and_the_token() -> None:
    """What redis-py sends as ``AUTH <user> <password>``: Memorystore's only username and the access token,
    reused until 5 minutes before it expires."""
    fake = FakeMetadata("ya29.abc", expires_in=3599)
    with serve(fake.app()) as base:
        provider = MetadataToken(base + TOKEN_PATH)
        creds = asyncio.run(provider.get_credentials_async())
    assert creds == ("default", "ya29.abc")
    assert provider.refresh_at - time.monotonic() == pytest.approx(3599 - 300, abs=5)


def test_a_refused_token_passes_through_to_the_model(
    stub: tuple[StubUpstream, str], store: StoreServer, tls: Tls, token: str, metadata: tuple[FakeMetadata, str]
) -> None:
    fake, url = metadata
    fake.token = "ya29.not-the-right-one"
    upstream, _ = stub
    admin = store_client(store, token, tls)
    admin.acl_log_reset()
    auth_tries: list[int] = []
    token_fetches: list[int] = []
    with cache_for(stub, store, url, tls.ca_pem) as base:
        q = f"Why is the sky blue? {uuid.uuid4()}"
        for _ in range(2):
            calls = len(upstream.calls)
            resp = ask(base, q)
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-cache"] == "bypass" and resp.headers["x-cache-reason"] == "store unavailable"
            assert len(upstream.calls) == calls + 1, "the model answered"
            auth_tries.append(refused_auths(admin))
            token_fetches.append(fake.requests)
            time.sleep(1.1)  # past the one-second store back-off, so the second request tries to AUTH again
    # a refused token costs a request one AUTH and at most the one retry, with one token fetch: it never loops
    assert 1 <= auth_tries[0] <= 2 and 1 <= auth_tries[1] - auth_tries[0] <= 2, auth_tries
    assert token_fetches[0] == 1 and token_fetches[1] - token_fetches[0] <= 1, token_fetches
    failed = [e for e in admin.acl_log() if e.get("reason") == "auth"]
    assert failed and all(e.get("username") == "default" for e in failed), failed


def refused_auths(admin: redis.Redis) -> int:
    """Refused AUTH/HELLO commands the store has seen: ``ACL LOG`` folds the failures of one kind within 60 seconds
    into one entry whose ``count`` says how many (https://valkey.io/commands/acl-log/, "count")."""
    counts = [str(e.get("count", 1)) for e in admin.acl_log() if e.get("reason") == "auth"]
    return sum(int(c) for c in counts)


@pytest.mark.parametrize("how", ["server error", "unreachable", "no token in the answer"])
def test_no_token_from_the_metadata_server_passes_through(
    how: str,
    stub: tuple[StubUpstream, str],
    store: StoreServer,
    tls: Tls,
    metadata: tuple[FakeMetadata, str],
) -> None:
    fake, url = metadata
    if how == "server error":
        fake.status = 500
    elif how == "unreachable":
        url = f"http://127.0.0.1:{free_port()}{TOKEN_PATH}"
    else:
        fake.token = ""
    upstream, _ = stub
    with cache_for(stub, store, url, tls.ca_pem) as base:
        calls = len(upstream.calls)
        resp = ask(base, f"How tall is Mont Blanc? {uuid.uuid4()}")
    assert resp.status_code == 200 and "answer #" in resp.json()["choices"][0]["message"]["content"]
    assert resp.headers["x-cache"] == "bypass" and resp.headers["x-cache-reason"] == "store unavailable"
    assert len(upstream.calls) == calls + 1


def test_token_refresh_new_connections_use_the_new_token(
    stub: tuple[StubUpstream, str],
    store: StoreServer,
    tls: Tls,
    token: str,
    metadata: tuple[FakeMetadata, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token is fetched again once due; an authenticated connection survives the rotation, and a connection
    opened afterwards authenticates with the new token (the old one is refused by then). The provider's clock is
    a settable one: "due" is a second the test picks, not a sleep that a loaded machine can overrun."""
    from semcache import iam

    now = [1000.0]
    monkeypatch.setattr(iam, "time", SimpleNamespace(monotonic=lambda: now[0]))
    fake, url = metadata
    fake.expires_in = 3599  # due 3599 - 300 s after the first fetch
    admin = store_client(store, token, tls)
    upstream, _ = stub
    with cache_for(stub, store, url, tls.ca_pem) as base:
        q = f"How many legs does a spider have? {uuid.uuid4()}"
        assert ask(base, q).headers["x-cache"] == "miss"
        assert fake.requests == 1
        # rotate: the metadata server now hands out a new token and the store accepts only that one
        new = f"ya29.{uuid.uuid4().hex}"
        fake.token = new
        assert admin.acl_setuser("default", enabled=True, reset_passwords=True, passwords=[f"+{new}"])
        admin = store_client(store, new, tls)
        # the connection authenticated with the old token keeps working (Google: it "continues to work")
        kept = ask(base, q)
        assert kept.headers["x-cache"] == "hit", kept.headers
        now[0] += 3599 - 300  # the cached token is now due for refresh
        assert kill_cache_connections(admin) >= 1
        calls = len(upstream.calls)
        fresh = ask(base, q)
        assert fresh.headers["x-cache"] == "hit", fresh.headers
        assert len(upstream.calls) == calls
    assert fake.requests == 2, "the token was fetched again, once"
    assert admin.acl_log() == [] or all(e.get("reason") != "auth" for e in admin.acl_log()), admin.acl_log()


def test_tls_trusts_only_the_instance_ca(
    stub: tuple[StubUpstream, str],
    store: StoreServer,
    metadata: tuple[FakeMetadata, str],
    tmp_path: Path,
) -> None:
    """A server certificate from another CA, or a client without TLS: the cache passes through."""
    _, url = metadata
    other = make_tls(tmp_path, "other")
    for ca_pem in (other.ca_pem, ""):
        with cache_for(stub, store, url, ca_pem) as base:
            resp = ask(base, f"What is 2 + 2? {uuid.uuid4()}")
        assert resp.status_code == 200
        assert resp.headers["x-cache"] == "bypass" and resp.headers["x-cache-reason"] == "store unavailable"
