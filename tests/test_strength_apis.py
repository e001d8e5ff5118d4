"""Mutation-strength tests for apis/: the rendered Service inputs, the error texts, the resolved outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from cloudrun_gpu.apis import SERVICE_NAME, SUFFIX, TOKEN, ProjectApis, ProjectApisArgs, short_name
from cloudrun_gpu.errors import ConfigError

from .conftest import render

API_TYPE = "gcp:projects/service:Service"


def test_rendered_inputs_and_outputs_from_dict_args() -> None:
    def build() -> Any:
        apis = ProjectApis("a", {"services": ["run.googleapis.com", "iam.googleapis.com"], "project": "prj"})  # type: ignore[arg-type]
        return apis.services

    r = render(build)
    assert r.value == ["run.googleapis.com", "iam.googleapis.com"]
    assert [(s.name, s.inputs) for s in r.of_type(API_TYPE)] == [
        (
            "a-run",
            {
                "service": "run.googleapis.com",
                "project": "prj",
                "disableOnDestroy": False,
                "disableDependentServices": False,
            },
        ),
        (
            "a-iam",
            {
                "service": "iam.googleapis.com",
                "project": "prj",
                "disableOnDestroy": False,
                "disableDependentServices": False,
            },
        ),
    ]
    assert r.one(TOKEN, "a").custom is False


def test_short_name_and_pattern() -> None:
    assert SUFFIX == ".googleapis.com"
    assert short_name("run.googleapis.com") == "run"
    assert short_name("a.b.googleapis.com") == "a.b"
    assert SERVICE_NAME.fullmatch("a-1.b2.googleapis.com")
    assert not SERVICE_NAME.fullmatch("1a.googleapis.com")


def test_bad_name_error_exact() -> None:
    with pytest.raises(ConfigError) as err:
        ProjectApisArgs(services=["run.googleapis.com", 7])  # type: ignore[list-item]
    e = err.value
    assert (e.field, e.value, e.problem) == ("ProjectApisArgs.services.1", 7, "is not a Google API service name")
    assert e.fix == "use the API's service name as `gcloud services list --available` prints it"
    assert e.allowed == "lowercase DNS labels ending in .googleapis.com, e.g. run.googleapis.com"


def test_duplicate_error_exact() -> None:
    with pytest.raises(ConfigError) as err:
        ProjectApisArgs(services=["run.googleapis.com", "run.googleapis.com"])
    e = err.value
    assert (e.field, e.value, e.problem, e.fix, e.allowed) == (
        "ProjectApisArgs.services.1",
        "run.googleapis.com",
        "is listed twice",
        "list each API once",
        "",
    )
    assert ProjectApisArgs(services=[]).services == []
    assert ProjectApisArgs(services=["run.googleapis.com", "iam.googleapis.com"]).project is None


def test_component_resource_is_registered_with_its_outputs() -> None:
    seen: dict[str, Any] = {}

    def build() -> Any:
        apis = ProjectApis("b", ProjectApisArgs(services=["dns.googleapis.com"]))
        seen["apis"] = apis
        return pulumi.Output.all(apis.urn, apis.services)

    r = render(build)
    assert r.value[1] == ["dns.googleapis.com"]
    assert len(seen["apis"].apis) == 1
    assert r.one(API_TYPE, "b-dns").inputs["service"] == "dns.googleapis.com"
