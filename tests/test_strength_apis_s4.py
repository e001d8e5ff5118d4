"""Session-4 strength tests for apis/ (seed-71 survivors): what ``ProjectApis`` registers as its outputs."""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.apis import ProjectApis, ProjectApisArgs
from cloudrun_gpu.errors import ConfigError

from .strength_s4_support import render_with_outputs


def test_the_component_registers_the_enabled_services_as_its_output() -> None:
    """``services`` is the component's one registered output (the stack exports it as ``enabled_apis``): it must be
    registered, under that name, with every enabled API in order."""

    def build() -> Any:
        return ProjectApis("apis", ProjectApisArgs(services=["run.googleapis.com", "iam.googleapis.com"])).services

    r, outputs = render_with_outputs(build)
    assert outputs == {"apis": {"services": ["run.googleapis.com", "iam.googleapis.com"]}}
    assert r.value == ["run.googleapis.com", "iam.googleapis.com"]


def test_services_that_is_not_a_list_is_refused_with_the_whole_error() -> None:
    """Another Pulumi language can pass one string for ``services``: the error names the argument, the value, the
    problem and a fix that shows the list form."""
    with pytest.raises(ConfigError) as err:
        ProjectApisArgs(services="run.googleapis.com")  # type: ignore[arg-type]
    e = err.value
    assert (e.field, e.value, e.problem, e.fix) == (
        "ProjectApisArgs.services",
        "run.googleapis.com",
        "is not a list of API service names",
        "pass a list such as ['run.googleapis.com'], or leave it out for every API this stack needs",
    )
