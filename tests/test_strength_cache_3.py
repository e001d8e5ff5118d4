"""Issue 23, third pass on the cache service (``container/cache/semcache/app.py``): what the seed-51 mutation
sample showed no listed test read. Through the running app, with the real redis-server store and the real
embedding model, as ``tests/test_cache.py`` does."""

from __future__ import annotations

from .test_cache import THRESHOLD, chat, content
from .test_cache import embedder as embedder  # the real embedding model, loaded once per session
from .test_cache import store as store  # the real Valkey/Redis server, started once per session
from .test_cache_support import Embedder, StoreServer, StubUpstream, run_cache, signed_caller
from .test_strength_cache_2 import upstream as upstream  # a stand-in model that answers at once, per test


def test_an_answer_stored_by_a_refresh_is_found_by_a_paraphrase(
    upstream: tuple[StubUpstream, str], store: StoreServer, embedder: Embedder
) -> None:
    """``x-cache-control: refresh`` skips both lookups, so no embedding was computed for the request; the fresh
    answer must still be stored with its embedding, or the next caller asking the same thing in other words
    would miss and pay for the GPU again."""
    stub, base = upstream
    who = signed_caller()
    with run_cache(base, store.port, embedder, threshold=THRESHOLD) as cache:
        fresh = chat(cache, "How do I reverse a list in Python?", {**who, "x-cache-control": "refresh"})
        para = chat(cache, "How can I reverse a list in Python?", who)
    assert (fresh.headers["x-cache"], fresh.headers["x-cache-reason"]) == ("miss", "refresh requested")
    assert (para.headers["x-cache"], para.headers["x-cache-match"]) == ("hit", "semantic")
    assert content(para) == content(fresh) and len(stub.calls) == 1
