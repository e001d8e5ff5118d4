"""Cache entries in Valkey (or Redis): exact lookups by key, semantic lookups by vector.

One entry is one hash ``s1:e:<tenant>:<exact>`` with the stored response, the GPU seconds it cost,
its embedding and its ``tenant``/``scope`` tags, expiring after the TTL. Semantic lookups look only
inside the caller's tenant and the request's scope:

- **store** mode: the store's own vector search (valkey-search ``FT.CREATE`` / ``FT.SEARCH``, which
  Memorystore for Valkey provides: https://cloud.google.com/memorystore/docs/valkey/about-vector-search,
  query syntax https://cloud.google.com/memorystore/docs/valkey/query-syntax), a KNN-1 query under a
  ``@tenant:{…} @scope:{…}`` tag filter;
- **brute-force** mode, for stores without the search module (Debian's ``redis-server`` and
  ``valkey-server`` have none): a sorted set per tenant and scope lists its newest entries (at most
  :data:`BRUTE_FORCE_SCOPE_LIMIT`), and this service scores their vectors with one matrix product.

Size bounds: responses above ``max_entry_bytes`` are not stored; a sorted set by insertion time keeps
at most ``max_entries`` entries (oldest evicted first); every key carries the TTL. Store failures
(including authentication: no token, a refused token) raise :class:`StoreDown`; the app then passes the
request through to the model.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from semcache.embed import Vector

PREFIX = "s1:"
ENTRY = PREFIX + "e:"
SCOPE_SET = PREFIX + "s:"
AGE_INDEX = PREFIX + "age"
INDEX = "s1idx"
BRUTE_FORCE_SCOPE_LIMIT = 1000
"""Brute force scores at most this many (newest) entries per tenant and scope: one lookup reads ≤ 1.5 MB of
vectors. Deployments where one scope holds more (one system prompt, many questions) should use the store's
vector search (Memorystore for Valkey has it); older entries stay reachable by exact key."""


class StoreDown(Exception):
    """The store did not answer (down, unreachable, timed out): callers skip the cache."""


@dataclass(frozen=True)
class Entry:
    response: bytes
    """The complete, non-streamed response body as the model returned it (JSON)."""
    gpu_s: float
    """Seconds the upstream took to produce it: what a hit saves."""
    similarity: float = 1.0


def search_query(tenant: str, scope: str) -> str:
    """The FT.SEARCH hybrid query: KNN 1 inside one tenant and one scope (tags are hex, no escaping needed)."""
    return f"(@tenant:{{{tenant}}} @scope:{{{scope}}})=>[KNN 1 @vec $q AS dist]"


def search_args(tenant: str, scope: str, vec: Vector) -> list[str | bytes]:
    """FT.SEARCH for the nearest entry: its cosine distance, response and GPU seconds."""
    return [
        "FT.SEARCH", INDEX, search_query(tenant, scope),
        "PARAMS", "2", "q", vec.astype(np.float32).tobytes(),
        "RETURN", "3", "dist", "resp", "gpu_s", "DIALECT", "2",
    ]  # fmt: skip


def create_index_args(dim: int) -> list[str]:
    """FT.CREATE over the entry hashes: two TAG fields and a cosine HNSW vector field."""
    return [
        "FT.CREATE", INDEX, "ON", "HASH", "PREFIX", "1", ENTRY, "SCHEMA",
        "tenant", "TAG", "scope", "TAG",
        "vec", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", str(dim), "DISTANCE_METRIC", "COSINE",
    ]  # fmt: skip


class Store:
    """The cache store; every method raises :class:`StoreDown` instead of a client error."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ttl_s: int,
        max_entries: int,
        timeout_s: float,
        vector_search: str = "auto",
        credentials: CredentialProvider | None = None,
        ca_pem: str = "",
    ) -> None:
        # One retry, on a connection error only (never on a timeout): a cache that waits for its store defeats its
        # purpose, and a dead store costs one timeout, then the request goes to the model. The one retry is for a
        # pooled connection that the server closed while idle (Memorystore ends IAM-authenticated connections
        # after 12 hours): redis-py finds out only when the next command fails, and the retry opens (and
        # authenticates) a new connection instead of skipping the cache.
        # ``credentials`` authenticate every new connection (IAM: semcache.iam.MetadataToken); ``ca_pem`` turns on
        # TLS verified against exactly that CA bundle and the endpoint's address (Memorystore's server
        # certificates carry the endpoint IPs), TLS 1.2 or later as Memorystore requires
        # (https://cloud.google.com/memorystore/docs/valkey/about-in-transit-encryption).
        tls: dict[str, Any] = {}
        if ca_pem:
            tls = {
                "ssl": True,
                "ssl_ca_data": ca_pem,
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": True,
                "ssl_min_version": ssl.TLSVersion.TLSv1_2,
            }
        self.credentials = credentials
        self.client = aioredis.Redis(
            host=host,
            port=port,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            credential_provider=credentials,
            **tls,
        )
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.vector_search = vector_search
        self.mode: str | None = None
        """``store`` or ``brute-force`` once known."""
        self.down_until = 0.0
        """After a failure the store is skipped for a second, so a dead store costs one timeout, not one per request."""

    def _command(self, *args: str | bytes) -> Awaitable[Any]:
        """A raw command (the FT.* family has no typed wrapper in redis-py)."""
        return self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _call(self, coro: Any) -> Any:
        if time.monotonic() < self.down_until:
            coro.close()
            raise StoreDown("store marked down")
        try:
            return await coro
        except (RedisError, OSError) as exc:
            if isinstance(exc, ResponseError):
                raise
            self.down_until = time.monotonic() + 1.0
            raise StoreDown(type(exc).__name__) from None

    async def ensure_mode(self, dim: int) -> str:
        """Detect (once) whether the store has vector search, and create the index when it does."""
        if self.mode is not None:
            return self.mode
        if self.vector_search == "brute-force":
            self.mode = "brute-force"
            return self.mode
        try:
            existing = await self._call(self._command("FT._LIST"))
        except ResponseError:  # unknown command: no search module
            if self.vector_search == "store":
                raise StoreDown("CACHE_VECTOR_SEARCH=store but the store has no FT.* commands") from None
            self.mode = "brute-force"
            return self.mode
        names = {n.decode() if isinstance(n, bytes) else str(n) for n in existing or []}
        if INDEX not in names:
            try:
                await self._call(self._command(*create_index_args(dim)))
            except ResponseError as exc:
                if "exist" not in str(exc).lower():
                    if self.vector_search == "store":
                        raise StoreDown(f"FT.CREATE failed: {exc}") from None
                    # A search module without vector fields (e.g. RediSearch 1.x): score here instead.
                    self.mode = "brute-force"
                    return self.mode
        self.mode = "store"
        return self.mode

    async def get_exact(self, tenant: str, exact: str) -> Entry | None:
        got = await self._call(self.client.hmget(f"{ENTRY}{tenant}:{exact}", ["resp", "gpu_s"]))
        if not got or got[0] is None:
            return None
        return Entry(bytes(got[0]), float(got[1] or 0.0))

    async def get_similar(self, tenant: str, scope: str, vec: Vector, threshold: float) -> Entry | None:
        """The nearest entry in (tenant, scope) when its cosine similarity is at least ``threshold``."""
        mode = await self.ensure_mode(len(vec))
        if mode == "store":
            try:
                res = await self._call(self._command(*search_args(tenant, scope, vec)))
            except ResponseError as exc:
                raise StoreDown(f"FT.SEARCH failed: {exc}") from None
            if not res or int(res[0]) == 0:
                return None
            fields = dict(zip(res[2][::2], res[2][1::2], strict=False))
            sim = 1.0 - float(fields[b"dist"])
            if sim < threshold:
                return None
            return Entry(bytes(fields[b"resp"]), float(fields.get(b"gpu_s", 0.0)), sim)
        members = await self._call(self.client.zrange(f"{SCOPE_SET}{tenant}:{scope}", 0, -1))
        if not members:
            return None
        keys = [m.decode() for m in members]
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hget(k, "vec")
        vecs = await self._call(pipe.execute())
        live = [(k, v) for k, v in zip(keys, vecs, strict=True) if v is not None and len(v) == 4 * len(vec)]
        stale = [k for k, v in zip(keys, vecs, strict=True) if v is None]
        if stale:
            await self._call(self.client.zrem(f"{SCOPE_SET}{tenant}:{scope}", *stale))
        if not live:
            return None
        matrix = np.frombuffer(b"".join(v for _, v in live), dtype=np.float32).reshape(len(live), len(vec))
        sims = matrix @ vec.astype(np.float32)
        best = int(np.argmax(sims))
        if float(sims[best]) < threshold:
            return None
        got = await self._call(self.client.hmget(live[best][0], ["resp", "gpu_s"]))
        if not got or got[0] is None:
            return None
        return Entry(bytes(got[0]), float(got[1] or 0.0), float(sims[best]))

    async def put(self, tenant: str, scope: str, exact: str, response: bytes, gpu_s: float, vec: Vector | None) -> None:
        """Store one entry with the TTL, index it for semantic lookups, evict beyond ``max_entries``."""
        key = f"{ENTRY}{tenant}:{exact}"
        now = time.time()
        mapping: dict[str, bytes | str | float] = {
            "resp": response, "gpu_s": gpu_s, "tenant": tenant, "scope": scope, "created": now,
        }  # fmt: skip
        if vec is not None:
            mapping["vec"] = vec.astype(np.float32).tobytes()
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        pipe.expire(key, self.ttl_s)
        if vec is not None and self.mode != "store":
            scope_key = f"{SCOPE_SET}{tenant}:{scope}"
            pipe.zadd(scope_key, {key: now})
            pipe.zremrangebyrank(scope_key, 0, -BRUTE_FORCE_SCOPE_LIMIT - 1)  # keep the newest only
            pipe.expire(scope_key, self.ttl_s)
        pipe.zadd(AGE_INDEX, {key: now})
        pipe.zremrangebyscore(AGE_INDEX, "-inf", now - self.ttl_s)
        pipe.zcard(AGE_INDEX)
        *_, count = await self._call(pipe.execute())
        if int(count) > self.max_entries:
            evicted = await self._call(self.client.zpopmin(AGE_INDEX, int(count) - self.max_entries))
            if evicted:
                await self._call(self.client.delete(*[k for k, _ in evicted]))

    async def count(self) -> int:
        """Entries currently tracked (tests and the report)."""
        return int(await self._call(self.client.zcard(AGE_INDEX)))

    async def close(self) -> None:
        await self.client.aclose()
