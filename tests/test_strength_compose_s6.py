"""Issue 23, session 6 on ``stack/compose.py`` (blind seed 171): what its sample showed no listed test read.

Each test runs the real program under the project's recording mocks and asserts what the user's stack receives:
a resource's inputs, its place in the resource tree, the stack's outputs.
"""

from __future__ import annotations

from cloudrun_gpu.service import TOKEN as SERVICE_TOKEN

from stack.render import render_program
from tests.conftest import ROOT, Rendered
from tests.test_build import deploy, flat_config, gpu_services
from tests.test_multiregion import _flat, _section
from tests.test_validation_first import PROJECT_ID

IAP = {
    "enabled": True,
    "oauth2_client_id": "1234-abc.apps.googleusercontent.com",
    "oauth2_client_secret_secret": "projects/p/secrets/iap-client",
}


def test_each_iap_invoker_grant_is_made_in_the_stacks_project_under_its_regions_service() -> None:
    """compose.py:818 (seed 171, the grant's ``project=cfg.project`` dropped survived). The IAP service agent's
    ``run.invoker`` binding on each region's Cloud Run service names the stack's project, like every resource the
    stack registers: without it the binding is made in whatever project the provider falls back to, and the
    plan shows it without a project. It is also a child of that region's service component (listed under the
    service in ``pulumi preview``, and waiting for what the service waits for)."""
    door = _section("frontdoor") | {"iap": IAP}
    flat = {**_flat(frontdoor=door), "gcp:project": PROJECT_ID}
    r = Rendered(render_program(ROOT / "__main__.py", "multi", flat))
    services = {x.name: x.urn for x in r.resources if not x.custom and x.urn.split("::")[2].endswith(SERVICE_TOKEN)}
    grants = r.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    iap = [g for g in grants if g.name.endswith("-invoker-iap")]
    assert sorted(g.name for g in iap) == ["llm-multi-invoker-iap", "llm-multi-us-central1-invoker-iap"]
    for g in iap:
        assert g.inputs["project"] == PROJECT_ID, g.name
        assert g.registration is not None
        assert g.registration.parent == services[g.name.removesuffix("-invoker-iap")], g.name


def test_the_iap_service_agent_is_made_in_the_stacks_project() -> None:
    """compose.py:808 (seed 181, the agent's ``project=cfg.project`` dropped survived). IAP's service agent
    (``service-<number>@gcp-sa-iap.iam.gserviceaccount.com``) is created for the stack's project, the one whose
    services it is then granted ``run.invoker`` on; without it, the provider's fallback project gets it."""
    door = _section("frontdoor") | {"iap": IAP}
    flat = {**_flat(frontdoor=door), "gcp:project": PROJECT_ID}
    r = Rendered(render_program(ROOT / "__main__.py", "multi", flat))
    agent = r.one("gcp:projects/serviceIdentity:ServiceIdentity").inputs
    assert (agent["service"], agent["project"]) == ("iap.googleapis.com", PROJECT_ID)


def test_your_own_engine_image_is_what_the_service_deploys() -> None:
    """compose.py:847 (seed 181, ``cfg.engine.image or ""`` → ``and`` survived the module's test list; only
    tests/test_build.py, not in that list, read it). With ``engine.image`` set nothing is built, and the Cloud Run
    service's container runs exactly the image the user wrote (not an empty image name)."""
    own = "europe-west1-docker.pkg.dev/my-project/mine/llama:v1"
    (svc,) = gpu_services(deploy("dev", flat_config("dev", engine={"image": own})))
    assert svc.inputs["template"]["containers"][0]["image"] == own
