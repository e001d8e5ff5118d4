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

Size bounds: responses above ``max_entry_bytes`` are not stored; every key carries the TTL; each tenant has
its own sorted set by insertion time, capped at ``max_entries_per_tenant``, and when all tenants together
hold more than ``max_entries`` the *largest* tenant loses its oldest entry (one Lua script per write, so a
busy tenant evicts its own entries, never the others'). Store failures of every kind (down, hung, refused
authentication, and server errors such as ``OOM``, ``READONLY`` after a failover or ``WRONGTYPE``) raise
:class:`StoreDown`; the app then passes the request through to the model, or, after the model answered,
just does not store.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
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
AGE_INDEX = PREFIX + "age:"
"""``s1:age:<tenant>``: one sorted set per tenant (member: entry key, score: insertion time)."""
TENANTS = PREFIX + "tenants"
"""Sorted set: tenant → its entry count (as of its last write or eviction)."""
TOTAL = PREFIX + "total"
INDEX = "s1idx"
BRUTE_FORCE_SCOPE_LIMIT = 256
"""Brute force scores at most this many (newest) entries per tenant and scope: one lookup reads ≤ 384 KB of
vectors (256 × 384 float32). Deployments where one scope holds more (one system prompt, many questions)
should use the store's vector search (Memorystore for Valkey has it); older entries stay reachable by
exact key."""
CANDIDATES = 4
"""Nearest entries checked by the second stage (``semcache.guard.same_order``), best first."""
EVICT = """
local tenants, total, age = KEYS[1], KEYS[2], KEYS[3]
local entry, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max_total, max_tenant, prefix, tenant = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local function sync(t, a)
  redis.call('ZREMRANGEBYSCORE', a, '-inf', now - ttl)
  local n = redis.call('ZCARD', a)
  local old = tonumber(redis.call('ZSCORE', tenants, t) or '0')
  if n == 0 then redis.call('ZREM', tenants, t) else redis.call('ZADD', tenants, n, t) end
  redis.call('INCRBY', total, n - old)
  return n
end
redis.call('ZADD', age, now, entry)
redis.call('EXPIRE', age, ttl)
local n = sync(tenant, age)
local evicted = 0
while n > max_tenant do
  local e = redis.call('ZPOPMIN', age)
  redis.call('DEL', e[1])
  evicted = evicted + 1
  n = sync(tenant, age)
end
local rounds = 0
while tonumber(redis.call('GET', total) or '0') > max_total and rounds < 64 do
  rounds = rounds + 1
  local top = redis.call('ZREVRANGE', tenants, 0, 0)
  if #top == 0 then break end
  local a = prefix .. top[1]
  local e = redis.call('ZPOPMIN', a)
  if e[1] then redis.call('DEL', e[1]); evicted = evicted + 1 end
  sync(top[1], a)
end
return evicted
"""
"""One write's bookkeeping, atomically: index the entry under its tenant, drop the tenant's expired index
members, cap the tenant, then evict from the largest tenant while the total is above ``max_entries``. The
keys of other tenants are derived inside the script, which Valkey allows with cluster mode disabled (the
only mode the component creates)."""


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
    """The FT.SEARCH hybrid query: the nearest few in one tenant and one scope (hex tags need no escaping)."""
    return f"(@tenant:{{{tenant}}} @scope:{{{scope}}})=>[KNN {CANDIDATES} @vec $q AS dist]"


def search_args(tenant: str, scope: str, vec: Vector) -> list[str | bytes]:
    """FT.SEARCH for the nearest entries: cosine distance, response, GPU seconds and content-word hashes."""
    return [
        "FT.SEARCH", INDEX, search_query(tenant, scope),
        "PARAMS", "2", "q", vec.astype(np.float32).tobytes(),
        "RETURN", "4", "dist", "resp", "gpu_s", "words", "DIALECT", "2",
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
        max_entries_per_tenant: int = 0,
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
        self.max_entries_per_tenant = max_entries_per_tenant or max_entries
        self.vector_search = vector_search
        self.mode: str | None = None
        """``store`` or ``brute-force`` once known."""
        self.down_until = 0.0
        """After a failure the store is skipped for a second, so a dead store costs one timeout, not one per request."""

    def _command(self, *args: str | bytes) -> Awaitable[Any]:
        """A raw command (the FT.* family has no typed wrapper in redis-py)."""
        return self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _call(self, coro: Any, raw_errors: bool = False) -> Any:
        """Run one store call; every failure becomes :class:`StoreDown`. A server error (``ResponseError``:
        ``OOM``, ``READONLY`` after a failover, ``WRONGTYPE``, ``LOADING`` …) is a failure like any other, and
        the ones that concern the whole server also skip the store for a second. ``raw_errors`` lets the
        search-module probe see the server's "unknown command"."""
        if time.monotonic() < self.down_until:
            coro.close()
            raise StoreDown("store marked down")
        try:
            return await coro
        except ResponseError as exc:
            if raw_errors:
                raise
            text = error_code(exc)
            if text in ("OOM", "READONLY", "LOADING", "MASTERDOWN", "BUSY", "NOAUTH", "WRONGPASS", "NOPERM"):
                self.down_until = time.monotonic() + 1.0
            raise StoreDown(f"store error {text}") from None
        except (RedisError, OSError) as exc:
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
            existing = await self._call(self._command("FT._LIST"), raw_errors=True)
        except ResponseError:  # unknown command: no search module
            if self.vector_search == "store":
                raise StoreDown("CACHE_VECTOR_SEARCH=store but the store has no FT.* commands") from None
            self.mode = "brute-force"
            return self.mode
        names = {n.decode() if isinstance(n, bytes) else str(n) for n in existing or []}
        if INDEX not in names:
            try:
                await self._call(self._command(*create_index_args(dim)), raw_errors=True)
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
        return Entry(bytes(got[0]), _float(got[1]))

    async def get_similar(
        self, tenant: str, scope: str, vec: Vector, threshold: float, accept: Callable[[list[str]], bool]
    ) -> Entry | None:
        """The nearest entry in (tenant, scope) whose cosine similarity is at least ``threshold`` and whose
        content words ``accept`` (the second stage) takes; the next nearest when it refuses."""
        mode = await self.ensure_mode(len(vec))
        if mode == "store":
            res = await self._call(self._command(*search_args(tenant, scope, vec)))
            found = [(1.0 - _float(fields.get(b"dist")), fields) for fields in search_hits(res)]
            for sim, fields in sorted(found, key=lambda f: -f[0]):
                if sim < threshold:
                    break
                if accept(_words(fields.get(b"words"))):
                    return Entry(bytes(fields[b"resp"]), _float(fields.get(b"gpu_s")), sim)
            return None
        scope_key = f"{SCOPE_SET}{tenant}:{scope}"
        members = await self._call(self.client.zrange(scope_key, 0, BRUTE_FORCE_SCOPE_LIMIT - 1, desc=True))
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
            await self._call(self.client.zrem(scope_key, *stale))
        if not live:
            return None
        matrix = np.frombuffer(b"".join(v for _, v in live), dtype=np.float32).reshape(len(live), len(vec))
        sims = matrix @ vec.astype(np.float32)
        for best in np.argsort(-sims)[:CANDIDATES]:
            sim = float(sims[best])
            if sim < threshold:
                break
            got = await self._call(self.client.hmget(live[int(best)][0], ["resp", "gpu_s", "words"]))
            if got and got[0] is not None and accept(_words(got[2])):
                return Entry(bytes(got[0]), _float(got[1]), sim)
        return None

    async def put(
        self,
        tenant: str,
        scope: str,
        exact: str,
        response: bytes,
        gpu_s: float,
        vec: Vector | None,
        words: tuple[str, ...] = (),
    ) -> None:
        """Store one entry with the TTL, index it for semantic lookups, evict beyond the bounds."""
        key = f"{ENTRY}{tenant}:{exact}"
        now = time.time()
        mapping: dict[str, bytes | str | float] = {
            "resp": response, "gpu_s": gpu_s, "tenant": tenant, "scope": scope, "created": now,
            "words": " ".join(words),
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
        pipe.eval(
            EVICT, 3, TENANTS, TOTAL, f"{AGE_INDEX}{tenant}",
            key, repr(now), str(self.ttl_s), str(self.max_entries), str(self.max_entries_per_tenant), AGE_INDEX,
            tenant,
        )  # fmt: skip
        await self._call(pipe.execute())

    async def count(self, tenant: str | None = None) -> int:
        """Entries currently indexed, of one tenant or all (tests and the report)."""
        if tenant is not None:
            return int(await self._call(self.client.zcard(f"{AGE_INDEX}{tenant}")))
        return int(await self._call(self.client.get(TOTAL)) or 0)

    async def close(self) -> None:
        await self.client.aclose()


def error_code(exc: ResponseError) -> str:
    """The server's error code (``OOM``, ``READONLY``, ``WRONGTYPE`` …). redis-py 8 takes the code off the message
    of the errors it has a class for (``OOM`` → ``OutOfMemoryError("command not allowed …")``, ``READONLY``,
    ``NOPERM``, ``MASTERDOWN``; ``parse_error`` in redis/_parsers/base.py) and keeps it as ``status_code``, and it
    rewrites a pipeline command's error to ``Command # 1 (HSET …) of pipeline caused error: (…)``
    (``annotate_exception`` in redis/asyncio/client.py). Reading the message's first word gave ``COMMAND`` or
    ``YOU``, so a store out of memory or read-only after a failover was never skipped (tests/test_cov_store.py)."""
    code = getattr(exc, "status_code", None)
    if code:
        return str(code).upper()
    text = str(exc)
    _, annotated, rest = text.partition(" of pipeline caused error: ")
    if annotated:
        text = rest.lstrip("('\"")
    return text.split(" ", 1)[0].upper()


def search_hits(res: Any) -> list[dict[bytes, Any]]:
    """The returned fields of each FT.SEARCH hit, from either reply shape.

    RESP2 (and valkey-search, https://github.com/valkey-io/valkey-doc/blob/main/commands/ft.search.md "RESPONSE"):
    an array ``[count, key1, [name, value, …], key2, […], …]``. RESP3, which redis-py 8 negotiates by default
    (``redis.utils.DEFAULT_RESP_VERSION = 3``): RediSearch answers a map ``{total_results, results: [{id,
    extra_attributes: {name: value}}]}`` (seen from RediSearch 2.10 here, tests/test_cov_store.py). Reading only
    the first shape raised ``KeyError`` out of a lookup, which the app answered with a 500. Any other shape is a
    store error: the request passes through to the model."""
    if not res:
        return []
    if isinstance(res, dict) and isinstance(res.get(b"results"), list):
        return [dict(hit.get(b"extra_attributes") or {}) for hit in res[b"results"] if isinstance(hit, dict)]
    if isinstance(res, list) and isinstance(res[0], int):
        return [dict(zip(f[::2], f[1::2], strict=False)) for f in res[2::2] if isinstance(f, list)]
    raise StoreDown(f"unexpected FT.SEARCH reply {type(res).__name__}")


def _float(raw: Any) -> float:
    """A stored number; a corrupt field reads as a store error (the request then passes through)."""
    try:
        return float(raw or 0.0)
    except (TypeError, ValueError):
        raise StoreDown("corrupt entry") from None


def _words(raw: Any) -> list[str]:
    return (bytes(raw).decode() if raw else "").split()
