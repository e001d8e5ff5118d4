"""Mutation-strength tests for cache/: the Valkey primary endpoint choice, the cache service's probe, and the
settings' bounds and keyspace check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cloudrun_gpu.cache import _primary_endpoint
from cloudrun_gpu.cache import settings as CS
from cloudrun_gpu.cache.settings import CacheSettings, ValkeyNodeType
from cloudrun_gpu.errors import ConfigErrors

from .test_cache_component import SERVICE, build
from .test_cache_component import memorystore_endpoints as memorystore_endpoints  # the mocked endpoints


def endpoint(*conns: tuple[str, str]) -> Any:
    return SimpleNamespace(
        connections=[
            SimpleNamespace(psc_auto_connection=SimpleNamespace(ip_address=ip, connection_type=kind))
            for ip, kind in conns
        ]
    )


@pytest.mark.parametrize(
    ("endpoints", "ip"),
    [
        ([endpoint(("10.0.0.2", "CONNECTION_TYPE_READER"), ("10.0.0.1", "CONNECTION_TYPE_PRIMARY"))], "10.0.0.1"),
        (
            [endpoint(("10.0.0.2", "CONNECTION_TYPE_READER")), endpoint(("10.0.0.3", "CONNECTION_TYPE_DISCOVERY"))],
            "10.0.0.3",
        ),
        ([endpoint(("10.0.0.4", "CONNECTION_TYPE_UNSPECIFIED"))], "10.0.0.4"),  # only readers are passed over
        ([endpoint(("10.0.0.2", "CONNECTION_TYPE_READER"))], ""),
        ([endpoint(("", "CONNECTION_TYPE_PRIMARY"))], ""),
        ([SimpleNamespace(connections=None), SimpleNamespace()], ""),
        (None, ""),
    ],
)
def test_primary_endpoint(endpoints: Any, ip: str) -> None:
    assert _primary_endpoint(endpoints) == ip


def test_cache_service_startup_probe_exact() -> None:
    probe = build().one(SERVICE).inputs["template"]["containers"][0]["startupProbe"]
    assert {k: v for k, v in probe.items() if k != "httpGet"} == {
        "initialDelaySeconds": 0,
        "periodSeconds": 2,
        "timeoutSeconds": 1,
        "failureThreshold": 30,
    }
    assert probe["httpGet"]["path"] == "/cache/ready"


# ------------------------------------------------------------------------------------ cache/settings.py


def make(**kw: Any) -> Any:
    return CacheSettings(**kw)


def refusal(**kw: Any) -> Any:
    with pytest.raises(ConfigErrors) as err:
        CacheSettings(**kw)
    return err.value.errors[0]


def test_writable_bytes_and_overhead() -> None:
    assert CS.GB == 10**9
    assert CS.WRITABLE_BYTES == {
        "SHARED_CORE_NANO": 1_120_000_000,
        "STANDARD_SMALL": 5_200_000_000,
        "HIGHMEM_MEDIUM": 10_400_000_000,
        "HIGHMEM_XLARGE": 46_400_000_000,
    }
    assert CS.ENTRY_OVERHEAD_BYTES == 4096


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("threshold", 0.5, 1.0),
        ("ttl_s", 1, 30 * 86400),
        ("max_entry_bytes", 1024, 16 * 1024 * 1024),
        ("valkey_replicas", 0, 5),
        ("cpu", 1, 8),
        ("memory_gib", 1, 32),
        ("concurrency", 1, 1000),
        ("min_instances", 0, 100),
        ("max_instances", 1, 1000),
    ],
)
def test_bounds(field: str, low: float, high: float) -> None:
    extra: dict[str, Any] = {"max_entries": 1} if field == "max_entry_bytes" else {}
    if field == "min_instances":
        extra["max_instances"] = 1000
    assert getattr(make(**extra, **{field: low}), field) == low
    assert getattr(make(**extra, **{field: high}), field) == high
    step = 0.01 if isinstance(low, float) else 1
    assert refusal(**extra, **{field: low - step}).field == f"CacheSettings.{field}"
    assert refusal(**extra, **{field: high + step}).field == f"CacheSettings.{field}"


def test_defaults() -> None:
    s = make()
    assert (s.threshold, s.ttl_s, s.max_entries, s.max_entry_bytes) == (0.90, 3600, 50_000, 64 * 1024)
    assert (s.max_body_bytes, s.max_entries_per_tenant, s.audiences, s.semantic) == (1024 * 1024, 0, [], True)
    assert (s.cpu, s.memory_gib, s.concurrency, s.min_instances, s.max_instances) == (1, 2, 40, 0, 10)
    assert s.valkey_node_type == ValkeyNodeType.STANDARD_SMALL


def test_max_entries_must_fit_the_node_exact() -> None:
    # STANDARD_SMALL: 5.2 GB writable; 64 KiB + 4 KiB per entry → 76,293 entries fit
    per = 64 * 1024 + 4096
    fit = 5_200_000_000 // per
    assert make(max_entries=fit).max_entries == fit
    e = refusal(max_entries=fit + 1)
    assert (e.field, e.value, e.allowed) == ("CacheSettings.max_entries", fit + 1, f"≤ {fit}")
    need = (fit + 1) * per
    assert e.problem == (
        f"× (max_entry_bytes {64 * 1024} + 4096) = {need / 10**9:.2f} GB does not fit the STANDARD_SMALL node's "
        "5.20 GB writable keyspace"
    )
    assert e.fix.startswith(f"set CacheSettings.max_entries ≤ {fit}, or a smaller max_entry_bytes")


def test_min_above_max_instances() -> None:
    assert make(min_instances=3, max_instances=3).min_instances == 3
    e = refusal(min_instances=4, max_instances=3)
    assert (e.field, e.value, e.problem) == ("CacheSettings.min_instances", 4, "is above max_instances (3)")


def test_an_exact_fit_is_accepted() -> None:
    # SHARED_CORE_NANO: 1.12 GB writable = 1000 entries × (1,115,904 + 4,096) bytes exactly
    s = make(valkey_node_type=ValkeyNodeType.SHARED_CORE_NANO, max_entries=1000, max_entry_bytes=1_115_904)
    assert s.max_entries == 1000
    assert refusal(valkey_node_type=ValkeyNodeType.SHARED_CORE_NANO, max_entries=1001, max_entry_bytes=1_115_904)


def test_bad_invoker_reads_its_problem_and_fix() -> None:
    from cloudrun_gpu.service.settings import member_problem

    bad = member_problem("bogus")
    assert bad is not None
    e = refusal(invokers=["user:a@example.com", "bogus"])
    assert (e.field, e.value, e.problem) == ("CacheSettings.invokers.1", "bogus", bad[0])


def test_saved_gpu_seconds_distribution_buckets() -> None:
    metrics = [m for m in build().of_type("gcp:logging/metric:Metric") if "bucketOptions" in m.inputs]
    (saved,) = metrics
    assert saved.inputs["valueExtractor"] == "EXTRACT(jsonPayload.saved_gpu_s)"
    # 20 buckets from 10 ms doubling: up to ~2.9 h of GPU time saved by one hit
    assert saved.inputs["bucketOptions"] == {
        "exponentialBuckets": {"numFiniteBuckets": 20, "growthFactor": 2.0, "scale": 0.01}
    }
