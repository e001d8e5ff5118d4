"""Mutation-strength tests for sizing/catalogue.py: every built-in model's geometry as its published config.json
gives it (layers, hidden, heads, KV heads, head dim, vocabulary, context, parameters, sliding window and
pattern, tied embeddings, MLA latent), and the lookup's errors."""

from __future__ import annotations

import typing

import pytest
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.sizing import catalogue as C
from cloudrun_gpu.sizing.catalogue import catalogue_model, catalogue_names

# name: (layers, hidden, heads, kv_heads, head_dim, vocab, max_ctx, params, window, pattern, tied, mla_latent)
ROWS = {
    "llama-3.1-8b": (32, 4096, 32, 8, 128, 128256, 131072, 8030000000, None, 1, False, 0),
    "llama-3.1-70b": (80, 8192, 64, 8, 128, 128256, 131072, 70600000000, None, 1, False, 0),
    "llama-3.2-1b": (16, 2048, 32, 8, 64, 128256, 131072, 1240000000, None, 1, True, 0),
    "llama-3.2-3b": (28, 3072, 24, 8, 128, 128256, 131072, 3210000000, None, 1, True, 0),
    "gemma-2-9b": (42, 3584, 16, 8, 256, 256000, 8192, 9240000000, 4096, 2, True, 0),
    "gemma-2-27b": (46, 4608, 32, 16, 128, 256000, 8192, 27200000000, 4096, 2, True, 0),
    "gemma-3-270m": (18, 640, 4, 1, 256, 262144, 32768, 268000000, 512, 6, True, 0),
    "gemma-3-1b": (26, 1152, 4, 1, 256, 262144, 32768, 1000000000, 512, 6, True, 0),
    "gemma-3-4b": (34, 2560, 8, 4, 256, 262208, 131072, 4300000000, 1024, 6, True, 0),
    "gemma-3-12b": (48, 3840, 16, 8, 256, 262208, 131072, 12200000000, 1024, 6, True, 0),
    "gemma-3-27b": (62, 5376, 32, 16, 128, 262208, 131072, 27400000000, 1024, 6, True, 0),
    "qwen2.5-7b": (28, 3584, 28, 4, 128, 152064, 32768, 7620000000, None, 1, False, 0),
    "qwen2.5-14b": (48, 5120, 40, 8, 128, 152064, 32768, 14700000000, None, 1, False, 0),
    "qwen2.5-32b": (64, 5120, 40, 8, 128, 152064, 32768, 32500000000, None, 1, False, 0),
    "qwen2.5-72b": (80, 8192, 64, 8, 128, 152064, 32768, 72700000000, None, 1, False, 0),
    "qwen3-8b": (36, 4096, 32, 8, 128, 151936, 40960, 8200000000, None, 1, False, 0),
    "qwen3-32b": (64, 5120, 64, 8, 128, 151936, 40960, 32800000000, None, 1, False, 0),
    "mistral-7b-v0.3": (32, 4096, 32, 8, 128, 32768, 32768, 7250000000, None, 1, False, 0),
    "mixtral-8x7b": (32, 4096, 32, 8, 128, 32000, 32768, 46700000000, None, 1, False, 0),
    "phi-3-mini-4k": (32, 3072, 32, 32, 96, 32064, 4096, 3820000000, None, 1, False, 0),
    "phi-4-mini": (32, 3072, 24, 8, 128, 200064, 131072, 3840000000, None, 1, True, 0),
    "deepseek-r1-distill-qwen-7b": (28, 3584, 28, 4, 128, 152064, 131072, 7620000000, None, 1, False, 0),
    "gpt-oss-20b": (24, 2880, 64, 8, 64, 201088, 131072, 20900000000, 128, 2, False, 0),
    "gpt-oss-120b": (36, 2880, 64, 8, 64, 201088, 131072, 116800000000, 128, 2, False, 0),
    "deepseek-v3": (61, 7168, 128, 1, 0, 129280, 163840, 671000000000, None, 1, False, 576),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_catalogue_geometry(name: str) -> None:
    layers, hidden, heads, kv, head_dim, vocab, ctx, params, window, pattern, tied, mla = ROWS[name]
    m = catalogue_model(name)
    assert (m.name, m.n_layers, m.hidden_size, m.n_heads) == (name, layers, hidden, heads)
    assert m.kv_heads == (kv,) * layers
    assert (m.head_dim_k, m.head_dim_v, m.vocab_size, m.max_context, m.n_params) == (
        head_dim,
        head_dim,
        vocab,
        ctx,
        params,
    )
    if window is None or pattern <= 1:
        assert m.layer_windows == (None,) * layers
    else:
        assert m.layer_windows == tuple(None if i % pattern == pattern - 1 else window for i in range(layers))
    assert (m.tied_embeddings, m.mla_latent_dim) == (tied, mla)
    row = C._ROWS[name]
    assert (row.window, row.pattern) == (window, pattern)
    assert m.architecture == row.hf_id.split("/")[-1]
    assert m.source == f"catalogue: https://huggingface.co/{row.hf_id}/blob/main/config.json"
    assert m.notes == ((row.note,) if row.note else ())


def test_names_sorted_and_complete() -> None:
    assert catalogue_names() == sorted(ROWS)


def test_lookup_is_case_and_space_insensitive() -> None:
    m = catalogue_model("  Llama-3.1-8B ")
    assert m.name == "llama-3.1-8b" and m.architecture == "Llama-3.1-8B-Instruct"
    assert catalogue_model("deepseek-v3").notes == (
        "MLA: one 576-element latent (kv_lora_rank 512 + rope 64) per layer per token",
    )


def test_unknown_name_error_exact() -> None:
    with pytest.raises(ConfigError) as err:
        catalogue_model("llama-9", field="--model")
    e = err.value
    assert (e.field, e.value, e.problem) == ("--model", "llama-9", "not in the built-in catalogue")
    assert e.fix == "use a catalogue name, or point model.gguf / model.hf_config at the model's own files"
    assert e.allowed == ", ".join(sorted(ROWS))


def test_non_string_name_error() -> None:
    with pytest.raises(ConfigError) as err:
        catalogue_model(8)  # type: ignore[arg-type]
    e = err.value
    assert (e.field, e.value, e.problem) == ("model.name", 8, "is not a model name (a string)")


def test_row_defaults_and_annotations() -> None:
    r = C._Row("a/b", 1, 2, 3, 4, 5, 6, 7, 0.5)
    assert (r.window, r.pattern, r.tied, r.mla_latent, r.note) == (None, 1, False, 0, "")
    assert C._Row.__dataclass_params__.frozen  # type: ignore[attr-defined]
    typing.get_type_hints(C._Row)
