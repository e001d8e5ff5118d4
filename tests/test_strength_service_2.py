"""Mutation-strength tests for ``cloudrun_gpu/service/plan.py``, second pass (issue 23: the module was not
re-scored since the engine profiles landed; its last run left ``if engine.image is None`` negatable).

Each refusal ``plan_service`` can raise is pinned whole (field, value, problem, fix, allowed: what the user reads),
and so is which engine release the plan is sized for: the pinned image's when we build the image, the user's
``engine.version`` when given, none when the user brings an image of their own (it is not our pin).
"""

from __future__ import annotations

from typing import Any

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.images import pinned_image
from cloudrun_gpu.service import GpuSettings, ResourcesSettings, ScalingSettings
from cloudrun_gpu.service.settings import Accelerator
from cloudrun_gpu.sizing.settings import EngineName, EngineSettings, ModelSettings

from .test_strength_service import plan

L4_REGIONS = "us-central1, us-east4, europe-west1, europe-west4, asia-southeast1, asia-south1"
LLAMA_HUB = ModelSettings(name="llama-3.1-8b", file="m", hub_id="meta-llama/Llama-3.1-8B-Instruct")


def _refusals(**kw: Any) -> list[tuple[str, Any, str, str, str]]:
    with pytest.raises(ConfigErrors) as err:
        plan(**kw)
    return [(e.field, e.value, e.problem, e.fix, e.allowed) for e in err.value.errors]


@pytest.mark.parametrize(
    ("kw", "refusal"),
    [
        (
            {"region": "us-west1"},
            ("region", "us-west1", "has no nvidia-l4 GPUs on Cloud Run", f"deploy to one of {L4_REGIONS}", L4_REGIONS),
        ),
        (
            {
                "region": "us-central1",
                "gpu": GpuSettings(type=Accelerator.NVIDIA_RTX_PRO_6000, quota=3),
                "resources": ResourcesSettings(cpu=18),
            },
            (
                "resources.cpu",
                18,
                "nvidia-rtx-pro-6000 needs at least 20 vCPU",
                "set resources.cpu ≥ 20",
                "20, 22, 24, 26, 28, 30, 32",
            ),
        ),
        (
            {"gpu": GpuSettings(quota=2), "scaling": ScalingSettings(max_instances=3)},
            (
                "scaling.max_instances",
                3,
                "exceeds the stated GPU quota (2, quota NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion)",
                "lower scaling.max_instances, or request more quota and raise gpu.quota",
                "1..2",
            ),
        ),
        (
            {"resources": ResourcesSettings(memory_gib=15)},
            ("resources.memory_gib", 15, "nvidia-l4 needs ≥ 16 GiB", "set resources.memory_gib ≥ 16", "16..192"),
        ),
        (
            {"resources": ResourcesSettings(memory_gib=193)},
            (
                "resources.memory_gib",
                193,
                "is above the largest GPU instance we allow",
                "set resources.memory_gib ≤ 192",
                "16..192",
            ),
        ),
        (
            {"engine": EngineSettings(context_length=4096, parallel=2), "scaling": ScalingSettings(max_concurrency=1)},
            (
                "scaling.max_concurrency",
                1,
                "is below the engine's 2 parallel sequences, so GPU slots idle (R6)",
                "set scaling.max_concurrency ≥ 2, or lower engine.parallel to match",
                "2..1000",
            ),
        ),
    ],
    ids=["region", "cpu", "quota", "memory-low", "memory-high", "concurrency"],
)
def test_each_refusal_word_for_word(kw: dict[str, Any], refusal: tuple[str, Any, str, str, str]) -> None:
    assert _refusals(**kw) == [refusal]


def test_the_edges_of_cpu_quota_memory_and_concurrency_are_accepted() -> None:
    rtx_gpu = GpuSettings(type=Accelerator.NVIDIA_RTX_PRO_6000, quota=3)
    rtx = plan(region="us-central1", gpu=rtx_gpu, resources=ResourcesSettings(cpu=20))
    assert rtx.cpu == 20
    assert plan(gpu=GpuSettings(quota=2), scaling=ScalingSettings(max_instances=2)).sizing
    assert plan(resources=ResourcesSettings(memory_gib=192)).memory_gib == 192
    p = plan(engine=EngineSettings(context_length=4096, parallel=2), scaling=ScalingSettings(max_concurrency=2))
    assert p.concurrency == 2


def test_a_plan_we_build_the_image_for_is_sized_for_the_pinned_release() -> None:
    p = plan(engine=EngineSettings(name=EngineName.VLLM, context_length=4096), model=LLAMA_HUB)
    assert p.sizing.engine_memory["engine_version"] == pinned_image("vllm", "nvidia-l4").version
    assert (p.cpu, p.memory_gib, p.mount_path, p.model_path, p.served_model_name) == (
        8,
        32,
        "/models",
        "/models/m",
        "m",
    )


def test_the_users_engine_version_wins_over_the_pin() -> None:
    p = plan(engine=EngineSettings(name=EngineName.VLLM, context_length=4096, version="0.10.0"), model=LLAMA_HUB)
    assert p.sizing.engine_memory["engine_version"] == "0.10.0"


def test_a_users_own_image_is_not_sized_as_our_pin() -> None:
    own = "europe-docker.pkg.dev/p/r/vllm:x"
    p = plan(engine=EngineSettings(name=EngineName.VLLM, context_length=4096, image=own), model=LLAMA_HUB)
    assert p.sizing.engine_memory["engine_version"] is None  # the release is unknown: every band's largest
    versioned = plan(
        engine=EngineSettings(name=EngineName.VLLM, context_length=4096, image=own, version="0.10.0"), model=LLAMA_HUB
    )
    assert versioned.sizing.engine_memory["engine_version"] == "0.10.0"
