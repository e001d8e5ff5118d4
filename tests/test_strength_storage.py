"""Mutation-strength tests for loading.py, bucket/ and registry/: exact volumes, env, names and bounds."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest
from cloudrun_gpu.bucket import BucketSettings, ModelBucket, ModelBucketArgs
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.loading import GCS_FUSE_MOUNT_OPTIONS, MODEL_VOLUME, gcs_fuse_mount_options, model_delivery
from cloudrun_gpu.registry import REMOTE_UPSTREAMS, ModelRegistry, ModelRegistryArgs, RegistrySettings, RemoteCache

from .conftest import render

BUCKET = "gcp:storage/bucket:Bucket"
REPO = "gcp:artifactregistry/repository:Repository"

# ------------------------------------------------------------------------------------- loading.py


def test_fuse_mount_options_exact() -> None:
    assert MODEL_VOLUME == "model"
    assert gcs_fuse_mount_options("/llama/3.1/") == [
        "implicit-dirs",
        "only-dir=llama/3.1",
        "metadata-cache-ttl-secs=-1",
        "stat-cache-max-size-mb=-1",
        "sequential-read-size-mb=1024",
        "log-severity=warning",
    ]
    assert len(GCS_FUSE_MOUNT_OPTIONS) == 6


def test_delivery_is_frozen() -> None:
    d = model_delivery("image", mount_path="/models")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.method = "gcs-fuse"  # type: ignore[misc]


def test_image_delivery_mounts_nothing() -> None:
    d = model_delivery("image", mount_path="/models", bucket="b")
    assert (d.method, d.volumes, d.mounts, d.env, d.needs_nat) == ("image", [], [], {}, False)
    assert d.notes == ("model baked into the image: nothing mounted",)


def test_gcs_fuse_delivery() -> None:
    d = model_delivery("gcs-fuse", mount_path="/mnt/models", bucket="b", object_prefix="m/", in_memory_gib=9)
    assert d.volumes == [
        {"name": "model", "gcs": {"bucket": "b", "read_only": True, "mount_options": gcs_fuse_mount_options("m")}}
    ]
    assert d.mounts == [{"name": "model", "mount_path": "/mnt/models"}]
    assert (d.env, d.needs_nat) == ({}, False)


def test_gcs_download_delivery() -> None:
    d = model_delivery("gcs-download", mount_path="/models-mem", bucket="b", object_prefix="/m/", in_memory_gib=9)
    assert d.volumes == [{"name": "model", "empty_dir": {"medium": "MEMORY", "size_limit": "9Gi"}}]
    assert d.mounts == [{"name": "model", "mount_path": "/models-mem"}]
    assert d.env == {"MODEL_DOWNLOAD_URI": "gs://b/m/*", "MODEL_DIR": "/models-mem"}
    assert d.needs_nat is False
    assert d.notes == ("parallel download into a 9 GiB in-memory volume (counts against instance memory)",)


def test_internet_delivery_needs_nat() -> None:
    d = model_delivery("internet", mount_path="/models-mem", in_memory_gib=5, hub_url="https://hf.co/x")
    assert d.volumes == [{"name": "model", "empty_dir": {"medium": "MEMORY", "size_limit": "5Gi"}}]
    assert d.env == {"MODEL_DOWNLOAD_URL": "https://hf.co/x", "MODEL_DIR": "/models-mem"}
    assert d.needs_nat is True
    assert model_delivery("internet", mount_path="/m").env["MODEL_DOWNLOAD_URL"] == ""


@pytest.mark.parametrize("method", ["a", "bogus", "gcs", "zzz", ""])
def test_unknown_method_is_refused(method: str) -> None:
    with pytest.raises(ValueError, match="unknown loading method"):
        model_delivery(method, mount_path="/m", bucket="b")


def test_bucket_output_becomes_a_gs_uri() -> None:
    seen: dict[str, Any] = {}

    def program() -> Any:
        d = model_delivery("gcs-download", mount_path="/m", bucket=pulumi.Output.from_input("bkt"), object_prefix="/p/")
        return d.env["MODEL_DOWNLOAD_URI"].apply(lambda v: seen.setdefault("uri", v))

    render(program)
    assert seen["uri"] == "gs://bkt/p/*"


# ------------------------------------------------------------------------------------------ bucket


@pytest.mark.parametrize("days", [0, 7, 90])
def test_soft_delete_days_accepted(days: int) -> None:
    assert BucketSettings(soft_delete_days=days).soft_delete_days == days


@pytest.mark.parametrize("days", [1, 6, 91, -1])
def test_soft_delete_days_refused(days: int) -> None:
    with pytest.raises(ConfigErrors) as err:
        BucketSettings(soft_delete_days=days)
    assert [e.field for e in err.value.errors] == ["BucketSettings.soft_delete_days"]


@pytest.mark.parametrize("prefix", ["goog-models", "my-google-x", "a-g00gle", "x-goog1e"])
def test_google_lookalike_prefixes_refused(prefix: str) -> None:
    with pytest.raises(ConfigErrors) as err:
        BucketSettings(name_prefix=prefix)
    assert [e.field for e in err.value.errors] == ["BucketSettings.name_prefix"]


@pytest.mark.parametrize("prefix", ["gogle-ok", "llm-goo", "abc", "a" * 41])
def test_ordinary_prefixes_accepted(prefix: str) -> None:
    assert BucketSettings(name_prefix=prefix).name_prefix == prefix


def test_bucket_rendered_inputs() -> None:
    def program() -> Any:
        b = ModelBucket(
            "m",
            ModelBucketArgs(
                location="europe-west4",
                labels={"team": "ml"},
                hierarchical_namespace=True,
                settings=BucketSettings(soft_delete_days=8),
            ),
        )
        return b.bucket.urn

    b = render(program).one(BUCKET).inputs
    assert b["labels"] == {"team": "ml"}
    assert b["hierarchicalNamespace"] == {"enabled": True}
    assert b["storageClass"] == "STANDARD"
    assert b["softDeletePolicy"] == {"retentionDurationSeconds": 8 * 86_400}
    assert b["location"] == "europe-west4"

    def plain() -> Any:
        return ModelBucket("m", ModelBucketArgs(location="europe-west4")).bucket.urn

    p = render(plain).one(BUCKET).inputs
    assert "labels" not in p and "hierarchicalNamespace" not in p
    assert p["softDeletePolicy"] == {"retentionDurationSeconds": 7 * 86_400}


# ---------------------------------------------------------------------------------------- registry


def test_registry_constants() -> None:
    assert REMOTE_UPSTREAMS == {"docker-hub": "DOCKER_HUB", "ghcr": "https://ghcr.io"}
    s = RegistrySettings()
    assert (s.repository_id, s.keep_versions, s.delete_untagged_after_days) == ("llm-serving", 5, 7)
    assert s.remote_caches == [RemoteCache.DOCKER_HUB, RemoteCache.GHCR]


@pytest.mark.parametrize(
    ("ok", "bad"),
    [
        ({"keep_versions": 1}, {"keep_versions": 0}),
        ({"keep_versions": 100}, {"keep_versions": 101}),
        ({"delete_untagged_after_days": 1}, {"delete_untagged_after_days": 0}),
        ({"delete_untagged_after_days": 365}, {"delete_untagged_after_days": 366}),
    ],
)
def test_registry_bounds(ok: dict[str, int], bad: dict[str, int]) -> None:
    made = RegistrySettings(**ok)  # type: ignore[arg-type]
    assert all(getattr(made, k) == v for k, v in ok.items())
    with pytest.raises(ConfigErrors) as err:
        RegistrySettings(**bad)  # type: ignore[arg-type]
    (key, value), e = next(iter(bad.items())), err.value.errors[0]
    assert [x.field for x in err.value.errors] == [f"RegistrySettings.{key}"] and e.value == value
    assert e.problem == "is out of range" and e.allowed and f"RegistrySettings.{key}" in e.fix


def test_registry_duplicate_caches_and_derived_id_length() -> None:
    with pytest.raises(ConfigErrors) as err:
        RegistrySettings(remote_caches=[RemoteCache.GHCR, RemoteCache.DOCKER_HUB, RemoteCache.GHCR])
    assert [(e.field, e.value) for e in err.value.errors] == [("RegistrySettings.remote_caches.2", "ghcr")]
    longest = "a" * (62 - len("docker-hub"))  # 52 + "-docker-hub" = 63 characters
    assert RegistrySettings(repository_id=longest).repository_id == longest
    with pytest.raises(ConfigErrors) as err:
        RegistrySettings(repository_id=longest + "a")
    (e,) = err.value.errors
    assert (e.field, e.allowed) == ("RegistrySettings.repository_id", "≤ 52 characters")
    assert e.fix == "shorten repository_id to at most 52 characters"
    ghcr_only = RegistrySettings(repository_id=longest + "a", remote_caches=[RemoteCache.GHCR])
    assert ghcr_only.repository_id == longest + "a"


def test_registry_rendered_remote_descriptions() -> None:
    def program() -> Any:
        return ModelRegistry("r", ModelRegistryArgs(location="us-central1")).repository.urn

    repos = {x.inputs["repositoryId"]: x.inputs for x in render(program).of_type(REPO)}
    hub, ghcr = repos["llm-serving-docker-hub"], repos["llm-serving-ghcr"]
    assert hub["description"] == "Pull-through cache of DOCKER_HUB for official engine images"
    assert hub["remoteRepositoryConfig"]["description"] == "docker-hub upstream"
    assert "commonRepository" not in hub["remoteRepositoryConfig"]
    assert "dockerRepository" not in ghcr["remoteRepositoryConfig"]
    assert ghcr["location"] == "us-central1" and ghcr["format"] == "DOCKER"
    assert repos["llm-serving"]["description"] == "Serving images (engine + model layer) for GPU Cloud Run"
