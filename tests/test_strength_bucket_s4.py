"""Session-4 strength tests for bucket/ (seed-71 survivors): the refusals word for word, the registered outputs,
and the aliases that adopt 0.1's position-named reader bindings."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.bucket import BucketSettings, ModelBucket, ModelBucketArgs
from cloudrun_gpu.errors import ConfigErrors

from .conftest import render
from .strength_s4_support import recording_aliases, render_with_outputs

SA = "serviceAccount:llm-runtime@test-project.iam.gserviceaccount.com"
CI = "serviceAccount:ci@test-project.iam.gserviceaccount.com"


def test_soft_delete_of_one_to_six_days_is_refused_with_the_whole_error() -> None:
    with pytest.raises(ConfigErrors) as err:
        BucketSettings(soft_delete_days=3)
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem, e.fix, e.allowed) == (
        "BucketSettings.soft_delete_days",
        3,
        "Cloud Storage keeps soft-deleted objects 7-90 days, or not at all",
        "set 0 (off) or 7..90",
        "0, 7..90",
    )


def test_a_google_look_alike_prefix_is_refused_with_the_whole_error() -> None:
    with pytest.raises(ConfigErrors) as err:
        BucketSettings(name_prefix="my-g00gle-models")
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem, e.fix) == (
        "BucketSettings.name_prefix",
        "my-g00gle-models",
        "Cloud Storage refuses bucket names that begin with 'goog' or contain 'google' (or a look-alike)",
        "choose another prefix, e.g. 'llm-models'",
    )


def test_the_component_registers_the_bucket_name_and_its_gs_url() -> None:
    def build() -> Any:
        return ModelBucket("models", ModelBucketArgs("europe-west1")).bucket_name

    r, outputs = render_with_outputs(build)
    assert r.value == "llm-models-5eed1e55"
    assert outputs == {"models": {"bucket_name": "llm-models-5eed1e55", "url": "gs://llm-models-5eed1e55"}}


def test_reader_bindings_alias_their_position_named_predecessors() -> None:
    """Before 0.2 a reader binding was named by its position (``<name>-reader-<i>``); the alias makes Pulumi adopt
    that binding under its keyed name instead of deleting it and creating a new one (a moment without access)."""
    aliases: dict[str, list[str]] = {}
    with recording_aliases(aliases):
        render(
            lambda: (
                ModelBucket(
                    "models", ModelBucketArgs("europe-west1", reader_members={"runtime": SA, "ci": CI})
                ).bucket.urn
            )
        )
    assert aliases["models-reader-runtime"] == ["models-reader-0"]
    assert aliases["models-reader-ci"] == ["models-reader-1"]
    assert aliases["models-bucket"] == []


def test_the_bucket_is_created_in_the_project_the_args_name() -> None:
    """``ModelBucketArgs.project`` puts the bucket in that project, not the provider's default."""
    r = render(lambda: ModelBucket("models", ModelBucketArgs("europe-west1", project="weights-prj")).bucket.urn)
    assert r.one("gcp:storage/bucket:Bucket").inputs["project"] == "weights-prj"


def test_a_name_prefix_of_41_characters_is_accepted_and_42_refused() -> None:
    """41 characters is the longest prefix (``NAME_PREFIX_MAX``): the stack relies on it when it decides whether a
    region's bucket prefix may take ``-<region>`` (stack/compose.py), so one more character is refused by name."""
    assert BucketSettings(name_prefix="a" * 41).name_prefix == "a" * 41
    with pytest.raises(ConfigErrors) as err:
        BucketSettings(name_prefix="a" * 42)
    assert [(e.field, e.value) for e in err.value.errors] == [("BucketSettings.name_prefix", "a" * 42)]


def test_the_bucket_and_its_random_suffix_are_children_of_the_component() -> None:
    """Both are parented to the ModelBucket: their URNs carry its type, so moving either out of the component would
    be a new resource to Pulumi (a new random suffix, a new bucket) on the next ``pulumi up``."""

    def build() -> Any:
        b = ModelBucket("models", ModelBucketArgs("europe-west1"))
        return b.urn

    r = render(build)
    component = r.one("cloudrun-gpu:index:ModelBucket", "models").urn
    for typ in ("gcp:storage/bucket:Bucket", "random:index/randomId:RandomId"):
        rec = r.one(typ)
        assert rec.registration is not None and rec.registration.parent == component, typ
