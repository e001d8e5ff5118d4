"""Issue 23, session 4 on ``stack/render.py``: what the seed-71 mutation samples showed no listed test read."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from cloudrun_gpu.errors import ConfigErrors

from stack.config import PLAN_PROJECT
from stack.render import RefusedStack, render_program
from tests.conftest import ROOT, stack_flat
from tests.test_validation_first import MODEL, deployable

GUARDED_PROGRAM = """\
import pulumi
import pulumi_gcp as gcp

if __name__ == "__main__":
    gcp.storage.Bucket("guarded", location="EU")
"""


def test_a_program_runs_as_the_main_module_as_pulumis_python_host_runs_it(tmp_path: Path) -> None:
    """Pulumi's Python language host runs the program as the ``__main__`` module
    (``runpy.run_path(args.PROGRAM, run_name='__main__')``, pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec),
    so a program whose resources sit under ``if __name__ == "__main__":`` deploys them. ``plan`` (render_program)
    must run it the same way, or it shows such a program (a consumer's, e.g. one that also defines helpers other
    modules import) as registering nothing."""
    program = tmp_path / "__main__.py"
    program.write_text(GUARDED_PROGRAM)
    resources = render_program(program, "dev", {"gcp:project": "my-project-123"})
    assert [(r.type, r.name, r.inputs.get("location")) for r in resources] == [
        ("gcp:storage/bucket:Bucket", "guarded", "EU")
    ]


def test_plan_shows_a_reference_as_the_resource_id_the_provider_would_return() -> None:
    """What ``plan`` prints for an input that is another resource's id: a network, subnetwork or global address
    as its GCP path (the form the provider returns and a reader recognises), any other resource as
    ``<logical name>-id``. Checked on the multi stack's front door, whose chain names a global address, a proxy,
    a URL map, a backend service, a Cloud Armor policy and the regions' NEGs."""
    resources = render_program(ROOT / "__main__.py", "multi", stack_flat("multi"))
    inputs = {r.name: r.inputs for r in resources}
    door = "llm-multi-frontdoor"
    assert inputs[f"{door}-https-rule"]["target"] == f"{door}-https-id"
    assert inputs[f"{door}-https-rule"]["ipAddress"] == f"projects/{PLAN_PROJECT}/global/addresses/{door}-ip"
    assert inputs[f"{door}-https"]["urlMap"] == f"{door}-urlmap-id"
    assert inputs[f"{door}-urlmap"]["defaultService"] == f"{door}-backend-id"
    assert inputs[f"{door}-backend"]["securityPolicy"] == f"{door}-armor-id"
    assert [b["group"] for b in inputs[f"{door}-backend"]["backends"]] == [
        f"{door}-neg-europe-west1-id",
        f"{door}-neg-us-central1-id",
    ]


def test_plan_names_a_refused_stacks_field_and_up_keeps_the_engines_run_error() -> None:
    """A stack the program's validation pass refuses: ``plan`` (plan_only) gets the reader's ConfigErrors, which
    the CLI prints as a field list with exit status 2 instead of a traceback (issue 21); run as ``pulumi up`` it
    stays the ``pulumi.RunError`` the engine prints."""
    flat = deployable("dev", model={**MODEL, "source": "models/no-such.gguf"})
    with pytest.raises(RefusedStack) as refused:
        render_program(ROOT / "__main__.py", "dev", flat)
    assert isinstance(refused.value, ConfigErrors)
    assert [e.field for e in refused.value.errors] == ["cloudrun-gpu:model.source"]
    with pytest.raises(pulumi.RunError) as up:
        render_program(ROOT / "__main__.py", "dev", flat, plan_only=False)
    assert not isinstance(up.value, ConfigErrors)
    assert "cloudrun-gpu:model.source" in str(up.value)
