"""Mutation-strength tests (issue 23, session 4) for the cache service's settings, ``semcache/config.py``: every
variable the service reads is read, and what it runs with when a variable is unset.

The component (``cloudrun_gpu.cache.service_env``) never writes ``CACHE_STORE_TIMEOUT_S``,
``CACHE_MAX_JSON_DEPTH``, ``CACHE_EMBED_QUEUE`` nor ``CACHE_METADATA_TOKEN_URL``: the service's own defaults are
what production runs with, and docs/cache.md states them (0.25 s store timeout, 32 levels of JSON, 16 embeddings
at once). The shared settings' defaults must be the library's ``CacheSettings`` defaults, so a service started
without one of them behaves as the component would have configured it.
"""

from __future__ import annotations

import sys

import pytest
from cloudrun_gpu.cache import CacheSettings

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.config import ENV, METADATA_TOKEN, Config

URL = "https://llm-abc123-ew.a.run.app"

EVERY_VARIABLE = {
    "upstream_url": (URL + "/", URL),
    "upstream_auth": ("google-id-token", "google-id-token"),
    "valkey_host": ("10.0.0.5", "10.0.0.5"),
    "valkey_port": ("6380", 6380),
    "threshold": ("0.93", 0.93),
    "ttl_s": ("120", 120),
    "max_entries": ("7", 7),
    "max_entry_bytes": ("4096", 4096),
    "embedding_model": ("/models/minilm", "/models/minilm"),
    "tenant_header": ("Authorization", "authorization"),
    "semantic": ("no", False),
    "vector_search": ("brute-force", "brute-force"),
    "store_timeout_s": ("1.5", 1.5),
    "valkey_auth": ("IAM", "iam"),
    "valkey_ca_pem": ("-----BEGIN CERTIFICATE-----\nx\n", "-----BEGIN CERTIFICATE-----\nx\n"),
    "metadata_token_url": ("http://127.0.0.1:9/token", "http://127.0.0.1:9/token"),
    "audiences": (
        " https://a.example.com, ,https://b.example.com ",
        ("https://a.example.com", "https://b.example.com"),
    ),
    "trust_cloud_run_iam": ("TRUE", True),
    "max_body_bytes": ("2048", 2048),
    "max_json_depth": ("8", 8),
    "embed_queue": ("3", 3),
    "max_entries_per_tenant": ("5", 5),
}
"""Setting → (what the environment says, what the service must run with): every value differs from the default."""


def test_every_variable_the_component_or_an_operator_sets_is_read() -> None:
    """A setting whose variable is ignored (dropped from ``from_env``) silently runs with its default: each one
    here is set to a non-default value and must come back as written (parsed, lower-cased, trimmed)."""
    assert set(EVERY_VARIABLE) == set(ENV), "every variable of the contract has a case here"
    cfg = Config.from_env({ENV[k]: raw for k, (raw, _) in EVERY_VARIABLE.items()})
    got = {k: getattr(cfg, k) for k in EVERY_VARIABLE}
    assert got == {k: want for k, (_, want) in EVERY_VARIABLE.items()}
    default = Config(upstream_url=URL)
    same = {k for k, (_, want) in EVERY_VARIABLE.items() if want == getattr(default, k)}
    assert same == {"upstream_url", "tenant_header"}, "authorization is the only tenant header there is"


@pytest.mark.parametrize(("raw", "on"), [("1", True), ("true", True), ("Yes", True), ("0", False), ("off", False)])
def test_the_two_switches_read_the_same_words(raw: str, on: bool) -> None:
    cfg = Config.from_env({ENV["upstream_url"]: URL, ENV["semantic"]: raw, ENV["trust_cloud_run_iam"]: raw})
    assert (cfg.semantic, cfg.trust_cloud_run_iam) == (on, on)


def test_unset_variables_give_the_documented_defaults() -> None:
    """Only the URL set: the service runs as documented, and ``from_env``'s fallbacks equal the dataclass's."""
    cfg = Config.from_env({ENV["upstream_url"]: URL})
    assert cfg == Config(upstream_url=URL)
    assert (cfg.upstream_auth, cfg.valkey_auth, cfg.valkey_ca_pem) == ("none", "none", ""), "a local redis-server"
    assert (cfg.valkey_host, cfg.valkey_port) == ("127.0.0.1", 6379), "redis-server's own default port"
    # docs/cache.md: "a 0.25 s socket timeout", "nested deeper than 32 levels … gets 400", "at most
    # CACHE_EMBED_QUEUE (16) wait or run at once"; the component never sets these three.
    assert (cfg.store_timeout_s, cfg.max_json_depth, cfg.embed_queue) == (0.25, 32, 16)
    assert cfg.metadata_token_url == METADATA_TOKEN
    assert METADATA_TOKEN == (
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
    )
    assert (cfg.audiences, cfg.trust_cloud_run_iam, cfg.semantic, cfg.vector_search) == ((), False, True, "auto")


def test_shared_defaults_are_the_components_defaults() -> None:
    """A variable the component did not write means the library's default, not another number."""
    lib, cfg = CacheSettings(), Config.from_env({ENV["upstream_url"]: URL})
    shared = ("threshold", "ttl_s", "max_entries", "max_entry_bytes", "embedding_model", "tenant_header",
              "max_body_bytes", "max_entries_per_tenant")  # fmt: skip
    assert {k: getattr(cfg, k) for k in shared} == {k: getattr(lib, k) for k in shared}
    assert (cfg.threshold, cfg.ttl_s, cfg.max_entries, cfg.max_entry_bytes) == (0.90, 3600, 50_000, 65_536)
    assert (cfg.max_body_bytes, cfg.max_entries_per_tenant) == (1_048_576, 0)


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        (
            "valkey_auth",
            "iam-ish",
            "CACHE_VALKEY_AUTH='iam-ish' is not a known mode (allowed: none, iam); set it to an allowed value, "
            "or unset it for the default (none)",
        ),
        (
            "tenant_header",
            "x-api-key",
            "CACHE_TENANT_HEADER='x-api-key' is not a known mode (allowed: authorization); set it to an allowed "
            "value, or unset it for the default (authorization)",
        ),
    ],
)
def test_an_unknown_mode_stops_the_service_naming_the_variable(field: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        Config.from_env({ENV["upstream_url"]: URL, ENV[field]: raw})
    assert str(err.value) == message


def test_without_the_upstream_the_service_does_not_start() -> None:
    with pytest.raises(ValueError) as err:
        Config.from_env({ENV["valkey_host"]: "10.0.0.5"})
    assert str(err.value) == "CACHE_UPSTREAM_URL is required: the GPU service's URL"


def test_from_env_reads_the_same_through_an_instance() -> None:
    """``from_env`` is a static constructor: called on a ``Config`` already made (a caller re-reading the
    environment), it still reads only the mapping it is given."""
    cfg = Config(upstream_url="http://old").from_env({ENV["upstream_url"]: URL, ENV["ttl_s"]: "5"})
    assert (cfg.upstream_url, cfg.ttl_s) == (URL, 5)
