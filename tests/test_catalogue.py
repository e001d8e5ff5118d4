"""The built-in catalogue, re-checked against the research CSV's own KV columns (tests/data/architectures.csv)."""

from __future__ import annotations

import csv

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import catalogue_model, catalogue_names
from cloudrun_gpu.sizing.engines import kv_bytes_per_token_full

from .conftest import DATA

CSV_TO_CATALOGUE = {
    "Llama-3.1-8B": "llama-3.1-8b",
    "Llama-3.1-70B": "llama-3.1-70b",
    "Llama-3.2-1B": "llama-3.2-1b",
    "Llama-3.2-3B": "llama-3.2-3b",
    "Gemma-2-9B": "gemma-2-9b",
    "Gemma-2-27B": "gemma-2-27b",
    "Gemma-3-1B": "gemma-3-1b",
    "Gemma-3-4B": "gemma-3-4b",
    "Gemma-3-12B": "gemma-3-12b",
    "Gemma-3-27B": "gemma-3-27b",
    "Gemma-3-270M (GGUF read here)": "gemma-3-270m",
    "Qwen2.5-7B": "qwen2.5-7b",
    "Qwen2.5-14B": "qwen2.5-14b",
    "Qwen2.5-32B": "qwen2.5-32b",
    "Qwen2.5-72B": "qwen2.5-72b",
    "Qwen3-8B": "qwen3-8b",
    "Qwen3-32B": "qwen3-32b",
    "Mistral-7B-v0.3": "mistral-7b-v0.3",
    "Mixtral-8x7B": "mixtral-8x7b",
    "Phi-3-mini-4k": "phi-3-mini-4k",
    "Phi-4-mini": "phi-4-mini",
    "DeepSeek-R1-Distill-Qwen-7B": "deepseek-r1-distill-qwen-7b",
    "gpt-oss-20b": "gpt-oss-20b",
    "gpt-oss-120b": "gpt-oss-120b",
    "DeepSeek-V3/R1 (MLA reference)": "deepseek-v3",
}


def _rows() -> list[dict[str, str]]:
    """The CSV's rows, from the copy kept in the clone (tests/data/README.md names its source)."""
    with (DATA / "architectures.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_csv_row_is_in_the_catalogue_with_the_same_geometry() -> None:
    rows = _rows()
    assert len(rows) == len(CSV_TO_CATALOGUE) == len(catalogue_names())
    for row in rows:
        spec = catalogue_model(CSV_TO_CATALOGUE[row["model"]])
        assert spec.n_layers == int(row["n_layers"]), row["model"]
        assert spec.hidden_size == int(row["hidden_size"]), row["model"]
        assert spec.vocab_size == int(row["vocab_size"]), row["model"]
        assert spec.max_context == int(row["max_context"]), row["model"]
        assert spec.n_full_layers == int(row["n_full_attention_layers"]), row["model"]
        # recompute the CSV's "full layers only" KV column from our per-layer geometry (BF16 = 2 bytes)
        assert kv_bytes_per_token_full(spec, "bf16") == int(row["kv_bytes_per_token_bf16_full_layers_only"]), row[
            "model"
        ]


def test_all_layers_column_matches_when_every_layer_cached_full_context() -> None:
    for row in _rows():
        spec = catalogue_model(CSV_TO_CATALOGUE[row["model"]])
        per_layer = sum((k + v) * 2 for k, v in (spec.kv_elements_per_token(i) for i in range(spec.n_layers)))
        assert per_layer == int(row["kv_bytes_per_token_bf16_all_layers_full"]), row["model"]


def test_unknown_model_lists_the_catalogue() -> None:
    with pytest.raises(ConfigError) as err:
        catalogue_model("llama-9")
    assert "llama-3.1-8b" in err.value.allowed
    assert catalogue_model("Llama-3.1-8B").name == "llama-3.1-8b"
