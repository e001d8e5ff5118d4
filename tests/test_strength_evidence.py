"""Mutation-strength tests for sizing/data/__init__.py: how an evidence row is read, banded and checked, with
a synthetic row whose every number is known (the fitted overhead constants are not pinned here: the check is
that the prediction is budget − weights − overhead, whatever the overhead)."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing import data as D
from cloudrun_gpu.sizing.data import EvidenceCheck, VllmEvidence, check_row, evidence_summary, load_vllm_evidence
from cloudrun_gpu.sizing.engines import VllmOverhead


def row(**kw: object) -> VllmEvidence:
    fields: dict[str, object] = {
        "id": "r1",
        "source_url": "https://example.com/log",
        "engine_version": "0.10.1",
        "profile_band": "",
        "gpu": "L4",
        "cuda_total_gib": 20.0,
        "gpu_memory_utilization": 0.9,
        "model": "org/Model-8B",
        "weights_quant": "bf16",
        "params_b": 2.0,
        "max_model_len": 4096,
        "max_num_seqs": 16,
        "max_num_batched_tokens": 2048,
        "compile_cache": "warm",
        "n_layers": 4,
        "hidden_size": 256,
        "intermediate_size": 1024,
        "vocab_size": 1000,
        "n_heads": 8,
        "n_kv_heads": 2,
        "head_dim": 32,
        "tied_embeddings": True,
        "kv_bytes_per_token": 1024,
        "printed_weights_gib": 4.0,
        "printed_non_torch_gib": None,
        "printed_activation_gib": None,
        "printed_cudagraph_gib": None,
        "printed_kv_gib": 10.0,
        "printed_kv_tokens": None,
        "note": "",
    }
    fields.update(kw)
    return VllmEvidence(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "band", "expected"),
    [
        ("0.6.4", "v0", "V0"),
        ("0.30.0", "", ">=0.30"),
        ("0.31.2", "", ">=0.30"),
        ("0.29.9", "", "0.21-0.29"),
        ("0.21.0", "", "0.21-0.29"),
        ("0.20.9", "", "0.8-0.20"),
        ("", "", "0.8-0.20"),
        ("0.30.0", "v1", ">=0.30"),
    ],
)
def test_band(version: str, band: str, expected: str) -> None:
    assert row(engine_version=version, profile_band=band).band == expected


def test_kv_gib_budget_and_spec() -> None:
    r = row()
    assert r.kv_gib == 10.0
    assert r.budget_gib == pytest.approx(18.0)
    from_tokens = row(printed_kv_gib=None, printed_kv_tokens=3 * GIB // 1024)
    assert from_tokens.kv_gib == 3.0
    s = r.spec()
    assert (s.name, s.architecture, s.n_layers, s.hidden_size, s.n_heads) == ("org/Model-8B", "Model-8B", 4, 256, 8)
    assert (s.kv_heads, s.head_dim_k, s.head_dim_v, s.vocab_size, s.max_context) == ((2,) * 4, 32, 32, 1000, 0)
    assert (s.n_params, s.layer_windows, s.tied_embeddings, s.source) == (
        2_000_000_000,
        (None,) * 4,
        True,
        "https://example.com/log",
    )
    assert row(params_b=None).spec().n_params == 1


def test_optional_parsers() -> None:
    assert (D._opt_float(" "), D._opt_float("1.5"), D._opt_int(""), D._opt_int("7")) == (None, 1.5, None, 7)


def test_check_row_with_printed_weights() -> None:
    r = row()
    c = check_row(r, predict_weights=False)
    assert c.weights_predicted is False and c.weights_gib == 4.0
    budget = int(0.9 * 20.0 * GIB)
    assert c.kv_predicted_gib == pytest.approx((budget - 4 * GIB - c.overhead.total) / GIB)
    assert c.overhead_gib == c.overhead.total / GIB
    assert c.printed_overhead_gib == pytest.approx(18.0 - 4.0 - 10.0)
    assert c.error == pytest.approx((c.kv_predicted_gib - 10.0) / 10.0)


def test_check_row_predicts_weights_only_for_known_formats() -> None:
    assert check_row(row()).weights_predicted is True
    assert check_row(row()).weights_gib != 4.0
    assert check_row(row(weights_quant="no-such-format")).weights_predicted is False
    assert check_row(row(params_b=None)).weights_predicted is False


def test_cold_compile_and_band_reach_the_overhead() -> None:
    warm = check_row(row(engine_version="0.9.0"), predict_weights=False).overhead
    cold = check_row(row(engine_version="0.9.0", compile_cache="cold"), predict_weights=False).overhead
    unknown = check_row(row(engine_version="0.9.0", compile_cache="unknown"), predict_weights=False).overhead
    assert cold == unknown and cold.total > warm.total  # a cold compile cache profiles a larger activation
    assert warm.band == "0.8-0.20" and warm.cudagraph == 0
    # 0.10.1-0.19 were seen to start cold at no extra cost (engines.VLLM_NO_COLD_COMPILE_COST)
    seen = [check_row(row(engine_version=v, compile_cache="cold"), predict_weights=False).overhead for v in ("0.11.0",)]
    assert seen[0] == check_row(row(engine_version="0.11.0"), predict_weights=False).overhead
    assert check_row(row(engine_version="0.22.0"), predict_weights=False).overhead.cudagraph > 0  # graphs from 0.21
    assert check_row(row(profile_band="v0"), predict_weights=False).overhead.band == "V0"


def _check(kv_pred: float, kv: float) -> EvidenceCheck:
    return EvidenceCheck(row(printed_kv_gib=kv), True, 1.0, VllmOverhead("V0", 0, 0, 0, 0, 0), kv_pred)


def test_over_commit_and_summary() -> None:
    assert _check(10.0, 10.0).over_commit is False
    assert _check(10.5, 10.0).over_commit is True
    checks = [_check(9.0, 10.0), _check(11.0, 10.0), _check(10.0, 10.0), _check(8.0, 10.0)]
    assert evidence_summary(checks) == {
        "rows": 4,
        "over_commits": 1,
        "median_abs_error": pytest.approx(0.1),
        "worst_under": pytest.approx(-0.2),
        "worst_over": pytest.approx(0.1),
    }


def test_load_reads_every_column() -> None:
    rows = load_vllm_evidence()
    first = rows[0]
    assert first.id == "v0-3090-llama8b-20k"
    assert (first.cuda_total_gib, first.gpu_memory_utilization, first.params_b) == (23.58, 0.90, 8.03)
    assert (first.max_model_len, first.max_num_seqs, first.max_num_batched_tokens) == (20000, 256, 20000)
    assert (first.n_layers, first.hidden_size, first.intermediate_size, first.vocab_size) == (32, 4096, 14336, 128256)
    assert (first.n_heads, first.n_kv_heads, first.head_dim, first.tied_embeddings) == (32, 8, 128, False)
    assert (first.kv_bytes_per_token, first.printed_weights_gib, first.printed_non_torch_gib) == (131072, 14.99, 0.35)
    assert (first.printed_activation_gib, first.printed_cudagraph_gib, first.printed_kv_gib) == (2.07, None, 3.81)
    assert first.printed_kv_tokens == 31232
    assert any(r.tied_embeddings for r in rows) and all(r.source_url.startswith("https://") for r in rows)


@pytest.mark.parametrize("cls", [VllmEvidence, EvidenceCheck])
def test_frozen_with_valid_annotations(cls: type) -> None:
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    typing.get_type_hints(cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row().id = "x"  # type: ignore[misc]
