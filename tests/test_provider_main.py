"""provider/__main__.py, the plugin's entry point (issue 23: it was 0 % covered).

The Pulumi CLI's Python language host runs the directory as a script (``python provider/ <engine address>``), so
only ``provider/`` is on ``sys.path``; the entry point must then find the ``provider`` package itself and serve the
components through the SDK's provider host, which prints the port it listens on as its first line
(``pulumi/provider/server.py``, ``main``: ``sys.stdout.buffer.write(f"{port}\\n".encode())``). Both are checked:
in process (so coverage sees it) and as the real plugin process answering ``GetSchema`` over gRPC.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pulumi.provider
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from .conftest import ROOT
from .test_schema import sdk_quiet

ENTRY = ROOT / "provider" / "__main__.py"


def test_running_the_directory_serves_every_component_with_its_name_and_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provider.analysis import CloudRunGpuProvider
    from provider.components import COMPONENTS, NAME, NAMESPACE, VERSION

    served: list[tuple[Any, list[str]]] = []
    monkeypatch.setattr(pulumi.provider, "main", lambda provider, args: served.append((provider, args)))
    monkeypatch.setattr(sys, "argv", [str(ENTRY), "127.0.0.1:12345", "--logtostderr"])
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != ROOT])
    with sdk_quiet():  # the SDK's analyzer leaves pulumi_gcp's plugin file open (tests/test_schema.py)
        runpy.run_path(str(ENTRY), run_name="__main__")
        gc.collect()
    assert str(ROOT) in sys.path  # run as a directory, it put the repository root back to import `provider`
    assert len(served) == 1
    provider, args = served[0]
    assert isinstance(provider, CloudRunGpuProvider)
    assert args == ["127.0.0.1:12345", "--logtostderr"]
    schema = json.loads(provider.schema or "{}")
    assert (schema["name"], schema["version"], NAMESPACE) == (NAME, VERSION, None)
    assert {f"cloudrun-gpu:index:{c.__name__}" for c in COMPONENTS} == set(schema["resources"])


def test_importing_it_serves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(pulumi.provider, "main", lambda *a: served.append(a))
    runpy.run_path(str(ENTRY), run_name="provider_entry")
    assert served == []


def test_the_plugin_process_answers_get_schema_over_grpc() -> None:
    """The plugin as the language host starts it: a fresh process, cwd elsewhere, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [sys.executable, str(ENTRY), "127.0.0.1:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/",
        env=env,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().decode().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            reply = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=120)
        schema = json.loads(reply.schema)
        assert schema["name"] == "cloudrun-gpu"
        assert "cloudrun-gpu:index:GpuInferenceService" in schema["resources"]
        assert "cloudrun-gpu:index:FrontDoor" in schema["resources"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
