"""Issue 23, session 4 on ``stack/render.py``, second sample (seed 81): a program's stack name, its own modules
between two renders, and the offline answers of the invokes ``plan`` does not know."""

from __future__ import annotations

from pathlib import Path

from pulumi.runtime.mocks import MockCallArgs

from stack.render import RecordingMocks, render_program

STACK_PROGRAM = """\
import pulumi
import pulumi_gcp as gcp

gcp.storage.Bucket(f"b-{pulumi.get_stack()}", location="EU", labels={"project": pulumi.get_project()})
"""


def test_a_program_sees_the_stack_and_project_it_is_rendered_for(tmp_path: Path) -> None:
    """A program that names resources after its stack (``pulumi.get_stack()``, as ``pulumi up -s staging`` gives
    it) renders under the stack ``plan`` was asked for, and the project named."""
    program = tmp_path / "__main__.py"
    program.write_text(STACK_PROGRAM)
    [bucket] = render_program(program, "staging", {"gcp:project": "my-project-123"}, project="my-llm")
    assert (bucket.name, bucket.inputs["labels"]) == ("b-staging", {"project": "my-llm"})


def _program(root: Path, location: str) -> Path:
    (root / "helper.py").write_text(f'LOCATION = "{location}"\n')
    (root / "__main__.py").write_text(
        "import pulumi_gcp as gcp\nimport helper\n\ngcp.storage.Bucket('b', location=helper.LOCATION)\n"
    )
    return root / "__main__.py"


def test_a_programs_own_modules_are_forgotten_after_its_render(tmp_path: Path) -> None:
    """Two programs with a module of the same name (a consumer's ``components``, a ``helper``): each render imports
    its own, not the one the earlier render left in ``sys.modules``."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = render_program(_program(tmp_path / "one", "EU"), "dev", {"gcp:project": "p"})
    second = render_program(_program(tmp_path / "two", "US"), "dev", {"gcp:project": "p"})
    assert [r.inputs["location"] for r in first + second] == ["EU", "US"]


def test_an_invoke_plan_does_not_know_answers_empty() -> None:
    """Offline, only the quota lookup gets an answer ("unlimited"); any other data source answers nothing rather
    than the quota's shape (a ``getProject`` sorts before the quota token, a ``getZones`` after it)."""
    mocks = RecordingMocks()
    for token in ("gcp:organizations/getProject:getProject", "gcp:compute/getZones:getZones", "a:b:c"):
        assert mocks.call(MockCallArgs(token, {}, "")) == ({}, [])


def test_a_service_identity_is_rendered_as_its_google_managed_agent() -> None:
    """``plan`` shows a ``ServiceIdentity`` (IAP's, which the multi stack grants the invoker role) as the agent
    Google creates for it: ``service-<project number>@gcp-sa-<service>.iam.gserviceaccount.com``
    (https://cloud.google.com/iam/docs/service-agents), the service's name without ``.googleapis.com``."""
    from pulumi.runtime.mocks import MockResourceArgs

    from stack.render import MOCK_PROJECT_NUMBER

    mocks = RecordingMocks()
    args = MockResourceArgs(
        "gcp:projects/serviceIdentity:ServiceIdentity", "iap-agent", {"service": "iap.googleapis.com"}, custom=True
    )
    _, out = mocks.new_resource(args)
    email = f"service-{MOCK_PROJECT_NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"
    assert (out["email"], out["member"]) == (email, f"serviceAccount:{email}")


def test_each_resource_gets_the_id_form_its_provider_returns() -> None:
    """A network, a subnetwork and a global address are identified by their GCP paths (what a ``network=`` or
    ``ip_address=`` input of another resource shows in ``plan``); every other type by ``<logical name>-id`` — among
    them a router and a region NEG, whose type tokens sort after the network's (seed 91)."""
    from pulumi.runtime.mocks import MockResourceArgs

    mocks = RecordingMocks(gcp_project="p")
    cases = {
        "gcp:compute/network:Network": "projects/p/global/networks/net",
        "gcp:compute/subnetwork:Subnetwork": "projects/p/regions/europe-west1/subnetworks/net",
        "gcp:compute/globalAddress:GlobalAddress": "projects/p/global/addresses/net",
        "gcp:compute/router:Router": "net-id",
        "gcp:compute/regionNetworkEndpointGroup:RegionNetworkEndpointGroup": "net-id",
        "gcp:storage/bucket:Bucket": "net-id",
    }
    for typ, rid in cases.items():
        got, out = mocks.new_resource(MockResourceArgs(typ, "net", {"region": "europe-west1"}, custom=True))
        assert (typ, got) == (typ, rid)
        assert out["selfLink"] == f"https://www.googleapis.com/compute/v1/{rid}"
        # only a global address gets the documentation-range IP (RFC 5737) the front door's rule shows
        assert out.get("address") == ("203.0.113.10" if typ.endswith(":GlobalAddress") else None)
