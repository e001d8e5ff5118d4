"""Engine images pinned by version per Cloud Run GPU, and the check that an image can run on a GPU's driver.

Two ways an engine image fails on a Cloud Run GPU, both seen in this project (issue 10):

- **It needs a newer CUDA than the driver.** Cloud Run pre-installs the driver; we cannot change it. An image
  built on ``nvidia/cuda:X.Y`` declares ``NVIDIA_REQUIRE_CUDA=cuda>=X.Y`` and needs a driver of that CUDA
  version (or NVIDIA's forward-compatibility libraries, which nothing here installs). The rule we apply is the
  strict one: the CUDA version an image was built with must not exceed the driver's.
- **It has no kernels for the GPU's architecture.** The RTX PRO 6000 is Blackwell, compute capability 12.0
  (``sm_120``); builds compiled before CUDA 12.8 / without ``12.0`` in their arch list fail with
  "no kernel image is available for execution on the device" (vllm-project/vllm#16901).

Pure data (no Pulumi). ``cloudrun_gpu.build.image`` turns a pin into Dockerfile build args; :func:`check_image`
raises :class:`~cloudrun_gpu.errors.ConfigError` on ``engine.image`` when a pin cannot run on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloudrun_gpu.errors import ConfigError

CLOUD_RUN_GPU_DOC = "https://cloud.google.com/run/docs/configuring/services/gpu"


@dataclass(frozen=True)
class GpuDriver:
    """The NVIDIA driver Cloud Run pre-installs for one GPU type."""

    gpu: str
    driver: str
    max_cuda: tuple[int, int]
    """Highest CUDA version the driver supports (what ``nvidia-smi`` prints as "CUDA Version")."""
    compute_capability: tuple[int, int]
    source: str


GPU_DRIVERS: dict[str, GpuDriver] = {
    "nvidia-l4": GpuDriver(
        gpu="nvidia-l4",
        # Cloud Run GPU doc, "Supported GPU types": "L4 GPU with the current NVIDIA driver version:
        # 535.216.03 (12.2)" (older revisions of the page: 535.129.03 (CUDA 12.2)).
        driver="535.216.03",
        max_cuda=(12, 2),
        compute_capability=(8, 9),  # Ada Lovelace; NVIDIA's CUDA GPU list (L4 = 8.9)
        source=CLOUD_RUN_GPU_DOC,
    ),
    "nvidia-rtx-pro-6000": GpuDriver(
        gpu="nvidia-rtx-pro-6000",
        # Same page: "NVIDIA RTX PRO 6000 Blackwell GPU with the current NVIDIA driver version: 580.x.x (13.0)".
        driver="580.x.x",
        max_cuda=(13, 0),
        compute_capability=(12, 0),  # Blackwell workstation/server = sm_120 (vllm-project/vllm#24383, #32109)
        source=CLOUD_RUN_GPU_DOC,
    ),
}


@dataclass(frozen=True)
class EngineImage:
    """One engine build pinned to a version for one GPU type."""

    engine: str
    gpu: str
    reference: str
    """The image the runtime stage starts FROM (upstream name; the registry prefix comes from our remote cache)."""
    version: str
    """The engine's own version (llama.cpp release tag, Ollama / vLLM release)."""
    cuda: tuple[int, int]
    """The CUDA version the image needs from the driver (the toolkit it was built with, unless the engine
    documents a lower driver requirement)."""
    archs: tuple[tuple[int, int], ...]
    """Compute capabilities the image carries compiled kernels for."""
    build_args: dict[str, str] = field(default_factory=dict)
    """Dockerfile ``ARG``s that select exactly this build (``container/<engine>/Dockerfile``)."""
    source: str = ""


LLAMA_CPP_VERSION = "b6700"
"""llama.cpp release tag built from source (every master commit is tagged ``b<N>``). We build it ourselves
because ggml-org's published ``server-cuda`` images use ``.devops/cuda.Dockerfile``'s ``ARG CUDA_VERSION=12.8.1``
(13.1.0 for the cuda13 variant, ``.devops/cuda-new.Dockerfile``): newer than the L4 driver's CUDA 12.2."""

_LLAMA_SRC = (
    "ggml-org/llama.cpp .devops/cuda.Dockerfile (ARG CUDA_VERSION=12.8.1 upstream; we pass our own CUDA_VERSION "
    "and CMAKE_CUDA_ARCHITECTURES, the same cmake flags otherwise)"
)

ENGINE_IMAGES: dict[tuple[str, str], EngineImage] = {
    ("llama.cpp", "nvidia-l4"): EngineImage(
        engine="llama.cpp",
        gpu="nvidia-l4",
        reference="nvidia/cuda:12.2.2-runtime-ubuntu22.04",
        version=LLAMA_CPP_VERSION,
        cuda=(12, 2),  # CUDA 12.2 Update 2 needs driver >= 535.104.05; Cloud Run has 535.216.03
        archs=((8, 9),),
        build_args={
            "LLAMA_CPP_VERSION": LLAMA_CPP_VERSION,
            "CUDA_VERSION": "12.2.2",
            "UBUNTU_VERSION": "22.04",  # nvidia/cuda publishes 12.2.x for ubuntu 20.04/22.04 only
            "CUDA_ARCH": "89",
        },
        source=_LLAMA_SRC,
    ),
    ("llama.cpp", "nvidia-rtx-pro-6000"): EngineImage(
        engine="llama.cpp",
        gpu="nvidia-rtx-pro-6000",
        reference="nvidia/cuda:12.8.1-runtime-ubuntu24.04",
        version=LLAMA_CPP_VERSION,
        cuda=(12, 8),  # sm_120 needs CUDA >= 12.8 (vllm-project/vllm PR #45421: "CUDA 12.8+ requirement")
        archs=((12, 0),),
        build_args={
            "LLAMA_CPP_VERSION": LLAMA_CPP_VERSION,
            "CUDA_VERSION": "12.8.1",
            "UBUNTU_VERSION": "24.04",
            "CUDA_ARCH": "120",
        },
        source=_LLAMA_SRC,
    ),
    ("ollama", "nvidia-l4"): EngineImage(
        engine="ollama",
        gpu="nvidia-l4",
        reference="ollama/ollama:0.12.3",
        version="0.12.3",
        # https://docs.ollama.com/gpu: "Ollama supports Nvidia GPUs with compute capability 5.0+ and driver
        # version 531 and newer" (531 = the CUDA 12.1 driver); Ollama bundles its own CUDA runtime libraries.
        cuda=(12, 1),
        archs=((8, 9), (12, 0)),
        build_args={"OLLAMA_TAG": "0.12.3"},
        source="https://docs.ollama.com/gpu",
    ),
    ("ollama", "nvidia-rtx-pro-6000"): EngineImage(
        engine="ollama",
        gpu="nvidia-rtx-pro-6000",
        reference="ollama/ollama:0.12.3",
        version="0.12.3",
        cuda=(12, 1),
        archs=((8, 9), (12, 0)),
        build_args={"OLLAMA_TAG": "0.12.3"},
        source="https://docs.ollama.com/gpu",
    ),
    ("vllm", "nvidia-l4"): EngineImage(
        engine="vllm",
        gpu="nvidia-l4",
        # Google's Deep Learning Container for vLLM (B1), the image Cloud Run's own vLLM samples use on L4.
        reference="us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20250312_0916_RC01",
        version="20250312_0916_RC01",
        # Not published per image; PyTorch's cu121 wheels are the newest that fit a 12.2 driver. If this DLC
        # was built with a newer toolkit it relies on CUDA minor-version compatibility (see docs/deploy.md).
        cuda=(12, 1),
        archs=((8, 0), (8, 9), (9, 0)),
        build_args={
            "VLLM_IMAGE": "us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/"
            "pytorch-vllm-serve:20250312_0916_RC01"
        },
        source="container/vllm/Dockerfile (B1); CUDA version not stated by Google — unverified",
    ),
    ("vllm", "nvidia-rtx-pro-6000"): EngineImage(
        engine="vllm",
        gpu="nvidia-rtx-pro-6000",
        reference="vllm/vllm-openai:v0.14.1",
        version="v0.14.1",
        # vllm-project/vllm docker/Dockerfile at v0.14.1: CUDA 12.9.1,
        # torch_cuda_arch_list='7.0 7.5 8.0 8.9 9.0 10.0 12.0' (12.0 = sm_120 kernels in the published image).
        cuda=(12, 9),
        archs=((7, 0), (7, 5), (8, 0), (8, 9), (9, 0), (10, 0), (12, 0)),
        build_args={"VLLM_IMAGE": "vllm/vllm-openai:v0.14.1"},
        source="https://github.com/vllm-project/vllm/blob/v0.14.1/docker/Dockerfile",
    ),
}

OLD_VLLM_DLC = ENGINE_IMAGES[("vllm", "nvidia-l4")]
"""The March 2025 DLC: no ``12.0`` kernels, so it cannot serve on the RTX PRO 6000 (issue 10)."""


def pinned_image(engine: str, gpu: str) -> EngineImage:
    """The pinned build of ``engine`` for ``gpu``, already checked against the GPU's driver."""
    from cloudrun_gpu.engines import PROFILES  # the registry imports this module: not at module level

    registered = PROFILES.get(engine)
    try:
        image = ENGINE_IMAGES[(engine, gpu)] if registered is None or not registered.pins else registered.pins[gpu]
    except KeyError:
        pins = ", ".join(f"{e} on {g}" for e, g in ENGINE_IMAGES)
        raise ConfigError(
            "engine.image", f"{engine} on {gpu}", "no engine image is pinned for this GPU", "add a pin", pins
        ) from None
    check_image(image, gpu)
    return image


def check_image(image: EngineImage, gpu: str) -> None:
    """Raise ConfigError on ``engine.image`` when ``image`` cannot run on ``gpu``'s Cloud Run driver."""
    driver = GPU_DRIVERS[gpu]
    need, have = image.cuda, driver.max_cuda
    if need > have:
        raise ConfigError(
            "engine.image",
            image.reference,
            f"was built with CUDA {need[0]}.{need[1]}, newer than what {gpu}'s Cloud Run driver "
            f"{driver.driver} supports (CUDA {have[0]}.{have[1]}, {driver.source})",
            f"use an image built with CUDA ≤ {have[0]}.{have[1]}, e.g. the pin for {gpu} in cloudrun_gpu/images.py",
            f"CUDA ≤ {have[0]}.{have[1]}",
        )
    cc = driver.compute_capability
    if cc not in image.archs:
        built = ", ".join(f"{a}.{b}" for a, b in image.archs)
        raise ConfigError(
            "engine.image",
            image.reference,
            f"has no kernels for {gpu} (compute capability {cc[0]}.{cc[1]}; the image has {built})",
            f"use an image compiled for sm_{cc[0]}{cc[1]}, e.g. the pin for {gpu} in cloudrun_gpu/images.py",
            f"images with {cc[0]}.{cc[1]} in their CUDA arch list",
        )
