"""Run the real Pulumi program under mocks and record every resource it registers.

This is how ``plan`` shows what ``pulumi up`` would create without the Pulumi CLI or a cloud
account, and how the tests assert on real resource inputs. Inputs are recorded with Pulumi's
wire (camelCase) names, exactly as the engine would send them to the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import runpy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from stack.config import PROJECT

MOCK_PROJECT_NUMBER = "123456789012"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "inputs": self.inputs}


@dataclass
class RecordingMocks(Mocks):
    """Mocks that return inputs plus the computed outputs our code reads (ids, URIs, emails)."""

    gcp_project: str = "mock-project"
    resources: list[Recorded] = field(default_factory=list)

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
        self.resources.append(Recorded(typ, args.name, _ints(dict(args.inputs)), bool(args.custom)))
        return rid, out

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


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
    stack: str, config: dict[str, str], gcp_project: str = "mock-project", project: str = PROJECT
) -> RecordingMocks:
    """Fresh mocks and config for one program run (Python ≥3.12 needs an event loop first)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    # The root Stack of an earlier run lives on the old loop; set_mocks keeps it unless cleared.
    pulumi.runtime.settings.ROOT.set(None)
    mocks = RecordingMocks(gcp_project=gcp_project)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config)
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


def render_program(program: Path, stack: str, config: dict[str, str], project: str = PROJECT) -> list[Recorded]:
    """Run ``program`` (a ``__main__.py``) of Pulumi project ``project`` for ``stack`` with ``config``;
    return what it registered."""
    mocks = install_mocks(stack, config, gcp_project=config.get("gcp:project", "mock-project"), project=project)
    with _cwd(program.parent), _program_path(program.parent):
        run_under_mocks(lambda: runpy.run_path(str(program), run_name="__main__"))
    return sorted(mocks.resources, key=lambda r: (r.type, r.name))
