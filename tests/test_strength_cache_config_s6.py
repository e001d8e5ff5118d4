"""Mutation-strength tests (issue 23, session 6) for the cache service's settings, ``semcache/config.py``.

Seed 101 (the file's blind sample) left one survivor: ``Config`` without ``frozen=True``. The settings are "read
once from the environment" (the module's contract): every part of the running service (the store, the verifier,
the upstream auth, the request handler) reads the one ``Config`` the container started with, so a setting that
could be reassigned later would leave those parts disagreeing about what the operator configured.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "container" / "cache"))
from semcache.app import app_from_env
from semcache.config import ENV


def test_a_started_services_settings_cannot_be_changed_while_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The container's entry point reads the environment once; the settings it serves with refuse a later write
    and keep what the operator set."""
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(ENV["upstream_url"], "http://127.0.0.1:8080/")
    monkeypatch.setenv(ENV["semantic"], "false")
    monkeypatch.setenv(ENV["threshold"], "0.95")
    config = app_from_env().state.cache.config
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'threshold'"):
        config.threshold = 0.5
    assert (config.threshold, config.upstream_url) == (0.95, "http://127.0.0.1:8080")


# A value set by hand on the service (the component writes only allowed ones) stops the container at start-up with
# the variable, the value, what is allowed and the fix, instead of running in another mode than asked (session 6).


@pytest.mark.parametrize(
    ("field", "raw", "problem", "allowed", "default"),
    [
        # a typo used to call the GPU service with no Authorization header at all (Cloud Run answers 403)
        ("upstream_auth", "oidc", "is not a known mode", "none, google-id-token", "none"),
        # an unknown mode used to act as "auto"
        ("vector_search", "faiss", "is not a known mode", "auto, store, brute-force", "auto"),
        # int('abc')'s own message named neither the variable nor the fix
        ("ttl_s", "abc", "is not a whole number", "a whole number", "3600"),
        ("max_entries", "5e4", "is not a whole number", "a whole number", "50000"),
        ("threshold", "high", "is not a number", "a number", "0.9"),
        ("store_timeout_s", "", "is not a number", "a number", "0.25"),
        # an unknown word used to read as false: the cache silently exact-only, or Cloud Run's IAM not trusted
        ("semantic", "enabled", "is not true or false", "1, true, yes, on, 0, false, no, off", "true"),
        ("trust_cloud_run_iam", "si", "is not true or false", "1, true, yes, on, 0, false, no, off", "false"),
    ],
)
def test_a_hand_set_value_the_service_cannot_read_stops_it_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    field: str,
    raw: str,
    problem: str,
    allowed: str,
    default: str,
) -> None:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(ENV["upstream_url"], "http://127.0.0.1:8080/")
    monkeypatch.setenv(ENV["semantic"], "false")
    monkeypatch.setenv(ENV[field], raw)
    with pytest.raises(SystemExit) as stopped:
        app_from_env()
    assert stopped.value.code == 2
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["severity"] == "ERROR"
    assert line["message"] == (
        f"cache cannot start: {ENV[field]}={raw!r} {problem} (allowed: {allowed}); set it to an allowed value, or "
        f"unset it for the default ({default})"
    )


def test_the_modes_the_service_reads_are_the_ones_the_component_writes() -> None:
    """The seam with ``cloudrun_gpu.cache``: every vector-search mode the component offers starts the service in
    that mode, and the upstream auth it writes is one the service knows (a mode the service refused would stop
    every revision)."""
    from cloudrun_gpu.cache import CacheSettings
    from cloudrun_gpu.cache.settings import VectorSearch
    from semcache.config import UPSTREAM_AUTH_MODES, VECTOR_SEARCH_MODES, Config

    assert tuple(m.value for m in VectorSearch) == VECTOR_SEARCH_MODES
    for mode in VectorSearch:
        env = {ENV["upstream_url"]: "http://u", ENV["vector_search"]: str(mode)}
        assert Config.from_env(env).vector_search == mode.value
    assert CacheSettings().vector_search.value in VECTOR_SEARCH_MODES
    assert "google-id-token" in UPSTREAM_AUTH_MODES
    cfg = Config.from_env({ENV["upstream_url"]: "http://u", ENV["upstream_auth"]: "Google-ID-Token"})
    assert cfg.upstream_auth == "google-id-token"
    # the environment the component really writes (cloudrun_gpu.cache.service_env), read by the service
    from cloudrun_gpu.cache import service_env

    for mode in VectorSearch:
        for invokers, semantic in (([], True), (["allUsers"], False)):
            settings = CacheSettings(vector_search=mode, invokers=invokers, semantic=semantic)
            read = Config.from_env({ENV["upstream_url"]: "http://u", **service_env(settings)})
            assert (read.upstream_auth, read.vector_search) == ("google-id-token", mode.value)
            assert (read.semantic, read.trust_cloud_run_iam) == (semantic, not settings.public)
