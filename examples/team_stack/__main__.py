"""A team's own stack built from the cloudrun-gpu library (imported, not copied).

The team already has a ``components`` package of its own; the library installs as ``cloudrun_gpu``
(``pip install -e ../..`` or a pinned release), so both import side by side. The stack attaches to a
Shared VPC the platform team owns (bring-your-own: no network, PSC or NAT is created), keeps images
in its own registry, and deploys one GPU service that sizes itself from the model settings.
"""

import pulumi
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs, NatSettings, NetworkSettings, PscSettings
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs, RegistrySettings
from cloudrun_gpu.service import (
    GpuInferenceService,
    GpuInferenceServiceArgs,
    ScalingSettings,
    ServiceSettings,
    VpcEgressArgs,
)
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings, ModelSettings

from components import team_labels  # the team's own package, not the library

config = pulumi.Config()
region = pulumi.Config("gcp").require("region")

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
service = GpuInferenceService(
    "team-llm",
    GpuInferenceServiceArgs(
        region=region,
        image=registry.registry_uri.apply(lambda uri: f"{uri}/vllm:qwen2.5-7b"),
        model=ModelSettings(name="qwen2.5-7b", file="qwen2.5-7b-instruct-awq"),
        engine=EngineSettings(name=EngineName.VLLM, context_length=16_384),
        scaling=ScalingSettings(max_instances=2),
        service=ServiceSettings(name="team-llm", invokers=["group:team-llm-users@example.com"]),
        vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
        labels=team_labels(pulumi.get_stack()),
    ),
)
pulumi.export("url", service.url)
pulumi.export("concurrency", service.concurrency)
