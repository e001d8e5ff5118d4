"""A fresh project: every API is enabled first, and every other resource waits for the API that serves it.

The waiting is checked two ways under the mocks: the dependencies ``plan --json`` reports (own and
inherited through the parent chain, as the SDK sends them in ``RegisterResource``), and the order in which
the SDK actually registered the resources (a child cannot register before its parent, and a component with
``depends_on=[apis]`` cannot register before every API resource has been created).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pytest
from cloudrun_gpu.apis import STACK_SERVICES, TOKEN, ProjectApis, ProjectApisArgs, short_name
from cloudrun_gpu.errors import ConfigError

from stack.cli import plan_json
from stack.compose import CACHE_APIS
from stack.config import read_stack_file, stack_file
from stack.render import Recorded, effective_dependencies, render_program, urn_name

from .conftest import ROOT, render

STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
API_TYPE = "gcp:projects/service:Service"

MODULE_API = {
    "cloudrunv2": "run.googleapis.com",
    "compute": "compute.googleapis.com",
    "dns": "dns.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "serviceaccount": "iam.googleapis.com",
    "storage": "storage.googleapis.com",
    "secretmanager": "secretmanager.googleapis.com",
    "cloudbuild": "cloudbuild.googleapis.com",
    "cloudquotas": "cloudquotas.googleapis.com",
    "servicedirectory": "servicedirectory.googleapis.com",
    "projects": "cloudresourcemanager.googleapis.com",
    "memorystore": "memorystore.googleapis.com",
    "networkconnectivity": "networkconnectivity.googleapis.com",
    "logging": "logging.googleapis.com",
}
"""pulumi-gcp module (``gcp:<module>/…``) → the API that serves its resources."""
EXTRA_APIS = {
    # PSC for Google APIs needs Service Directory and Cloud DNS as well as Compute Engine
    # (https://cloud.google.com/vpc/docs/configure-private-service-connect-apis, "Before you begin").
    "gcp:compute/globalForwardingRule:GlobalForwardingRule": {
        "servicedirectory.googleapis.com",
        "dns.googleapis.com",
    },
    # Memorystore for Valkey also needs the Service Consumer Management API
    # (https://cloud.google.com/memorystore/docs/valkey/create-instances, "Before you begin").
    "gcp:memorystore/instance:Instance": {"serviceconsumermanagement.googleapis.com"},
}


def stack_services(p: dict[str, Any]) -> set[str]:
    """What the stack must enable: the defaults, plus the response cache's APIs when it has one (S1)."""
    has_cache = any(r["type"] == "gcp:memorystore/instance:Instance" for r in p["resources"])
    return {*STACK_SERVICES, *(CACHE_APIS if has_cache else ())}


@cache
def plan(stack: str) -> dict[str, Any]:
    return plan_json(stack, ROOT)


@cache
def registered(stack: str) -> tuple[Recorded, ...]:
    return tuple(render_program(ROOT / "__main__.py", stack, read_stack_file(stack_file(stack, ROOT))))


def api_names(p: dict[str, Any]) -> dict[str, str]:
    """Service name → logical name of its ``gcp.projects.Service``."""
    return {r["inputs"]["service"]: r["name"] for r in p["resources"] if r["type"] == API_TYPE}


@pytest.mark.parametrize("stack", STACKS)
def test_every_gcp_resource_waits_for_the_api_that_serves_it(stack: str) -> None:
    p = plan(stack)
    apis = api_names(p)
    checked = 0
    for r in p["resources"]:
        typ = r["type"]
        if not typ.startswith("gcp:") or typ == API_TYPE:
            continue
        module = typ.removeprefix("gcp:").split("/", 1)[0]
        assert module in MODULE_API, f"{typ}: which API serves gcp:{module}? add it to MODULE_API and ProjectApis"
        for service in {MODULE_API[module], *EXTRA_APIS.get(typ, ())}:
            assert service in apis, f"{typ} {r['name']} needs {service}, which the stack does not enable"
            assert apis[service] in r["dependencies"], f"{typ} {r['name']} does not wait for {service}"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("stack", STACKS)
def test_everything_else_waits_for_every_api(stack: str) -> None:
    p = plan(stack)
    apis = set(api_names(p).values())
    (component,) = [c["name"] for c in p["components"] if c["type"] == TOKEN]
    assert apis == {f"{component}-{short_name(s)}" for s in stack_services(p)}
    for r in p["resources"] + p["components"]:
        if r["type"] in (API_TYPE, TOKEN):
            assert r["dependencies"] == [], f"{r['name']}: the APIs wait for nothing"
        else:
            missing = sorted(apis - set(r["dependencies"]))
            assert not missing, f"{r['type']} {r['name']} does not wait for {missing}"


@pytest.mark.parametrize("stack", STACKS)
def test_apis_are_registered_before_anything_else(stack: str) -> None:
    """What the SDK did, not only what it declared: every API registration came first."""
    recs = registered(stack)
    assert all(r.registration is not None for r in recs)
    api_orders = [r.registration.order for r in recs if r.registration and r.type in (API_TYPE, TOKEN)]
    others = [r for r in recs if r.type not in (API_TYPE, TOKEN)]
    assert api_orders and others
    for r in others:
        assert r.registration is not None
        assert r.registration.order > max(api_orders), f"{r.type} {r.name} registered before an API"


@pytest.mark.parametrize("stack", STACKS)
def test_apis_stay_enabled_on_destroy(stack: str) -> None:
    p = plan(stack)
    apis = [r for r in p["resources"] if r["type"] == API_TYPE]
    assert sorted(r["inputs"]["service"] for r in apis) == sorted(stack_services(p))
    for r in apis:
        assert r["inputs"]["disableOnDestroy"] is False, r["name"]
        assert r["inputs"]["disableDependentServices"] is False, r["name"]
        assert r["name"].endswith("-" + short_name(r["inputs"]["service"]))


@pytest.mark.parametrize("stack", STACKS)
def test_plan_json_lists_dependencies_and_the_service_waits_for_identity_registry_bucket(stack: str) -> None:
    p = plan(stack)
    for r in p["resources"] + p["components"]:
        assert set(r) == {"type", "name", "inputs", "dependencies"}
        assert r["dependencies"] == sorted(set(r["dependencies"])), r["name"]
        assert r["name"] not in r["dependencies"], r["name"]
    gpu_services = [
        r
        for r in p["resources"]
        if r["type"] == "gcp:cloudrunv2/service:Service" and "nodeSelector" in r["inputs"]["template"]
    ]
    for svc in gpu_services:  # one per region (the response cache's CPU service has its own test)
        by_type: dict[str, list[str]] = {}
        for r in p["resources"]:
            if r["inputs"].get("location") in (None, svc["inputs"]["location"]):  # this region's (or global)
                by_type.setdefault(r["type"], []).append(r["name"])
        deps = set(svc["dependencies"])
        runtime = {
            n
            for n in by_type["gcp:serviceaccount/account:Account"]
            if not n.endswith("-build-sa") and "-cache-" not in n
        }
        assert runtime and runtime <= deps  # its identity (email input); the build identity is the build's
        assert set(by_type["gcp:artifactregistry/repository:Repository"]) <= deps  # depends_on=[registry]
        assert set(by_type["gcp:storage/bucket:Bucket"]) <= deps  # depends_on=[bucket]


class _Box(pulumi.ComponentResource):
    """A component with one child, created exactly the way ours create theirs (``parent=self`` only)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Box", name, None, opts)
        self.child = gcp.serviceaccount.Account(
            f"{name}-sa", account_id="box-account", opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({})


def test_sdk_component_depends_on_reaches_children_through_the_parent() -> None:
    """The SDK fact the stack relies on: ``depends_on=[apis]`` on a component makes its children wait.

    The children's own requests do not list the APIs (the SDK copies no ``depends_on`` onto children), yet
    they register after the APIs, because a child awaits its parent's URN, and the component's URN comes
    only after its ``depends_on`` resources were created. ``plan --json`` reports the inherited edge."""

    def program() -> Any:
        apis = ProjectApis("p", ProjectApisArgs(services=["iam.googleapis.com"]))
        return _Box("box", opts=pulumi.ResourceOptions(depends_on=[apis]))

    r = render(program)
    api = r.one(API_TYPE)
    box = r.one("test:index:Box")
    child = r.one("gcp:serviceaccount/account:Account")
    assert api.registration and box.registration and child.registration
    assert box.registration.dependencies == [api.urn]  # the component stands for its children
    assert child.registration.parent == box.urn
    assert child.registration.dependencies == []  # not copied onto the child …
    assert child.registration.order > box.registration.order > api.registration.order  # … but it waits
    assert effective_dependencies(r.resources)[child.urn] == {api.urn}
    assert urn_name(api.urn) == "p-iam"


def test_sdk_children_of_a_component_wait_for_a_slow_dependency() -> None:
    """The same fact with a dependency that takes time: an API whose registration is held back. A component
    without ``depends_on`` (the control) registers its child first; the dependent component and its child
    register only after the slow API."""

    async def later() -> str:
        await asyncio.sleep(0.3)
        return "test-project"

    def program() -> Any:
        slow = gcp.projects.Service("slow", service="iam.googleapis.com", project=later())
        _Box("control")
        return _Box("box", opts=pulumi.ResourceOptions(depends_on=[slow]))

    r = render(program)
    order = {(x.type, x.name): x.registration.order for x in r.resources if x.registration}
    slow = order[(API_TYPE, "slow")]
    assert order[("gcp:serviceaccount/account:Account", "control-sa")] < slow  # the control does not wait
    assert slow < order[("test:index:Box", "box")] < order[("gcp:serviceaccount/account:Account", "box-sa")]


def test_component_registers_one_service_per_api_under_itself() -> None:
    r = render(lambda: ProjectApis("apis", ProjectApisArgs(services=["run.googleapis.com", "dns.googleapis.com"])))
    comp = r.one(TOKEN, "apis")
    services = r.of_type(API_TYPE)
    assert sorted(s.name for s in services) == ["apis-dns", "apis-run"]
    for s in services:
        assert s.registration and s.registration.parent == comp.urn
        assert s.inputs["disableOnDestroy"] is False
        assert s.inputs["disableDependentServices"] is False


def test_default_services_are_the_stack_list() -> None:
    assert ProjectApisArgs().services == list(STACK_SERVICES)
    assert ProjectApisArgs().services is not ProjectApisArgs().services


@pytest.mark.parametrize(
    ("services", "field", "value"),
    [
        (["run.googleapis.com", "Run"], "ProjectApisArgs.services.1", "Run"),
        (["run"], "ProjectApisArgs.services.0", "run"),
        (["storage.googleapis.com.evil.example"], "ProjectApisArgs.services.0", "storage.googleapis.com.evil.example"),
        (["run .googleapis.com"], "ProjectApisArgs.services.0", "run .googleapis.com"),
        (["dns.googleapis.com", "iam.googleapis.com", "dns.googleapis.com"], "ProjectApisArgs.services.2", None),
    ],
)
def test_invalid_service_names_are_refused(services: list[str], field: str, value: str | None) -> None:
    with pytest.raises(ConfigError) as exc:
        ProjectApisArgs(services=services)
    assert exc.value.field == field
    if value is not None:
        assert exc.value.value == value
    assert field in str(exc.value)
