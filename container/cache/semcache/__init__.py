"""The semantic response cache that sits in front of the GPU service (practice S1).

A CPU Cloud Run service of its own: a hit is answered here, so it never takes one of the GPU
instance's concurrency slots and never wakes a GPU service that scaled to zero. Modules:

- :mod:`semcache.config`: the environment contract the ``ResponseCache`` component fills in.
- :mod:`semcache.keys`: request normalisation, the tenant hash, reuse safety, the literal guard.
- :mod:`semcache.embed`: a sentence-transformers BERT model run in plain numpy (no torch).
- :mod:`semcache.store`: Valkey/Redis storage, vector search in the store or brute force here.
- :mod:`semcache.app`: the ASGI app (Starlette) that proxies, caches and replays.
"""
