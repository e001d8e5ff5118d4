"""Quota preflight: the need at max instances, the pure comparison, and the Cloud Quotas read through
Pulumi mocks that answer ``gcp:cloudquota/getSQuotaInfo:getSQuotaInfo`` invokes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.quota import (
    CPU_QUOTA_ID,
    INVOKE_TOKEN,
    MEMORY_QUOTA_ID,
    SERVICE,
    QuotaAnswer,
    QuotaNeed,
    answer_from_info,
    preflight,
    quota_need,
    quota_problems,
    read_quotas,
)
from cloudrun_gpu.quota import quota_info_wire as wire
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from stack.render import install_mocks, run_under_mocks
from tests.conftest import ROOT

GIB = limits.GIB
PROJECT, REGION = "quota-test", "us-central1"
L4_NO_ZONAL = limits.GPU_TYPES["nvidia-l4"].quota_no_zonal
RTX_ZONAL = limits.GPU_TYPES["nvidia-rtx-pro-6000"].quota_zonal
FRESH = {"gpus": 3, "vcpu": 20, "memory_gib": 40}
"""What fresh projects have shown (issue 10): 20 vCPU / 40 GiB of Cloud Run quota; 3 GPUs when granted."""


# --- Pulumi mocks answering the Cloud Quotas data source --------------------------------------


@dataclass
class QuotaMocks(Mocks):
    """Answers ``getSQuotaInfo`` from ``infos`` (quota id → wire answer); an unknown id fails like the
    provider's 404 (an invoke failure, which ``get_s_quota_info`` raises). Records every invoke's arguments."""

    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        assert args.token == INVOKE_TOKEN, args.token
        self.calls.append(dict(args.args))
        quota_id = args.args["quotaId"]
        if quota_id not in self.infos:  # a failure, as the provider's error reaches the program (not a crash)
            return {}, [("quotaId", f"googleapi: Error 404: QuotaInfo {quota_id} not found")]
        return self.infos[quota_id], []  # pulumi 3.272's MockMonitor iterates the failures: [] not None


@pytest.fixture
def restore_mocks() -> Iterator[None]:
    yield
    install_mocks("test", {})  # what conftest installed, for the tests after these


def run_preflight(infos: dict[str, dict[str, Any]], **kw: Any) -> tuple[QuotaMocks, QuotaNeed | ConfigErrors]:
    """Run :func:`preflight` as a Pulumi program under QuotaMocks; return the mocks and its result or error."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)
    mocks = QuotaMocks(infos=infos)
    pulumi.runtime.set_mocks(mocks, project="cloudrun-gpu", stack="quota", preview=False)
    args: dict[str, Any] = {
        "project": PROJECT,
        "region": REGION,
        "gpu_type": "nvidia-l4",
        "zonal_redundancy": False,
        "max_instances": 2,
        "cpu": 8,
        "memory_gib": 32,
    }
    args.update(kw)
    out: dict[str, QuotaNeed | ConfigErrors] = {}

    def program() -> None:
        try:
            out["result"] = preflight(**args)
        except ConfigErrors as e:
            out["result"] = e

    run_under_mocks(program)
    return mocks, out["result"]


def infos(
    gpus: str = "3", milli_vcpu: str = "20000", mem_bytes: str = str(64 * GIB), gpu_id: str = L4_NO_ZONAL
) -> dict[str, dict[str, Any]]:
    """Quota answers for REGION, with an unrelated default entry the region-specific one must win over."""
    return {
        gpu_id: wire(gpu_id, {REGION: gpus, "": "0"}),
        CPU_QUOTA_ID: wire(CPU_QUOTA_ID, {"europe-west4": "1", REGION: milli_vcpu}),
        MEMORY_QUOTA_ID: wire(MEMORY_QUOTA_ID, {REGION: mem_bytes}),
    }


def one_error(result: QuotaNeed | ConfigErrors) -> ConfigError:
    assert isinstance(result, ConfigErrors), result
    assert len(result.errors) == 1, result.render()
    return result.errors[0]


def test_enough_quota_passes_and_reads_run_quotas(restore_mocks: None) -> None:
    mocks, result = run_preflight(infos())
    assert isinstance(result, QuotaNeed)
    assert (result.gpus, result.vcpu, result.memory_gib) == (2, 16, 64)
    assert {c["quotaId"] for c in mocks.calls} == {L4_NO_ZONAL, CPU_QUOTA_ID, MEMORY_QUOTA_ID}
    assert all(c["parent"] == f"projects/{PROJECT}" and c["service"] == SERVICE for c in mocks.calls)


def test_too_little_gpu(restore_mocks: None) -> None:
    _, result = run_preflight(infos(gpus="1"))
    err = one_error(result)
    text = err.render()
    assert L4_NO_ZONAL in text and "needs 2 nvidia-l4 GPU" in text and "has 1 " in text
    assert "gcloud beta quotas preferences create" in text and f"--quota-id={L4_NO_ZONAL}" in text
    assert "--preferred-value=2" in text and f"--dimensions=region={REGION}" in text
    assert "console.cloud.google.com/iam-admin/quotas" in text
    assert "lower scaling.max_instances to 1" in text and err.allowed == "1..1"


def test_zonal_redundancy_reads_the_other_gpu_quota(restore_mocks: None) -> None:
    mocks, result = run_preflight(
        infos(gpus="3", milli_vcpu="60000", mem_bytes=str(240 * GIB), gpu_id=RTX_ZONAL),
        gpu_type="nvidia-rtx-pro-6000",
        zonal_redundancy=True,
        max_instances=3,
        cpu=20,
        memory_gib=80,
    )
    assert isinstance(result, QuotaNeed), result
    assert RTX_ZONAL in {c["quotaId"] for c in mocks.calls}


def test_too_little_cpu(restore_mocks: None) -> None:
    _, result = run_preflight(infos(milli_vcpu="12000"))
    text = one_error(result).render()
    assert CPU_QUOTA_ID in text and "needs 16 vCPU" in text and "has 12 vCPU (raw 12000 milli-vCPU)" in text
    assert "--preferred-value=16000" in text  # the preference is in the quota's unit, milli-vCPU
    assert "lower scaling.max_instances to 1" in text


def test_too_little_memory(restore_mocks: None) -> None:
    _, result = run_preflight(infos(mem_bytes=str(40 * GIB)))
    text = one_error(result).render()
    assert MEMORY_QUOTA_ID in text and "needs 64 GiB" in text and "has 40 GiB" in text
    assert f"--preferred-value={64 * GIB}" in text


def test_missing_quota_answer_is_a_clear_error(restore_mocks: None) -> None:
    answers = infos()
    del answers[L4_NO_ZONAL]
    _, result = run_preflight(answers)
    text = one_error(result).render()
    assert L4_NO_ZONAL in text and "could not be read" in text and "404" in text
    assert f"gcloud beta quotas info describe {L4_NO_ZONAL} --service={SERVICE} --project={PROJECT}" in text


def test_no_value_for_the_region_is_a_clear_error(restore_mocks: None) -> None:
    answers = infos()
    answers[MEMORY_QUOTA_ID] = wire(MEMORY_QUOTA_ID, {"europe-west4": str(100 * GIB)})
    _, result = run_preflight(answers)
    text = one_error(result).render()
    assert MEMORY_QUOTA_ID in text and f"no value for {REGION}" in text and "europe-west4" in text


def test_zero_gpu_quota(restore_mocks: None) -> None:
    _, result = run_preflight(infos(gpus="0"))
    err = one_error(result)
    assert L4_NO_ZONAL in err.problem and "is 0" in err.problem and "needs 2" in err.problem
    assert "lower scaling.max_instances" not in err.fix and "gcloud beta quotas preferences create" in err.fix


def test_every_shortage_reported_at_once(restore_mocks: None) -> None:
    _, result = run_preflight(infos(gpus="0", milli_vcpu="20000", mem_bytes=str(40 * GIB)), max_instances=3)
    assert isinstance(result, ConfigErrors)
    assert [e.problem.split("quota ")[1].split()[0] for e in result.errors] == [
        L4_NO_ZONAL,
        CPU_QUOTA_ID,
        MEMORY_QUOTA_ID,
    ]


def test_read_quotas_converts_units(restore_mocks: None) -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(QuotaMocks(infos=infos()), project="cloudrun-gpu", stack="quota", preview=False)
    got = read_quotas(PROJECT, REGION, "nvidia-l4", False)
    assert {k: v.value for k, v in got.items()} == {L4_NO_ZONAL: 3, CPU_QUOTA_ID: 20, MEMORY_QUOTA_ID: 64}


# --- Pure functions --------------------------------------------------------------------------


def answers_for(need: QuotaNeed, gpus: float, vcpu: float, memory_gib: float) -> dict[str, QuotaAnswer]:
    return {
        need.gpu_quota_id: QuotaAnswer(need.gpu_quota_id, gpus),
        CPU_QUOTA_ID: QuotaAnswer(CPU_QUOTA_ID, vcpu, raw=str(int(vcpu * 1000)), unit="milli-vCPU"),
        MEMORY_QUOTA_ID: QuotaAnswer(MEMORY_QUOTA_ID, memory_gib, raw=str(int(memory_gib * GIB)), unit="By"),
    }


def test_quota_problems_pure() -> None:
    need = quota_need("nvidia-l4", False, 2, 8, 32)
    assert quota_problems(need, answers_for(need, 2, 16, 64)) == []
    assert quota_problems(need, answers_for(need, -1, -1, -1)) == []  # -1: unlimited
    short = quota_problems(need, answers_for(need, 1, 16, 63))
    assert [(e.field, e.value) for e in short] == [("scaling.max_instances", 2)] * 2
    assert L4_NO_ZONAL in short[0].problem and MEMORY_QUOTA_ID in short[1].problem
    missing = quota_problems(need, {})
    assert len(missing) == 3 and all("could not be read" in e.problem for e in missing)


def test_answer_from_info_prefers_the_region_then_the_default() -> None:
    info = {
        "metric_unit": "milli-vCPU",
        "dimensions_infos": [
            {"dimensions": {"region": "europe-west4"}, "details": [{"value": "8000"}]},
            {"dimensions": {}, "details": [{"value": "20000"}]},
        ],
    }
    assert answer_from_info(CPU_QUOTA_ID, "europe-west4", info).value == 8
    assert answer_from_info(CPU_QUOTA_ID, "us-central1", info).value == 20  # the default entry
    bad = answer_from_info(CPU_QUOTA_ID, "us-central1", {"dimensions_infos": [{"dimensions": {}, "details": []}]})
    assert bad.value is None and "unreadable" in bad.detail


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_need_of_committed_stacks(stack: str) -> None:
    from stack.cli import plan_json
    from stack.config import load_stack

    svc = plan_json(stack, ROOT)["service"]
    cfg = load_stack(stack, ROOT).config
    n = cfg.scaling.max_instances
    need = quota_need(cfg.gpu.type, cfg.gpu.zonal_redundancy, n, svc["cpu"], svc["memory_gib"])
    facts = limits.GPU_TYPES[str(cfg.gpu.type)]
    assert need.gpu_quota_id == (facts.quota_zonal if cfg.gpu.zonal_redundancy else facts.quota_no_zonal)
    assert (need.gpus, need.vcpu, need.memory_gib) == (n, n * svc["cpu"], n * svc["memory_gib"])
    assert need.to_dict()["quota_ids"]["gpu"] == need.gpu_quota_id
    assert str(need.vcpu) in need.summary() and need.gpu_quota_id in need.summary()

    # On a fresh project's quota, exactly the quotas below the need are reported.
    fresh = answers_for(need, FRESH["gpus"], FRESH["vcpu"], FRESH["memory_gib"])
    reported = [e.problem for e in quota_problems(need, fresh, "p", cfg.region)]
    expected = [
        qid
        for qid, total, _, _ in need.items()
        if total > {need.gpu_quota_id: FRESH["gpus"], CPU_QUOTA_ID: FRESH["vcpu"]}.get(qid, FRESH["memory_gib"])
    ]
    assert [next(q for q in (need.gpu_quota_id, CPU_QUOTA_ID, MEMORY_QUOTA_ID) if q in p) for p in reported] == expected


def test_issue_numbers() -> None:
    """The shapes issue 10 names: prod 3 × 20 vCPU / 80 GiB RTX zonal, staging 2 × 32 GiB."""
    prod = quota_need("nvidia-rtx-pro-6000", True, 3, 20, 80)
    assert (prod.gpus, prod.vcpu, prod.memory_gib, prod.gpu_quota_id) == (3, 60, 240, RTX_ZONAL)
    staging = quota_need("nvidia-l4", False, 2, 8, 32)
    assert (staging.vcpu, staging.memory_gib) == (16, 64)


def test_unreadable_quota_warns_in_the_stack_but_a_short_one_still_stops(restore_mocks: None) -> None:
    """On a fresh project the same `pulumi up` enables the Cloud Quotas API, so an unreadable quota is a
    warning there (the stack passes ``warn``); a quota that was read and is short still stops the run."""
    warnings: list[str] = []
    answers = infos()
    del answers[L4_NO_ZONAL]
    _, result = run_preflight(answers, warn=warnings.append)
    assert isinstance(result, QuotaNeed)
    assert len(warnings) == 1 and L4_NO_ZONAL in warnings[0] and "could not be read" in warnings[0]
    warnings.clear()
    short = infos(gpus="1")
    del short[CPU_QUOTA_ID]
    _, result = run_preflight(short, warn=warnings.append)
    assert L4_NO_ZONAL in one_error(result).render() and len(warnings) == 1 and CPU_QUOTA_ID in warnings[0]
