"""The Google Cloud APIs a fresh project must have enabled before anything else can be created.

On a new project the first call to Compute Engine, Cloud Run, Artifact Registry, … fails with
``SERVICE_DISABLED``. :class:`ProjectApis` enables each API the stack needs as one
``gcp.projects.Service``, so a stack that lists it in ``depends_on`` goes from an empty project to a
running service in one ``pulumi up``.

Destroying the component leaves every API enabled (``disable_on_destroy=False``): other stacks, other
tools and the console use the same project-wide switches. pulumi-gcp documents the default and when
``true`` is appropriate: "If ``false`` or unset, the service will be left enabled when the Terraform
resource is destroyed. It should generally only be ``true`` in configurations that manage the
``organizations.Project`` resource itself" (``pulumi_gcp/projects/service.py`` lines 47-50, v10.2.0;
https://www.pulumi.com/registry/packages/gcp/api-docs/projects/service/). An API that is already
enabled is adopted, not an error ("``pulumi up`` can be successfully used to verify already enabled
services", same file, lines 345-346).
"""

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.settings import args_types, raise_if

TOKEN = "cloudrun-gpu:index:ProjectApis"
SUFFIX = ".googleapis.com"
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*\.googleapis\.com")
"""A Google API's service name: DNS labels (lowercase letters, digits, hyphens) under ``googleapis.com``."""

STACK_SERVICES: dict[str, str] = {
    "serviceusage.googleapis.com": (
        "Service Usage: every other entry is enabled through it (the provider's Service resource "
        "'requires the Service Usage API', pulumi_gcp/projects/service.py line 311). It cannot enable "
        "itself; it is on by default in new projects (https://cloud.google.com/service-usage/docs/enabled-service, "
        "https://github.com/hashicorp/terraform-provider-google/issues/16883), so listing it adopts it and "
        "pins the requirement."
    ),
    "cloudresourcemanager.googleapis.com": (
        "Cloud Resource Manager: project-level reads and IAM (the project number behind service agents, "
        "`gcp.organizations.get_project`, gcp:projects/iAM* bindings, gcloud project lookups) go through it "
        "and fail with 'Cloud Resource Manager API has not been used in project' when it is off "
        "(https://github.com/GoogleCloudPlatform/k8s-config-connector/issues/135, "
        "https://github.com/terraform-google-modules/terraform-google-project-factory/issues/715)."
    ),
    "compute.googleapis.com": (
        "Compute Engine: the VPC network, subnet (Direct VPC egress), PSC global address and forwarding "
        "rule, Cloud Router and NAT (gcp:compute/*). Private Service Connect for Google APIs: 'You must "
        "enable the Compute Engine API in your project' "
        "(https://cloud.google.com/vpc/docs/configure-private-service-connect-apis, Before you begin)."
    ),
    "servicedirectory.googleapis.com": (
        "Service Directory: required by Private Service Connect endpoints for Google APIs, which register "
        "the endpoint in Service Directory: 'You must enable the Service Directory API in your project' "
        "(https://cloud.google.com/vpc/docs/configure-private-service-connect-apis, Before you begin). "
        "No resource of ours has its type; the PSC forwarding rule (gcp:compute) needs it."
    ),
    "dns.googleapis.com": (
        "Cloud DNS: the private zones and records that point googleapis.com, pkg.dev and gcr.io at the PSC "
        "endpoint (gcp:dns/*); PSC for Google APIs: 'You must enable the Cloud DNS API in your project' "
        "(https://cloud.google.com/vpc/docs/configure-private-service-connect-apis)."
    ),
    "run.googleapis.com": "Cloud Run Admin: the GPU service and its invoker bindings (gcp:cloudrunv2/*).",
    "artifactregistry.googleapis.com": (
        "Artifact Registry: the image repository, pull-through caches and reader bindings "
        "(gcp:artifactregistry/*); Cloud Run pulls the serving image from it."
    ),
    "iam.googleapis.com": "IAM: the runtime service account (gcp:serviceaccount/*).",
    "storage.googleapis.com": (
        "Cloud Storage: the model bucket and its reader binding (gcp:storage/*); `gcloud builds submit` also "
        "uploads the build context to a bucket."
    ),
    "cloudbuild.googleapis.com": (
        "Cloud Build: bakes the serving image (`python -m stack cloudbuild` | `gcloud builds submit`); "
        "'Enable the required API' is the setup step (https://cloud.google.com/build/docs/set-up)."
    ),
    "secretmanager.googleapis.com": (
        "Secret Manager: tokens for gated models (build-time download, `internet` loading) are passed as "
        "secrets, which Cloud Run reads from Secret Manager "
        "(https://cloud.google.com/run/docs/configuring/secrets)."
    ),
    "cloudquotas.googleapis.com": (
        "Cloud Quotas: reading and requesting the per-region Cloud Run GPU quota "
        "(cloudrun_gpu.limits quota IDs) as QuotaPreferences (https://cloud.google.com/docs/quotas/api-overview)."
    ),
}
"""Every API the stack's resources and its build/quota steps call, each with the reason it is needed."""


def short_name(service: str) -> str:
    """``run.googleapis.com`` → ``run``: the suffix of each API's resource name."""
    return service.removesuffix(SUFFIX)


@dataclass
class ProjectApisArgs:
    """Inputs of :class:`ProjectApis`."""

    services: list[str] = field(default_factory=lambda: list(STACK_SERVICES))
    """Service names to enable (``<api>.googleapis.com``); defaults to every API this stack needs. Each stays
    enabled when the stack is destroyed."""
    project: str | None = None
    """The project; defaults to the provider's."""

    def __post_init__(self) -> None:
        raise_if(args_types(self, "ProjectApisArgs.", skip=["services"]))  # issue 21: plain values, named
        if not isinstance(self.services, list):
            raise ConfigError(
                "ProjectApisArgs.services",
                self.services,
                "is not a list of API service names",
                "pass a list such as ['run.googleapis.com'], or leave it out for every API this stack needs",
            )
        seen: set[str] = set()
        for i, service in enumerate(self.services):
            where = f"ProjectApisArgs.services.{i}"
            if not isinstance(service, str) or not SERVICE_NAME.fullmatch(service):
                raise ConfigError(
                    where,
                    service,
                    "is not a Google API service name",
                    "use the API's service name as `gcloud services list --available` prints it",
                    allowed="lowercase DNS labels ending in .googleapis.com, e.g. run.googleapis.com",
                )
            if service in seen:
                raise ConfigError(where, service, "is listed twice", "list each API once")
            seen.add(service)


class ProjectApis(pulumi.ComponentResource):
    """The project's Google Cloud APIs, enabled before anything that calls them (and never disabled)."""

    apis: list[gcp.projects.Service]
    """One ``gcp.projects.Service`` per API, in ``services`` order."""
    services: pulumi.Output[list[str]]
    """The enabled service names; resolves once every API is on."""

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ProjectApisArgs(**args)
        super().__init__(TOKEN, name, None, opts)
        self.apis = [
            gcp.projects.Service(
                f"{name}-{short_name(service)}",
                gcp.projects.ServiceArgs(
                    service=service,
                    project=args.project,
                    # Leave the API on when this stack goes: other stacks and tools share the switch.
                    disable_on_destroy=False,
                    # Never cascade to APIs that depend on this one.
                    disable_dependent_services=False,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.services
        ]
        self.services = pulumi.Output.all(*[api.service for api in self.apis]).apply(list)
        self.register_outputs({"services": self.services})
