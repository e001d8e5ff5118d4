"""A team's own stack built from the cloudrun-gpu library (imported, not copied).

The team already has a ``components`` package of its own; the library installs as ``cloudrun_gpu``
(``pip install -e ../..`` or a pinned release), so both import side by side. The stack attaches to a
Shared VPC the platform team owns (bring-your-own: no network, PSC or NAT is created), keeps images
in its own registry, builds its serving image there through the library (the model baked in from the team's
bucket), and deploys one GPU service that sizes itself from the same serving bundle.
"""

from pathlib import Path

import pulumi
from cloudrun_gpu.bucket import ModelBucket, ModelBucketArgs
from cloudrun_gpu.build import BuildIdentity, BuildIdentityArgs, ImageBuild, ImageBuildArgs
from cloudrun_gpu.build.image import MODEL_BUCKET, context_files, context_hash, image_build_config, image_tag, image_uri
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, NatSettings, NetworkSettings, PscSettings
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs, RegistrySettings
from cloudrun_gpu.service import (
    GpuInferenceService,
    GpuInferenceServiceArgs,
    GpuSettings,
    ResourcesSettings,
    ScalingSettings,
    ServiceSettings,
    ServingSettings,
    VpcEgressArgs,
    plan_service,
)
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings, LoadingSettings, ModelSettings

from components import team_labels  # the team's own package, not the library

CONTEXT = Path(__file__).resolve().parents[2] / "container"
"""The build context with the engines' Dockerfiles: this repository's ``container/`` (a team points this at its
checkout or vendored copy of it; the library takes the path, it ships no Dockerfiles)."""

config = pulumi.Config()
gcp_config = pulumi.Config("gcp")
project = gcp_config.require("project")
region = gcp_config.require("region")
labels = team_labels(pulumi.get_stack())

serving = ServingSettings(
    region=region,
    model=ModelSettings(name="qwen2.5-7b", file="qwen2.5-7b-instruct-awq", object_prefix="models/qwen2.5-7b-awq"),
    engine=EngineSettings(name=EngineName.VLLM, context_length=16_384),
    loading=LoadingSettings(),  # image: the model is baked in, so no internet and no bucket at run time
    gpu=GpuSettings(),
    resources=ResourcesSettings(),
    scaling=ScalingSettings(max_instances=2),
)
plan = plan_service(serving)  # the same numbers the service renders (ConfigErrors name the field otherwise)

network = InferenceNetwork(
    "team-net",
    InferenceNetworkArgs(
        region=region,
        settings=NetworkSettings(
            existing_network=config.require("sharedNetwork"),
            existing_subnetwork=config.require("sharedSubnetwork"),
            psc=PscSettings(enabled=False),  # the host project already runs the PSC endpoint and its DNS
            nat=NatSettings(enabled=False),  # the model is baked into the image: no internet needed
        ),
        max_instances=2,
    ),
)
registry = ModelRegistry(
    "team-registry", ModelRegistryArgs(location=region, settings=RegistrySettings(repository_id="team-llm"))
)
bucket = ModelBucket("team-models", ModelBucketArgs(location=region, labels=labels))  # the team uploads the model

# The image: the library's typed build config from the serving bundle and its plan, tagged by its build inputs.
image = image_uri(
    f"{region}-docker.pkg.dev/{project}/team-llm", serving, image_tag(serving, plan, context_hash(CONTEXT))
)
build_config = image_build_config(serving, plan, image=image)
identity = BuildIdentity(
    "team-llm-build",
    BuildIdentityArgs(
        account_id="team-llm-build",
        project=project,
        location=region,
        repository=registry.repository.name,
        bucket=bucket.bucket_name,  # reads the model to bake and the uploaded build source
    ),
)
built = ImageBuild(
    "team-llm-image",
    ImageBuildArgs(
        image=image,
        config=build_config,
        service_account=identity.resource_name,
        project=project,
        trigger=image.rsplit(":", 1)[1],
        source_files=context_files(CONTEXT),
        source_root=str(CONTEXT.parent),
        source_staging_dir=bucket.bucket_name.apply(lambda b: f"gs://{b}/.build-source"),
        substitutions={MODEL_BUCKET: bucket.bucket_name},
    ),
    opts=pulumi.ResourceOptions(depends_on=[identity.iam_settled]),
)

service = GpuInferenceService(
    "team-llm",
    GpuInferenceServiceArgs(
        region=serving.region,
        image=built.image_ref,  # by digest: a rebuild rolls a revision, an unchanged image does not
        model=serving.model,
        engine=serving.engine,
        loading=serving.loading,
        gpu=serving.gpu,
        resources=serving.resources,
        scaling=serving.scaling,
        service=ServiceSettings(name="team-llm", invokers=["group:team-llm-users@example.com"]),
        vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
        labels=labels,
    ),
)
pulumi.export("url", service.url)
pulumi.export("concurrency", service.concurrency)
pulumi.export("image", image)
