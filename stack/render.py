"""Run the real Pulumi program under mocks and record every resource it registers.

This is how ``plan`` shows what ``pulumi up`` would create without the Pulumi CLI or a cloud
account, and how the tests assert on real resource inputs. Inputs are recorded with Pulumi's
wire (camelCase) names, exactly as the engine would send them to the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from cloudrun_gpu.errors import ConfigErrors
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.mocks import MockMonitor

from stack.config import PLAN_ONLY_ENV, PLAN_PROJECT, PROJECT

MOCK_PROJECT_NUMBER = "123456789012"


@dataclass
class Registration:
    """What the SDK sent with one ``RegisterResource`` besides the inputs (``pulumi/runtime/resource.py``,
    ``prepare_resource``): the parent's URN and the URNs the resource waits for. ``dependencies`` holds the
    explicit ``depends_on`` and every resource an input came from; a ``depends_on`` or input naming a local
    component is expanded to that component's resources (``pulumi/runtime/rpc.py``, ``_add_dependency``)."""

    urn: str
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    order: int
    """Position among all registrations: the order the engine would have received them."""


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    registration: Registration | None = None

    @property
    def urn(self) -> str:
        return self.registration.urn if self.registration else ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "inputs": self.inputs}


def urn_name(urn: str) -> str:
    """The logical name at the end of a URN (``urn:pulumi:stack::project::type$type::name``)."""
    return urn.split("::", 3)[3]


def effective_dependencies(resources: list[Recorded]) -> dict[str, set[str]]:
    """URN → every URN the resource waits for: its own dependencies and those of each ancestor.

    The Python SDK does not copy a component's ``depends_on`` onto its children; a child waits because it
    awaits its parent's URN before it registers (``pulumi/runtime/resource.py``, ``prepare_resource``:
    ``parent_urn = await opts.parent.urn.future()``), and the parent's URN resolves only after the parent's
    own dependencies did. So what a resource waits for is what it and its parent chain declared."""
    by_urn = {r.urn: r.registration for r in resources if r.registration}
    out: dict[str, set[str]] = {}
    for urn in by_urn:
        deps: set[str] = set()
        seen: set[str] = set()
        reg = by_urn.get(urn)
        while reg is not None and reg.urn not in seen:
            seen.add(reg.urn)
            deps.update(reg.dependencies)
            reg = by_urn.get(reg.parent)
        out[urn] = deps
    return out


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also recording each request's parent and dependencies (``MockMonitor``
    passes only type, name and inputs to ``Mocks.new_resource``: ``pulumi/runtime/mocks.py``,
    ``RegisterResource``). Registrations are serialised so each one's extras meet its ``Recorded``."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks
        self._lock = threading.Lock()
        self._order = itertools.count()

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        with self._lock:
            self.recording.pending = Registration(
                urn=self.make_urn(request.parent, request.type, request.name),
                parent=request.parent,
                dependencies=sorted(request.dependencies),
                property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
                order=next(self._order),
            )
            try:
                return super().RegisterResource(request)  # type: ignore[no-untyped-call]
            finally:
                self.recording.pending = None


@dataclass
class RecordingMocks(Mocks):
    """Mocks that return inputs plus the computed outputs our code reads (ids, URIs, emails)."""

    gcp_project: str = "mock-project"
    resources: list[Recorded] = field(default_factory=list)
    pending: Registration | None = None
    """Set by :class:`RecordingMonitor` around the ``new_resource`` call of the request it describes."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        out = dict(args.inputs)
        name = out.get("name") or args.name
        typ = args.typ
        project = out.get("project") or self.gcp_project
        if typ == "gcp:cloudrunv2/service:Service":
            out["uri"] = f"https://{name}-{MOCK_PROJECT_NUMBER}.{out.get('location')}.run.app"
        elif typ == "gcp:serviceaccount/account:Account":
            out["email"] = f"{out['accountId']}@{project}.iam.gserviceaccount.com"
            out["member"] = f"serviceAccount:{out['email']}"
        elif typ == "gcp:artifactregistry/repository:Repository":
            out["registryUri"] = f"{out['location']}-docker.pkg.dev/{project}/{out['repositoryId']}"
            out["name"] = out["repositoryId"]
        elif typ == "random:index/randomId:RandomId":
            out["hex"] = "5eed1e55"
        elif typ == "gcp:storage/bucket:Bucket":
            out["url"] = f"gs://{name}"
        elif typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = str(out.get("service", "")).split(".", 1)[0]  # iap.googleapis.com → the gcp-sa-iap agent
            out["email"] = f"service-{MOCK_PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            out["member"] = f"serviceAccount:{out['email']}"
        elif typ == "gcp:compute/globalAddress:GlobalAddress" and "address" not in out:
            out["address"] = "203.0.113.10"  # documentation range (RFC 5737): the front door's anycast IP
        out.setdefault("name", name)
        if typ == "gcp:compute/network:Network":
            rid = f"projects/{project}/global/networks/{name}"
        elif typ == "gcp:compute/subnetwork:Subnetwork":
            rid = f"projects/{project}/regions/{out.get('region')}/subnetworks/{name}"
        elif typ == "gcp:compute/globalAddress:GlobalAddress":
            rid = f"projects/{project}/global/addresses/{name}"
        else:
            rid = f"{args.name}-id"
        out.setdefault("selfLink", f"https://www.googleapis.com/compute/v1/{rid}")
        self.resources.append(
            Recorded(typ, args.name, _ints(dict(args.inputs)), bool(args.custom), registration=self.pending)
        )
        return rid, out

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        from cloudrun_gpu import quota

        if args.token == quota.INVOKE_TOKEN:  # plan is offline: the quota lookup answers "unlimited"
            return quota.quota_info_wire(args.args["quotaId"], {"": "-1"}), []
        return {}, []


def _ints(value: Any) -> Any:
    """Protobuf structs carry every number as a float; give integral ones back as int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def install_mocks(
    stack: str,
    config: dict[str, str],
    gcp_project: str = "mock-project",
    project: str = PROJECT,
    secret_keys: Sequence[str] = (),
) -> RecordingMocks:
    """Fresh mocks and config for one program run (Python ≥3.12 needs an event loop first).

    The secret keys are always set, to ``()`` when none: ``pulumi.runtime.set_all_config`` keeps the previous
    run's secret keys when it is given ``None`` (``pulumi/runtime/config.py``), so one run's ``--secret`` marking
    would otherwise carry into the next run in the same process."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    # The root Stack of an earlier run lives on the old loop; set_mocks keeps it unless cleared.
    pulumi.runtime.settings.ROOT.set(None)
    mocks = RecordingMocks(gcp_project=gcp_project)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(config, list(secret_keys))
    return mocks


def run_under_mocks(fn: Callable[[], Any]) -> None:
    """Run ``fn`` as a Pulumi program and wait until every registration has resolved."""
    pulumi.runtime.test(fn)()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.pop(name, None)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if old is not None:
            os.environ[name] = old


@contextlib.contextmanager
def _program_path(path: Path) -> Iterator[None]:
    """The program's directory first on ``sys.path``, as Pulumi's Python host runs it, so the program's
    own packages (a consumer's ``components``) win; modules it imported are forgotten afterwards."""
    before = set(sys.modules)
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        for name in set(sys.modules) - before:
            file = str(getattr(sys.modules.get(name), "__file__", "") or "")
            if file.startswith(str(path) + os.sep) and "site-packages" not in file:
                del sys.modules[name]


class RefusedStack(ConfigErrors, pulumi.RunError):
    """The program's refusal as ``plan`` renders it: the reader's ConfigErrors (so ``plan`` prints them as it prints
    the reader's, exit status 2), and still the ``pulumi.RunError`` the program raised, for a caller that waits for
    that."""


def render_program(
    program: Path,
    stack: str,
    config: dict[str, str],
    project: str = PROJECT,
    *,
    plan_only: bool = True,
    secret_keys: Sequence[str] = (),
) -> list[Recorded]:
    """Run ``program`` (a ``__main__.py``) of Pulumi project ``project`` for ``stack`` with ``config``;
    return what it registered. ``plan_only`` (the default: this is how ``plan`` renders) lets the program
    render without a project or invoker and warn instead, and a refusal of the program's validation pass is raised
    as the reader's ConfigErrors; False runs it exactly as ``pulumi up`` would (a refusal is its RunError)."""
    mocks = install_mocks(
        stack, config, gcp_project=config.get("gcp:project", PLAN_PROJECT), project=project, secret_keys=secret_keys
    )
    with _cwd(program.parent), _program_path(program.parent), _env(PLAN_ONLY_ENV, "1" if plan_only else None):
        try:
            run_under_mocks(lambda: runpy.run_path(str(program), run_name="__main__"))
        except pulumi.RunError as exc:
            # The program refused the stack (stack/compose.py InvalidStack, after its validation pass): the same
            # ConfigErrors the reader raises, so ``plan`` prints them without a traceback (issue 21). Read by
            # attribute: the program's modules are reloaded for every run, so its class is not this import's.
            # As ``pulumi up`` (not plan_only) it stays the RunError the engine would print.
            errors = getattr(exc, "config_errors", None)
            if errors is None or not plan_only:
                raise
            raise RefusedStack(list(errors.errors)) from None
    return sorted(mocks.resources, key=lambda r: (r.type, r.name))
