"""The component plugin's schema, session 4 (issue 23, seed 71 of ``provider/analysis.py`` and ``provider/schema.py``).

The plugin's schema lists the packages whose resources its components reference (``dependencies``: the SDK's
analyzer adds one per provider package it meets, ``pulumi/provider/experimental/analyzer.py``, ``self.dependencies
.add(dep)``, into a ``set``). Today's components reference only pulumi-gcp; a component that also references
another provider's resource (pulumi-random's ``RandomId``, which ``ModelBucket`` creates) must still build, and
the list must come out in one order on every run (a set of dataclasses has no order of its own, and
``Dependency`` defines no ``<``), or ``pulumi package get-schema`` would differ between two runs of the plugin.
"""

# no `from __future__ import annotations`: the SDK analyzer reads the annotations as objects

import json
from importlib import metadata
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random
import pytest

from provider import schema as schema_cli
from provider.analysis import CloudRunGpuProvider

from .test_schema import sdk_quiet


class NameArgs(TypedDict):
    """Inputs of the two test components."""

    name: pulumi.Input[str]
    """A name."""


class WithSuffix(pulumi.ComponentResource):
    """A component whose output is a pulumi-random resource."""

    suffix: pulumi.Output[random.RandomId]
    """The random suffix."""

    def __init__(self, name: str, args: NameArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("two:index:WithSuffix", name, {}, opts)


class WithBucket(pulumi.ComponentResource):
    """A component whose output is a pulumi-gcp resource."""

    bucket: pulumi.Output[gcp.storage.Bucket]
    """The bucket."""

    def __init__(self, name: str, args: NameArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("two:index:WithBucket", name, {}, opts)


def test_components_over_two_provider_packages_list_both_in_name_order() -> None:
    with sdk_quiet():
        served = CloudRunGpuProvider([WithSuffix, WithBucket], "two", None, "1.2.3")
    schema = json.loads(served.schema or "{}")
    deps = schema["dependencies"]
    assert [d["name"] for d in deps] == ["gcp", "random"]
    gcp_v, random_v = metadata.version("pulumi_gcp"), metadata.version("pulumi_random")  # the installed SDKs
    assert deps == [{"name": "gcp", "version": gcp_v}, {"name": "random", "version": random_v}]
    outputs = {name: r["properties"] for name, r in schema["resources"].items()}
    assert outputs["two:index:WithSuffix"]["suffix"]["$ref"].startswith(f"/random/v{random_v}/schema.json#/")
    assert outputs["two:index:WithBucket"]["bucket"]["$ref"].startswith(f"/gcp/v{gcp_v}/schema.json#/")


def test_the_schema_printer_lists_both_packages_in_name_order_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m provider.schema`` builds the schema on its own (``build_schema``), so it must order the packages
    the same way as the host, or the printed schema and the served one would differ."""
    monkeypatch.setattr(schema_cli, "COMPONENTS", [WithSuffix, WithBucket])
    with sdk_quiet():
        printed = schema_cli.build_schema()
    gcp_v, random_v = metadata.version("pulumi_gcp"), metadata.version("pulumi_random")
    assert printed["dependencies"] == [{"name": "gcp", "version": gcp_v}, {"name": "random", "version": random_v}]
    assert sorted(printed["resources"]) == ["cloudrun-gpu:index:WithBucket", "cloudrun-gpu:index:WithSuffix"]
