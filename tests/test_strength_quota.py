"""Mutation-strength tests for quota.py: the exact need, unit conversions, the region choice, and the text
of every quota error (numbers, commands, allowed range)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from cloudrun_gpu import limits
from cloudrun_gpu import quota as Q
from cloudrun_gpu.quota import CPU_QUOTA_ID as CPU
from cloudrun_gpu.quota import MEMORY_QUOTA_ID as MEM
from cloudrun_gpu.quota import QuotaAnswer, answer_from_info, quota_need, quota_problems

GIB = limits.GIB
L4_NZ = "NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion"
L4_Z = "NvidiaL4GpuAllocPerProjectRegion"
CONSOLE = "https://console.cloud.google.com/iam-admin/quotas?project=p"


def test_constants() -> None:
    assert Q.SERVICE == "run.googleapis.com"
    assert (CPU, MEM) == ("CpuAllocPerProjectRegion", "MemAllocPerProjectRegion")
    assert Q.INVOKE_TOKEN == "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo"
    assert Q.DEFAULT_SCALE == {CPU: 1000, MEM: GIB}


def test_need_exact() -> None:
    need = quota_need("nvidia-l4", False, 3, 8, 32)
    assert (need.gpus, need.vcpu, need.memory_gib, need.gpu_quota_id) == (3, 24, 96, L4_NZ)
    assert quota_need("nvidia-l4", True, 3, 8, 32).gpu_quota_id == L4_Z
    assert need.items() == [
        (L4_NZ, 3, 1, "nvidia-l4 GPU (no zonal redundancy)"),
        (CPU, 24, 8, "vCPU"),
        (MEM, 96, 32, "GiB"),
    ]
    assert quota_need("nvidia-l4", True, 1, 8, 32).items()[0][3] == "nvidia-l4 GPU (zonal redundancy)"
    assert need.to_dict() == {
        "max_instances": 3,
        "gpu_type": "nvidia-l4",
        "zonal_redundancy": False,
        "gpus": 3,
        "vcpu": 24,
        "memory_gib": 96,
        "quota_ids": {"gpu": L4_NZ, "cpu": CPU, "memory": MEM},
    }
    assert need.summary() == (
        f"Quota needed at 3 instance(s): 3 × nvidia-l4 ({L4_NZ}), 24 vCPU ({CPU}), 96 GiB ({MEM})"
    )


def test_quota_need_coerces_types() -> None:
    need = quota_need("nvidia-l4", 1, 2.0, "8", 32.0)  # type: ignore[arg-type]
    assert need == Q.QuotaNeed("nvidia-l4", True, 2, 8, 32)
    assert type(need.max_instances) is int and need.zonal_redundancy is True


@pytest.mark.parametrize(
    ("quota_id", "unit", "scale"),
    [
        (CPU, "milli-vCPU", 1000),
        (CPU, " MILLI ", 1000),
        (MEM, "By", GIB),
        (MEM, "byte", GIB),
        (MEM, "bytes", GIB),
        (MEM, "MiB", 1024),
        (MEM, "miby", 1024),
        (MEM, "GiB", 1),
        (MEM, "giby", 1),
        (CPU, "", 1000),
        (MEM, "", GIB),
        (L4_NZ, "1", 1),
        (L4_NZ, "", 1),
    ],
)
def test_scale(quota_id: str, unit: str, scale: float) -> None:
    assert Q._scale(quota_id, unit) == scale


def _info(unit: str, *entries: tuple[dict[str, str], Any]) -> dict[str, Any]:
    return {"metric_unit": unit, "dimensions_infos": [{"dimensions": d, "details": v} for d, v in entries]}


def test_answer_region_wins_even_after_the_default() -> None:
    info = _info("milli-vCPU", ({}, [{"value": "20000"}]), ({"region": "r1"}, [{"value": "8000"}]))
    a = answer_from_info(CPU, "r1", info)
    assert (a.quota_id, a.value, a.raw, a.unit, a.detail) == (CPU, 8.0, "8000", "milli-vCPU", "")
    assert answer_from_info(CPU, "r2", info).value == 20.0


def test_answer_first_default_is_kept() -> None:
    info = _info("1", ({}, [{"value": "5"}]), ({}, [{"value": "7"}]), ({"region": "x"}, [{"value": "9"}]))
    assert answer_from_info(L4_NZ, "r", info).value == 5.0


def test_answer_no_region_no_default() -> None:
    info = _info("1", ({"region": "b"}, [{"value": "1"}]), ({"region": "a"}, [{"value": "1"}]))
    a = answer_from_info(L4_NZ, "r", info)
    assert (a.value, a.unit, a.detail) == (None, "1", "no value for r (values for: ['a', 'b'])")
    empty = answer_from_info(L4_NZ, "r", {})
    assert (empty.value, empty.unit, empty.detail) == (None, "", "no value for r (values for: none)")


def test_answer_negative_is_unlimited_and_not_scaled() -> None:
    a = answer_from_info(CPU, "r", _info("milli-vCPU", ({"region": "r"}, [{"value": "-1"}])))
    assert a.value == -1.0
    zero = answer_from_info(CPU, "r", _info("milli-vCPU", ({"region": "r"}, [{"value": "0"}])))
    assert zero.value == 0.0


def test_answer_details_as_a_mapping_and_unreadable() -> None:
    a = answer_from_info(MEM, "r", _info("By", ({"region": "r"}, {"value": str(2 * GIB)})))
    assert a.value == 2.0
    bad = answer_from_info(MEM, "r", _info("By", ({"region": "r"}, [{"value": "lots"}])))
    assert (bad.value, bad.raw, bad.detail) == (None, "lots", "unreadable value 'lots' for r")
    none = answer_from_info(MEM, "r", _info("By", ({"region": "r"}, ["x"])))
    assert (none.value, none.raw) == (None, "")


def test_commands_exact() -> None:
    assert Q.request_command("p", "r", "Q", 5) == (
        "gcloud beta quotas preferences create --service=run.googleapis.com --project=p --quota-id=Q "
        "--preferred-value=5 --dimensions=region=r --email=<you@example.com>"
    )
    assert Q.check_command("p", "Q") == (
        "gcloud beta quotas info describe Q --service=run.googleapis.com --project=p --format=json"
    )


def test_fmt() -> None:
    assert (Q._fmt(3.0), Q._fmt(2.5), Q._fmt(7)) == ("3", "2.5", "7")


def _answers(gpus: float | None, vcpu: float | None, mem: float | None, **kw: Any) -> dict[str, QuotaAnswer]:
    return {
        L4_NZ: QuotaAnswer(L4_NZ, gpus, **kw.get("g", {})),
        CPU: QuotaAnswer(CPU, vcpu, **kw.get("c", {})),
        MEM: QuotaAnswer(MEM, mem, **kw.get("m", {})),
    }


NEED = quota_need("nvidia-l4", False, 3, 8, 32)  # 3 GPUs, 24 vCPU, 96 GiB


def test_exactly_enough_passes() -> None:
    assert quota_problems(NEED, _answers(3, 24, 96), "p", "r") == []
    assert quota_problems(NEED, _answers(-1, -0.5, 1e9), "p", "r") == []


def test_one_below_is_short_exact_text() -> None:
    errs = quota_problems(NEED, _answers(3, 23, 96, c={"raw": "23000", "unit": "milli-vCPU"}), "p", "r")
    assert len(errs) == 1
    e = errs[0]
    assert (e.field, e.value) == ("scaling.max_instances", 3)
    assert e.problem == f"needs 24 vCPU of quota {CPU} (3 × 8) but project p has 23 vCPU (raw 23000 milli-vCPU) in r"
    assert e.fix == (
        f"request 24 vCPU at {CONSOLE} (filter {CPU}, region r) or run "
        f"`{Q.request_command('p', 'r', CPU, 24000)}`; or lower scaling.max_instances to 2"
    )
    assert e.allowed == "1..2"


def test_short_without_raw_or_with_unit_scale_one() -> None:
    e = quota_problems(NEED, _answers(2, 24, 96), "p", "r")[0]
    assert (
        e.problem == f"needs 3 nvidia-l4 GPU (no zonal redundancy) of quota {L4_NZ} (3 × 1) but project p has 2 "
        "nvidia-l4 GPU (no zonal redundancy) in r"
    )
    assert "--preferred-value=3 " in e.fix and e.allowed == "1..2"
    gib = quota_problems(NEED, _answers(3, 24, 64.5, m={"raw": "64.5", "unit": "GiB"}), "p", "r")[0]
    assert "has 64.5 GiB in r" in gib.problem  # scale 1: the raw value is not repeated
    assert gib.fix.endswith("; or lower scaling.max_instances to 2")
    assert gib.allowed == "1..2"


def test_short_below_one_instance() -> None:
    e = quota_problems(NEED, _answers(3, 7.9, 96), "p", "r")[0]
    assert "lower scaling.max_instances" not in e.fix
    assert e.allowed == "none until quota is granted"
    one = quota_problems(NEED, _answers(3, 8, 96), "p", "r")[0]
    assert one.allowed == "1..1" and one.fix.endswith("; or lower scaling.max_instances to 1")


def test_zero_quota_text() -> None:
    e = quota_problems(NEED, _answers(0, 24, 96), "p", "r")[0]
    assert e.problem == (
        f"quota {L4_NZ} of project p in r is 0: none granted, the service needs 3 nvidia-l4 GPU (no zonal redundancy)"
    )
    assert e.allowed == "none until quota is granted"


def test_unread_quota_text() -> None:
    errs = quota_problems(
        NEED, {CPU: QuotaAnswer(CPU, None, detail="lookup failed: 403"), MEM: QuotaAnswer(MEM, 96)}, "p", "r"
    )
    assert [e.problem for e in errs] == [
        f"quota {L4_NZ} of project p in r could not be read; "
        "the service needs 3 nvidia-l4 GPU (no zonal redundancy) of it",
        f"quota {CPU} of project p in r could not be read (lookup failed: 403); the service needs 24 vCPU of it",
    ]
    assert errs[1].fix == (
        f"check it with `{Q.check_command('p', CPU)}` (look for region r) or at {CONSOLE}; "
        "the deploying identity needs cloudquotas.quotas.get (roles/cloudquotas.viewer) and "
        "the cloudquotas.googleapis.com API enabled"
    )
    assert errs[1].value == 3 and errs[1].allowed == ""
    no_detail = quota_problems(NEED, _answers(None, 24, 96), "p", "r")
    assert "could not be read;" in no_detail[0].problem


def test_memory_preferred_value_in_bytes_rounded_up() -> None:
    need = quota_need("nvidia-l4", False, 1, 8, 32)
    e = quota_problems(need, _answers(1, 8, 31.5, m={"raw": str(int(31.5 * GIB)), "unit": "By"}), "p", "r")[0]
    assert f"--preferred-value={32 * GIB} " in e.fix
    assert f"has 31.5 GiB (raw {int(31.5 * GIB)} By)" in e.problem
    assert e.allowed == "none until quota is granted"


def test_quota_info_wire_exact() -> None:
    assert Q.quota_info_wire(CPU, {"r": "1", "": "2"}) == {
        "service": "run.googleapis.com",
        "quotaId": CPU,
        "name": f"projects/123/locations/global/services/run.googleapis.com/quotaInfos/{CPU}",
        "metricUnit": "milli-vCPU",
        "containerType": "PROJECT",
        "dimensions": ["region"],
        "dimensionsInfos": [
            {"dimensions": {"region": "r"}, "details": [{"value": "1"}], "applicableLocations": ["r"]},
            {"dimensions": {}, "details": [{"value": "2"}], "applicableLocations": ["global"]},
        ],
    }
    assert Q.quota_info_wire(MEM, {})["metricUnit"] == "By"
    assert Q.quota_info_wire(L4_NZ, {})["metricUnit"] == "1"
    assert Q.quota_info_wire(L4_NZ, {}, unit="x")["metricUnit"] == "x"


@pytest.mark.parametrize("cls", [Q.QuotaNeed, Q.QuotaAnswer])
def test_frozen_with_valid_annotations(cls: type) -> None:
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    typing.get_type_hints(cls)
    a = QuotaAnswer("q", 1.0)
    assert (a.raw, a.unit, a.detail) == ("", "", "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.value = 2.0  # type: ignore[misc]
