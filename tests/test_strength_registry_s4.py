"""Session-4 strength tests for registry/ (seed-71 survivors): the refusals word for word, the registered outputs,
and the aliases that adopt 0.1's position-named reader bindings."""

from __future__ import annotations

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.registry import RegistrySettings, RemoteCache

SA = "serviceAccount:llm-runtime@test-project.iam.gserviceaccount.com"


def test_a_repository_id_too_long_for_a_cache_is_refused_with_the_derived_id() -> None:
    """The error shows the cache id the repository id would make, and how short the repository id must be."""
    long_id = "a" * 53  # 53 + "-docker-hub" = 64 characters
    with pytest.raises(ConfigErrors) as err:
        RegistrySettings(repository_id=long_id, remote_caches=[RemoteCache.DOCKER_HUB])
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem, e.fix, e.allowed) == (
        "RegistrySettings.repository_id",
        long_id,
        f"makes the docker-hub cache's id '{long_id}-docker-hub' longer than 63 characters",
        "shorten repository_id to at most 52 characters",
        "≤ 52 characters",
    )
