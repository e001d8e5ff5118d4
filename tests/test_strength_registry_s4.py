"""Session-4 strength tests for registry/ (seed-71 survivors): the refusals word for word, the registered outputs,
and the aliases that adopt 0.1's position-named reader bindings."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs, RegistrySettings, RemoteCache

from .conftest import render
from .strength_s4_support import recording_aliases, render_with_outputs

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


def test_the_component_registers_the_repository_uri_and_each_caches_uri() -> None:
    def build() -> Any:
        return ModelRegistry("reg", ModelRegistryArgs("europe-west1")).registry_uri

    r, outputs = render_with_outputs(build)
    uri = "europe-west1-docker.pkg.dev/test-project/llm-serving"
    assert r.value == uri
    assert outputs == {
        "reg": {"registry_uri": uri, "remote_uris": {"docker-hub": f"{uri}-docker-hub", "ghcr": f"{uri}-ghcr"}}
    }


def test_reader_bindings_alias_their_position_named_predecessors() -> None:
    """Before 0.2 a reader binding was named by its member's position (``<name>-<repo>-reader-<i>``); the alias makes
    Pulumi adopt it under the keyed name instead of replacing it (a moment in which the runtime cannot pull)."""
    aliases: dict[str, list[str]] = {}
    with recording_aliases(aliases):
        render(lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1", reader_members={"runtime": SA})).urn)
    readers = {k: v for k, v in aliases.items() if "-reader-" in k}
    assert readers == {
        "reg-docker-reader-runtime": ["reg-docker-reader-0"],
        "reg-docker-hub-reader-runtime": ["reg-docker-hub-reader-0"],
        "reg-ghcr-reader-runtime": ["reg-ghcr-reader-0"],
    }


def test_tagged_images_expire_after_30_days_by_default_and_1_to_3650_days_are_allowed() -> None:
    """``delete_tagged_after_days``: 30 days unless set, each edge of 1..3650 accepted and one past it refused by
    name; the value reaches the ``delete-old`` cleanup policy as ``<days>d``."""
    assert RegistrySettings().delete_tagged_after_days == 30
    for days in (1, 3650):
        assert RegistrySettings(delete_tagged_after_days=days).delete_tagged_after_days == days
    for days in (0, 3651):
        with pytest.raises(ConfigErrors) as err:
            RegistrySettings(delete_tagged_after_days=days)
        (e,) = err.value.errors
        assert (e.field, e.value, e.problem) == ("RegistrySettings.delete_tagged_after_days", days, "is out of range")
    repo = render(lambda: ModelRegistry("reg", ModelRegistryArgs("europe-west1")).urn).one(
        "gcp:artifactregistry/repository:Repository", "reg-docker"
    )
    old = [p for p in repo.inputs["cleanupPolicies"] if p["id"] == "delete-old"]
    assert old == [{"id": "delete-old", "action": "DELETE", "condition": {"tagState": "ANY", "olderThan": "30d"}}]
