"""A team's own stack built from the cloudrun-gpu components (imported, not copied).

It sizes a model straight from the sizing engine, attaches to a Shared VPC the platform team
owns (bring-your-own: no network is created, only the PSC endpoint and DNS are skipped too),
keeps images in its own registry, and deploys one GPU service with its own identity.
"""

import pulumi
from cloudrun_gpu.network import InferenceNetwork, InferenceNetworkArgs
from cloudrun_gpu.registry import ModelRegistry, ModelRegistryArgs
from cloudrun_gpu.service import GpuInferenceService, GpuInferenceServiceArgs, VpcEgressArgs
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, size

config = pulumi.Config()
gcp_config = pulumi.Config("gcp")
region = gcp_config.require("region")

plan = size(
    SizingRequest(
        model=catalogue_model("qwen2.5-7b"),
        engine="vllm",
        gpu="nvidia-l4",
        context_length=16_384,
        model_path="/models",
    )
)
network = InferenceNetwork(
    "team-net",
    InferenceNetworkArgs(
        region=region,
        existing_network=config.require("sharedNetwork"),
        existing_subnetwork=config.require("sharedSubnetwork"),
        psc=None,  # the host project already runs the PSC endpoint and its DNS
        nat=None,  # the model is baked into the image: no internet needed
    ),
)
registry = ModelRegistry("team-registry", ModelRegistryArgs(location=region, repository_id="team-llm"))
service = GpuInferenceService(
    "team-llm",
    GpuInferenceServiceArgs(
        region=region,
        image=registry.registry_uri.apply(lambda uri: f"{uri}/vllm:qwen2.5-7b"),
        sizing=plan,
        cpu=8,
        memory_gib=32,
        service_name="team-llm",
        max_instances=2,
        vpc=VpcEgressArgs(network=network.network_id, subnetwork=network.subnetwork_id, tags=network.tags),
        invokers=["group:team-llm-users@example.com"],
    ),
)
pulumi.export("url", service.url)
pulumi.export("concurrency", service.concurrency)
