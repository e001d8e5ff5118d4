"""Issue 21: every component's Args from the plain mappings another Pulumi language sends, and out-of-range
numbers: each either builds or refuses with a ConfigError naming the argument, never another exception.

The oracle is independent of the code under test: a settings argument given as a mapping the settings type
itself accepts must build; given as a non-mapping (None, a number, a list) it must be refused naming
``<Args>.<argument>``; an empty required string must be refused naming it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cloudrun_gpu.apis import ProjectApis, ProjectApisArgs
from cloudrun_gpu.bucket import ModelBucket, ModelBucketArgs
from cloudrun_gpu.build import (
    BuildIdentity,
    BuildIdentityArgs,
    BuildSecret,
    BuildSecretArgs,
    ImageBuild,
    ImageBuildArgs,
    ModelStaging,
    ModelStagingArgs,
)
from cloudrun_gpu.cache import ResponseCache, ResponseCacheArgs
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.frontdoor import FrontDoor, FrontDoorArgs
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import render

BASE: dict[type[Any], dict[str, Any]] = {
    ProjectApisArgs: {},
    ModelBucketArgs: {"location": "europe-west1"},
    BuildSecretArgs: {"secret_id": "tok", "value": "v"},
    BuildIdentityArgs: {"account_id": "llm-build", "project": "my-project-123", "location": "europe-west1"},
    ModelStagingArgs: {
        "config": {"steps": []},
        "service_account": "sa",
        "project": "my-project-123",
        "trigger": "t",
        "marker": "gs://b/m",
    },
    ResponseCacheArgs: {
        "region": "europe-west1",
        "image": "img",
        "upstream_url": "https://x",
        "upstream_service_name": "llm",
        "network": "n",
        "subnetwork": "s",
        "settings": {"enabled": True},
    },
    FrontDoorArgs: {"backends": {"europe-west1": {"service_name": "llm"}}, "settings": {"domains": ["llm.corp.com"]}},
    RuntimeIdentityArgs: {"account_id": "llm-runtime"},
    InferenceNetworkArgs: {"region": "europe-west1"},
    ModelRegistryArgs: {"location": "europe-west1"},
    GpuInferenceServiceArgs: {"region": "europe-west1", "image": "img", "model": {"name": "gemma-3-4b"}},
    VpcEgressArgs: {"network": "n", "subnetwork": "s"},
}
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(
        st.sampled_from(["method", "name", "enabled", "cpu", "x", ""]),
        st.one_of(st.text(max_size=3), st.integers(), st.none()),
        max_size=3,
    ),
)


def test_every_base_builds() -> None:
    for cls, base in BASE.items():
        cls(**base)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(BASE)), st.data())
def test_any_argument_builds_or_is_refused_by_name(cls: type[Any], data: st.DataObject) -> None:
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    value = data.draw(junk)
    try:
        cls(**{**BASE[cls], field: value})
    except ConfigErrors as exc:
        assert exc.errors and all(e.field.startswith(f"{cls.__name__}.") or "." in e.field for e in exc.errors)
    except ConfigError as exc:
        assert exc.field
    # anything else (TypeError, AttributeError, ValueError, AssertionError) fails the test


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        (GpuInferenceServiceArgs, "loading"),
        (GpuInferenceServiceArgs, "engine"),
        (GpuInferenceServiceArgs, "scaling"),
        (InferenceNetworkArgs, "settings"),
        (ResponseCacheArgs, "settings"),
    ],
)
@pytest.mark.parametrize("value", [None, 5, ["x"]])
def test_a_settings_argument_that_is_not_a_mapping_is_refused_naming_it(cls: type[Any], field: str, value: Any) -> None:
    with pytest.raises(ConfigErrors) as exc:
        cls(**{**BASE[cls], field: value})
    assert [e.field for e in exc.value.errors] == [f"{cls.__name__}.{field}"]


def test_a_plain_loading_mapping_with_an_empty_method_is_refused_not_an_attribute_error() -> None:
    with pytest.raises(ConfigErrors) as exc:
        GpuInferenceServiceArgs(**{**BASE[GpuInferenceServiceArgs], "loading": {"method": ""}})
    assert [e.field for e in exc.value.errors] == ["GpuInferenceServiceArgs.loading.method"]


def test_plain_mappings_build_the_same_args_as_settings_objects() -> None:
    plain: dict[str, Any] = {
        "scaling": {"max_instances": 2},
        "vpc": {"network": "n", "subnetwork": "s"},
        "loading": {"method": "gcs-download"},
        "bucket_name": "b",
    }
    args = GpuInferenceServiceArgs(**{**BASE[GpuInferenceServiceArgs], **plain})
    assert args.scaling.max_instances == 2 and args.loading.method == "gcs-download"
    assert isinstance(args.vpc, VpcEgressArgs) and args.vpc.subnetwork == "s"
    with pytest.raises(ConfigErrors) as exc:
        GpuInferenceServiceArgs(**{**BASE[GpuInferenceServiceArgs], "vpc": {}})
    assert [e.field for e in exc.value.errors] == ["GpuInferenceServiceArgs.vpc"]


@pytest.mark.parametrize("value", [10**12, 0, -1, None, 1.5, "3"])
def test_network_max_instances_out_of_range_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ConfigErrors) as exc:
        InferenceNetworkArgs(region="europe-west1", max_instances=value)
    assert [e.field for e in exc.value.errors] == ["InferenceNetworkArgs.max_instances"]
    whole: Any = 4.0  # JSON hands numbers over as floats
    assert InferenceNetworkArgs(region="europe-west1", max_instances=whole).max_instances == 4


def test_netcalc_names_an_impossible_instance_count() -> None:
    from cloudrun_gpu import netcalc

    with pytest.raises(ConfigError, match="no IPv4 subnet"):
        netcalc.check_subnet("subnet_cidr", "10.0.0.0/8", 10**12)


# --- Accepted means usable: the oracle for the Args path ------------------------------------------------------------

BASE[ImageBuildArgs] = {
    "image": "europe-west1-docker.pkg.dev/p/r/llm:t1",
    "config": {
        "steps": [{"id": "build", "name": "gcr.io/cloud-builders/docker", "args": ["build", "."]}],
        "images": [],
    },
    "service_account": "projects/p/serviceAccounts/b@p.iam.gserviceaccount.com",
    "project": "my-project-123",
    "trigger": "t1",
    "source_files": ["Dockerfile"],
    "source_staging_dir": "gs://b/source",
}
COMPONENTS: dict[type[Any], type[Any]] = {
    ProjectApisArgs: ProjectApis,
    ModelBucketArgs: ModelBucket,
    BuildSecretArgs: BuildSecret,
    BuildIdentityArgs: BuildIdentity,
    ModelStagingArgs: ModelStaging,
    ImageBuildArgs: ImageBuild,
    ResponseCacheArgs: ResponseCache,
    FrontDoorArgs: FrontDoor,
    RuntimeIdentityArgs: RuntimeIdentity,
    InferenceNetworkArgs: InferenceNetwork,
    ModelRegistryArgs: ModelRegistry,
    GpuInferenceServiceArgs: GpuInferenceService,
}
"""Each component's Args (VpcEgressArgs is an argument of GpuInferenceServiceArgs, reached through it)."""


def test_every_args_class_of_the_library_is_fuzzed() -> None:
    """A new component's Args joins the property, or this fails: every ``class …Args`` under cloudrun_gpu."""
    from tests.test_prepare_register import library_classes

    found = {c for c in library_classes() if c.__name__.endswith("Args") and dataclasses.is_dataclass(c)}
    assert found == set(BASE), found ^ set(BASE)
    assert set(COMPONENTS) == found - {VpcEgressArgs}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(COMPONENTS)), st.data())
def test_args_that_build_make_a_component_that_registers(cls: type[Any], data: st.DataObject) -> None:
    """The oracle: an Args object the class accepted is one its component can use. Either the value is refused on
    construction, naming the argument, or the component registers under mocks without any exception (issue 21:
    a value the Args let through and the component then tripped over, after registering itself, was a crash)."""
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    value = data.draw(junk)
    try:
        args = cls(**{**BASE[cls], field: value})
        if isinstance(args, GpuInferenceServiceArgs):
            args.plan()  # the service's own check, callable before registering (it sizes the model)
    except (ConfigError, ConfigErrors):
        return
    render(lambda: COMPONENTS[cls]("fz", args))  # anything raised here fails the test


@pytest.mark.parametrize(
    ("cls", "field", "value", "words"),
    [
        (BuildSecretArgs, "value", [], "text (or a Pulumi output of one)"),
        (BuildSecretArgs, "secret_id", "a b", "Secret Manager secret id"),
        (ModelBucketArgs, "reader_members", {"runtime": None}, "a mapping of names to text"),
        (ModelBucketArgs, "settings", 5, "BucketSettings"),
        (ModelRegistryArgs, "settings", [], "RegistrySettings"),
        (ResponseCacheArgs, "network", [], "text (or a Pulumi output of one)"),
        (BuildIdentityArgs, "repository", {}, "text (or a Pulumi output of one), or null"),
        (ModelStagingArgs, "substitutions", "", "a mapping of names to text"),
        (ProjectApisArgs, "project", {}, "text, or null"),
        (FrontDoorArgs, "settings", None, "FrontDoorSettings"),
        (ImageBuildArgs, "config", {}, "Cloud Build config"),
        (ImageBuildArgs, "source_files", "Dockerfile", "a list of text"),
        (RuntimeIdentityArgs, "display_name", 3, "text"),
    ],
)
def test_each_crash_the_args_property_found_is_a_named_refusal(
    cls: type[Any], field: str, value: Any, words: str
) -> None:
    """What the property above found before the Args checked their values' shapes: each was accepted and then
    broke its component while it registered (an AssertionError in the SDK's serialisation, an AttributeError)."""
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        cls(**{**BASE[cls], field: value})
    refusal = exc.value
    errors = (
        refusal.errors if isinstance(refusal, ConfigErrors) else [refusal] if isinstance(refusal, ConfigError) else []
    )
    assert [e.field for e in errors] == [f"{cls.__name__}.{field}"]
    assert words in str(refusal)
