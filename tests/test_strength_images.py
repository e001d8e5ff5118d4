"""Mutation-strength tests for images.py: the pinned images, the drivers, and the CUDA/arch check's edges."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from cloudrun_gpu import images as I
from cloudrun_gpu.errors import ConfigError


def test_drivers_exact() -> None:
    l4, rtx = I.GPU_DRIVERS["nvidia-l4"], I.GPU_DRIVERS["nvidia-rtx-pro-6000"]
    assert (l4.driver, l4.max_cuda, l4.compute_capability) == ("535.216.03", (12, 2), (8, 9))
    assert (rtx.driver, rtx.max_cuda, rtx.compute_capability) == ("580.x.x", (13, 0), (12, 0))
    assert {d.gpu for d in I.GPU_DRIVERS.values()} == set(I.GPU_DRIVERS)


PINS = {
    ("llama.cpp", "nvidia-l4"): ((12, 2), ((8, 9),), {"CUDA_VERSION": "12.2.2", "CUDA_ARCH": "89"}),
    ("llama.cpp", "nvidia-rtx-pro-6000"): ((12, 8), ((12, 0),), {"CUDA_VERSION": "12.8.1", "CUDA_ARCH": "120"}),
    ("ollama", "nvidia-l4"): ((12, 1), ((8, 9), (12, 0)), {"OLLAMA_TAG": "0.12.3"}),
    ("ollama", "nvidia-rtx-pro-6000"): ((12, 1), ((8, 9), (12, 0)), {"OLLAMA_TAG": "0.12.3"}),
    ("vllm", "nvidia-l4"): ((12, 1), ((8, 0), (8, 9), (9, 0)), {}),
    ("vllm", "nvidia-rtx-pro-6000"): (
        (12, 9),
        ((7, 0), (7, 5), (8, 0), (8, 9), (9, 0), (10, 0), (12, 0)),
        {"VLLM_IMAGE": "vllm/vllm-openai:v0.14.1"},
    ),
}


@pytest.mark.parametrize("key", list(PINS))
def test_pins_exact(key: tuple[str, str]) -> None:
    cuda, archs, args = PINS[key]
    image = I.ENGINE_IMAGES[key]
    assert (image.engine, image.gpu) == key
    assert image.cuda == cuda
    assert image.archs == archs
    assert args.items() <= image.build_args.items()
    assert I.pinned_image(*key) is image  # every pin passes its own GPU's check


def test_pin_set_and_llama_version() -> None:
    assert set(I.ENGINE_IMAGES) == set(PINS)
    assert I.LLAMA_CPP_VERSION == "b6700"
    assert I.ENGINE_IMAGES[("llama.cpp", "nvidia-l4")].build_args["UBUNTU_VERSION"] == "22.04"
    assert I.ENGINE_IMAGES[("llama.cpp", "nvidia-rtx-pro-6000")].build_args["UBUNTU_VERSION"] == "24.04"
    assert I.OLD_VLLM_DLC is I.ENGINE_IMAGES[("vllm", "nvidia-l4")]


def test_unpinned_engine_refused() -> None:
    with pytest.raises(ConfigError) as err:
        I.pinned_image("tgi", "nvidia-l4")
    e = err.value
    assert (e.field, e.value, e.problem, e.fix) == (
        "engine.image",
        "tgi on nvidia-l4",
        "no engine image is pinned for this GPU",
        "add a pin",
    )
    assert e.allowed.startswith("llama.cpp on nvidia-l4, llama.cpp on nvidia-rtx-pro-6000, ollama on nvidia-l4")
    assert e.__suppress_context__


def _image(cuda: tuple[int, int], archs: tuple[tuple[int, int], ...]) -> I.EngineImage:
    return I.EngineImage("vllm", "nvidia-l4", "img:1", "1", cuda, archs)


def test_cuda_equal_to_the_driver_passes_and_one_minor_above_fails() -> None:
    I.check_image(_image((12, 2), ((8, 9),)), "nvidia-l4")  # equal: allowed
    I.check_image(_image((11, 8), ((8, 9),)), "nvidia-l4")  # lower major, higher minor: allowed
    with pytest.raises(ConfigError) as err:
        I.check_image(_image((12, 3), ((8, 9),)), "nvidia-l4")
    e = err.value
    assert (e.field, e.value) == ("engine.image", "img:1")
    assert e.problem == (
        "was built with CUDA 12.3, newer than what nvidia-l4's Cloud Run driver 535.216.03 supports "
        f"(CUDA 12.2, {I.CLOUD_RUN_GPU_DOC})"
    )
    assert e.fix == "use an image built with CUDA ≤ 12.2, e.g. the pin for nvidia-l4 in cloudrun_gpu/images.py"
    assert e.allowed == "CUDA ≤ 12.2"


def test_missing_arch_refused_exactly() -> None:
    with pytest.raises(ConfigError) as err:
        I.check_image(I.OLD_VLLM_DLC, "nvidia-rtx-pro-6000")
    e = err.value
    assert e.value == I.OLD_VLLM_DLC.reference
    assert e.problem == "has no kernels for nvidia-rtx-pro-6000 (compute capability 12.0; the image has 8.0, 8.9, 9.0)"
    assert e.fix == "use an image compiled for sm_120, e.g. the pin for nvidia-rtx-pro-6000 in cloudrun_gpu/images.py"
    assert e.allowed == "images with 12.0 in their CUDA arch list"


def test_cross_gpu_pins() -> None:
    # The RTX llama.cpp pin needs CUDA 12.8: the L4 driver (12.2) refuses it on CUDA first.
    with pytest.raises(ConfigError, match=r"CUDA 12\.8, newer"):
        I.check_image(I.ENGINE_IMAGES[("llama.cpp", "nvidia-rtx-pro-6000")], "nvidia-l4")
    # The L4 llama.cpp pin has only sm_89: CUDA fits the RTX driver, the arch does not.
    with pytest.raises(ConfigError, match="has no kernels"):
        I.check_image(I.ENGINE_IMAGES[("llama.cpp", "nvidia-l4")], "nvidia-rtx-pro-6000")


@pytest.mark.parametrize("cls", [I.GpuDriver, I.EngineImage])
def test_frozen_dataclasses_with_valid_annotations(cls: type) -> None:
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    typing.get_type_hints(cls)
    img = _image((1, 0), ())
    assert img.build_args == {} and img.source == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.version = "2"  # type: ignore[misc]
