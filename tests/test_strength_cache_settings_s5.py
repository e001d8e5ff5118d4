"""Session-5 mutation-strength tests for the cache section (``cloudrun_gpu/cache/settings.py``, seed 101's
survivors): the cache's service name is held to Cloud Run's name rule, not only to what a Valkey instance id
allows."""

from __future__ import annotations

import pytest
from cloudrun_gpu.cache.settings import CacheSettings
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.service.settings import SERVICE_NAME_PATTERN


@pytest.mark.parametrize(
    "name",
    [
        "llm-cache-",  # ends with a hyphen: a Cloud Run service name may not (service/settings.py)
        "a" * 43,  # one above the 42 characters kept so derived names stay valid
    ],
)
def test_a_service_name_cloud_run_refuses_is_refused_with_the_pattern(name: str) -> None:
    """cache/settings.py:86 (seed 101, DropKeyword of `pattern=` survived): without the pattern, the Valkey
    instance-id check alone accepts both names (`[a-z][-a-z0-9]*`, `<name>-valkey` ≤ 63), and the cache's Cloud
    Run service would be refused at deployment instead."""
    with pytest.raises(ConfigErrors) as err:
        CacheSettings(service_name=name)
    (e,) = err.value.errors
    assert vars(e) == {
        "field": "CacheSettings.service_name",
        "value": name,
        "problem": "has characters or a shape that is not allowed",
        "fix": f"set CacheSettings.service_name to matching ^{SERVICE_NAME_PATTERN}$",
        "allowed": f"matching ^{SERVICE_NAME_PATTERN}$",
    }


def test_the_longest_service_name_cloud_run_takes_is_accepted() -> None:
    assert CacheSettings(service_name="a" * 42).service_name == "a" * 42
