"""Mutation-strength tests (issue 23, session 6) for the cache service's settings, ``semcache/config.py``.

Seed 101 (the file's blind sample) left one survivor: ``Config`` without ``frozen=True``. The settings are "read
once from the environment" (the module's contract): every part of the running service (the store, the verifier,
the upstream auth, the request handler) reads the one ``Config`` the container started with, so a setting that
could be reassigned later would leave those parts disagreeing about what the operator configured.
"""

from __future__ import annotations

import dataclasses
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
