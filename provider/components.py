"""The components this plugin serves, and the package's identity: one list for the host and the schema printer."""

from importlib import metadata

import pulumi
from cloudrun_gpu.apis import ProjectApis
from cloudrun_gpu.bucket import ModelBucket
from cloudrun_gpu.build import BuildIdentity, BuildSecret, ImageBuild, ModelStaging
from cloudrun_gpu.cache import ResponseCache
from cloudrun_gpu.frontdoor import FrontDoor
from cloudrun_gpu.identity import RuntimeIdentity
from cloudrun_gpu.network import InferenceNetwork
from cloudrun_gpu.registry import ModelRegistry
from cloudrun_gpu.service import GpuInferenceService

NAME = "cloudrun-gpu"
"""The package name: resource tokens read ``cloudrun-gpu:index:<Class>``."""
NAMESPACE: str | None = None
"""Publisher namespace for generated SDKs (e.g. ``@<namespace>/cloudrun-gpu`` on npm); None: the SDK's default."""
VERSION = metadata.version("cloudrun-gpu-llm")
"""The library's version (pyproject.toml), so the schema and generated SDKs follow releases."""

COMPONENTS: list[type[pulumi.ComponentResource]] = [
    GpuInferenceService,
    InferenceNetwork,
    ModelRegistry,
    ModelBucket,
    RuntimeIdentity,
    ProjectApis,
    BuildIdentity,
    BuildSecret,
    ModelStaging,
    ImageBuild,
    FrontDoor,
    ResponseCache,
]
"""Every component another language can construct; their ``__init__(name, args, opts)`` annotations are the schema."""
