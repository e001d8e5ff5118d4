"""Mutation-strength tests (issue 23, session 4) for the cache section and its component,
``cloudrun_gpu/cache/settings.py`` and ``cloudrun_gpu/cache/__init__.py``: the bounds ``test_strength_cache.py::
test_bounds`` leaves out, each refusal's exact words (what the user reads), and the log metrics' exact filter and
label descriptors (a filter that matches nothing is a dashboard that stays empty).
"""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.cache import LOG_COMPONENT
from cloudrun_gpu.cache.settings import CacheSettings
from cloudrun_gpu.errors import ConfigError, ConfigErrors

from .test_cache_component import METRIC, build


def errors(**kw: Any) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as err:
        CacheSettings(**kw)
    return err.value.errors


def out_of_range(field: str, high: int) -> dict[str, Any]:
    return {
        "field": f"CacheSettings.{field}",
        "value": high + 1,
        "problem": "is out of range",
        "fix": f"set CacheSettings.{field} to ≤ {high}",
        "allowed": f"≤ {high}",
    }


def test_request_bodies_up_to_32_mib_and_from_1_kib() -> None:
    assert CacheSettings(max_body_bytes=32 * 1024 * 1024).max_body_bytes == 33_554_432
    assert CacheSettings(max_body_bytes=1024).max_body_bytes == 1024
    (e,) = errors(max_body_bytes=32 * 1024 * 1024 + 1)
    assert vars(e) == out_of_range("max_body_bytes", 33_554_432)
    (low,) = errors(max_body_bytes=1023)
    assert (low.field, low.allowed) == ("CacheSettings.max_body_bytes", "≥ 1024")


def test_entry_counts_up_to_fifty_million() -> None:
    """The per-tenant cap's bound is its own (50,000,000) and comes before the "above max_entries" rule."""
    (e,) = errors(max_entries_per_tenant=50_000_001)
    assert vars(e) == out_of_range("max_entries_per_tenant", 50_000_000)
    (low,) = errors(max_entries_per_tenant=-1)
    assert (low.field, low.allowed) == ("CacheSettings.max_entries_per_tenant", "≥ 0")
    first = errors(max_entries=50_000_001)[0]
    assert vars(first) == out_of_range("max_entries", 50_000_000)
    assert CacheSettings(max_entries=1).max_entries == 1
    assert errors(max_entries=0)[0].allowed == "≥ 1"


def test_a_tenant_may_hold_every_entry_but_no_more() -> None:
    assert CacheSettings(max_entries=100, max_entries_per_tenant=100).max_entries_per_tenant == 100
    (e,) = errors(max_entries=100, max_entries_per_tenant=101)
    assert vars(e) == {
        "field": "CacheSettings.max_entries_per_tenant",
        "value": 101,
        "problem": "is above max_entries (100)",
        "fix": "set CacheSettings.max_entries_per_tenant ≤ 100, or 0 for the same cap",
        "allowed": "",
    }


def test_the_embedding_model_must_be_named() -> None:
    assert CacheSettings(embedding_model="m").embedding_model == "m"
    (e,) = errors(embedding_model="")
    assert (e.field, e.allowed) == ("CacheSettings.embedding_model", "at least 1 item(s)/character(s)")


def test_an_unknown_valkey_version_names_the_ones_there_are() -> None:
    (e,) = errors(valkey_version="VALKEY_9_9")
    assert (e.problem, e.fix, e.allowed) == (
        "is not a Memorystore for Valkey version",
        "use one of VALKEY_7_2, VALKEY_8_0, VALKEY_9_0",
        "VALKEY_7_2, VALKEY_8_0, VALKEY_9_0",
    )


def test_another_tenant_header_is_refused_saying_why() -> None:
    (e,) = errors(tenant_header="X-Api-Key")
    assert (e.field, e.value, e.problem, e.fix, e.allowed) == (
        "CacheSettings.tenant_header",
        "X-Api-Key",
        "is not a header the cache can verify: anyone could send another caller's value and read that caller's "
        "cached answers",
        "remove tenant_header (the default, authorization, verifies the caller's Google ID token)",
        "authorization",
    )
    assert CacheSettings(tenant_header="Authorization").tenant_header == "Authorization"


@pytest.mark.parametrize(
    ("audiences", "bad"),
    [
        (["https://llm-cache.example.com"], []),
        (["https://a.example.com", "http://b.example.com"], [1]),
        (["https://a.example.com,https://b.example.com"], [0]),
        (["https://a.example.com b", "https://ok.example.com", "llm-cache"], [0, 2]),
    ],
)
def test_custom_audiences_are_https_urls_without_separators(audiences: list[str], bad: list[int]) -> None:
    if not bad:
        assert CacheSettings(audiences=audiences).audiences == audiences
        return
    found = errors(audiences=audiences)
    assert [e.field for e in found] == [f"CacheSettings.audiences.{i}" for i in bad]
    assert all(
        e.problem == "is not an https URL without commas or spaces (Cloud Run custom audiences are URLs)"
        and e.fix == "use e.g. https://llm-cache.example.com"
        for e in found
    )


def test_the_log_metrics_filter_exactly_the_cache_services_decision_lines() -> None:
    metrics = {x.inputs["name"]: x.inputs for x in build().of_type(METRIC)}
    where = (
        'resource.type="cloud_run_revision" AND resource.labels.service_name="llm-cache" '
        f'AND jsonPayload.component="{LOG_COMPONENT}"'
    )
    decisions, saved = metrics["llm-cache/decisions"], metrics["llm-cache/saved_gpu_seconds"]
    assert decisions["filter"] == f"{where} AND jsonPayload.cache:*"
    assert saved["filter"] == f'{where} AND jsonPayload.cache="hit"'
    assert decisions["metricDescriptor"] == {
        "metricKind": "DELTA",
        "valueType": "INT64",
        "unit": "1",
        "labels": [
            {"key": "cache", "valueType": "STRING", "description": "hit, miss or bypass"},
            {"key": "match", "valueType": "STRING", "description": "exact or semantic (hits)"},
        ],
    }
    assert saved["metricDescriptor"] == {"metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "s"}
