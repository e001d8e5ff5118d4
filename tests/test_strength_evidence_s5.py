"""Session 5 (seed 101) mutation-strength tests for sizing/data/__init__.py: the survivors of its blind sample, each
asserted on an evidence row as :func:`check_row` and the evidence table use it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cloudrun_gpu.sizing.data import VllmEvidence, check_row, evidence_table, load_vllm_evidence
from cloudrun_gpu.sizing.engines import MlpShape


def _row(row_id: str) -> VllmEvidence:
    return next(r for r in load_vllm_evidence() if r.id == row_id)


@pytest.mark.parametrize(
    ("gpu", "capability"),
    [
        # NVIDIA's CUDA GPU list (developer.nvidia.com/cuda-gpus): H100 9.0, A100 8.0, L4 and RTX 4090 8.9,
        # RTX 3090 8.6. The row's GPU text is as its log printed it.
        ("H100 80GB", (9, 0)),
        ("A100-SXM4-40GB", (8, 0)),
        ("A100 80GB", (8, 0)),
        ("NVIDIA L4", (8, 9)),
        ("RTX 4090 (48 GB)", (8, 9)),
        ("RTX 4090 D", (8, 9)),
        ("RTX 3090", (8, 6)),
        ("Tesla T4", None),
    ],
)
def test_every_evidence_gpu_has_its_published_compute_capability(gpu: str, capability: tuple[int, int] | None) -> None:
    """The capability picks the MXFP4 kernels vLLM may have used on that row (``mxfp4_backends``)."""
    assert replace(_row("v1-h100-gptoss20b-16k"), gpu=gpu).compute_capability == capability


def test_every_shipped_rows_gpu_is_one_the_table_knows() -> None:
    assert all(r.compute_capability is not None for r in load_vllm_evidence())


def test_a_one_expert_row_is_dense_and_a_two_expert_row_a_mixture() -> None:
    """As ModelSpec's ``is_moe`` (``n_experts > 1``): one "expert" is a dense MLP of ``intermediate_size``; two or
    more are routed experts of that width each, a token running through ``experts_per_token`` of them."""
    base = _row("v1-h100-gptoss20b-16k")
    one = replace(base, n_experts=1, experts_per_token=1)
    assert one.mlp() == MlpShape(2880)
    assert (one.spec().is_moe, one.spec().expert_intermediate_size) == (False, 0)
    two = replace(base, n_experts=2, experts_per_token=1)
    assert two.mlp() == MlpShape(0, 1, 2880)
    assert (two.spec().is_moe, two.spec().expert_intermediate_size, two.spec().experts_per_token) == (True, 2880, 1)


# ------------------------------------------------------------------ seed 111's survivors (blind to the tests above)


@pytest.mark.parametrize(
    ("version", "band"),
    [
        ("0.7.3", "V1<0.8"),
        ("0.8.0", "0.8-0.20"),
        ("0.20.2", "0.8-0.20"),
        ("0.21.0", "0.21-0.29"),
        ("0.29.9", "0.21-0.29"),
        ("0.30.0", ">=0.30"),
        ("", "0.8-0.20"),
    ],
)
def test_a_rows_version_band_changes_at_0_21_0_and_0_30_0(version: str, band: str) -> None:
    assert replace(_row("v1-h100-gptoss20b-16k"), engine_version=version, profile_band="").band == band


def test_the_triton_mxfp4_workspace_rule_applies_to_mxfp4_rows_only() -> None:
    """A row whose MoE ran the Triton MXFP4 kernel gets that kernel's overhead; the same row with other weights
    (here W8A8) does not, whatever its ``moe_kernel`` says."""
    mxfp4 = _row("v1-h100-gptoss20b-16k")
    assert (mxfp4.weights_quant, mxfp4.moe_kernel) == ("mxfp4", "triton")
    assert check_row(mxfp4).overhead_gib < check_row(replace(mxfp4, moe_kernel="")).overhead_gib
    w8a8 = replace(mxfp4, weights_quant="w8a8-int8")
    assert check_row(w8a8).overhead_gib == check_row(replace(w8a8, moe_kernel="")).overhead_gib


def test_the_evidence_table_prints_each_rows_kv_error_in_percent() -> None:
    check = check_row(_row("v1-h100-gptoss20b-16k"))
    percent = (check.kv_predicted_gib - check.row.kv_gib) / check.row.kv_gib * 100
    assert evidence_table([check]).splitlines()[-1].endswith(f"| {percent:+.1f} % |")
