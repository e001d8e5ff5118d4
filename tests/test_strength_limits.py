"""Mutation-strength tests for limits.py: every limit the library enforces, pinned to the value its source gives.

A changed number here silently moves a check (a probe window, a CPU list, a GPU's memory), so each value is
restated with the fact behind it; a deliberate change of a limit updates this file in the same commit.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from cloudrun_gpu import limits as L

MIB, GIB = 1024**2, 1024**3


def test_units() -> None:
    assert (L.MIB, L.GIB) == (1_048_576, 1_073_741_824)


def test_l4_facts() -> None:
    g = L.GPU_TYPES["nvidia-l4"]
    assert g.name == "nvidia-l4"
    assert g.vram_bytes == 23034 * MIB  # nvidia-smi on a 24 GB L4
    assert g.cuda_total_bytes == 22559 * MIB  # the lowest CUDA-visible total seen (22.03 GiB)
    assert (g.min_cpu, g.min_memory_gib, g.default_cpu, g.default_memory_gib) == (4, 16, 8, 32)
    assert g.regions == ("us-central1", "us-east4", "europe-west1", "europe-west4", "asia-southeast1", "asia-south1")
    assert (g.quota_zonal, g.quota_no_zonal) == (
        "NvidiaL4GpuAllocPerProjectRegion",
        "NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion",
    )
    assert g.fp8_kv is True
    assert g.launch_stage == "GA"


def test_rtx_pro_6000_facts() -> None:
    g = L.GPU_TYPES["nvidia-rtx-pro-6000"]
    assert g.name == "nvidia-rtx-pro-6000"
    assert g.vram_bytes == 97887 * MIB
    assert g.cuda_total_bytes == 97249 * MIB  # vLLM: "Free memory on device (…/94.97 GiB)"
    assert (g.min_cpu, g.min_memory_gib, g.default_cpu, g.default_memory_gib) == (20, 80, 20, 80)
    assert g.regions == ("us-central1", "europe-west4", "asia-southeast1", "asia-south2")
    assert g.fp8_kv is True
    assert g.launch_stage == "BETA"
    assert set(L.GPU_TYPES) == {"nvidia-l4", "nvidia-rtx-pro-6000"}


def test_cuda_total_bytes_measured_and_derived() -> None:
    l4 = L.GPU_TYPES["nvidia-l4"]
    assert L.cuda_total_bytes(l4) == 22559 * MIB
    assert L.CUDA_RESERVE_DEFAULT_BYTES == 640 * MIB
    unmeasured = dataclasses.replace(l4, cuda_total_bytes=None)
    assert L.cuda_total_bytes(unmeasured) == (23034 - 640) * MIB


def test_instance_shape_limits() -> None:
    assert L.ALLOWED_CPU == (4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32)
    assert L.MAX_MEMORY_GIB.value == 192
    assert (L.CONCURRENCY_MIN, L.CONCURRENCY_MAX.value) == (1, 1000)


def test_probe_limits() -> None:
    assert L.PROBE_INITIAL_DELAY_MAX == 240
    assert (L.PROBE_PERIOD_MIN, L.PROBE_PERIOD_MAX) == (1, 240)
    assert (L.PROBE_TIMEOUT_MIN, L.PROBE_FAILURE_THRESHOLD_MIN) == (1, 1)
    assert L.PROBE_TIMEOUT_STRICTLY_BELOW_PERIOD.value == 1
    assert (L.STARTUP_WINDOW_GPU_S.value, L.STARTUP_WINDOW_CPU_S.value) == (1800, 240)
    assert L.STARTUP_WINDOW_CPU_S.conflict == ""


def test_scaling_network_build_limits() -> None:
    assert L.REQUEST_TIMEOUT_MAX_S == 3600
    assert L.DEFAULT_GPU_QUOTA.value == 3
    assert L.SUBNET_MIN_PREFIX == 26
    assert (L.DIRECT_VPC_IP_MULTIPLIER.value, L.DIRECT_VPC_IP_BLOCK) == (4, 16)
    assert L.PSC_NAME_PATTERN == r"^[a-z][a-z0-9]{0,19}$"
    assert L.PRIVATE_GOOGLE_ACCESS_RANGES == ("199.36.153.8/30", "199.36.153.4/30")
    assert L.CLOUD_BUILD_DISK_MAX_GB.value == 1000
    assert L.CLOUD_BUILD_MACHINE == "E2_HIGHCPU_32"
    assert (L.DIRECT_VPC_CONNECT_S.value, L.DIRECT_VPC_WINDOW_S.value, L.CONTAINER_START_S.value) == (34, 60, 7)
    assert (L.CONTAINER_START_FAST_S.value, L.CONTAINER_START_SLOW_S.value) == (5.6, 11.3)


def test_loading_method_rates_and_needs() -> None:
    rates = {k: v.bytes_per_s for k, v in L.LOADING_METHODS.items()}
    assert rates == {
        "image": 0.48 * GIB,
        "gcs-fuse": 0.05 * GIB,
        "gcs-download": 0.047 * GIB,
        "gcs-stream": 0.64 * GIB,
        "internet": 0.039 * GIB,
    }
    spread = {k: (v.slow_bytes_per_s / GIB, v.fast_bytes_per_s / GIB) for k, v in L.LOADING_METHODS.items()}
    assert spread == {
        "image": (0.1, 1.17),
        "gcs-fuse": (0.049, 0.053),
        "gcs-download": (0.044, 0.052),
        "gcs-stream": (0.64, 0.64),  # one published start: no spread, the one rate for all three cases
        "internet": (0.037, 0.044),
    }
    assert all(v.name == k for k, v in L.LOADING_METHODS.items())
    assert L.LOADING_METHODS["image"].needs == ()
    assert [len(v.needs) for v in L.LOADING_METHODS.values()] == [0, 1, 2, 2, 1]


@pytest.mark.parametrize("cls", [L.Sourced, L.GpuType, L.LoadingMethodFacts])
def test_facts_are_frozen_dataclasses_with_valid_annotations(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    typing.get_type_hints(cls)  # every field's annotation is a real type (``int | None``, not ``int - None``)


def test_sourced_default_conflict_and_frozen() -> None:
    s = L.Sourced(1.0, "src")
    assert s.conflict == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.value = 2.0  # type: ignore[misc]
    assert L.LoadingMethodFacts("x", 1.0, "s").needs == ()
    assert L.GPU_TYPES["nvidia-l4"].notes and L.GpuType.__dataclass_fields__["notes"].default == ""
